"""What retrains what: the result key covers exactly the code and settings that training runs."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from mnist_core import config as config_module
from mnist_core.config import MODELS, default_config
from mnist_core.provenance import (PACKAGE_DIR, TRAINING_ROOTS, code_fingerprints, experiment_key,
                                   key_inputs)


@pytest.fixture
def package(tmp_path) -> Path:
    """A copy of mnist_core's sources to edit."""
    copy = tmp_path / "mnist_core"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def prints(package: Path, model: str) -> dict[str, str]:
    return code_fingerprints([*TRAINING_ROOTS, ("models.py", f"build_{model}")], package)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_the_walk_finds_each_models_own_helpers():
    cnn, classic = prints(PACKAGE_DIR, "cnn"), prints(PACKAGE_DIR, "classic")
    # Reached through build_cnn's calls, not listed by hand.
    assert {"models.py:build_cnn", "models.py:conv_bn_relu"} <= set(cnn)
    assert "models.py:conv_bn_relu" not in classic and "models.py:build_cnn" not in classic
    for shared in ("train.py:train", "train.py:make_splits", "evaluate.py:evaluate",
                   "train.py:prepare", "train.py:fit", "models.py:<module>"):
        assert shared in cnn and shared in classic
    # Documents-only code is not training code.
    documents_only = ("predict.py", "preprocess.py", "render.py", "figures.py")
    assert not any(name.startswith(documents_only) for name in cnn)


def test_docstring_comment_and_message_edits_change_no_key(package):
    before = {m: prints(package, m) for m in ("classic", "cnn")}
    edit(package / "train.py", '"""Fit the model named in ``config``',
         '"""Fit (reworded docstring) the model named in ``config``')
    edit(package / "data.py", "# SHA-256 of the uncompressed IDX files",
         "# (a comment edit) SHA-256 of the uncompressed IDX files")
    edit(package / "models.py", 'raise MnistReportError(f"unknown model',
         'raise MnistReportError(f"no such model (reworded)')
    edit(package / "evaluate.py", "# The classic tutorial shows the first nine",
         "# Reworded comment: the first nine")
    assert {m: prints(package, m) for m in ("classic", "cnn")} == before


def test_a_real_edit_of_one_builder_changes_that_models_key_only(package):
    before = {m: prints(package, m) for m in ("classic", "mlp", "cnn")}
    edit(package / "models.py", "x = conv_bn_relu(x, 16)", "x = conv_bn_relu(x, 24)")
    after = {m: prints(package, m) for m in ("classic", "mlp", "cnn")}
    assert after["classic"] == before["classic"] and after["mlp"] == before["mlp"]
    assert after["cnn"]["models.py:build_cnn"] != before["cnn"]["models.py:build_cnn"]
    # A helper only the cnn calls:
    edit(package / "models.py", "padding=\"same\", use_bias=False", "padding=\"valid\", use_bias=False")
    again = {m: prints(package, m) for m in ("classic", "cnn")}
    assert again["classic"] == before["classic"]
    assert again["cnn"]["models.py:conv_bn_relu"] != after["cnn"]["models.py:conv_bn_relu"]


def test_shared_training_code_and_module_level_code_change_every_key(package):
    before = {m: prints(package, m) for m in ("classic", "cnn")}
    edit(package / "train.py", "seed_everything(config.seed)", "seed_everything(config.seed + 1)")
    after = {m: prints(package, m) for m in ("classic", "cnn")}
    assert all(after[m] != before[m] for m in after)
    # A setting made when models.py is imported (not inside any function) runs for every model.
    (package / "models.py").write_text((package / "models.py").read_text()
                                       + "\nkeras.config.set_floatx('float64')\n")
    last = {m: prints(package, m) for m in ("classic", "cnn")}
    assert all(last[m]["models.py:<module>"] != after[m]["models.py:<module>"] for m in last)


def test_test_time_shifts_and_input_kind_are_in_the_key(monkeypatch):
    config = default_config("cnn")
    before = key_inputs(config, "sha")
    assert before["config"]["test_time_shifts"] is True and before["config"]["input_kind"] == "image"
    monkeypatch.setitem(config_module.MODELS, "cnn", dataclasses.replace(MODELS["cnn"],
                                                                         test_time_shifts=False))
    after = key_inputs(config, "sha")
    assert experiment_key(after) != experiment_key(before)
    # Title, summary and costs only describe the model: editing them retrains nothing.
    monkeypatch.setitem(config_module.MODELS, "cnn", dataclasses.replace(
        MODELS["cnn"], test_time_shifts=True, summary="A reworded summary.", train_cost=9.0))
    assert experiment_key(key_inputs(config, "sha")) == experiment_key(before)

"""Sentences that depend on the run are said only when the run bears them out."""

from __future__ import annotations

import json
import shutil

import pytest

from mnist_core.render import _environment, build_context


def narrative(out, folders) -> str:
    return _environment().get_template("tutorial.md.j2").render(**build_context(out, folders))


@pytest.fixture
def copy(tmp_path, quick_build):
    out = tmp_path / "out"
    shutil.copytree(quick_build["out"], out)
    return out, out / "experiments" / quick_build["folder"].name


def _edit(folder, change) -> None:
    data = json.loads((folder / "results.json").read_text())
    change(data)
    (folder / "results.json").write_text(json.dumps(data))


def test_validation_above_training_is_said_only_when_true(copy):
    out, folder = copy

    def set_final(train: float, val: float):
        def change(data):
            data["history"]["accuracy"][-1], data["history"]["val_accuracy"][-1] = train, val
        return change

    _edit(folder, set_final(0.60, 0.90))
    assert "Validation accuracy ends above training accuracy" in narrative(out, [folder])
    _edit(folder, set_final(0.95, 0.90))
    text = narrative(out, [folder])
    assert "above training accuracy" not in text
    assert "on the training batches and on the held-out validation images" in text


def test_the_classic_paragraphs_need_the_classic_model(copy):
    out, folder = copy
    assert "The classic network reaches" in narrative(out, [folder])
    _edit(folder, lambda data: data.update(experiment="mlp"))
    text = narrative(out, [folder])
    assert "The classic network" not in text


def test_how_the_build_ran_follows_the_results(copy):
    out, folder = copy
    second = out / "experiments" / "keras_example-000000000000"
    shutil.copytree(folder, second)

    def example(data):
        data.update(experiment="keras_example")
        data["training"]["wall_time_s"] = 100.0
        data["provenance"]["cpu"] = "Other CPU"

    _edit(second, example)
    _edit(folder, lambda data: data["training"].update(wall_time_s=50.0))
    text = narrative(out, [folder, second])
    assert "computed in bfloat16" not in text
    assert "The classic model took 0.50x the Keras example's training time (50 s against 100 s)." in text
    assert "classic trained on" in text and "keras_example trained on Other CPU" in text

    _edit(folder, lambda data: data["training"].update(precision="bfloat16"))
    text = narrative(out, [folder, second])
    assert "The classic model computed in bfloat16" in text
    assert "MNIST_REPORT_PRECISION=float32" in text

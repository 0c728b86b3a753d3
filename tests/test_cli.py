"""The command line: exit codes and one-line messages for bad data and bad options."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env_extra: dict | None = None, cwd: Path = REPO_ROOT):
    import os
    env = {k: v for k, v in os.environ.items() if k != "MNIST_DATA_DIR"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "mnist_core.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def assert_one_line_error(run, code: int, pattern: str):
    assert run.returncode == code, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    assert re.search(pattern, run.stderr), run.stderr


def test_help_lists_every_command_and_no_command_is_an_error():
    from importlib.metadata import version

    run = cli("--help")
    assert run.returncode == 0, run.stderr
    # Each documented command, with its own one-line description (ours, not argparse's).
    for command, words in [("build", "train what has no current results"),
                           ("train", "train one model"), ("render", "never training"),
                           ("status", "fresh or stale"), ("clean", "remove result folders"),
                           ("predict", "which digit")]:
        assert re.search(rf"^\s+{command}\s+.*{words}", run.stdout, re.M), (command, run.stdout)
    # No command: the help, and a non-zero exit (a script calling it by mistake notices).
    bare = cli()
    assert bare.returncode == 2 and "usage: mnist-report" in bare.stdout
    assert cli("--version").stdout.strip() == f"mnist-report {version('mnist-report')}"


def test_missing_data_says_how_to_point_at_local_files(tmp_path):
    run = cli("build", "--quick", "--out", str(tmp_path / "out"), "--data-dir",
              str(tmp_path / "no-such-folder"))
    assert_one_line_error(run, 1, r"does not exist.*--data-dir DIR or MNIST_DATA_DIR")


def test_missing_data_offline_without_any_source(tmp_path):
    # No data dir, an empty Keras home, and a proxy that refuses every connection: the
    # download is the only source left and fails at once, as on a machine without internet.
    dead_proxy = "http://127.0.0.1:9"
    run = cli("build", "--quick", "--out", str(tmp_path / "out"),
              env_extra={"KERAS_HOME": str(tmp_path / "keras"), "HOME": str(tmp_path),
                         "https_proxy": dead_proxy, "HTTPS_PROXY": dead_proxy,
                         "http_proxy": dead_proxy, "HTTP_PROXY": dead_proxy,
                         "no_proxy": "", "NO_PROXY": ""})
    assert_one_line_error(run, 1, r"MNIST is not available locally and the download failed")
    assert re.search(r"--data-dir DIR or MNIST_DATA_DIR=DIR", run.stderr), run.stderr
    # (TensorFlow's own start-up lines may come before it.)
    assert run.stderr.strip().splitlines()[-1].startswith("mnist-report: error: MNIST"), run.stderr
    assert not (tmp_path / "out" / "experiments").exists()


def test_corrupt_data_is_refused_and_old_results_survive(tmp_path, mnist_dir, quick_build):
    bad = tmp_path / "bad"
    shutil.copytree(mnist_dir, bad)
    (bad / "t10k-labels-idx1-ubyte.gz").chmod(0o644)
    raw = bytearray(gzip.decompress((bad / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    out = quick_build["out"]
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".lock"}
    run = cli("build", "--quick", "--out", str(out), "--data-dir", str(bad))
    assert_one_line_error(run, 1, r"t10k-labels-idx1-ubyte.gz: y_test content does not match")
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".lock"}
    assert before == after


@pytest.mark.parametrize("args, pattern", [
    (("build", "--epochs", "0"), r"--epochs: must be at least 1"),
    (("build", "--epochs", "many"), r"--epochs: expected a whole number"),
    (("build", "--models", "classic,resnet"), r"unknown model resnet"),
    (("train", "--model", "resnet"), r"invalid choice: 'resnet'"),
    (("build", "--no-such-option"), r"unrecognized arguments"),
    (("frobnicate",), r"invalid choice"),
])
def test_bad_options_exit_2(args, pattern):
    run = cli(*args)
    assert_one_line_error(run, 2, pattern)


def test_unknown_force_target(tmp_path, mnist_dir):
    run = cli("build", "--quick", "--force", "resnet", "--out", str(tmp_path),
              "--data-dir", str(mnist_dir))
    assert_one_line_error(run, 2, r"--force: unknown model 'resnet'")


def test_a_bad_precision_variable_stops_before_training(tmp_path, mnist_dir):
    run = cli("train", "--model", "classic", "--quick", "--out", str(tmp_path / "out"),
              "--data-dir", str(mnist_dir), env_extra={"MNIST_REPORT_PRECISION": "half"})
    assert_one_line_error(run, 1, r"MNIST_REPORT_PRECISION='half': use auto, float32 or bfloat16")
    assert "Epoch" not in run.stdout and "X_train" not in run.stdout
    assert not list((tmp_path / "out").glob("experiments/*/results.json"))

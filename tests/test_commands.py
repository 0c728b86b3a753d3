"""The build commands' promises: clean, --force, the best model, interrupts, missing TensorFlow."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from mnist_core.build import BuildOptions, plan
from mnist_core.results import best_experiment, best_model_folder

CLI = [sys.executable, "-m", "mnist_core.cli"]


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=600,
                          **kwargs)


@pytest.fixture
def built(tmp_path, quick_build):
    out = tmp_path / "out"
    shutil.copytree(quick_build["out"], out)
    return out


def test_clean_keeps_every_models_current_results_full_or_quick(built, mnist, tmp_path):
    quick_folder = next((built / "experiments").iterdir())
    # A full cnn result for today's code (as `build --models cnn` would leave it) and an
    # outdated classic one: only the outdated one may go, whatever the flags.
    cnn_full = plan(BuildOptions(out=built, models=("cnn",)), mnist.sha256)[0].folder
    shutil.copytree(quick_folder, cnn_full)
    outdated = built / "experiments" / "classic-000000000000"
    shutil.copytree(quick_folder, outdated)

    # clean reads no MNIST files: none are where it would look.
    no_data = {**os.environ, "MNIST_DATA_DIR": str(tmp_path / "nowhere"),
               "KERAS_HOME": str(tmp_path / "keras")}
    dry = run("clean", "--dry-run", "--out", built, env=no_data)
    assert dry.returncode == 0, dry.stderr
    assert f"would remove {outdated} (" in dry.stdout and "MB)" in dry.stdout
    assert str(cnn_full) not in dry.stdout and str(quick_folder) not in dry.stdout
    assert outdated.is_dir()  # a dry run removes nothing

    done = run("clean", "--out", built, env=no_data)
    assert done.returncode == 0, done.stderr
    assert not outdated.exists()
    assert cnn_full.is_dir() and quick_folder.is_dir()
    assert "removed 1 folder(s)" in done.stdout


def test_force_of_a_model_not_being_built_is_an_error(built, mnist_dir):
    done = run("build", "--quick", "--models", "classic", "--force", "mlp", "--out", built,
               "--data-dir", mnist_dir, "--no-render")
    assert done.returncode == 2
    assert done.stderr.strip() == ("mnist-report: error: --force mlp: not among the models being "
                                   "built (classic); add it with --models")


def _results(val: float, test: float, params: int = 1000, seconds: float = 10.0,
             quick: bool = False) -> dict:
    return {"metrics": {"validation": {"accuracy": val}, "test": {"accuracy": test}},
            "model": {"params_total": params}, "training": {"wall_time_s": seconds},
            "config": {"train_limit": 3000 if quick else None}}


def test_the_best_model_is_chosen_on_validation_never_on_test():
    by_val, by_test = _results(0.99, 0.97), _results(0.98, 0.995)
    assert best_experiment([by_test, by_val]) is by_val
    # Ties: fewer parameters, then shorter training.
    small, large = _results(0.99, 0.9, params=100), _results(0.99, 0.99, params=200)
    assert best_experiment([large, small]) is small
    fast, slow = _results(0.99, 0.9, seconds=5), _results(0.99, 0.99, seconds=50)
    assert best_experiment([slow, fast]) is fast
    # A quick smoke run never beats a full run, however lucky its small validation set.
    assert best_experiment([_results(1.0, 1.0, quick=True), by_val]) is by_val


def test_predict_documents_and_ci_share_the_choice(built):
    folder = next((built / "experiments").iterdir())
    rival = built / "experiments" / "mlp-111111111111"
    shutil.copytree(folder, rival)
    data = json.loads((rival / "results.json").read_text())
    data["experiment"] = "mlp"
    data["metrics"]["validation"]["accuracy"] = 0.0  # worse on validation...
    data["metrics"]["test"]["accuracy"] = 1.0  # ...better on test: must not be chosen
    (rival / "results.json").write_text(json.dumps(data))
    assert best_model_folder(built) == folder
    data["metrics"]["validation"]["accuracy"] = 1.0
    (rival / "results.json").write_text(json.dumps(data))
    assert best_model_folder(built) == rival


def test_render_and_status_need_no_mnist_files(built, tmp_path):
    """A user who built with --data-dir renders and asks for status without it."""
    no_data = {**os.environ, "MNIST_DATA_DIR": str(tmp_path / "nowhere"),
               "KERAS_HOME": str(tmp_path / "keras")}
    (built / "tutorial.html").unlink()
    status = run("status", "--quick", "--models", "classic", "--out", built, env=no_data)
    assert status.returncode == 0 and "classic  fresh" in status.stdout, status.stderr
    render = run("render", "--quick", "--models", "classic", "--out", built, env=no_data)
    assert render.returncode == 0, render.stderr
    assert "STALE" not in render.stdout + render.stderr
    assert (built / "tutorial.html").is_file()


def test_ctrl_c_while_rendering_finishes_the_step_and_keeps_the_documents(built):
    pdf_before = (built / "tutorial.pdf").read_bytes()
    env = {**os.environ, "MNIST_REPORT_PAUSE_AT": "html-written:4"}
    proc = subprocess.Popen([*CLI, "render", "--quick", "--models", "classic", "--out",
                             str(built)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    for line in proc.stdout:  # wait for the pause, then press Ctrl-C once
        lines.append(line)
        if "paused at html-written" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert "stopping after the current step" in out and "Traceback" not in out
    assert (built / "tutorial.pdf").read_bytes() == pdf_before  # the next step never started
    assert not list(built.glob(".tutorial*"))  # no temporary file left behind


def test_first_ctrl_c_is_deferred_to_the_next_check_second_stops_at_once():
    from mnist_core import interrupts

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as on a terminal
    try:
        with pytest.raises(KeyboardInterrupt):  # leaving the block: the stop still stands
            with interrupts.deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)  # a step would be running here: not interrupted
                assert interrupts.requested()
                with pytest.raises(KeyboardInterrupt):
                    interrupts.check()
                with pytest.raises(KeyboardInterrupt):  # the impatient second Ctrl-C
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.1)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
        assert not interrupts.requested()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_missing_tensorflow_gives_one_line_naming_the_extra(tmp_path, mnist_dir):
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from mnist_core.cli import main\n"
            f"sys.exit(main(['train', '--model', 'classic', '--quick', '--out', {str(tmp_path)!r},"
            f" '--data-dir', {str(mnist_dir)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("mnist-report")]
    assert lines == [lines[0]] and "pip install 'mnist-report[cpu]'" in lines[0]
    assert "Traceback" not in done.stderr

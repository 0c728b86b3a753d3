"""Regenerate only what changed; determinism; nothing lost when a build is killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnist_core.results import list_experiment_dirs, load_results

REPO_ROOT = Path(__file__).resolve().parent.parent


def start(args, cwd=REPO_ROOT, pause=None, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(cwd), PYTHONUNBUFFERED="1")
    env.pop("MNIST_REPORT_PAUSE_AT", None)
    if pause:
        env["MNIST_REPORT_PAUSE_AT"] = pause
    return subprocess.Popen([sys.executable, "-m", "mnist_core.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=_sigint_as_on_a_terminal,
                            **kwargs)


def _sigint_as_on_a_terminal() -> None:
    # A job started with `&` by a non-interactive shell (CI scripts, nohup) inherits SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler: the build would be
    # immune to the Ctrl-C the tests send. Give it what a terminal gives it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(args, cwd=REPO_ROOT, pause=None, timeout=300):
    proc = start(args, cwd, pause)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def wait_for(proc, marker: str, timeout: float = 120) -> str:
    """Read the build's output until ``marker`` appears (the build is then at that point)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    proc.kill()
    raise AssertionError(f"never saw {marker!r}; output:\n{''.join(seen)}")


def snapshot(out: Path) -> dict:
    return {p.relative_to(out): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and p.name != ".lock"}


@pytest.fixture
def built(tmp_path, quick_build):
    """A private copy of a finished quick build (classic) to damage."""
    out = tmp_path / "out"
    shutil.copytree(quick_build["out"], out)
    return out


def quick(out, *extra):
    return ["build", "--quick", "--models", "classic", "--out", str(out), *extra]


def test_ctrl_c_during_training_keeps_previous_results(built, mnist_dir):
    before = snapshot(built)
    proc = start(quick(built, "--force", "--epochs", "50", "--data-dir", str(mnist_dir)))
    wait_for(proc, "Epoch 2/50")
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted" in out and "Traceback" not in out
    assert snapshot(built) == before


# Where a kill lands, and the command that gets there fastest: the staging point needs a
# training run; the rendering points are reached by `render` on the existing results.
@pytest.mark.parametrize("point, command", [("staged", "build"), ("html-written", "render"),
                                            ("pdf-compiled", "render")])
def test_kill_9_then_next_build_completes(built, mnist_dir, point, command):
    before = snapshot(built)
    args = (quick(built, "--force", "--data-dir", str(mnist_dir)) if command == "build" else
            ["render", "--quick", "--models", "classic", "--out", str(built)])
    proc = start(args, pause=point)
    wait_for(proc, f"paused at {point}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    after = snapshot(built)

    def visible(files: dict) -> dict:
        # What a killed build may leave: a staging folder, a temporary file beside a document.
        temporary = (".tmp-", ".old-", ".tutorial.")
        return {p: b for p, b in files.items() if not any(x.startswith(temporary) for x in p.parts)}

    # The results folder is exactly as it was; the PDF is the previous one (it is replaced
    # only after it compiled); the HTML is complete (the previous one, or the new one).
    assert {p: b for p, b in visible(after).items() if p.parts[0] == "experiments"} == \
        {p: b for p, b in before.items() if p.parts[0] == "experiments"}
    assert after[Path("tutorial.pdf")] == before[Path("tutorial.pdf")]
    html = after[Path("tutorial.html")]
    assert html.startswith(b"<!DOCTYPE html>") and html.endswith(b"</html>\n")
    if point == "staged":
        assert visible(after) == before
    code, out = run(quick(built, "--data-dir", str(mnist_dir)))
    assert code == 0 and "trained: nothing" in out, out
    assert not [p for p in (built / "experiments").iterdir() if p.name.startswith(".")]
    pdf = (built / "tutorial.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"%%EOF" in pdf[-64:]


def test_two_builds_at_once_do_not_collide(built, mnist_dir):
    first = start(quick(built, "--data-dir", str(mnist_dir)), pause="locked:4")
    wait_for(first, "paused at locked")
    code, out = run(quick(built, "--data-dir", str(mnist_dir)))
    first_out, _ = first.communicate(timeout=120)
    assert first.returncode == 0, first_out
    assert code == 0, out
    assert "waiting for the build already running" in out
    assert "done in" in out and "trained: nothing" in out


def _copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    # symlinks=True: mnist_core/templates stays a link to the copy's own templates/.
    shutil.copytree(REPO_ROOT / "mnist_core", project / "mnist_core", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "templates", project / "templates")
    return project


def test_only_what_changed_is_rebuilt(tmp_path, built, mnist_dir):
    project = _copy_project(tmp_path)
    args = ["--out", str(built), "--quick"]  # status and render read no MNIST files
    code, out = run(["status", *args, "--models", "classic"], cwd=project)
    assert code == 0 and "classic  fresh" in out, out

    # A template edit re-renders without retraining (and without TensorFlow).
    narrative = project / "templates" / "tutorial.md.j2"
    narrative.write_text(narrative.read_text() + "\nA sentence added by the test.\n")
    code, out = run(quick(built, "--data-dir", str(mnist_dir)), cwd=project)
    assert code == 0 and "trained: nothing" in out, out
    assert "A sentence added by the test." in (built / "tutorial.html").read_text()

    # A change inside one model's builder makes that model, and only it, stale.
    models = project / "mnist_core" / "models.py"
    source = models.read_text()
    assert source.count('layers.Dense(32, activation="elu")') == 1
    models.write_text(source.replace('layers.Dense(32, activation="elu")',
                                     'layers.Dense(48, activation="elu")'))
    code, out = run(["status", *args, "--models", "classic,mlp"], cwd=project)
    assert "classic  stale  code changed: models.py:build_classic" in out, out
    assert "mlp      stale  no results yet" in out

    # A render now uses the stale result and says so in the document.
    code, out = run(["render", *args, "--models", "classic"], cwd=project)
    assert code == 0 and "rendering STALE results" in out, out
    assert "Stale results." in (built / "tutorial.html").read_text()

    # Rebuilding retrains it, and the old folder becomes unreferenced until cleaned.
    code, out = run(quick(built, "--data-dir", str(mnist_dir)), cwd=project)
    assert code == 0 and "trained: classic" in out and "code changed" in out, out
    assert "Stale results." not in (built / "tutorial.html").read_text()
    code, out = run(["status", *args, "--models", "classic"], cwd=project)
    assert "not used by the current configuration" in out
    code, out = run(["clean", "--out", str(built)], cwd=project)
    assert code == 0 and "removed 1 folder(s)" in out, out
    assert len(list_experiment_dirs(built)) == 1


def test_same_seed_same_numbers(tmp_path, mnist_dir, quick_build):
    from mnist_core.build import BuildOptions, build

    out = tmp_path / "again"
    summary = build(BuildOptions(out=out, data_dir=str(mnist_dir), models=("classic",),
                                 quick=True, render=False))
    first = load_results(quick_build["folder"])
    second = load_results(summary["planned"][0].folder)
    assert second["key"] == first["key"]
    assert second["history"] == first["history"]
    assert second["metrics"] == first["metrics"]
    assert second["analysis"]["predicted"] == first["analysis"]["predicted"]

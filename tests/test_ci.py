"""The test workflow and the no-data guard: CI runs the tests and cannot pass by skipping them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "tests.yml"


def test_tests_workflow_runs_make_test_on_push_and_pull_request(check_workflow):
    workflow = yaml.safe_load(WORKFLOW.read_text())
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert "push" in on and "pull_request" in on
    assert on["push"] is None or "branches" not in on["push"]  # every branch
    (job,) = workflow["jobs"].values()
    assert job["strategy"]["matrix"]["python-version"] == ["3.11", "3.12"]
    assert job["env"]["MNIST_REQUIRE_DATA"] == "1"
    steps = job["steps"]
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "${{ matrix.python-version }}"
    assert setup["with"]["cache"] == "pip"
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "~/.keras/datasets"
    assert [s["run"].split()[:2] for s in steps if "run" in s] == [["make", "test"]]
    check_workflow(WORKFLOW)


def test_ci_script_requires_the_data():
    script = (REPO_ROOT / ".ci" / "run").read_text()
    assert "export MNIST_REQUIRE_DATA=1" in script
    assert script.index("MNIST_REQUIRE_DATA=1") < script.index("make test")


def _pytest_without_mnist(tmp_path: Path, require: bool) -> subprocess.CompletedProcess:
    """Two tests of test_data.py (one needs MNIST, one not) where no source of MNIST works.

    Not required: nothing at all, Keras' download fails. Required: a MNIST_DATA_DIR that does
    not exist, which fails before TensorFlow is imported (the guard is the same code).
    """
    project = tmp_path / "project"  # no shared/mnist beside this copy of the tests
    (project / "tests").mkdir(parents=True)
    for name in ("conftest.py", "test_data.py"):
        shutil.copy(REPO_ROOT / "tests" / name, project / "tests" / name)
    dead_proxy = "http://127.0.0.1:9"  # Keras' download fails at once, as offline
    env = {k: v for k, v in os.environ.items()
           if k not in ("MNIST_DATA_DIR", "MNIST_REQUIRE_DATA", "no_proxy", "NO_PROXY")}
    env.update(KERAS_HOME=str(tmp_path / "keras"), HOME=str(tmp_path), https_proxy=dead_proxy,
               HTTPS_PROXY=dead_proxy, http_proxy=dead_proxy, HTTP_PROXY=dead_proxy)
    if require:
        env.update(MNIST_REQUIRE_DATA="1", MNIST_DATA_DIR=str(tmp_path / "no-mnist-here"))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "tests/test_data.py", "-k", "full_dataset_shapes or parse_idx_roundtrip"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300)


def test_without_any_mnist_data_tests_skip_with_one_hint_line(tmp_path):
    run = _pytest_without_mnist(tmp_path, require=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"\b1 passed, .*\b1 skipped", run.stdout), run.stdout
    skips = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 1 and "no MNIST for the data tests (" in skips[0], run.stdout
    assert "set MNIST_DATA_DIR=DIR" in skips[0] and "shared/mnist" in skips[0]
    assert skips[0].count("MNIST_DATA_DIR") == 1, skips[0]  # one hint, not the tool's as well


def test_with_mnist_required_missing_data_fails(tmp_path):
    run = _pytest_without_mnist(tmp_path, require=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert re.search(r"\b1 passed, .*\b1 error", run.stdout), run.stdout
    assert "MNIST_REQUIRE_DATA=1: no MNIST for the data tests (data folder" in run.stdout
    assert "SKIPPED" not in run.stdout


def test_ci_results_check_names_what_is_missing(quick_build):
    """.ci/check_results.py, run after `make report`, on a build with only quick results: it
    fails with a line per model, not a traceback (a traceback here once failed CI)."""
    run = subprocess.run([sys.executable, str(REPO_ROOT / ".ci" / "check_results.py"),
                          str(quick_build["out"])], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "CI check failed: classic: no current results" in run.stderr

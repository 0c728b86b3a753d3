"""Shared fixtures: the real MNIST data and one short real training run per session.

The tests find MNIST as the tool does (``mnist_core.data.load_mnist``): ``MNIST_DATA_DIR``,
then ``shared/mnist`` beside the repository (this project's machines), then Keras' cache
(``~/.keras/datasets/mnist.npz``, ``$KERAS_HOME`` honoured), then Keras' download. When
none works the data tests skip with one line that says how to point them at local files;
with ``MNIST_REQUIRE_DATA=1`` (CI) they fail instead, so CI never passes on skipped tests.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "mnist"
HINT = ("set MNIST_DATA_DIR=DIR (a folder with the four MNIST IDX files, gzipped or not, or "
        "Keras' mnist.npz) or put shared/mnist beside the repository")


def _data_dir() -> str | None:
    """What the tests hand to ``load_mnist``: None leaves it to Keras' cache or download."""
    if os.environ.get("MNIST_DATA_DIR"):
        return os.environ["MNIST_DATA_DIR"]
    return str(SHARED) if SHARED.is_dir() else None


NO_DATA = "no MNIST for the data tests"


def _no_data(reason: str) -> None:
    message = f"{NO_DATA} ({reason}); {HINT}".replace("\n", " ")
    if os.environ.get("MNIST_REQUIRE_DATA") == "1":
        pytest.fail(f"MNIST_REQUIRE_DATA=1: {message}", pytrace=False)
    pytest.skip(message)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # pytest reports a skip from a fixture at each test's own line, one summary line per
    # test; place the skips for want of data here, so `-rs` folds them into one line.
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple) and NO_DATA in report.longrepr[2]:
        report.longrepr = (__file__, None, report.longrepr[2])
    return report


@pytest.fixture(scope="session")
def mnist():
    from mnist_core import MnistReportError
    from mnist_core.data import OFFLINE_HINT, load_mnist

    try:
        return load_mnist(_data_dir())
    except MnistReportError as exc:
        reason = str(exc).replace(f"; {OFFLINE_HINT}", "")  # the tests' own hint follows
    # Outside the except: the skip or failure is one line, without the exception's chain.
    # A session fixture's outcome is cached: one load (or failed download) per session.
    _no_data(reason)


@pytest.fixture(scope="session")
def mnist_dir(mnist, tmp_path_factory) -> Path:
    """A folder with the four gzipped IDX files (what --data-dir and the damage tests need).

    The folder MNIST came from when it holds them; otherwise (Keras' cache or download) the
    same verified arrays written as IDX files, once per session.
    """
    from mnist_core.data import FILES, idx_bytes

    source = Path(mnist.source)
    if source.is_dir() and all((source / f"{stem}.gz").is_file() for stem, _, _ in FILES.values()):
        return source.resolve()  # tests run subprocesses in other folders
    folder = tmp_path_factory.mktemp("mnist-idx")
    for name, (stem, _, _) in FILES.items():
        # Level 1: a few times faster than the default, and the damage tests need only gzip.
        (folder / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(getattr(mnist, name)),
                                                          compresslevel=1))
    return folder


@pytest.fixture(scope="session")
def quick_build(tmp_path_factory, mnist_dir):
    """A real (short) build of the classic model: results folder, figures, HTML and PDF."""
    from mnist_core.build import BuildOptions, build

    out = tmp_path_factory.mktemp("quick-build")
    summary = build(BuildOptions(out=out, data_dir=str(mnist_dir), models=("classic",),
                                 quick=True))
    return {"out": out, "folder": summary["planned"][0].folder, "summary": summary}


@pytest.fixture
def check_workflow():
    """Validate a GitHub Actions workflow against its schema (check-jsonschema's vendored copy)."""
    def check(workflow: Path) -> None:
        checker = shutil.which("check-jsonschema") or str(Path(sys.executable).parent /
                                                          "check-jsonschema")
        if not Path(checker).exists():
            pytest.skip("check-jsonschema is not installed (it is in the test extra)")
        done = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows",
                               str(workflow)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    return check


@pytest.fixture
def served_untrained_cnn(mnist):
    """An untrained cnn in ShiftedViews with the threshold at the median confidence of 20 test
    images, so that half of them are answered from nine views and half from one: (network,
    served model, images, the network's own probabilities, threshold)."""
    import keras
    import numpy as np

    from mnist_core.config import default_config
    from mnist_core.models import ShiftedViews, build_model
    from mnist_core.train import prepare

    keras.utils.set_random_seed(3)
    network = build_model(default_config("cnn"), steps_per_epoch=10)
    x, _ = prepare(mnist.x_test[:20], mnist.y_test[:20], flat=False)
    bare = np.asarray(network(x, training=False))
    threshold = float(np.median(bare.max(axis=1)))
    inputs = keras.Input(shape=(28, 28, 1))
    served = keras.Model(inputs, ShiftedViews(network, threshold)(inputs))
    return network, served, x, bare, threshold

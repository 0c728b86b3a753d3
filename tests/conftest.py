"""Shared fixtures: the real MNIST files and one short real training run per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _mnist_dir() -> Path:
    candidates = [os.environ.get("MNIST_DATA_DIR"), REPO.parent / "shared" / "mnist"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate).resolve()  # tests run subprocesses in other folders
    raise RuntimeError("the tests need the MNIST IDX files: set MNIST_DATA_DIR or put "
                       "shared/mnist beside the repository")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return _mnist_dir()


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from mnist_core.data import load_mnist
    return load_mnist(mnist_dir)


@pytest.fixture(scope="session")
def quick_build(tmp_path_factory, mnist_dir):
    """A real (short) build of the classic model: results folder, figures, HTML and PDF."""
    from mnist_core.build import BuildOptions, build

    out = tmp_path_factory.mktemp("quick-build")
    summary = build(BuildOptions(out=out, data_dir=str(mnist_dir), models=("classic",),
                                 quick=True))
    return {"out": out, "folder": summary["planned"][0].folder, "summary": summary}

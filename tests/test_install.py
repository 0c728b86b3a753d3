"""A plain, non-editable install (as pip, pipx or a wheel installs it) works from any folder.

The wheel is built from this checkout and installed into a fresh virtual environment. Its
dependencies come from the test environment (a path entry, not a reinstall of TensorFlow),
so what is tested is the package itself: its templates and data travel inside the wheel,
and nothing is looked up next to the source checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv holding the wheel of this checkout."""
    root = tmp_path_factory.mktemp("wheel-install")
    wheels, source = root / "wheels", root / "source"
    # Built from a copy of the tracked files: setuptools leaves build/ in the tree it builds,
    # and a stale build/ in the checkout could slip deleted files into a later wheel.
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True)
    if listed.returncode != 0:  # not a git checkout (an unpacked sdist): copy the tree
        shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
            ".venv", "build", "dist", "results", "node_modules", "*.egg-info", "__pycache__"))
    tracked = listed.stdout.decode().split("\0") if listed.returncode == 0 else []
    for name in filter(None, tracked):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_symlink():
            target.symlink_to(os.readlink(REPO / name))
        elif (REPO / name).is_file():
            shutil.copy2(REPO / name, target)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(wheels), str(source)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                           *map(str, wheels.glob("*.whl"))], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    # The test environment's libraries (TensorFlow, Keras, ...), after the venv's own packages.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return env_dir / "bin"


def test_the_wheel_carries_templates_and_example_and_no_checkout_paths(installed, tmp_path):
    code = ("import mnist_core, mnist_core.render as r, mnist_core.predict as p\n"
            "print(mnist_core.__file__); print(r.TEMPLATE_DIR); print(p.EXAMPLE_IMAGE)")
    done = subprocess.run([str(installed / "python"), "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    package, templates, example = done.stdout.split()
    venv_root = str(installed.parent)
    for path in (package, templates, example):
        assert path.startswith(venv_root) and not path.startswith(str(REPO)), path
    assert (Path(templates) / "tutorial.md.j2").is_file() and Path(example).is_file()


def test_build_quick_from_another_folder_gives_html_and_pdf(installed, tmp_path, mnist_dir):
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "MNIST_DATA_DIR": str(mnist_dir)}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(installed / "mnist-report"), "build", "--quick", "--models",
                           "classic"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    html, pdf = work / "results" / "tutorial.html", work / "results" / "tutorial.pdf"
    assert html.stat().st_size > 10_000 and pdf.read_bytes().startswith(b"%PDF")
    assert "Recognising handwritten digits" in html.read_text()
    done = subprocess.run([str(installed / "mnist-report"), "predict",
                           str(REPO / "tests" / "data" / "seven_black_on_white.png")],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "seven_black_on_white.png: " in done.stdout, done.stderr

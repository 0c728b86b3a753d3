"""The README is a contract: every command and Python snippet in it runs as written.

The README is the single source: this test reads it. Every `mnist-report ...` line of every
```sh block runs in a folder holding a copy of a quick real build as `results/` (commands that
could train get `--quick`, so a full training never starts here); every ```python block runs
there too, and lines run through bash, as a user types them. A line ending in `# exit N: ...` must fail with that code and one clean error line;
every other line must exit 0. No output may hold a traceback.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
BIN = Path(sys.executable).parent
TRAINING = {"build", "train", "render", "status"}  # subcommands that take --quick
SAMPLE = REPO / "tests" / "data" / "seven_black_on_white.png"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def commands() -> list[tuple[str, int]]:
    found = []
    for block in blocks("sh"):
        for line in block.splitlines():
            if not line.startswith("mnist-report"):
                continue
            command, _, comment = line.partition("#")
            expected = re.match(r"\s*exit (\d+)", comment)
            found.append((command.strip(), int(expected.group(1)) if expected else 0))
    return found


def test_the_readme_documents_every_subcommand():
    names = {shlex.split(c)[1] for c, _ in commands() if len(shlex.split(c)) > 1}
    from mnist_core.cli import parser

    sub = next(a for a in parser()._actions if a.dest == "command")
    assert set(sub.choices) <= names | {"--version"}, set(sub.choices) - names


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, quick_build):
    """A user's folder: a quick build as results/, and the images the README names."""
    folder = tmp_path_factory.mktemp("readme-user")
    shutil.copytree(quick_build["out"], folder / "results")
    text = "\n".join(blocks("sh") + blocks("python"))
    for name in set(re.findall(r"[\w./-]+\.(?:png|jpe?g|gif)\b", text)):
        if name.startswith(("missing", "tests/")):  # a documented error; the repo's own images
            continue
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(SAMPLE).convert("RGB").save(target)  # format from the extension
    shutil.copytree(REPO / "tests" / "data", folder / "tests" / "data")
    return folder


def _run(args: list[str], cwd: Path, mnist_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MNIST_DATA_DIR": str(mnist_dir),
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("command,expected", commands(), ids=[c for c, _ in commands()])
def test_every_readme_command_runs(command, expected, workdir, mnist_dir):
    words = shlex.split(command)
    if len(words) > 1 and words[1] in TRAINING and "--quick" not in words:
        command += " --quick"
    done = _run(["bash", "-c", command], workdir, mnist_dir)  # as typed: globs expand
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == expected, output
    if expected:
        errors = [line for line in done.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1, done.stderr


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_every_readme_python_snippet_runs(index, workdir, mnist_dir):
    done = _run([sys.executable, "-c", blocks("python")[index]], workdir, mnist_dir)
    assert done.returncode == 0, done.stdout + done.stderr

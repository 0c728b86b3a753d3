"""The README and the pages of docs/ are a contract: every command and snippet runs as written.

The documents are the single source: this test reads README.md and every docs/*.md. Every
`mnist-report ...` line of every ```sh block runs in a folder holding a copy of a quick real
build as `results/` (commands that could train get `--quick`, so a full training never starts
here); every ```python block runs there too, and lines run through bash, as a user types them.
A line ending in `# exit N: ...` must fail with that code and one clean error line; every other
line must exit 0. No output may hold a traceback.

What takes minutes to hours is not run, and is checked without running it: the benchmark and
research scripts (`python benchmarks/...`, `python research/...`) must exist and define every
option the documents pass them; an `mnist-report` command named in prose (or inside a shell
loop) may pass only options its subcommand has; ```text and ```bash blocks (installs, `make`,
`quarto render`) are shown, not run. The README's usage block lists exactly the options of
`mnist_core/cli.py`'s parser, and every relative link (with its #anchor) resolves.
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
# README.md first: its commands build the results the pages' commands use (e.g. --quick mlp).
PAGES = {path.relative_to(REPO).as_posix(): path.read_text()
         for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}
BIN = Path(sys.executable).parent
TRAINING = {"build", "train", "render", "status"}  # subcommands that take --quick
SAMPLE = REPO / "tests" / "data" / "seven_black_on_white.png"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)


def blocks(language: str, text: str | None = None) -> list[str]:
    return [body for lang, body in FENCE.findall(README if text is None else text)
            if lang == language]


def commands(text: str | None = None) -> list[tuple[str, int]]:
    found = []
    for block in blocks("sh", text):
        for line in block.splitlines():
            if not line.startswith("mnist-report"):
                continue
            command, _, comment = line.partition("#")
            expected = re.match(r"\s*exit (\d+)", comment)
            found.append((command.strip(), int(expected.group(1)) if expected else 0))
    return found


RUNS = [(page, command, expected) for page, text in PAGES.items()
        for command, expected in commands(text)]
SNIPPETS = [(page, code) for page, text in PAGES.items() for code in blocks("python", text)]


def _id(page: str, what: str) -> str:
    return what if page == "README.md" else f"{page}: {what}"


def test_the_readme_documents_every_subcommand():
    names = {shlex.split(c)[1] for c, _ in commands() if len(shlex.split(c)) > 1}
    sub = _subparsers()
    assert set(sub.choices) <= names | {"--version"}, set(sub.choices) - names


def _subparsers():
    from mnist_core.cli import parser

    return next(a for a in parser()._actions if a.dest == "command")


def test_the_readme_usage_is_the_parsers():
    """The usage block and the command table name exactly the parser's subcommands and
    options; an option shown without brackets is a required one."""
    usage = next(b for b in blocks("text") if b.startswith("mnist-report build"))
    shown: dict[str, str] = {}
    for line in usage.splitlines():
        if line.startswith("mnist-report "):
            name = line.split()[1]
            shown[name] = line
        else:
            shown[name] += line
    sub = _subparsers()
    assert set(shown) == set(sub.choices)
    table = set(re.findall(r"^\| `(\w+)` \|", README, flags=re.M))
    assert table == set(sub.choices), table ^ set(sub.choices)
    for name, line in shown.items():
        optional = set(re.findall(r"\[(--[\w-]+)", line))
        required = set(re.findall(r"(?<!\[)(--[\w-]+)", line))
        actions = [a for a in sub.choices[name]._actions if a.option_strings != ["-h", "--help"]]
        options = [a for a in actions if a.option_strings]
        assert {a.option_strings[0] for a in options if a.required} == required, name
        assert {a.option_strings[0] for a in options if not a.required} == optional, name
        positionals = [a.metavar for a in actions if not a.option_strings]
        assert all(f"{p}..." in line or p in line.split() for p in positionals), name


def _code(text: str) -> list[str]:
    """Every line of every fenced block, and every inline code span (whitespace folded)."""
    pieces = [line for _, body in FENCE.findall(text) for line in body.splitlines()]
    prose = FENCE.sub("", text)
    pieces += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]
    return pieces


SCRIPT = re.compile(r"(?:\bpython\s+)?((?:benchmarks|research)/[\w/]+\.py)((?:\s+[^\s;&|#]+)*)")


@pytest.mark.parametrize("page", PAGES)
def test_every_script_a_page_names_exists_with_its_options(page):
    problems = []
    for piece in _code(PAGES[page]):
        for match in SCRIPT.finditer(piece):
            script = REPO / match.group(1)
            if not script.is_file():
                problems.append(f"{match.group(1)}: no such script")
                continue
            if not match.group(0).startswith("python"):
                continue
            source = script.read_text()
            problems += [f"{match.group(1)}: no option {option}"
                         for option in re.findall(r"(?<![\w-])(--[\w-]+)", match.group(2))
                         if f'"{option}"' not in source]
    assert not problems, problems


@pytest.mark.parametrize("page", PAGES)
def test_every_command_a_page_names_has_its_options(page):
    """`mnist-report` commands the test does not run: each option belongs to its subcommand."""
    sub = _subparsers()
    problems = []
    for piece in _code(PAGES[page]):
        for match in re.finditer(r"(?:^|[\s;(])mnist-report ((?:[^\s;&|#`)]+\s*)+)", piece):
            words = match.group(1).split()
            if not words or words[0] not in sub.choices:
                continue
            known = {s for a in sub.choices[words[0]]._actions for s in a.option_strings}
            problems += [f"{' '.join(words)}: {w}" for w in words[1:]
                         if w.startswith("--") and w not in known]
    assert not problems, problems


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*]|\[|\]\([^)]*\)", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", text), flags=re.M):
        slug = _slug(heading)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_resolves(page):
    problems = []
    prose = FENCE.sub("", PAGES[page])
    for target in re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (REPO / page).parent / path if path else REPO / page
        if not file.exists():
            problems.append(f"{target}: no such file")
        elif anchor and anchor not in _anchors(file.read_text()):
            problems.append(f"{target}: no such heading")
    assert not problems, problems


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, quick_build):
    """A user's folder: a quick build as results/, and the images the documents name."""
    folder = tmp_path_factory.mktemp("readme-user")
    shutil.copytree(quick_build["out"], folder / "results")
    text = "\n".join(b for page in PAGES.values() for b in blocks("sh", page) + blocks("python", page))
    for name in set(re.findall(r"[\w./-]+\.(?:png|jpe?g|gif)\b", text)):
        if name.startswith(("missing", "tests/", "docs/")):  # a documented error; the repo's own
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


@pytest.mark.parametrize("page,command,expected", RUNS, ids=[_id(p, c) for p, c, _ in RUNS])
def test_every_documented_command_runs(page, command, expected, workdir, mnist_dir):
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


@pytest.mark.parametrize("page,code", SNIPPETS,
                         ids=[_id(p, f"python {i}") for i, (p, _) in enumerate(SNIPPETS)])
def test_every_documented_python_snippet_runs(page, code, workdir, mnist_dir):
    done = _run([sys.executable, "-c", code], workdir, mnist_dir)
    assert done.returncode == 0, done.stdout + done.stderr

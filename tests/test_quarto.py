"""The Quarto site, verified without the Quarto binary (and with it, where it is on PATH).

- _quarto.yml: every page exists; every option is one Quarto documents.
- every Python cell of every page runs, in order, in a real Jupyter kernel (nbclient),
  against the quick real build, as Quarto's Jupyter engine would run it;
- figure and table labels are unique and every cross-reference resolves;
- the publish workflow is valid for GitHub Actions (check-jsonschema's vendored schema);
- `quarto render` succeeds where quarto is on PATH (skipped otherwise, saying why).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

CONFIG = REPO / "_quarto.yml"
WORKFLOW = REPO / ".github" / "workflows" / "publish.yml"

# Options as Quarto's reference documents them; an option not listed here fails the test
# until someone checks it there and adds it. Sources:
#   project:  quarto.org/docs/projects/quarto-projects.html (type, output-dir, render)
#   website:  quarto.org/docs/websites/website-navigation.html, website-search.html
#   html:     quarto.org/docs/reference/formats/html.html
#   typst:    quarto.org/docs/reference/formats/typst.html, docs/output-formats/typst.html
#   execute:  quarto.org/docs/projects/code-execution.html (freeze)
#   cells:    quarto.org/docs/reference/cells/cells-jupyter.html
#   params:   quarto.org/docs/computations/parameters.html (tags: [parameters])
DOCUMENTED = {
    "top": {"project", "website", "format", "execute", "jupyter", "author", "license"},
    "project": {"type": {"default", "website", "book", "manuscript"}, "output-dir": str,
                "render": list},
    "website": {"title": str, "page-navigation": bool, "search": dict, "navbar": dict,
                "repo-url": str},
    "website.search": {"location": {"navbar", "sidebar"}, "type": {"overlay", "textbox"}},
    "website.navbar": {"left": list, "right": list, "background": str, "search": bool},
    "html": {"toc": bool, "code-copy": {True, False, "hover"}, "code-fold": {True, False, "show"},
             "grid": dict,
             "fig-format": {"retina", "png", "jpeg", "svg"}},
    "typst": {"toc": bool, "papersize": str, "section-numbering": str,
              "fig-format": {"png", "jpeg", "svg"}},  # typst cannot embed pdf figures
    "execute": {"freeze": {True, False, "auto"}},
    "front-matter": {"title": str, "subtitle": str},
    "cell": {"label": str, "fig-cap": str, "tbl-cap": str, "echo": bool,
             "output": {True, False, "asis"}, "code-fold": {True, False, "show"},
             "code-summary": str, "tags": list},
}
CELL = re.compile(r"^```\{python\}[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
REF = re.compile(r"(?<![\w.@])@((?:fig|tbl|sec|eq|lst)-[A-Za-z0-9_-]*[A-Za-z0-9])")
MD_LABEL = re.compile(r"\{#((?:fig|tbl|sec|eq|lst)-[A-Za-z0-9_-]+)[ }]")


def _config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def _pages() -> list[Path]:
    return [REPO / p for p in _config()["project"]["render"]]


def _report_pages() -> list[Path]:
    return [p for p in _pages() if CELL.search(p.read_text())]


def parse_qmd(path: Path) -> tuple[dict, list[tuple[dict, str]]]:
    """Front matter, and each Python cell as (its #| options, its code), in document order."""
    text = path.read_text()
    front = yaml.safe_load(text.split("---", 2)[1]) if text.startswith("---") else {}
    cells = []
    for match in CELL.finditer(text):
        lines = match.group(1).splitlines()
        options = [line[3:] for line in lines if line.startswith("#| ")]
        code = "\n".join(line for line in lines if not line.startswith("#|")).strip()
        cells.append((yaml.safe_load("\n".join(options)) or {}, code))
    return front, cells


def _check(section: str, options: dict, where: str) -> None:
    known = DOCUMENTED[section]
    for key, value in options.items():
        assert key in known, f"{where}: {key!r} is not an option Quarto documents for {section}"
        kind = known[key]
        if isinstance(kind, set):
            assert value in kind, f"{where}: {key}: {value!r} is not one of {sorted(map(str, kind))}"
        else:
            assert isinstance(value, kind), f"{where}: {key}: {value!r} is not a {kind.__name__}"


# --- _quarto.yml and the pages' options ------------------------------------------------

def test_project_config_uses_documented_options_only():
    config = _config()
    assert set(config) <= DOCUMENTED["top"], set(config) - DOCUMENTED["top"]
    _check("project", config["project"], "project")
    assert config["project"] == {**config["project"], "type": "website", "output-dir": "_site"}
    website = dict(config["website"])
    _check("website.search", website["search"], "website.search")
    _check("website.navbar", {k: v for k, v in website["navbar"].items()}, "website.navbar")
    _check("website", website, "website")
    assert set(config["format"]) == {"html", "typst"}, "every page as HTML and as PDF via Typst"
    for name, options in config["format"].items():
        _check(name, options, f"format.{name}")
    _check("execute", config["execute"], "execute")
    assert config["execute"]["freeze"] == "auto"
    assert config["jupyter"] == "python3"


def test_every_page_and_navbar_link_exists():
    pages = _pages()
    for page in pages:
        assert page.is_file(), f"_quarto.yml renders {page.relative_to(REPO)}, which is missing"
        assert page.suffix == ".qmd"
    links = [item["href"] for item in _config()["website"]["navbar"]["left"]]
    assert sorted(links) == sorted(str(p.relative_to(REPO)) for p in pages)


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_page_options_are_documented(page):
    front, cells = parse_qmd(page)
    _check("front-matter", front, f"{page.name} front matter")
    for options, code in cells:
        _check("cell", options, f"{page.name} cell {code[:40]!r}")
    params = [code for options, code in cells if "parameters" in options.get("tags", [])]
    if cells and page.parent.name == "report":
        assert len(params) == 1 and "train_from_scratch = False" in params[0], \
            f"{page.name}: one parameters cell, reading saved results by default"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_labels_are_unique_and_cross_references_resolve(page):
    text = page.read_text()
    _, cells = parse_qmd(page)
    labels = [o["label"] for o, _ in cells if "label" in o] + MD_LABEL.findall(text)
    assert len(labels) == len(set(labels)), f"{page.name}: duplicate labels {labels}"
    for options, code in cells:
        label = options.get("label", "")
        for prefix in ("fig", "tbl"):
            if label.startswith(prefix + "-"):
                assert options.get(f"{prefix}-cap"), f"{page.name}: {label} has no {prefix}-cap"
    refs = set(REF.findall(text))
    assert refs <= set(labels), f"{page.name}: unresolved references {sorted(refs - set(labels))}"
    # A figure or table nobody points at is a sign of a renamed label.
    assert {lb for lb in labels if lb[:4] in ("fig-", "tbl-")} <= refs


# --- Every cell in a real kernel -----------------------------------------------------

# What Quarto's setup cell does for Python before a page's own cells (quarto-cli
# src/resources/jupyter/lang/python/setup.py): pyplot in the kernel's inline backend, and
# the working directory set to the page's folder.
QUARTO_SETUP = """\
import os
import matplotlib.pyplot as plt
os.chdir({folder!r})
"""


def _notebook(page: Path, parameters: dict | None = None):
    import nbformat

    _, cells = parse_qmd(page)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(QUARTO_SETUP.format(folder=str(page.parent))))
    for options, code in cells:
        cell = nbformat.v4.new_code_cell(code)
        cell.metadata["quarto"] = options
        nb.cells.append(cell)
        if parameters and "parameters" in options.get("tags", []):
            # As Quarto (and papermill) do: a cell after the parameters cell overrides them.
            nb.cells.append(nbformat.v4.new_code_cell(
                "\n".join(f"{k} = {v!r}" for k, v in parameters.items())))
    return nb


def _execute(page: Path, env: dict[str, str], parameters: dict | None = None):
    from nbclient import NotebookClient

    nb = _notebook(page, parameters)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(page.parent)}})
    old = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def _kernel_env(results: Path, mnist_dir: Path) -> dict[str, str]:
    return {"MNIST_RESULTS_DIR": str(results), "MNIST_DATA_DIR": str(mnist_dir),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "TF_CPP_MIN_LOG_LEVEL": "2"}


def _outputs(cell) -> str:
    texts = []
    for out in cell.outputs:
        texts.append(out.get("text", ""))
        texts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(texts)


@pytest.mark.parametrize("page", _report_pages(), ids=lambda p: p.name)
def test_every_cell_runs_in_a_kernel(page, quick_build, mnist_dir):
    nb = _execute(page, _kernel_env(quick_build["out"], mnist_dir))
    for cell in nb.cells[1:]:
        options = cell.metadata.get("quarto", {})
        label = options.get("label", "")
        kinds = [k for out in cell.outputs for k in out.get("data", {})]
        if label.startswith("fig-"):
            # One figure per figure cell: Quarto gives it the caption and the number.
            assert sum(k.startswith("image/") for k in kinds) == 1, (label, kinds)
        if label.startswith("tbl-"):
            table = [o["data"]["text/markdown"] for o in cell.outputs
                     if "text/markdown" in o.get("data", {})]
            assert len(table) == 1 and table[0].count("\n|") >= 2, (label, kinds)
    text = "\n".join(_outputs(c) for c in nb.cells)
    if page.stem == "tutorial":
        results = __import__("json").loads(
            (quick_build["folder"] / "results.json").read_text())
        # Real numbers of the real run, and the page says they come from a quick run.
        assert f"{results['metrics']['test']['accuracy']:.2%}" in text
        assert "X_train original shape (60000, 28, 28)" in text
        assert "Quick smoke run" in text and quick_build["folder"].name in text
        assert "def prepare" in text and "def build_classic" in text


def test_train_from_scratch_parameter_trains(tmp_path, mnist_dir):
    """-P train_from_scratch:True makes the tutorial train instead of reading saved results."""
    page = REPO / "report" / "tutorial.qmd"
    nb = _execute(page, _kernel_env(tmp_path, mnist_dir),
                  parameters={"train_from_scratch": True, "quick": True})
    text = "\n".join(_outputs(c) for c in nb.cells)
    assert "training classic" in text and "quick results from classic-" in text
    assert any(tmp_path.glob("experiments/classic-*/results.json"))


# --- The results the pages read -----------------------------------------------------

def test_current_results_says_when_results_are_quick_or_stale(quick_build, tmp_path):
    from mnist_core import MnistReportError, quarto

    pages = quarto.current_results(quick_build["out"])
    assert pages["classic"].status == "quick" and pages["classic"].folder == quick_build["folder"]
    assert "Quick smoke run" in quarto.status_note(pages["classic"])
    # The same results under a key that today's code would not produce: stale, with reasons.
    stale = tmp_path / "experiments" / "classic-000000000000"
    shutil.copytree(quick_build["folder"], stale)
    page = quarto.current_results(tmp_path)["classic"]
    assert page.status == "stale" and "config epochs: 1 -> 10" in page.reasons
    assert "Stale results" in quarto.status_note(page) and stale.name in quarto.status_note(page)
    with pytest.raises(MnistReportError, match="no results in"):
        quarto.current_results(tmp_path / "empty")


def test_results_dir_resolves_against_the_project_the_user_works_in(monkeypatch, tmp_path):
    """From a page's folder inside a project: the project's results/, not the package's."""
    from mnist_core import quarto

    project = tmp_path / "my-project"
    (project / "report").mkdir(parents=True)
    (project / "_quarto.yml").write_text("project:\n  type: website\n")
    monkeypatch.delenv(quarto.RESULTS_ENV, raising=False)
    monkeypatch.chdir(project / "report")  # Quarto runs a page's cells in its own folder
    assert quarto.find_project() == project.resolve()
    assert quarto.results_dir() == project.resolve() / "results"
    monkeypatch.setenv(quarto.RESULTS_ENV, "elsewhere")
    assert quarto.results_dir() == project.resolve() / "elsewhere"
    monkeypatch.chdir(tmp_path)  # no project above: the current folder
    monkeypatch.delenv(quarto.RESULTS_ENV)
    assert quarto.find_project() is None
    assert quarto.results_dir() == tmp_path.resolve() / "results"
    assert quarto.render_site(None, tmp_path) is False


# --- `mnist-report build` and `quarto render` ------------------------------------------

def test_build_says_it_skipped_the_site_without_quarto(monkeypatch, capsys, tmp_path):
    from mnist_core import quarto

    monkeypatch.setattr(quarto.shutil, "which", lambda name: None)
    docs = {"html": tmp_path / "tutorial.html", "pdf": tmp_path / "tutorial.pdf"}
    assert quarto.render_site(REPO, tmp_path, docs) is False
    assert capsys.readouterr().out.strip() == (
        f"[mnist-report] quarto not found on PATH: skipped the Quarto site; the tutorial is in "
        f"{docs['html']} and {docs['pdf']}")


def test_render_site_reexecutes_the_pages_when_the_results_change(monkeypatch, tmp_path,
                                                                 quick_build):
    """A stand-in `quarto` records its calls: what render_site asks of the real one."""
    from mnist_core import MnistReportError, quarto

    bin_dir, log = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    fake = bin_dir / "quarto"
    fake.write_text(f'#!/bin/sh\necho "$* | $MNIST_RESULTS_DIR | $QUARTO_PYTHON" >> {log}\n'
                    'exit ${FAKE_QUARTO_EXIT:-0}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(CONFIG, project / "_quarto.yml")
    out = tmp_path / "results"
    shutil.copytree(quick_build["folder"], out / "experiments" / quick_build["folder"].name)

    def calls():
        lines = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return lines

    assert quarto.render_site(project, out) is True
    expected_env = f"{out.resolve()} | {sys.executable}"
    assert calls() == [f"render report | {expected_env}", f"render | {expected_env}"]
    assert quarto.render_site(project, out) is True  # same results: the frozen pages will do
    assert calls() == [f"render | {expected_env}"]
    (out / "experiments" / quick_build["folder"].name / "results.json").touch()
    monkeypatch.setenv("FAKE_QUARTO_EXIT", "1")
    with pytest.raises(MnistReportError, match="quarto render report` failed"):
        quarto.render_site(project, out)


def test_cli_site_flag():
    from mnist_core.cli import parser

    assert parser().parse_args(["build"]).no_site is False
    assert parser().parse_args(["build", "--no-site"]).no_site is True


@pytest.mark.skipif(shutil.which("quarto") is None,
                    reason="quarto is not on PATH (install with `pip install .[site]` where "
                           "the Quarto binary can be downloaded)")
def test_quarto_render_succeeds(quick_build, tmp_path):
    from mnist_core import quarto

    project = tmp_path / "project"
    shutil.copytree(REPO, project, ignore=shutil.ignore_patterns(
        ".git", "results", "_site", "_freeze", ".quarto", "__pycache__", ".venv"))
    assert quarto.render_site(project, quick_build["out"]) is True
    for page in ("index", "report/tutorial", "report/comparison", "report/recognize"):
        assert (project / "_site" / f"{page}.html").is_file()
        assert (project / "_site" / f"{page}.pdf").is_file()


# --- The publish workflow ---------------------------------------------------------------

def test_publish_workflow_is_valid_for_github_actions(check_workflow):
    workflow = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    on = workflow.get("on", workflow.get(True))
    assert on["push"]["branches"] == ["main"]
    steps = [s for job in workflow["jobs"].values() for s in job.get("steps", [])]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    for action in ("actions/checkout", "actions/setup-python", "quarto-dev/quarto-actions/setup",
                   "actions/cache", "actions/upload-pages-artifact", "actions/deploy-pages"):
        assert action in uses, f"publish.yml does not use {action}"
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
    assert "results" in cache["with"]["path"] and "hashFiles(" in cache["with"]["key"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "mnist-report build" in runs and "quarto render" in runs
    check_workflow(WORKFLOW)

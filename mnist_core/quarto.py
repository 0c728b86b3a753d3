"""The Quarto site: what its pages need (the current results, displayable code, tables and
figures) and the `quarto render` step of `mnist-report build`.

The pages (report/*.qmd) call these functions in their code cells, so the reader
sees the real mnist_core calls. Nothing here imports TensorFlow unless a page
asks to train from scratch.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import MnistReportError, log, view
from .config import MODELS
from .experiments import BuildOptions, plan, train_experiments
from .provenance import function_source
from .results import (RESULTS_FILE, complete_by_model, is_complete, list_experiment_dirs,
                      load_results, newest_results)
from .view import Shown

RESULTS_ENV = "MNIST_RESULTS_DIR"
# The pages that read results: re-executed when the results change (see render_site).
REPORT_DIR = "report"
STAMP_FILE = Path(".quarto") / "mnist-report-results"


def find_project(start: Path | None = None) -> Path | None:
    """The Quarto project the user works in: the nearest folder with ``_quarto.yml``.

    Searched from the current folder upwards (Quarto runs a page's cells in the page's own
    folder), never from where the package is installed.
    """
    here = Path(start or Path.cwd()).resolve()
    return next((folder for folder in (here, *here.parents)
                 if (folder / "_quarto.yml").is_file()), None)


def results_dir() -> Path:
    """``$MNIST_RESULTS_DIR``, else ``results/`` of the Quarto project (else of the current folder).

    A relative ``$MNIST_RESULTS_DIR`` is taken from the project's folder, not the page's.
    """
    base = find_project() or Path.cwd()
    value = os.environ.get(RESULTS_ENV)
    path = Path(value).expanduser() if value else Path("results")
    return path if path.is_absolute() else base / path


# One model's results as a page shows them: the same record the HTML/PDF tutorial uses.
PageResults = Shown


def current_results(out: Path | None = None,
                    models: tuple[str, ...] | None = None) -> dict[str, PageResults]:
    """The results of each model that has any, preferring those current for today's code.

    Uses the build's own plan, so "current" means exactly what `mnist-report build`
    would reuse; a model with only older results gets them back marked stale,
    with the reasons, so that a page never shows stale numbers without saying so.
    """
    out = Path(out) if out is not None else results_dir()
    found: dict[str, PageResults] = {}
    complete = complete_by_model(out)
    for model in models or tuple(MODELS):
        full, quick = (plan(BuildOptions(out=out, models=(model,), quick=q))[0]
                       for q in (False, True))
        if full.fresh or quick.fresh:
            item = full if full.fresh else quick
            found[model] = PageResults(model, item.folder, load_results(item.folder),
                                       "current" if full.fresh else "quick")
            continue
        if complete.get(model):
            newest = newest_results(complete[model])
            found[model] = PageResults(model, newest, load_results(newest), "stale",
                                       tuple(full.reasons))
    if not found:
        raise MnistReportError(
            f"no results in {out}: run `mnist-report build --out {out}` first, or render "
            "with `-P train_from_scratch:True`")
    return found


def train_from_scratch(out: Path | None = None, models: tuple[str, ...] = ("classic",),
                       quick: bool = False) -> dict[str, PageResults]:
    """Retrain ``models`` now (Keras prints each epoch), save the results, then read them back."""
    out = Path(out) if out is not None else results_dir()
    train_experiments(BuildOptions(out=out, models=models, quick=quick, force=models))
    return current_results(out, models)


def status_note(page: PageResults) -> str:
    """Markdown that says where a page's numbers come from, unless from the full current run."""
    return view.status_note([page])


# --- What a cell displays ----------------------------------------------------
# Objects with _repr_markdown_ / _repr_svg_ display in Jupyter and in Quarto
# without IPython imports here, whatever the matplotlib backend.

@dataclass(frozen=True, repr=False)
class Markdown:
    text: str

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:  # the text/plain fallback, e.g. in a terminal
        return self.text


@dataclass(frozen=True, repr=False)
class Svg:
    data: str

    def _repr_svg_(self) -> str:
        return self.data

    def __repr__(self) -> str:
        return f"<SVG figure, {len(self.data):,} bytes>"


def source(module: str, name: str) -> Markdown:
    """The real code of a function in mnist_core, read from its file (no TensorFlow import)."""
    return Markdown(f"```python\n{function_source(module, name)}\n```")


def table(header: list[str], rows: list[list], align: str = "") -> Markdown:
    """A Markdown pipe table; ``align`` has one of l/r per column (default: left)."""
    rule = ["--:" if a == "r" else "---" for a in (align or "l" * len(header))]
    lines = [header, rule, *rows]
    return Markdown("\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines))


def draw(make: Callable, *args, **kwargs) -> Svg:
    """Call a mnist_core.figures function in the figures' own style and return its SVG."""
    import matplotlib.pyplot as plt

    from .figures import STYLE

    with plt.rc_context(STYLE):
        fig = make(*args, **kwargs)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)  # so that an inline backend does not show it a second time
    return Svg(buffer.getvalue())


# --- `quarto render`, from `mnist-report build` ------------------------------

def _results_stamp(out: Path) -> str:
    """Which results the pages would read: the site re-executes its pages when this changes."""
    lines = [str(Path(out).resolve())]
    for folder in list_experiment_dirs(out):
        if is_complete(folder):
            stat = (folder / RESULTS_FILE).stat()
            lines.append(f"{folder.name} {stat.st_size} {stat.st_mtime_ns}")
    return "\n".join(lines)


def site_env(out: Path, data_dir: str | None = None) -> dict[str, str]:
    """The environment for `quarto render`: this Python, this checkout, these results and data."""
    env = dict(os.environ)
    env[RESULTS_ENV] = str(Path(out).resolve())
    if data_dir:
        env["MNIST_DATA_DIR"] = str(Path(data_dir).expanduser().resolve())
    # The cells import mnist_core from this very Python, wherever it is installed.
    env["QUARTO_PYTHON"] = sys.executable
    return env


def render_site(project: Path | None, out: Path, documents: dict[str, Path] | None = None,
                data_dir: str | None = None) -> bool:
    """Run `quarto render` in ``project`` on the results in ``out``; False when there is none.

    ``project`` is the folder of ``_quarto.yml`` (``find_project``); None skips the site.
    """
    documents = documents or {}
    if project is None:
        log("no _quarto.yml in the current folder or above: skipped the Quarto site")
        return False
    project = Path(project)
    quarto = shutil.which("quarto")
    if quarto is None:
        where = " and ".join(str(documents[k]) for k in ("html", "pdf") if k in documents) or \
            f"{out}/tutorial.html and {out}/tutorial.pdf"
        log(f"quarto not found on PATH: skipped the Quarto site; the tutorial is in {where}")
        return False
    if not (project / "_quarto.yml").is_file():
        log(f"no _quarto.yml in {project}: skipped the Quarto site")
        return False
    stamp, stamp_file = _results_stamp(out), project / STAMP_FILE
    commands = [[quarto, "render"]]
    if not stamp_file.is_file() or stamp_file.read_text() != stamp:
        # freeze: auto re-executes a page only when its source changes, not when the
        # results it reads do; rendering a subfolder always executes its pages.
        log(f"results changed since the last site render: re-executing {REPORT_DIR}/")
        commands.insert(0, [quarto, "render", REPORT_DIR])
    env = site_env(out, data_dir)
    for command in commands:
        log("running " + " ".join(["quarto", *command[1:]]))
        done = subprocess.run(command, cwd=project, env=env)
        if done.returncode != 0:
            raise MnistReportError(f"`quarto {' '.join(command[1:])}` failed (exit "
                                   f"{done.returncode}); see Quarto's messages above")
    stamp_file.parent.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(stamp)
    log(f"site in {project / '_site'} (PDFs beside each page)")
    return True

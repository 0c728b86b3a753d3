"""Render the tutorial (HTML and PDF) from results folders: no training, no TensorFlow.

Computation for the documents (derived numbers, tables, code excerpts) lives
here; the templates only lay it out. Both documents render from the same
blocks, parsed from one narrative, so they cannot disagree.
"""

from __future__ import annotations

import base64
import html as _html
import os
import tempfile
from importlib import resources
from pathlib import Path

import jinja2

from . import MnistReportError, __version__
from .config import MODELS
from .build import checkpoint
from .document import inline_html, inline_typst, parse, slug, typst_escape, typst_string
from .figures import ensure_comparison_figures, ensure_experiment_figures
from .provenance import PACKAGE_DIR, function_source
from .results import FILE_MODE, load_results, write_bytes_atomic

# The repository's templates/ folder, installed as the package mnist_core.templates: found
# the same way from a checkout, an editable install and a wheel.
TEMPLATE_DIR = Path(str(resources.files("mnist_core.templates")))
HTML_FILE = "tutorial.html"
PDF_FILE = "tutorial.pdf"
TYPST_FILE = "tutorial.typ"


def pct(value: float, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f}%"


def thousands(value: int) -> str:
    return f"{value:,}"


def source(module: str, name: str) -> str:
    """The real code of a function in mnist_core, for the documents to show."""
    return function_source(PACKAGE_DIR / module, name)


def _experiment_view(results: dict, folder: Path, out: Path) -> dict:
    """Derived values of one experiment that the narrative prints."""
    metrics = results["metrics"]
    figures = {p.stem: os.path.relpath(p, out) for p in sorted((folder / "figures").glob("*.svg"))}
    history = results["history"]
    best_epoch = max(range(len(history.get("val_accuracy", [0]))),
                     key=lambda i: history.get("val_accuracy", [0])[i]) + 1
    per_class = results["analysis"]["per_class_accuracy"]
    worst = min(range(10), key=lambda d: per_class[d])
    return {
        **results,
        "folder": os.path.relpath(folder, out),
        "figures": figures,
        "train_acc": metrics["train"]["accuracy"],
        "test_acc": metrics["test"]["accuracy"],
        "test_errors": metrics["test"]["errors"],
        "test_size": metrics["test"]["size"],
        "wall_time_s": results["training"]["wall_time_s"],
        "best_val_epoch": best_epoch,
        "worst_digit": worst,
        "worst_digit_acc": per_class[worst],
    }


def comparison_steps(ordered: list[dict]) -> list[dict]:
    """What each model bought over the one before it, in errors out of the test set."""
    steps = []
    for before, after in zip(ordered, ordered[1:]):
        steps.append({
            "before": before["experiment"],
            "after": after["experiment"],
            "errors_before": before["test_errors"],
            "errors_after": after["test_errors"],
            "points": 100 * (after["test_acc"] - before["test_acc"]),
            "error_cut": 1 - after["test_errors"] / max(before["test_errors"], 1),
            "time_ratio": after["wall_time_s"] / max(before["wall_time_s"], 1e-9),
        })
    return steps


def load_benchmarks(out: Path) -> dict | None:
    """Rows of every ``benchmarks*/models.json`` in ``out`` and the test-accuracy spread by model.

    The benchmark (benchmarks/models_benchmark.py) writes them; the documents show them when
    present, so the reference Keras convnet stands beside our models.
    """
    import json
    import statistics

    rows = []
    for path in sorted(Path(out).glob("benchmarks*/models.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not data.get("quick"):
            rows.extend(data.get("rows", []))
    if not rows:
        return None
    rows.sort(key=lambda r: (r["model"], r["seed"]))
    spread = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        accs = [r["test_accuracy"] for r in rows if r["model"] == model]
        spread[model] = {"seeds": [r["seed"] for r in rows if r["model"] == model],
                         "mean": statistics.mean(accs), "min": min(accs), "max": max(accs)}
    return {"rows": rows, "spread": spread}


def build_context(out: Path, folders: list[Path], stale: dict[str, list[str]] | None = None) -> dict:
    """Everything the narrative needs, from the results folders alone."""
    experiments = {}
    for folder in folders:
        results = load_results(folder)
        ensure_experiment_figures(folder, results)
        experiments[results["experiment"]] = _experiment_view(results, folder, out)
    if not experiments:
        raise MnistReportError(f"no results to render in {out}; run `mnist-report build` first")
    ordered = [experiments[m] for m in MODELS if m in experiments]
    main = experiments.get("classic", ordered[0])
    best = max(ordered, key=lambda e: (e["test_acc"], -e["wall_time_s"]))
    comparison = None
    if len(ordered) > 1:
        comp_dir = ensure_comparison_figures(out / "comparison",
                                             {e["experiment"]: e for e in ordered})
        comparison = {
            "figures": {p.stem: os.path.relpath(p, out) for p in sorted(comp_dir.glob("*.svg"))},
            "steps": comparison_steps(ordered),
            "total_training_s": sum(e["wall_time_s"] for e in ordered),
            "benchmark": load_benchmarks(out),
        }
    return {
        "experiments": ordered,
        "by_name": experiments,
        "main": main,
        "best": best,
        "comparison": comparison,
        "stale": stale or {},
        "version": __version__,
        "source": source,
    }


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, thousands=thousands, inline_html=inline_html,
                       inline_typst=inline_typst, typst_escape=typst_escape,
                       typst_string=typst_string, slug=slug)
    return env


def narrative_blocks(context: dict, env: jinja2.Environment | None = None) -> list:
    env = env or _environment()
    text = env.get_template("tutorial.md.j2").render(**context)
    return parse(text)


def _data_uri(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/svg+xml;base64,{data}"


def render_html(blocks: list, context: dict, out: Path, env: jinja2.Environment) -> Path:
    """One self-contained HTML file: figures embedded, no external assets."""
    env = env.overlay(autoescape=True)
    env.filters["embed"] = lambda rel: _data_uri(out / rel)
    env.filters["inline_html"] = lambda text: jinja2.utils.markupsafe.Markup(inline_html(text))
    page = env.get_template("tutorial.html.j2").render(blocks=blocks, html=_html, **context)
    path = out / HTML_FILE
    write_bytes_atomic(path, page.encode("utf-8"))
    return path


def render_pdf(blocks: list, context: dict, out: Path, env: jinja2.Environment) -> Path:
    """Typst source from the same blocks, compiled to PDF with the typst package."""
    import typst

    source_text = env.get_template("tutorial.typ.j2").render(blocks=blocks, **context)
    write_bytes_atomic(out / TYPST_FILE, source_text.encode("utf-8"))
    fd, tmp = tempfile.mkstemp(prefix=f".{PDF_FILE}.", suffix=".pdf", dir=out)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    try:
        typst.compile(str(out / TYPST_FILE), output=tmp, root=str(out))
        checkpoint("pdf-compiled")
        os.replace(tmp, out / PDF_FILE)
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        raise MnistReportError(f"PDF compilation failed: {exc}") from None
    return out / PDF_FILE


def _widget(out: Path, best: dict):
    """The drawing widget of the best model (mnist_core.web): HTML, and a still for the PDF."""
    from .web import widget_for_results

    return widget_for_results(out, best, out / best["folder"])


def render_documents(out: Path, folders: list[Path],
                     stale: dict[str, list[str]] | None = None) -> dict[str, Path]:
    """Render tutorial.html and tutorial.pdf into ``out``."""
    out = Path(out)
    env = _environment()
    context = build_context(out, folders, stale)
    context["widget"] = _widget(out, context["best"])
    blocks = narrative_blocks(context, env)
    html_path = render_html(blocks, context, out, env)
    checkpoint("html-written")
    pdf_path = render_pdf(blocks, context, out, env)
    print(f"[mnist-report] wrote {html_path} and {pdf_path}", flush=True)
    return {"html": html_path, "pdf": pdf_path}

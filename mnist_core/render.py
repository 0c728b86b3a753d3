"""Render the tutorial (HTML and PDF) from results folders: no training, no TensorFlow.

Computation for the documents (derived numbers, tables, code excerpts) lives
here; the templates only lay it out. Both documents render from the same
Markdown tokens (mnist_core/markup.py), parsed from one narrative, so they cannot disagree.
"""

from __future__ import annotations

import base64
import os
import tempfile
from importlib import resources
from pathlib import Path

import jinja2

from . import MnistReportError, __version__, interrupts, log, markup, view
from .config import MODELS
from .figures import ensure_comparison_figures, ensure_experiment_figures
from .provenance import function_source
from .results import (BEST_MODEL_RULE, FILE_MODE, MODEL_FILE, best_folder, is_quick,
                      load_levers, load_results, load_sweep, validation_accuracy,
                      write_bytes_atomic, write_json_atomic)

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


def _experiment_view(results: dict, folder: Path, out: Path) -> dict:
    """Derived values of one experiment that the narrative prints."""
    metrics = results["metrics"]
    figures = {p.stem: os.path.relpath(p, out) for p in sorted((folder / "figures").glob("*.svg"))}
    history = results["history"]
    final_train = history.get("accuracy", [0.0])[-1]
    final_val = history.get("val_accuracy", [None])[-1]
    return {
        **results,
        "val_acc": validation_accuracy(results),
        # Sentences that hold for some runs only are chosen on these, never assumed.
        "val_above_train_in_training": final_val is not None and final_val > final_train,
        "folder": os.path.relpath(folder, out),
        "figures": figures,
        "train_acc": metrics["train"]["accuracy"],
        "test_acc": metrics["test"]["accuracy"],
        "test_errors": metrics["test"]["errors"],
        "test_size": metrics["test"]["size"],
        "wall_time_s": results["training"]["wall_time_s"],
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


def load_benchmarks(out: Path, data_sha256: str) -> dict | None:
    """Rows of every ``benchmarks*/models.json`` in ``out`` and the test-accuracy spread by model.

    The benchmark (benchmarks/models_benchmark.py) writes them; the documents show them when
    present, so the reference Keras convnet stands beside our models. Each row carries the
    result key of its configuration: ``current`` says whether today's code would give the
    same key (rows without one are from older code).
    """
    from .config import default_config
    from .provenance import experiment_key, key_inputs

    import json
    import statistics

    rows = []
    for path in sorted(Path(out).glob("benchmarks*/models.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not data.get("quick"):
            # Which benchmark run a row is from: rows of one run share their code.
            rows.extend({**row, "run": path.parent.name} for row in data.get("rows", []))
    if not rows:
        return None
    for row in rows:
        try:
            today = experiment_key(key_inputs(default_config(row["model"], seed=row["seed"]),
                                              data_sha256))
        except Exception:  # a model that no longer exists
            today = None
        row["current"] = row.get("key") is not None and row.get("key") == today
    rows.sort(key=lambda r: (r["model"], r["seed"]))
    spread = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        # One configuration's seeds: today's where there are any, else those of the benchmark
        # run with the most (rows of different code are different models, not more seeds of
        # one; a row's key names its seed too, so it cannot group them).
        by_run: dict = {}
        for r in mine:
            by_run.setdefault(r["run"], []).append(r)
        same = [r for r in mine if r["current"]] or max(by_run.values(), key=len)
        accs = [r["test_accuracy"] for r in same]
        spread[model] = {"seeds": [r["seed"] for r in same],
                         "mean": statistics.mean(accs), "min": min(accs), "max": max(accs)}
    return {"rows": rows, "spread": spread, "current": all(r["current"] for r in rows)}


def build_context(out: Path, folders: list[Path], stale: dict[str, list[str]] | None = None) -> dict:
    """Everything the narrative needs, from the results folders alone."""
    loaded = {folder: load_results(folder) for folder in folders}
    if not loaded:
        raise MnistReportError(f"no results to render in {out}; run `mnist-report build` first")
    best_at = best_folder(loaded)
    example = worked_example(best_at)
    if example:
        loaded[best_at]["recognize_example"] = example
    experiments = {}
    for folder, results in loaded.items():
        ensure_experiment_figures(folder, results)
        experiments[results["experiment"]] = _experiment_view(results, folder, out)
    ordered = [experiments[m] for m in MODELS if m in experiments]
    main = experiments.get("classic", ordered[0])
    best = experiments[loaded[best_at]["experiment"]]
    comparison = None
    if len(ordered) > 1:
        comp_dir = ensure_comparison_figures(out / "comparison",
                                             {e["experiment"]: e for e in ordered})
        comparison = {
            "figures": {p.stem: os.path.relpath(p, out) for p in sorted(comp_dir.glob("*.svg"))},
            "steps": comparison_steps(ordered),
            "total_training_s": sum(e["wall_time_s"] for e in ordered),
            "benchmark": load_benchmarks(out, main["data"]["sha256"]),
            "levers": load_levers(out),
            "sweep": load_sweep(out),
        }
    stale = stale or {}
    shown = []
    for folder, r in loaded.items():
        status = "stale" if r["experiment"] in stale else "quick" if is_quick(r) else "current"
        shown.append(view.Shown(r["experiment"], folder, r, status,
                                tuple(stale.get(r["experiment"], ()))))
    return {
        "view": view,
        "status_note": view.status_note(shown),
        "experiments": ordered,
        "by_name": experiments,
        "main": main,
        "best": best,
        "best_model_rule": BEST_MODEL_RULE,
        "comparison": comparison,
        "stale": stale,
        "version": __version__,
        "source": function_source,
    }


def worked_example(folder: Path) -> dict | None:
    """The tutorial's "recognize your own digit" example through this folder's model.

    Made for the documents only, so at render time, not in training (it is not part of the
    result key); cached beside the model with a stamp of what it depends on, so that only
    the first render after a change loads TensorFlow. None when it cannot be made here.
    """
    import hashlib
    import json

    from . import predict

    model = Path(folder) / MODEL_FILE
    if not model.is_file():
        return None
    stamp = hashlib.sha256(Path(predict.__file__).read_bytes()
                           + Path(predict.EXAMPLE_IMAGE).read_bytes()
                           + str(model.stat().st_mtime_ns).encode()).hexdigest()
    cache = Path(folder) / "recognize_example.json"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("stamp") == stamp:
            return cached["example"]
    except (OSError, ValueError):
        pass
    try:
        example = predict.recognize_example(predict.Recognizer(model), predict.EXAMPLE_IMAGE)
    except (ImportError, MnistReportError) as exc:
        log(f"worked example skipped: {exc}")
        return None
    write_json_atomic(cache, {"stamp": stamp, "example": example})
    return example


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, thousands=thousands)
    return env


def narrative(context: dict, env: jinja2.Environment | None = None) -> list:
    """The narrative's Markdown tokens, for both documents."""
    env = env or _environment()
    return markup.parse(env.get_template("tutorial.md.j2").render(**context))


def _data_uri(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/svg+xml;base64,{data}"


# Figure widths in the PDF, by label: grids of small digits read well at half width.
GRID_FIGURES = {"fig-train-samples", "fig-correct", "fig-wrong", "fig-confident-mistakes",
                "fig-confusion"}
WIDE_FIGURES = {"fig-recognize"}


def figure_width(label: str) -> str:
    return "52%" if label in GRID_FIGURES else "100%" if label in WIDE_FIGURES else "78%"


def _live_figures(context: dict) -> dict[str, str]:
    """Figures whose HTML is live: the drawing widget stands where the PDF shows its still."""
    widget = context.get("widget")
    return {"fig-draw": widget.html} if widget else {}


def render_html(tokens: list, context: dict, out: Path, env: jinja2.Environment) -> Path:
    """One self-contained HTML file: figures embedded, code highlighted, no external assets."""
    env = env.overlay(autoescape=True)
    title = [i for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h1"]
    body = [t for i, t in enumerate(tokens) if not any(0 <= i - j < 3 for j in title)]
    page = env.get_template("tutorial.html.j2").render(
        headings=markup.headings(tokens, markup.inline_html),
        body=markup.to_html(body, embed=lambda rel: _data_uri(out / rel),
                            replace=_live_figures(context)),
        highlight_css=markup.highlight_css(), **context)
    path = out / HTML_FILE
    write_bytes_atomic(path, page.encode("utf-8"))
    return path


def render_pdf(tokens: list, context: dict, out: Path, env: jinja2.Environment) -> Path:
    """Typst source from the same tokens, compiled to PDF with the typst package."""
    import typst

    source_text = env.get_template("tutorial.typ.j2").render(
        body=markup.to_typst(tokens, figure_width), **context)
    write_bytes_atomic(out / TYPST_FILE, source_text.encode("utf-8"))
    fd, tmp = tempfile.mkstemp(prefix=f".{PDF_FILE}.", suffix=".pdf", dir=out)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    try:
        typst.compile(str(out / TYPST_FILE), output=tmp, root=str(out))
        interrupts.checkpoint("pdf-compiled")
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
    tokens = narrative(context, env)
    html_path = render_html(tokens, context, out, env)
    interrupts.checkpoint("html-written")
    interrupts.check()
    pdf_path = render_pdf(tokens, context, out, env)
    log(f"wrote {html_path} and {pdf_path}")
    return {"html": html_path, "pdf": pdf_path}

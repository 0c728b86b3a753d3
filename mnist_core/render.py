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
from .notebook import notebook_bytes
from .provenance import function_source
from .results import (BEST_MODEL_RULE, FILE_MODE, MODEL_FILE, best_folder, is_quick,
                      load_results, validation_accuracy,
                      write_bytes_atomic, write_json_atomic)

# The repository's templates/ folder, installed as the package mnist_core.templates: found
# the same way from a checkout, an editable install and a wheel.
TEMPLATE_DIR = Path(str(resources.files("mnist_core.templates")))
HTML_FILE = "tutorial.html"
PDF_FILE = "tutorial.pdf"
TYPST_FILE = "tutorial.typ"
NOTEBOOK_FILE = "tutorial.ipynb"


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
        drawn = network_pictures(folder, results)
        if drawn:
            results["pictures"] = drawn
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
        "build_call": build_call,
        "epochs_setting": "{" + ", ".join(f'"{e["experiment"]}": {e["config"]["epochs"]}'
                                          for e in ordered) + "}",
        "publication": publication(),
    }


def build_call(model: str) -> str:
    """How the notebook calls ``models.build_<model>``: with the epochs and the steps per
    epoch where its learning-rate schedule needs them."""
    signature = function_source("models.py", f"build_{model}").split(")")[0]
    if "steps_per_epoch" in signature:
        return f'build_{model}(EPOCHS["{model}"], steps_per_epoch)'
    return f"build_{model}()"


def publication(project: Path | None = None) -> dict:
    """Author, licence and repository of this copy of the tutorial, from the Quarto site's
    ``_quarto.yml`` (``author``, ``license``, ``website: repo-url``) where there is one, so
    that both tellings credit the same people."""
    import yaml

    path = Path(project or Path.cwd()) / "_quarto.yml"
    try:
        meta = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    website = meta.get("website") or {}
    return {"author": meta.get("author"), "license": meta.get("license"),
            "repository": website.get("repo-url")}


def _cached_beside_model(folder: Path, name: str, sources: list[Path], make) -> dict | None:
    """``make(model_path)``, cached in ``folder/name`` with a stamp of the model and of the
    ``sources`` it depends on, so that only the first render after a change loads TensorFlow.

    For what the documents add to a result (not part of its key). None when the folder has
    no model or it cannot be made here.
    """
    import hashlib
    import json

    model = Path(folder) / MODEL_FILE
    if not model.is_file():
        return None
    stamp = hashlib.sha256(b"".join(Path(p).read_bytes() for p in sources)
                           + str(model.stat().st_mtime_ns).encode()).hexdigest()
    cache = Path(folder) / name
    try:
        cached = json.loads(cache.read_text())
        if cached.get("stamp") == stamp:
            return cached["value"]
    except (OSError, ValueError):
        pass
    try:
        value = make(model)
    except (ImportError, MnistReportError) as exc:
        log(f"{cache.stem.replace('_', ' ')} skipped: {exc}")
        return None
    write_json_atomic(cache, {"stamp": stamp, "value": value})
    return value


def worked_example(folder: Path) -> dict | None:
    """The tutorial's "recognize your own digit" example through this folder's model."""
    from . import predict, preprocess

    return _cached_beside_model(
        folder, "recognize_example.json",
        [Path(predict.__file__), Path(preprocess.__file__), Path(predict.EXAMPLE_IMAGE)],
        lambda model: predict.recognize_example(predict.Recognizer(model), predict.EXAMPLE_IMAGE))


def network_pictures(folder: Path, results: dict) -> dict | None:
    """Filters, feature maps and augmented digits of a convolutional model (``pictures``),
    for its first correctly read test digit."""
    if results["model"]["input_kind"] != "image" or not results["analysis"]["correct_samples"]:
        return None
    import numpy as np

    from . import pictures

    digit = np.array(results["analysis"]["correct_samples"][0]["image"], dtype=np.uint8)
    return _cached_beside_model(folder, "network_pictures.json", [Path(pictures.__file__)],
                                lambda model: pictures.network_pictures(model, digit))


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


def narrative_text(context: dict, env: jinja2.Environment | None = None) -> str:
    """The narrative in Markdown, for every document."""
    env = env or _environment()
    return env.get_template("tutorial.md.j2").render(**context)


def narrative(context: dict, env: jinja2.Environment | None = None) -> list:
    """The narrative's Markdown tokens, for the HTML and the PDF."""
    return markup.parse(narrative_text(context, env))


def _data_uri(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/svg+xml;base64,{data}"


# Figure widths in the PDF, by label: grids of small digits read well at half width.
GRID_FIGURES = {"fig-train-samples", "fig-correct", "fig-wrong", "fig-confident-mistakes",
                "fig-confusion", "fig-augmented"}
WIDE_FIGURES = {"fig-recognize", "fig-corruptions", "fig-feature-maps"}


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
    text = narrative_text(context, env)
    tokens = markup.parse(text)
    html_path = render_html(tokens, context, out, env)
    interrupts.checkpoint("html-written")
    interrupts.check()
    pdf_path = render_pdf(tokens, context, out, env)
    notebook_path = out / NOTEBOOK_FILE
    write_bytes_atomic(notebook_path, notebook_bytes(text))
    log(f"wrote {html_path}, {pdf_path} and {notebook_path}")
    return {"html": html_path, "pdf": pdf_path, "notebook": notebook_path}

"""`mnist-report build` and `render`, start to end: results -> documents -> site, in that order.

The steps live in their own modules and know nothing of each other's callers:
``experiments`` (what is current, train the rest), ``render`` (HTML and PDF from the
results), ``quarto`` (the Quarto site). This module only runs them one after another.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import interrupts, log
from .data import load_mnist
# Re-exported: the build's options and plan are what callers of build() pass and read.
from .experiments import BuildOptions, Planned, build_lock, plan, renderable, train_stale
from .quarto import find_project, render_site
from .render import render_documents

__all__ = ["BuildOptions", "Planned", "build", "plan", "render_only"]


def build(options: BuildOptions) -> dict:
    """Train what has no current results, then render the documents, then the site.

    Ctrl-C finishes the step under way (a batch, an evaluation, a document) and stops with
    every complete result kept.
    """
    out = Path(options.out)
    with interrupts.deferred(), build_lock(out):
        start = time.perf_counter()
        data = load_mnist(options.data_dir)
        log(f"MNIST from {data.source}")
        planned, trained = train_stale(options, data)
        documents = {}
        if options.render:
            documents = render_documents(out, [item.folder for item in planned])
        summary = {"trained": trained, "planned": planned, "documents": documents,
                   "seconds": time.perf_counter() - start}
    # Outside the lock: a page rendered with train_from_scratch builds into ``out`` too.
    if options.render and options.site:
        summary["site"] = render_site(find_project(), out, documents, options.data_dir)
    return summary


def render_only(options: BuildOptions) -> dict:
    """Render from what is on disk without training; stale results are used and flagged.

    The MNIST files are not read: the keys use verified MNIST's checksum."""
    out = Path(options.out)
    with interrupts.deferred(), build_lock(out):
        planned = plan(options)
        folders, stale = renderable(planned, out)
        for model, reasons in stale.items():
            log(f"{model}: rendering STALE results ({'; '.join(reasons)})")
        missing = [i.config.model for i in planned
                   if i.folder not in folders and i.config.model not in stale]
        for model in missing:
            log(f"{model}: no results at all; left out of the documents")
        return {"documents": render_documents(out, folders, stale), "stale": stale}

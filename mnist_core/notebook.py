"""The tutorial as a Jupyter notebook, cut from the same Markdown narrative as the documents.

Its prose becomes Markdown cells and its ``python`` code blocks code cells, in order; printed
outputs and the build's figures are left out, since running the notebook makes its own. The
code blocks use nothing but public packages, so the notebook runs without mnist-report.
"""

from __future__ import annotations

import json
import re

from . import markup

# The cell that sets QUICK and EPOCHS: tagged so that papermill and Colab forms can set them.
PARAMETERS = re.compile(r"^QUICK = ", re.MULTILINE)
_HEADING_ID = re.compile(r"[ \t]*\{id=[^}]*\}[ \t]*$", re.MULTILINE)
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def _cell(kind: str, text: str, index: int) -> dict:
    cell = {"cell_type": kind, "id": f"cell-{index}", "metadata": {},
            "source": text.strip("\n").splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
        if PARAMETERS.search(text):
            cell["metadata"]["tags"] = ["parameters"]
    return cell


def cells(text: str) -> list[tuple[str, str]]:
    """(kind, source) of each cell of the narrative ``text``: "markdown" or "code"."""
    lines = text.splitlines()
    found: list[tuple[str, str]] = []
    prose: list[str] = []

    def flush() -> None:
        block = re.sub(r"\n{3,}", "\n\n", _HEADING_ID.sub("", "\n".join(prose))).strip()
        if block:
            found.append(("markdown", block))
        prose.clear()

    done = 0
    # Fences become code cells (python) or nothing (printed output); figures and callouts
    # (notes on this build's results) are left out.
    for token in markup.parse(text):
        if token.level != 0 or token.map is None or token.type not in (
                "fence", "container_figure_open", "container_callout_open"):
            continue
        start, end = token.map
        prose.extend(lines[done:start])
        if token.type == "fence" and token.info.strip() == "python":
            flush()
            found.append(("code", token.content))
        done = end
        # A container's map stops before its closing ":::".
        if token.type != "fence" and done < len(lines) and lines[done].startswith(":::"):
            done += 1
    prose.extend(lines[done:])
    flush()
    return found


def notebook(text: str) -> dict:
    """An nbformat 4 notebook of the narrative ``text``."""
    return {
        "cells": [_cell(kind, source, i) for i, (kind, source) in enumerate(cells(text))],
        "metadata": {"kernelspec": KERNEL, "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def notebook_bytes(text: str) -> bytes:
    return (json.dumps(notebook(text), indent=1, ensure_ascii=False) + "\n").encode("utf-8")

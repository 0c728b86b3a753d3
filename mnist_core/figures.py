"""Figures, drawn from results.json alone (no TensorFlow, no dataset).

Each figure is an SVG: vectors for the PDF, embedded as-is in the HTML.
Figures are redrawn only when this module or the results change (a stamp
file records both), so a style edit never needs a retrain.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .results import write_bytes_atomic  # noqa: E402

STAMP = ".stamp"
STYLE = {
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "svg.hashsalt": "mnist-report",  # stable ids: the same figure gives the same file
}


def _save(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())


def curves(history: dict, metric: str, title: str):
    """Training vs validation curve per epoch, as in the classic tutorial."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    epochs = np.arange(1, len(history[metric]) + 1)
    ax.plot(epochs, history[metric], marker="o", ms=3, label="train")
    if f"val_{metric}" in history:
        ax.plot(epochs, history[f"val_{metric}"], marker="o", ms=3, label="validation")
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.legend(loc="best")
    return fig


def digit_grid(samples: list[dict], title_format: str, rows: int = 3, cols: int = 3):
    """A 3x3 grid of digits, each titled like the classic tutorial ("Predicted 7, Class 7")."""
    fig, axes = plt.subplots(rows, cols, figsize=(5.4, 6.0))
    for ax in axes.flat:
        ax.axis("off")
    for ax, sample in zip(axes.flat, samples):
        ax.imshow(np.array(sample["image"], dtype=np.uint8), cmap="gray", interpolation="none")
        ax.set_title(title_format.format(**sample), fontsize=10)
    fig.tight_layout()
    return fig


def confusion(matrix: list[list[int]], title: str):
    matrix = np.array(matrix)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, 0)
    # Colour only the mistakes: the diagonal would swamp the scale.
    ax.imshow(off_diagonal, cmap="Reds")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                color="black" if i != j else "tab:blue")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title)
    ax.grid(False)
    return fig


def overlaid_validation(histories: dict[str, dict], metric: str = "val_accuracy"):
    """Validation curves of several models on one plot, to compare how fast each learns."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, history in histories.items():
        if metric in history:
            values = history[metric]
            ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title("Validation accuracy per epoch")
    ax.legend(loc="lower right")
    return fig


def time_to_accuracy(runs: dict[str, dict]):
    """Validation accuracy against training seconds: what each model buys per unit of CPU time.

    ``runs`` maps a model name to its results (``history`` and ``training.epoch_times_s``).
    """
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, results in runs.items():
        values = results["history"].get("val_accuracy")
        times = results["training"].get("epoch_times_s")
        if values and times:
            ax.plot(np.cumsum(times), values, marker="o", ms=3, label=name)
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter, ScalarFormatter
    ax.xaxis.set_major_formatter(ScalarFormatter())  # 10, 100, not 10^1, 10^2
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("training time (s, log scale)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Time to accuracy")
    ax.legend(loc="lower right")
    return fig


def preprocessing_steps(example: dict):
    """The worked example through each preprocessing step, left to right."""
    steps = example["steps"]
    fig, axes = plt.subplots(1, len(steps), figsize=(2.0 * len(steps), 2.6))
    for ax, step in zip(axes, steps):
        ax.imshow(np.array(step["image"], dtype=np.uint8), cmap="gray", interpolation="none",
                  vmin=0, vmax=255)
        height, width = np.array(step["image"]).shape
        ax.set_title(f"{step['name']}\n{width}x{height}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def experiment_figures(results: dict) -> dict[str, "plt.Figure"]:
    """Every figure of one experiment, by file stem."""
    history = results["history"]
    analysis = results["analysis"]
    figs = {
        "loss": curves(history, "loss", "Model loss"),
        "accuracy": curves(history, "accuracy", "Model accuracy"),
        "correct": digit_grid(analysis["correct_samples"], "Predicted {predicted}, Class {true}"),
        "wrong": digit_grid(analysis["wrong_samples"], "Predicted {predicted}, Class {true}"),
        "confusion": confusion(analysis["confusion_matrix"], "Confusion matrix (test set)"),
        "confident_mistakes": digit_grid(
            analysis["confident_mistakes"],
            "True {true}, predicted {predicted}\n({confidence:.1%})"),
    }
    if results.get("recognize_example"):
        figs["recognize_steps"] = preprocessing_steps(results["recognize_example"])
    if results["data"].get("train_samples"):
        figs["train_samples"] = digit_grid(results["data"]["train_samples"], "Class {true}")
    return figs


def _stamp(payload: bytes) -> str:
    code = Path(__file__).read_bytes()
    return hashlib.sha256(code + b"\0" + payload).hexdigest()


def ensure_figures(folder: Path, draw, payload: bytes) -> Path:
    """Draw figures into ``folder/figures`` unless they are current (same code, same data)."""
    figures = Path(folder) / "figures"
    stamp = _stamp(payload)
    stamp_file = figures / STAMP
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return figures
    with plt.rc_context(STYLE):
        for name, fig in draw().items():
            _save(fig, figures / f"{name}.svg")
    write_bytes_atomic(stamp_file, stamp.encode())
    return figures


def ensure_experiment_figures(folder: Path, results: dict) -> Path:
    payload = json.dumps(results, sort_keys=True).encode()
    return ensure_figures(folder, lambda: experiment_figures(results), payload)


def ensure_comparison_figures(folder: Path, all_results: dict[str, dict]) -> Path:
    histories = {name: r["history"] for name, r in all_results.items()}
    runs = {name: {"history": r["history"], "training": r["training"]}
            for name, r in all_results.items()}
    payload = json.dumps(runs, sort_keys=True).encode()
    return ensure_figures(folder, lambda: {"validation": overlaid_validation(histories),
                                           "time_to_accuracy": time_to_accuracy(runs)}, payload)


def svg_path(folder: Path, name: str) -> str:
    return os.fspath(Path(folder) / "figures" / f"{name}.svg")

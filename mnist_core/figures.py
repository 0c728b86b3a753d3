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


def plot_history(history: dict, metric: str, title: str):
    """One metric per epoch, on the training images and on the validation images."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    epochs = range(1, len(history[metric]) + 1)
    ax.plot(epochs, history[metric], marker="o", ms=3, label="train")
    if "val_" + metric in history:
        ax.plot(epochs, history["val_" + metric], marker="o", ms=3, label="validation")
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.legend(loc="best")
    return fig


def plot_digits(images, titles, rows: int = 3, cols: int = 3):
    """Digits in a grid, each under its title, as the classic tutorial shows them."""
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 2.0 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image, cmap="gray", interpolation="none")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def digit_grid(samples: list[dict], title_format: str, rows: int = 3, cols: int = 3):
    """``plot_digits`` of result samples (dicts with an image and the fields of the title)."""
    return plot_digits([np.array(s["image"], dtype=np.uint8) for s in samples],
                       [title_format.format(**s) for s in samples], rows, cols)


def confusion(matrix: list[list[int]], title: str):
    matrix = np.array(matrix)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, 0)
    # Colour only the mistakes: the diagonal would swamp the scale.
    ax.imshow(off_diagonal, cmap="Reds")
    dark = off_diagonal.max() / 2
    for (i, j), value in np.ndenumerate(matrix):
        # White on the darkest reds, where black would not read.
        colour = "tab:blue" if i == j else "white" if value > dark else "black"
        ax.text(j, i, str(value), ha="center", va="center", fontsize=8, color=colour)
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


def filters(kernels: list):
    """A convolution's 3x3 filters as tiny pictures: red weights add, blue ones subtract."""
    kernels = np.array(kernels)
    cols = 8
    rows = -(-len(kernels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(0.8 * cols, 0.9 * rows + 0.3))
    limit = np.abs(kernels).max()
    for n, ax in enumerate(np.atleast_1d(axes).flat):
        ax.axis("off")
        if n < len(kernels):
            ax.imshow(kernels[n], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(str(n + 1), fontsize=9)
    fig.tight_layout()
    return fig


def feature_maps(digit: list, stages: list[dict]):
    """One digit (left) and what each convolution layer makes of it: a row per layer, the
    first few of its feature maps (bright: the pattern the filter looks for is there)."""
    cols = 1 + max(len(stage["maps"]) for stage in stages)
    fig, axes = plt.subplots(len(stages), cols, figsize=(1.1 * cols, 1.2 * len(stages)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(np.array(digit), cmap="gray", interpolation="none")
    axes[0, 0].set_title("input", fontsize=9)
    for row, stage in enumerate(stages):
        axes[row, 1].set_title(f"layer {stage['layer']}: {stage['count']} maps, "
                               f"{stage['size']}x{stage['size']}", fontsize=9, loc="left")
        for col, image in enumerate(stage["maps"], 1):
            axes[row, col].imshow(np.array(image), cmap="magma", interpolation="none")
    fig.tight_layout()
    return fig


def answer(example: dict):
    """The worked example's 28x28 input beside the model's ten probabilities for it."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(6.4, 2.4),
                                      gridspec_kw={"width_ratios": [1, 2.6]})
    left.imshow(np.array(example["steps"][-1]["image"], dtype=np.uint8), cmap="gray",
                interpolation="none")
    left.set_title("28x28 input", fontsize=9)
    left.axis("off")
    probs = np.array(example["probabilities"])
    right.bar(range(10), probs, color=["tab:blue" if d == example["digit"] else "tab:gray"
                                       for d in range(10)])
    right.set_xticks(range(10))
    right.set_ylim(0, 1)
    right.set_xlabel("digit")
    right.set_ylabel("probability")
    right.set_title(f"Answer: {example['digit']} ({probs.max():.1%})", fontsize=9)
    fig.tight_layout()
    return fig


def corruption_examples(robustness: dict):
    """The first test digit under each corruption, with the model's answer for it."""
    kinds = robustness["kinds"]
    cols = 7
    rows = -(-len(kinds) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.55 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for ax, (kind, score) in zip(axes.flat, kinds.items()):
        example = score["example"]
        ax.imshow(np.array(example["image"], dtype=np.uint8), cmap="gray", interpolation="none",
                  vmin=0, vmax=255)
        wrong = example["predicted"] != example["true"]
        ax.set_title(f"{kind}\nanswer {example['predicted']}", fontsize=8,
                     color="tab:red" if wrong else "black")
    fig.tight_layout()
    return fig


def experiment_figures(results: dict) -> dict[str, "plt.Figure"]:
    """Every figure of one experiment, by file stem."""
    history = results["history"]
    analysis = results["analysis"]
    figs = {
        "loss": plot_history(history, "loss", "Model loss"),
        "accuracy": plot_history(history, "accuracy", "Model accuracy"),
        "correct": digit_grid(analysis["correct_samples"], "Predicted {predicted}, Class {true}"),
        "wrong": digit_grid(analysis["wrong_samples"], "Predicted {predicted}, Class {true}"),
        "confusion": confusion(analysis["confusion_matrix"], "Confusion matrix (test set)"),
        "confident_mistakes": digit_grid(
            analysis["confident_mistakes"],
            "True {true}, predicted {predicted}\n({confidence:.1%})"),
    }
    if results.get("recognize_example"):
        figs["recognize_steps"] = preprocessing_steps(results["recognize_example"])
        figs["recognize_answer"] = answer(results["recognize_example"])
    if results.get("robustness"):
        figs["corruptions"] = corruption_examples(results["robustness"])
    pictures = results.get("pictures")
    if pictures:
        figs["filters"] = filters(pictures["filters"])
        figs["feature_maps"] = feature_maps(pictures["digit"], pictures["feature_maps"])
        if pictures.get("augmented"):
            figs["augmented"] = plot_digits(pictures["augmented"], [""] * len(pictures["augmented"]),
                                            rows=2, cols=4)
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

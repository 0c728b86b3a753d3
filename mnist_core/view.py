"""What both tellings of the tutorial say about a run, computed once from its results.json.

The Jinja narrative (templates/tutorial.md.j2, for tutorial.html and tutorial.pdf) and the
Quarto pages (report/*.qmd) print these tables and sentences as they are, so a number or
a derived sentence is worded in one place only. Pure functions of the results: no
TensorFlow, no matplotlib, no files.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .results import validation_accuracy


@dataclass(frozen=True)
class Shown:
    """One model's results as a document shows them, and whether they match today's code."""

    model: str
    folder: Path
    results: dict
    status: str  # "current", "quick" (a current --quick smoke run) or "stale"
    reasons: tuple[str, ...] = ()


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def md_escape(text: str) -> str:
    """Text that Markdown shows as it is (``__init__.py`` stays a file name, not bold)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _names(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def status_note(shown: Iterable[Shown]) -> str:
    """A warning callout when numbers are not from a full, current run; "" when they are."""
    shown = list(shown)
    quick = [s for s in shown if s.status == "quick"]
    stale = [s for s in shown if s.status == "stale"]
    parts = []
    if quick:
        folders = ", ".join(f"`{s.folder.name}`" for s in quick)
        parts.append(f"**Quick smoke run.** The {_names([s.model for s in quick])} numbers below "
                     f"come from `mnist-report build --quick` ({folders}: a few thousand images, "
                     "one epoch), not the full tutorial run. Run `mnist-report build` for the "
                     "real numbers.")
    if stale:
        each = "; ".join(f"the {s.model} numbers come from `{s.folder.name}`, which no longer "
                         "matches the code or configuration "
                         f"({md_escape('; '.join(s.reasons) or 'unknown')})" for s in stale)
        parts.append(f"**Stale results.** {each[0].upper()}{each[1:]}. Run `mnist-report build` "
                     "to bring them up to date.")
    if not parts:
        return ""
    return "::: {.callout-warning}\n" + "\n\n".join(parts) + "\n:::\n"


# --- Tables: (header, rows, alignment), cells as Markdown text -------------------------

Table = tuple[list[str], list[list[str]], str]


def epoch_table(results: dict) -> Table:
    """The per-epoch training log."""
    history, seconds = results["history"], results["training"]["epoch_times_s"]
    val_loss, val_acc = history.get("val_loss"), history.get("val_accuracy")
    rows = [[str(i + 1), f"{loss:.4f}", f"{history['accuracy'][i]:.2%}",
             f"{val_loss[i]:.4f}" if val_loss else "-", f"{val_acc[i]:.2%}" if val_acc else "-",
             f"{seconds[i]:.1f}"]
            for i, loss in enumerate(history["loss"])]
    return (["Epoch", "Loss", "Accuracy", "Validation loss", "Validation accuracy", "Seconds"],
            rows, "rrrrrr")


def accuracy_table(results: dict) -> Table:
    """Final loss and accuracy on the training and the test images."""
    metrics = results["metrics"]
    train, test = metrics["train"], metrics["test"]
    return (["Data", "Loss", "Accuracy"], [
        [f"Train ({results['data']['train_size']:,} images)", f"{train['loss']:.4f}",
         f"{train['accuracy']:.2%}"],
        [f"Test ({test['size']:,} images)", f"{test['loss']:.4f}", f"{test['accuracy']:.2%}"],
    ], "lrr")


def layers_table(results: dict) -> Table:
    """The model's layers, as Keras summarises them."""
    return (["Layer", "Type", "Output shape", "Parameters"],
            [[r["layer"], r["type"], r["output_shape"], f"{r['params']:,}"]
             for r in results["model"]["summary_rows"]], "lllr")


def _calibration(results: dict) -> str:
    cal = results.get("calibration") or {}
    if cal.get("test_ece_before") is None:
        return "-"
    return f"{cal['test_ece_before']:.1%} -> {cal['test_ece_after']:.1%}"


def models_table(runs: list[dict]) -> Table:
    """The models side by side: size, training cost, accuracy (one results.json each).

    Validation accuracy is what the best model is chosen on; the calibration error (expected
    calibration error on the test set, before and after the temperature fitted on the
    validation split) says how far each model's confidence can be taken at its word.
    """
    rows = []
    for r in runs:
        train, test = r["metrics"]["train"], r["metrics"]["test"]
        rows.append([r["experiment"], f"{r['model']['params_total']:,}", str(r["config"]["epochs"]),
                     f"{r['training']['wall_time_s']:.0f} s", f"{train['accuracy']:.2%}",
                     f"{validation_accuracy(r):.2%}", f"{test['accuracy']:.2%}",
                     f"{test['errors']:,} / {test['size']:,}", _calibration(r)])
    return (["Model", "Parameters", "Epochs", "Training time", "Train accuracy",
             "Validation accuracy", "Test accuracy", "Test errors", "Calibration error"],
            rows, "lrrrrrrrr")


def _reference(row: dict) -> str:
    ref = row.get("reference_wall_s")
    return f"{row['wall_s'] / ref:.2f}x" if ref else "-"


def _is_before(row: dict) -> bool:
    """The cnn as it was before the levers: the row every other one is measured against."""
    return row["variant"].startswith("before")


def _change(row: dict) -> str:
    """What the variant changes; rows timed with the fused batch norm say so, since their
    times are not comparable with the rows timed before it."""
    change = row.get("change", row["variant"])
    return change + (" (fused batch norm)" if row.get("batch_norm") == "fused" else "")


def _cost(row: dict, base: dict | None) -> str:
    """The row's time against the cnn before when both were timed with the same batch norm,
    else against the Keras example trained in the same process."""
    if base and row.get("batch_norm") == base.get("batch_norm"):
        return (f"{row['wall_s'] / base['wall_s']:.2f}x the time of the cnn before "
                f"({base['wall_s']:.0f} s)")
    if row.get("reference_wall_s"):
        return f"{_reference(row)} the time of the Keras example trained beside it"
    return "not timed beside a peer"


def levers_table(rows: list[dict]) -> Table:
    """Each variant of the cnn tried on the validation split: its cost and its accuracy.

    Training time is wall-clock on a shared 2-core machine; "x Keras example" divides it by
    the Keras example's time measured in the same process, the figure that transfers.
    """
    rows = sorted(rows, key=lambda r: not _is_before(r))
    table = []
    for r in rows:
        val = f"{r['val_accuracy']:.2%}"
        if r.get("ema"):
            val += f" ({r['val_accuracy_last_weights']:.2%} before the weight average)"
        table.append([f"`{r['variant']}`: {md_escape(_change(r))}",
                      f"{r['wall_s']:.0f} s", _reference(r), val, f"{r['val_accuracy_tta']:.2%}"])
    return (["Variant", "Training time", "x Keras example", "Validation accuracy",
             "With test-time shifts"], table, "lrrrr")


def sweep_table(rows: list[dict], base_name: str = "base") -> Table:
    """Each variant's mean validation accuracy over seeds, best first, and its mean difference
    from ``base_name`` on the same seeds (pairing by seed removes much of the run-to-run noise)."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["variant"], []).append(r)
    base = {r["seed"]: r["val_accuracy"] for r in by.get(base_name, [])}
    table = []
    for name, runs in sorted(by.items(), key=lambda kv: -statistics.fmean(
            r["val_accuracy"] for r in kv[1])):
        accs = [r["val_accuracy"] for r in runs]
        paired = [r["val_accuracy"] - base[r["seed"]] for r in runs if r["seed"] in base]
        table.append([
            f"`{name}`: {md_escape(runs[0].get('change', name))}", str(len(runs)),
            f"{statistics.fmean(accs):.2%}",
            f"{statistics.stdev(accs):.2%}" if len(accs) > 1 else "-",
            f"{_points([statistics.fmean(paired)])}" if paired and name != base_name else "-"])
    return (["Variant", "Seeds", "Mean validation accuracy", "Spread (sd)",
             f"Points vs {base_name}, same seeds"], table, "lrrrr")


# The test-time augmentation schemes benchmarks/gpu_sweep.py measures, in words.
TTA_SCHEMES = {
    "shift8": "the image and its eight one-pixel shifts (what the cnn does)",
    "shift4": "the image and its four one-pixel shifts (up, down, left, right)",
    "shift4_roll": "the same four shifts, wrapped around the edge",
    "rot3": "the image and its rotations by -3 and +3 degrees",
    "zoom5": "the image and its zooms by -5% and +5%",
    "shift4_rot3_zoom5": "the image, four shifts, two rotations and two zooms",
}


def tta_table(rows: list[dict]) -> Table:
    """What averaging the softmax over several views of each validation image did, per run of
    the sweep: the mean change in points from one view, and how many runs it moved."""
    rows = [r for r in rows if "tta" in r]
    table = []
    for scheme, words in TTA_SCHEMES.items():
        diffs = [r["tta"][scheme] - r["tta"]["none"] for r in rows if scheme in r["tta"]]
        if not diffs:
            continue
        up, down = sum(d > 1e-9 for d in diffs), sum(d < -1e-9 for d in diffs)
        table.append([md_escape(words), str(len(diffs)), _points([statistics.fmean(diffs)]),
                      f"{up} / {len(diffs) - up - down} / {down}"])
    return (["Views averaged", "Runs", "Points vs one view (mean)", "Runs up / level / down"],
            table, "lrrr")


def _points(diffs: list[float]) -> str:
    # Rounded first, so that a difference of a float's last bit does not print as -0.00.
    return ", ".join(f"{round(100 * d, 2) + 0.0:+.2f}" for d in diffs)


NO_LEVERS = ("This results folder holds no lever measurements yet (they take a training run "
             "each): `python benchmarks/cnn_levers.py train --reference --variants "
             "before,d3_e15` makes the first two rows; the README lists every variant tried.")


def levers_sentences(rows: list[dict]) -> list[str]:
    """What each lever bought or cost on the validation split, in words, with the numbers."""
    base = next((r for r in rows if _is_before(r)), None)
    said = []
    if base:
        for r in rows:
            if r is base:
                continue
            change = _change(r)
            said.append(
                f"{md_escape(change[0].upper() + change[1:])}: {r['wall_s']:.0f} s, "
                f"{_cost(r, base)}, for {r['val_accuracy']:.2%} validation accuracy "
                f"({_points([r['val_accuracy'] - base['val_accuracy']])} points).")
    ema = [r["val_accuracy"] - r["val_accuracy_last_weights"] for r in rows if r.get("ema")]
    if ema:
        verdict = ("a gain" if min(ema) > 0 else
                   "no steady gain: batch normalisation keeps statistics of the raw weights, "
                   "which the averaged weights do not match")
        said.append(f"An exponential moving average of the weights (Keras' `use_ema`) changed "
                    f"validation accuracy by {_points(ema)} points in the runs that used it: "
                    f"{verdict}.")
    tta = [r["val_accuracy_tta"] - r["val_accuracy"] for r in rows]
    if tta:
        verdict = "a gain" if min(tta) > 0 else "no steady gain for five times the work"
        said.append(f"Averaging the answers for the image and its four one-pixel shifts "
                    f"(test-time augmentation) changed validation accuracy by {_points(tta)} "
                    f"points: {verdict}.")
    return said


def markdown_table(table: Table, caption: str = "") -> str:
    """A pipe table, with a Pandoc-style ``Table:`` caption when given."""
    header, rows, align = table
    rule = ["--:" if a == "r" else "---" for a in align]
    lines = [header, rule, *rows]
    text = "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)
    return text + (f"\n\nTable: {caption}" if caption else "")


# --- Sentences ---------------------------------------------------------------------------

def split_sentence(results: dict) -> str:
    d = results["data"]
    return (f"The last {d['val_size']:,} training images are held out as a validation set: the "
            "curves below are measured on them, never on the test set, which is used once, at "
            f"the end. This run trains on {d['train_size']:,} images and tests on "
            f"{d['test_size']:,}.")


def training_sentence(results: dict) -> str:
    config, training, prov = results["config"], results["training"], results["provenance"]
    epochs = f"{config['epochs']} epoch" + ("s" if config["epochs"] != 1 else "")
    return (f"This run trained for {epochs} in batches of {config['batch_size']}, seed "
            f"{config['seed']}: **{training['wall_time_s']:.1f} s** on {prov['cpu_count']} CPU "
            f"cores ({prov['cpu']}), about {training['images_per_s']:,.0f} images per second.")


def precision_sentence(experiments: list[dict]) -> str:
    """Which models of this build trained in bfloat16 (``experiments.training_precision``)."""
    fast = [e for e in experiments if e["training"].get("precision") == "bfloat16"]
    if not fast:
        return ("In this build every model trained in float32 (the cnn trains in bfloat16 only "
                "on a CPU with bfloat16 instructions).")
    return " ".join(
        f"In this build the {e['experiment']} model trained in bfloat16 on "
        f"{e['provenance']['cpu']} ({e['training']['wall_time_s']:.0f} s); it is saved and "
        "answers in float32." for e in fast)


def accuracy_sentence(results: dict) -> str:
    train, test = results["metrics"]["train"], results["metrics"]["test"]
    return (f"Train accuracy: **{train['accuracy']:.2%}**. Test accuracy: "
            f"**{test['accuracy']:.2%}**, that is {test['errors']:,} wrong answers out of "
            f"{test['size']:,} test images.")


def weakest_digit_sentence(results: dict) -> str:
    per_class = results["analysis"]["per_class_accuracy"]
    worst = min(range(len(per_class)), key=lambda d: per_class[d])
    return ("Some of the mistakes are digits a person would hesitate over; many are not. The "
            f"weakest digit is {worst} ({per_class[worst]:.2%} of its test images right).")


def provenance_lines(results: dict) -> list[str]:
    """Versions, machine and data of a run, one Markdown line each."""
    prov, data = results["provenance"], results["data"]
    versions = prov["versions"]
    return [f"Python {prov['python']}, TensorFlow {versions['tensorflow']}, Keras "
            f"{versions['keras']}, NumPy {versions['numpy']}.",
            f"Machine: {prov['cpu']}, {prov['cpu_count']} cores, {prov['platform']}.",
            f"Data: {data['source']}, SHA-256 `{data['sha256'][:16]}...`."]

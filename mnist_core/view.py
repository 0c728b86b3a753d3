"""What both tellings of the tutorial say about a run, computed once from its results.json.

The Jinja narrative (templates/tutorial.md.j2, for tutorial.html and tutorial.pdf) and the
Quarto pages (report/*.qmd) print these tables and sentences as they are, so a number or
a derived sentence is worded in one place only. Pure functions of the results: no
TensorFlow, no matplotlib, no files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .config import PRECISION_VARIABLE, REFERENCE_MODEL
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


def _time_ratio(run: dict, runs: list[dict]) -> str:
    peer = next((r for r in runs if r["experiment"] == REFERENCE_MODEL), None)
    if peer is None:
        return "-"
    return f"{run['training']['wall_time_s'] / peer['training']['wall_time_s']:.2f}x"


def models_table(runs: list[dict]) -> Table:
    """The models side by side: size, training cost, accuracy (one results.json each).

    Validation accuracy is what the best model is chosen on; the calibration error (expected
    calibration error on the test set, before and after the temperature fitted on the
    validation split) says how far each model's confidence can be taken at its word.
    """
    rows = []
    for r in runs:
        test = r["metrics"]["test"]
        rows.append([r["experiment"], f"{r['model']['params_trainable']:,}",
                     str(r["config"]["epochs"]), f"{r['training']['wall_time_s']:.0f} s",
                     _time_ratio(r, runs), f"{validation_accuracy(r):.2%}",
                     f"{test['accuracy']:.2%} ({test['errors']:,})", _calibration(r)])
    return (["Model", "Parameters", "Epochs", "Training", "Time x example", "Validation",
             "Test (errors)", "Calibration error"], rows, "lrrrrrrr")


def robustness_table(runs: list[dict]) -> Table:
    """Test error under each corruption, one column per model, and the mean over the kinds."""
    runs = [r for r in runs if r.get("robustness")]
    kinds = list(runs[0]["robustness"]["kinds"]) if runs else []
    rows = [[kind, *(f"{100 * (1 - r['robustness']['kinds'][kind]['accuracy']):.1f}"
                     for r in runs)] for kind in kinds]
    clean = ["none (clean)", *(f"{100 * (1 - r['metrics']['test']['accuracy']):.1f}" for r in runs)]
    mean = ["**mean of the corruptions**", *(
        f"**{100 * robustness_mean_error(r):.1f}**" for r in runs)]
    return (["Corruption", *(r["experiment"] for r in runs)], [clean, *rows, mean],
            "l" + "r" * len(runs))


def robustness_mean_error(results: dict) -> float:
    kinds = results["robustness"]["kinds"].values()
    return 1 - sum(k["accuracy"] for k in kinds) / len(kinds)


def robustness_sentences(runs: list[dict], best: dict) -> list[str]:
    """What the robustness table says, in words: the best model's weak spots, and the Keras
    example beside it."""
    runs = [r for r in runs if r.get("robustness")]
    if not best.get("robustness"):
        return []
    kinds = best["robustness"]["kinds"]
    worst = sorted(kinds, key=lambda k: kinds[k]["accuracy"])[:3]
    said = [f"The {best['experiment']} model, the best on clean digits, errs on "
            f"{100 * robustness_mean_error(best):.1f}% of the corrupted ones on average; its "
            "weakest kinds are " + _names([f"{k} ({100 * (1 - kinds[k]['accuracy']):.0f}% "
                                          "wrong)" for k in worst]) + "."]
    most = min(runs, key=robustness_mean_error)
    if most is not best:
        said.append(f"The most robust model here is {most['experiment']} "
                    f"({100 * robustness_mean_error(most):.1f}% mean error): accuracy on clean "
                    "digits does not carry over to digits unlike the training images.")
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


def summary_sentence(results: dict) -> str:
    """What the counts under Keras' printed summary mean."""
    model = results["model"]
    trainable = model["params_trainable"]
    fixed = model["params_total"] - trainable
    optimizer = re.search(r"Optimizer params: ([\d,]+)", model["summary_text"])
    said = (f"Keras' `model.summary()` prints the same layers. Its count that matters here is "
            f"the **{trainable:,} trainable parameters**, the weights that training adjusts")
    if fixed:
        said += (f"; {fixed:,} more are statistics that batch normalisation keeps (not trained "
                 "by the optimizer)")
    if optimizer:
        said += (f". After training the summary also counts the optimizer's {optimizer.group(1)} "
                 "numbers (Adam keeps two running averages for every weight), which are not part "
                 "of the network")
    return said + "."


def result_sentence(results: dict) -> str:
    """One model's outcome in this build, in words."""
    test, training = results["metrics"]["test"], results["training"]
    return (f"In this build the {results['experiment']} model trained in "
            f"{training['wall_time_s']:.0f} s and reads **{test['accuracy']:.2%}** of the test "
            f"digits right ({test['errors']:,} errors), {validation_accuracy(results):.2%} of "
            "the validation digits.")


def build_sentences(experiments: list[dict]) -> list[str]:
    """How this build's training ran: machine, precision, and speed beside the Keras example."""
    said = []
    for cpu in dict.fromkeys(e["provenance"]["cpu"] for e in experiments):
        names = [e["experiment"] for e in experiments if e["provenance"]["cpu"] == cpu]
        cores = next(e["provenance"]["cpu_count"] for e in experiments
                     if e["provenance"]["cpu"] == cpu)
        said.append(f"{_names(names)} trained on {cpu}, {cores} cores.")
    for e in experiments:
        precision = e["training"].get("precision", "float32")
        if precision != "float32":
            said.append(f"The {e['experiment']} model computed in {precision} (Keras' mixed "
                        "precision: the CPU has bfloat16 instructions), and is saved and answers "
                        f"in float32; `{PRECISION_VARIABLE}=float32` turns that off.")
    peer = next((e for e in experiments if e["experiment"] == REFERENCE_MODEL), None)
    if peer:
        for e in experiments:
            if e is not peer:
                said.append(f"The {e['experiment']} model took {_time_ratio(e, experiments)} "
                            f"the Keras example's training time ({e['training']['wall_time_s']:.0f} s "
                            f"against {peer['training']['wall_time_s']:.0f} s).")
    return said


def publication_lines(publication: dict) -> list[str]:
    """Who publishes this copy of the tutorial, under which licence, and where its source is."""
    lines = []
    if publication.get("author"):
        lines.append(f"Published by {md_escape(publication['author'])}.")
    if publication.get("license"):
        lines.append(f"Licence of this tutorial: {md_escape(publication['license'])}.")
    if publication.get("repository"):
        lines.append(f"Source: <{publication['repository']}>.")
    if not lines:
        lines.append("Author, licence and repository: set `author`, `license` and "
                     "`website: repo-url` in `_quarto.yml` to show them here.")
    return lines


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

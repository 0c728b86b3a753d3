"""Sentences that depend on the run are said only when the run bears them out."""

from __future__ import annotations

import json
import shutil

import pytest

from mnist_core.render import _environment, build_context


def narrative(out, folders) -> str:
    return _environment().get_template("tutorial.md.j2").render(**build_context(out, folders))


@pytest.fixture
def copy(tmp_path, quick_build):
    out = tmp_path / "out"
    shutil.copytree(quick_build["out"], out)
    return out, out / "experiments" / quick_build["folder"].name


def _edit(folder, change) -> None:
    data = json.loads((folder / "results.json").read_text())
    change(data)
    (folder / "results.json").write_text(json.dumps(data))


def test_validation_above_training_is_said_only_when_true(copy):
    out, folder = copy

    def set_final(train: float, val: float):
        def change(data):
            data["history"]["accuracy"][-1], data["history"]["val_accuracy"][-1] = train, val
        return change

    _edit(folder, set_final(0.60, 0.90))
    assert "Validation accuracy ends above training accuracy" in narrative(out, [folder])
    _edit(folder, set_final(0.95, 0.90))
    text = narrative(out, [folder])
    assert "above training accuracy" not in text
    assert "on the training batches and on the held-out validation images" in text


def test_the_classic_paragraphs_need_the_classic_model(copy):
    out, folder = copy
    assert "The classic network reaches" in narrative(out, [folder])
    _edit(folder, lambda data: data.update(experiment="mlp"))
    text = narrative(out, [folder])
    assert "The classic network" not in text


def test_benchmark_rows_from_older_code_are_marked(copy, quick_build):
    out, folder = copy
    second = out / "experiments" / "mlp-000000000000"
    shutil.copytree(folder, second)
    _edit(second, lambda data: data.update(experiment="mlp"))
    data = json.loads((folder / "results.json").read_text())
    row = {"model": "classic", "seed": 1, "epochs": 10, "params": 63018, "train_wall_s": 12.0,
           "train_images_per_s": 46000.0, "train_accuracy": 0.88, "test_accuracy": 0.8816,
           "test_errors": 1184, "infer_batch1000_images_per_s": 1e5,
           "infer_batch1_images_per_s": 2e3}
    bench = out / "benchmarks"
    bench.mkdir()
    (bench / "models.json").write_text(json.dumps({"rows": [row], "quick": False}))
    text = narrative(out, [folder, second])
    assert "**From older code.**" in text and "| classic * |" in text  # no key: older code
    from mnist_core.config import default_config
    from mnist_core.provenance import experiment_key, key_inputs
    row["key"] = experiment_key(key_inputs(default_config("classic"), data["data"]["sha256"]))
    (bench / "models.json").write_text(json.dumps({"rows": [row], "quick": False}))
    text = narrative(out, [folder, second])
    assert "From older code" not in text and "| classic |" in text
    row["precision"] = "bfloat16"  # a row says the arithmetic it trained in, where not float32
    (bench / "models.json").write_text(json.dumps({"rows": [row], "quick": False}))
    assert "| classic (bfloat16) |" in narrative(out, [folder, second])


def test_the_seed_spread_counts_one_configuration(copy):
    """Rows of older code are other models, not more seeds: the spread takes today's rows."""
    out, folder = copy
    second = out / "experiments" / "mlp-000000000000"
    shutil.copytree(folder, second)
    _edit(second, lambda data: data.update(experiment="mlp"))
    sha = json.loads((folder / "results.json").read_text())["data"]["sha256"]
    from mnist_core.config import default_config
    from mnist_core.provenance import experiment_key, key_inputs

    def row(seed, accuracy, key=None):
        return {"model": "classic", "seed": seed, "epochs": 10, "params": 63018,
                "train_wall_s": 12.0, "train_images_per_s": 46000.0, "train_accuracy": 0.88,
                "test_accuracy": accuracy, "test_errors": 1184, "infer_batch1000_images_per_s": 1e5,
                "infer_batch1_images_per_s": 2e3,
                "key": key or experiment_key(key_inputs(default_config("classic", seed=seed), sha))}

    for name, rows in (("benchmarks", [row(1, 0.88), row(2, 0.90)]),
                       ("benchmarks-old", [row(2, 0.10, "old"), row(3, 0.20, "old")])):
        (out / name).mkdir()
        (out / name / "models.json").write_text(json.dumps({"rows": rows, "quick": False}))
    text = " ".join(narrative(out, [folder, second]).split())
    assert "Over seeds 1, 2, the classic model reaches 89.00% test accuracy" in text
    assert "| classic * | 3 |" in text  # the older rows are still shown, marked
    # No row of today's code: the seeds of one older run (each seed has a key of its own).
    shutil.rmtree(out / "benchmarks")
    (out / "benchmarks-one").mkdir()
    (out / "benchmarks-one" / "models.json").write_text(json.dumps(
        {"rows": [row(4, 0.50, "old-4")], "quick": False}))
    (out / "benchmarks-old" / "models.json").write_text(json.dumps(
        {"rows": [row(s, 0.1 * s, f"old-{s}") for s in (1, 2, 3)], "quick": False}))
    text = " ".join(narrative(out, [folder, second]).split())
    assert "Over seeds 1, 2, 3, the classic model reaches 20.00% test accuracy" in text


def test_the_levers_section_follows_the_measurements(copy):
    out, folder = copy
    second = out / "experiments" / "mlp-000000000000"
    shutil.copytree(folder, second)
    _edit(second, lambda data: data.update(experiment="mlp"))
    text = narrative(out, [folder, second])
    assert "How the cnn got cheaper" in text and "holds no lever measurements yet" in text

    def row(variant, wall, val, tta, ema=False, last=None):
        return {"variant": variant, "change": f"{variant} in words", "seed": 1, "params": 1000,
                "epochs": 10, "wall_s": wall, "reference_wall_s": 100.0, "ema": ema,
                "val_accuracy": val, "val_accuracy_last_weights": last or val,
                "val_accuracy_tta": tta, "cpu": "Test CPU"}

    bench = out / "benchmarks"
    bench.mkdir()
    rows = [row("before", 400.0, 0.9970, 0.9972), row("cheap", 200.0, 0.9968, 0.9966),
            row("cheap", 190.0, 0.9966, 0.9960, ema=True, last=0.9964),  # a rerun replaces
            {**row("fast", 150.0, 0.9968, 0.9968), "batch_norm": "fused"}]
    (bench / "levers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "{bad\n")
    text = narrative(out, [folder, second])
    assert "How the cnn got cheaper" in text and "no lever measurements" not in text
    assert "| `before`: before in words |" in text and text.count("| `cheap`: ") == 1
    assert "99.66% (99.64% before the weight average)" in text
    assert "190 s, 0.47x the time of the cnn before (400 s), for 99.66% validation accuracy " \
           "(-0.04 points)" in text
    assert "1.90x" in text  # against the Keras example's 100 s
    # A row timed with other code is held against the Keras example beside it, not the old cnn.
    assert "| `fast`: fast in words (fused batch norm) |" in text
    assert "150 s, 1.50x the time of the Keras example trained beside it, for 99.68%" in text
    assert "changed validation accuracy by +0.02 points in the runs that used it: a gain" in text
    assert "by +0.02, -0.06, +0.00 points: no steady gain" in text
    assert "Points vs base" not in text  # no sweep measured yet: no table

    # Several seeds per variant: means, spread and the difference paired by seed.
    sweep = [{"variant": v, "change": f"{v} in words", "seed": s, "val_accuracy": a}
             for v, s, a in (("base", 1, 0.9950), ("base", 2, 0.9960), ("wide", 1, 0.9966),
                             ("wide", 2, 0.9970), ("wide", 3, 0.9980), ("wide", 3, 0.9968))]
    (bench / "gpu_sweep.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sweep) + "{bad\n")
    text = narrative(out, [folder, second])
    # The rerun of seed 3 replaces the first; "wide" is paired with base on seeds 1 and 2 only.
    assert "| `wide`: wide in words | 3 | 99.68% | 0.02% | +0.13 |" in text
    assert "| `base`: base in words | 2 | 99.55% | 0.07% | - |" in text
    assert text.index("`wide`: wide in words | 3") < text.index("`base`: base in words | 2")
    assert "Views averaged" not in text  # no run scored with test-time views: no table

    # Runs scored with test-time views: the mean change and how many runs each scheme moved.
    scored = [{**r, "tta": {"none": r["val_accuracy"], "shift8": r["val_accuracy"] + d,
                            "rot3": r["val_accuracy"] - 0.0002}}
              for r, d in zip(sweep[:5], (0.0004, 0.0, 0.0002, -0.0002, 0.0006))]
    (bench / "gpu_sweep.jsonl").write_text("".join(json.dumps(r) + "\n" for r in scored))
    text = narrative(out, [folder, second])
    assert "| the image and its eight one-pixel shifts (what the cnn does) | 5 | +0.02 | " \
           "3 / 1 / 1 |" in text
    assert "| the image and its rotations by -3 and +3 degrees | 5 | -0.02 | 0 / 0 / 5 |" in text
    assert "(up, down, left, right)" not in text  # schemes no run scored are left out


def test_the_precision_sentence_follows_the_results(copy):
    out, folder = copy
    # The sentence belongs to the comparison chapter, which needs a second model.
    second = out / "experiments" / "cnn-000000000000"
    shutil.copytree(folder, second)
    _edit(second, lambda data: data.update(experiment="cnn"))
    assert "In this build every model trained in float32" in narrative(out, [folder, second])

    def bfloat16(data):
        data["training"]["precision"] = "bfloat16"
        data["provenance"]["cpu"] = "Some CPU"
        data["training"]["wall_time_s"] = 171.4

    _edit(second, bfloat16)
    text = narrative(out, [folder, second])
    assert "every model trained in float32" not in text
    assert ("In this build the cnn model trained in bfloat16 on Some CPU (171 s); it is "
            "saved and answers in float32.") in text

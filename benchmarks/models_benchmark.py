"""Train every model in one process on the same data and measure accuracy and speed.

Usage:
  python benchmarks/models_benchmark.py [--models classic,mlp,cnn,keras_example]
                                        [--seeds 1] [--out results/benchmarks] [--quick]

For each model and seed: training wall time and images/second, train and test accuracy,
test errors, and inference images/second at batch 1 (warm, one image per call) and batch
1000. The reference Keras example convnet (keras-io mnist_convnet.py) runs beside ours so
every figure has a peer. Writes models.json and models.md to --out and prints the table.
Several seeds give the spread (mean, min, max) of test accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mnist_core.config import DEFAULT_MODELS, MODELS, default_config  # noqa: E402
from mnist_core.data import load_mnist  # noqa: E402
from mnist_core.experiments import BFLOAT16_FLAGS, training_precision  # noqa: E402
from mnist_core.provenance import (cpu_flags, cpu_model, experiment_key,  # noqa: E402
                                   key_inputs, library_versions)


def inference_speed(model, images: np.ndarray) -> tuple[float, float]:
    """Images/second at batch 1000 (whole test set) and batch 1 (median of single calls)."""
    model.predict(images[:1000], batch_size=1000, verbose=0)  # warm-up
    start = time.perf_counter()
    model.predict(images, batch_size=1000, verbose=0)
    batch_rate = len(images) / (time.perf_counter() - start)
    import tensorflow as tf

    # A traced call: what a serving loop would use (eager calls add milliseconds of overhead).
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    forward(images[:1])
    times = []
    for i in range(200):
        x = images[i:i + 1]
        t = time.perf_counter()
        forward(x).numpy()
        times.append(time.perf_counter() - t)
    return batch_rate, 1.0 / statistics.median(times)


def run_one(name: str, seed: int, data, quick: bool) -> dict:
    from mnist_core import evaluate, models, train

    config = default_config(name, seed=seed, quick=quick)
    splits = train.make_splits(data, config)
    # As the build trains it: in bfloat16 where the model allows it and the CPU has the
    # instructions ($MNIST_REPORT_PRECISION overrides).
    precision = training_precision(name)
    print(f"== {name}, seed {seed}: {config.epochs} epochs, batch {config.batch_size}, "
          f"{precision}", flush=True)
    cpu_start = time.process_time()
    run = train.train(config, splits, precision=precision)
    # CPU seconds of all threads: steadier than wall time when other tenants share the machine.
    cpu_s = time.process_time() - cpu_start
    # Measured as the build saves it (the cnn with its test-time shifts).
    served = models.served_model(run.model, config)
    metrics = evaluate.evaluate(served, splits)["metrics"]
    batch_rate, single_rate = inference_speed(served, splits.x_test)
    return {
        "model": name, "seed": seed, "epochs": config.epochs,
        # The result key of this configuration with this code: the documents show the row as
        # current only while today's code gives the same key.
        "key": experiment_key(key_inputs(config, data.sha256)),
        "params": int(run.model.count_params()),
        "precision": run.precision,
        "train_wall_s": run.wall_time_s,
        "train_cpu_s": cpu_s,
        # fit's time outside its epochs (setting up, tearing down): the tf.data autotuning
        # thread once made this 20-55 s for the cnn (train.augmented_batches).
        "outside_epochs_s": run.wall_time_s - sum(run.epoch_times),
        "train_images_per_s": run.train_size * config.epochs / run.wall_time_s,
        "train_accuracy": metrics["train"]["accuracy"],
        "val_accuracy": metrics["validation"]["accuracy"],
        "test_accuracy": metrics["test"]["accuracy"],
        "test_errors": metrics["test"]["errors"],
        "infer_batch1000_images_per_s": batch_rate,
        "infer_batch1_images_per_s": single_rate,
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| model | seed | params | epochs | train time (s) | train img/s | train acc | "
             "val acc | test acc | test errors | infer img/s (batch 1000) | "
             "infer img/s (batch 1) |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        val = r.get("val_accuracy")
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['params']:,} | {r['epochs']} | "
            f"{r['train_wall_s']:.1f} | {r['train_images_per_s']:,.0f} | "
            f"{100 * r['train_accuracy']:.2f}% | "
            f"{'-' if val is None else f'{100 * val:.2f}%'} | {100 * r['test_accuracy']:.2f}% | "
            f"{r['test_errors']} | {r['infer_batch1000_images_per_s']:,.0f} | "
            f"{r['infer_batch1_images_per_s']:,.0f} |")
    return "\n".join(lines)


def spread(rows: list[dict]) -> dict[str, dict]:
    by_model: dict[str, list[float]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r["test_accuracy"])
    return {m: {"seeds": len(v), "mean": statistics.mean(v), "min": min(v), "max": max(v)}
            for m, v in by_model.items()}


def against_reference(rows: list[dict]) -> list[str]:
    """Each model's training time as a multiple of the Keras example's in this run (wall, CPU)."""
    ref = next((r for r in rows if r["model"] == "keras_example"), None)
    if ref is None:
        return []
    lines = ["", "| model | seed | train time / Keras example (wall) | (CPU seconds) |",
             "|---|--:|--:|--:|"]
    for r in rows:
        if r is not ref:
            lines.append(f"| {r['model']} | {r['seed']} | {r['train_wall_s'] / ref['train_wall_s']:.2f}x "
                         f"| {r['train_cpu_s'] / ref['train_cpu_s']:.2f}x |")
    build = [r for r in rows if r["model"] in DEFAULT_MODELS and r["seed"] == ref["seed"]]
    if {r["model"] for r in build} == set(DEFAULT_MODELS):
        wall = sum(r["train_wall_s"] for r in build)
        cpu = sum(r["train_cpu_s"] for r in build)
        lines.append(f"| default build ({', '.join(DEFAULT_MODELS)}) | {ref['seed']} | "
                     f"{wall / ref['train_wall_s']:.2f}x ({wall / 60:.1f} min) | "
                     f"{cpu / ref['train_cpu_s']:.2f}x |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="classic,mlp,cnn,keras_example")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--quick", action="store_true", help="smoke run on a small subset")
    args = ap.parse_args()
    models = [m.strip() for m in args.models.split(",")]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        sys.exit(f"unknown model(s): {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    seeds = [int(s) for s in args.seeds.split(",")]

    data = load_mnist(args.data_dir)
    rows = [run_one(name, seed, data, args.quick) for name in models for seed in seeds]
    summary = {
        "rows": rows, "spread": spread(rows),
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(),
                    "cpu_bfloat16": sorted(BFLOAT16_FLAGS & cpu_flags()),
                    **library_versions()},
        "quick": args.quick,
    }
    table = markdown(rows)
    spread_lines = ["", "| model | seeds | mean test acc | min | max |", "|---|--:|--:|--:|--:|"]
    for m, s in summary["spread"].items():
        spread_lines.append(f"| {m} | {s['seeds']} | {100 * s['mean']:.2f}% | "
                            f"{100 * s['min']:.2f}% | {100 * s['max']:.2f}% |")
    text = table + "\n" + "\n".join(spread_lines + against_reference(rows)) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "models.json").write_text(json.dumps(summary, indent=1))
    (args.out / "models.md").write_text(text)
    print(text)
    print(f"wrote {args.out / 'models.json'} and {args.out / 'models.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

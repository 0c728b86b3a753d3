"""How robust is each model of a build? Test error under each corruption, all test digits.

Usage: python benchmarks/robustness_benchmark.py [--out results] [--images 10000]
                                                 [--data-dir DIR] [--json FILE]

The models are the current results of `mnist-report build` in --out (every model with a
model.keras); the corruptions are mnist_core.robustness.CORRUPTIONS with its fixed seed, given
to each network directly as 28x28 arrays (no `predict` preprocessing), as MNIST-C is scored.
The build measures the same on the first 2,000 test digits; this takes all 10,000. It prints
a Markdown table (test error in %, one column per model, the mean over the kinds last) and the
CPU it ran on.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mnist_core import quiet_tensorflow
from mnist_core.build import BuildOptions, plan
from mnist_core.data import load_mnist
from mnist_core.provenance import cpu_model
from mnist_core.results import MODEL_FILE, load_results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    quiet_tensorflow()
    import keras

    from mnist_core import models  # noqa: F401  (registers the served cnn's wrapper)
    from mnist_core.evaluate import robustness_scores

    data = load_mnist(args.data_dir)
    images, labels = data.x_test[:args.images], data.y_test[:args.images]
    table: dict[str, dict] = {}
    for item in plan(BuildOptions(out=args.out)):
        if not item.fresh or not (item.folder / MODEL_FILE).is_file():
            print(f"{item.config.model}: no current results in {args.out}, left out")
            continue
        model = keras.saving.load_model(item.folder / MODEL_FILE, compile=False)
        flat = load_results(item.folder)["model"]["input_kind"] == "flat"
        start = time.perf_counter()
        scores = robustness_scores(lambda x: model.predict(x, batch_size=1000, verbose=0),
                                   images, labels, flat)
        table[item.config.model] = {k: v["accuracy"] for k, v in scores["kinds"].items()}
        print(f"{item.config.model}: {time.perf_counter() - start:.0f} s", flush=True)
    if not table:
        print(f"no current results in {args.out}: run `mnist-report build` first")
        return 1
    names = list(table)
    kinds = list(next(iter(table.values())))
    print(f"\nTest error (%) on {len(images):,} test digits per corruption ({cpu_model()}):\n")
    print("| corruption | " + " | ".join(names) + " |")
    print("|---|" + "--:|" * len(names))
    for kind in kinds:
        print(f"| {kind} | " + " | ".join(f"{100 * (1 - table[n][kind]):.1f}" for n in names) + " |")
    means = [100 * (1 - sum(table[n].values()) / len(kinds)) for n in names]
    print("| **mean** | " + " | ".join(f"**{m:.1f}**" for m in means) + " |")
    if args.json:
        args.json.write_text(json.dumps({"images": len(images), "cpu": cpu_model(),
                                         "accuracy": table}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

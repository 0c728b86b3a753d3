"""Why is a model fragile under a corruption? Validation digits, trained models, no training.

Usage: python research/robustness_causes.py --out results [--images 2000] [--data-dir DIR]

For each current model of the build in --out, the error on the last --images validation
digits (never the test set: this is for choosing) under each corruption of
mnist_core.robustness, given to the network as they are and after two input normalisations a
model or `predict` could apply: "stretched" (each digit's darkest pixel to 0 and brightest to
255, which undoes a gray background and low contrast) and "median" (a 3x3 median filter, which
removes isolated noise pixels). If a normalisation removes most of a model's error under a
corruption, the model fails there because of what the corruption does to the input's levels,
not because it cannot read the digit's shape.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage

from mnist_core import quiet_tensorflow
from mnist_core.build import BuildOptions, plan
from mnist_core.config import ExperimentConfig
from mnist_core.data import load_mnist
from mnist_core.results import MODEL_FILE, load_results
from mnist_core.robustness import CORRUPTIONS, corrupted


def stretched(images: np.ndarray) -> np.ndarray:
    low = images.min(axis=(1, 2), keepdims=True).astype("float64")
    high = images.max(axis=(1, 2), keepdims=True).astype("float64")
    return np.clip((images - low) / np.maximum(high - low, 1) * 255, 0, 255).astype(np.uint8)


def median(images: np.ndarray) -> np.ndarray:
    return ndimage.median_filter(images, size=(1, 3, 3))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    quiet_tensorflow()
    import keras

    from mnist_core import models  # noqa: F401  (registers the served cnn's wrapper)

    data = load_mnist(args.data_dir)
    val_size = ExperimentConfig(model="cnn", epochs=1).val_size
    images = data.x_train[-val_size:][-args.images:]
    labels = data.y_train[-val_size:][-args.images:]
    fixes = {"as is": lambda x: x, "stretched": stretched, "median": median}
    for item in plan(BuildOptions(out=args.out)):
        if not item.fresh or not (item.folder / MODEL_FILE).is_file():
            continue
        model = keras.saving.load_model(item.folder / MODEL_FILE, compile=False)
        shape = (-1, 784) if load_results(item.folder)["model"]["input_kind"] == "flat" \
            else (-1, 28, 28, 1)

        def error(x: np.ndarray) -> float:
            probs = model.predict(x.reshape(shape).astype("float32") / 255, batch_size=1000,
                                  verbose=0)
            return 100 * float(np.mean(probs.argmax(axis=1) != labels))

        print(f"\n{item.config.model}: validation error (%) on {len(images):,} digits")
        print("| corruption | " + " | ".join(fixes) + " |\n|---|" + "--:|" * len(fixes))
        print("| none | " + " | ".join(f"{error(fix(images)):.1f}" for fix in fixes.values())
              + " |")
        for kind in CORRUPTIONS:
            bad = corrupted(images, kind)
            print(f"| {kind} | " + " | ".join(f"{error(fix(bad)):.1f}" for fix in fixes.values())
                  + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does more augmentation make the cnn hold up under corruptions? Chosen on validation digits.

Usage: python research/robust_cnn.py --variants base,levels [--seed 1] [--data-dir DIR]
                                     [--images 2000] [--precision auto|float32|bfloat16]

Each variant is the build's cnn (mnist_core.models.build_cnn) with other augmentation layers
in front, trained by the build's own code (train.train: the same epochs, schedule, batch
size, fused batch norm and input pipeline) on the 55,000 training images. It reports the
training time (and as a multiple of the Keras example's, when `example` is among the
variants, trained first in the same process), the clean validation accuracy, and the mean
validation error under the corruptions of mnist_core.robustness on the last --images
validation digits, with the worst kinds. The test set is not touched: this is for choosing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mnist_core import quiet_tensorflow
from mnist_core.config import default_config
from mnist_core.data import load_mnist
from mnist_core.provenance import cpu_model


def augmentation(variant: str):
    """The augmentation layers of a variant (``base``: the cnn's own)."""
    from keras import layers

    moves = [layers.RandomRotation(10 / 360, fill_mode="constant"),
             layers.RandomZoom(0.1, fill_mode="constant"),
             layers.RandomTranslation(2 / 28, 2 / 28, fill_mode="constant")]
    levels = [layers.RandomBrightness(0.4, value_range=(0, 1)),
              layers.RandomContrast(0.6, value_range=(0, 1))]
    noise = [layers.GaussianNoise(0.15)]
    wider = [layers.RandomBrightness(0.4, value_range=(0, 1)),
             layers.RandomContrast(0.8, value_range=(0, 1))]
    erase = [layers.RandomErasing(factor=0.5, scale=(0.02, 0.15), value_range=(0, 1))]
    return {"base": moves, "levels": moves + levels, "levels_noise": moves + levels + noise,
            "wider_noise_erase": moves + wider + noise + erase}[variant]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="example,base,levels_noise")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--precision", default="auto")
    args = ap.parse_args()
    quiet_tensorflow()
    import keras

    from mnist_core import models, train
    from mnist_core.evaluate import robustness_scores
    from mnist_core.experiments import training_precision

    data = load_mnist(args.data_dir)
    original = models.build_cnn
    reference = None
    print(f"{cpu_model()}, seed {args.seed}")
    for variant in args.variants.split(","):
        name = "keras_example" if variant == "example" else "cnn"
        config = default_config(name, seed=args.seed)
        splits = train.make_splits(data, config)
        if name == "cnn":
            def build_cnn(epochs, steps_per_epoch, _variant=variant):
                # The cnn's layers after its augmentation, in order (it is one chain), behind
                # the variant's augmentation.
                model = original(epochs, steps_per_epoch)
                inputs = keras.Input(shape=(28, 28, 1))
                x = keras.Sequential(augmentation(_variant), name="augment")(inputs)
                for layer in model.layers[2:]:
                    x = layer(x)
                rebuilt = keras.Model(inputs, x, name="cnn")
                rebuilt.compile(optimizer=model.optimizer, loss=model.loss,
                                metrics=["accuracy"])
                return rebuilt
            models.build_cnn = build_cnn
        precision = (training_precision(name) if args.precision == "auto" else args.precision)
        start = time.perf_counter()
        run = train.train(config, splits, precision=precision)
        seconds = time.perf_counter() - start
        models.build_cnn = original
        served = models.served_model(run.model, config)

        def predict(x):
            return served.predict(x, batch_size=1000, verbose=0)

        clean = float(np.mean(predict(splits.x_val).argmax(1) == splits.y_val.argmax(1)))
        images = data.x_train[-config.val_size:][-args.images:]
        labels = data.y_train[-config.val_size:][-args.images:]
        scores = robustness_scores(predict, images, labels, flat=False)["kinds"]
        errors = {k: 100 * (1 - v["accuracy"]) for k, v in scores.items()}
        worst = sorted(errors, key=errors.get, reverse=True)[:4]
        if variant == "example":
            reference = seconds
        ratio = f", {seconds / reference:.2f}x the example" if reference and variant != "example" else ""
        print(f"{variant}: {seconds:.0f} s{ratio} ({precision}); clean validation {clean:.2%}; "
              f"mean corrupted validation error {np.mean(list(errors.values())):.1f}%; worst: "
              + ", ".join(f"{k} {errors[k]:.0f}%" for k in worst), flush=True)
        print("  " + "; ".join(f"{k} {v:.1f}" for k, v in errors.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

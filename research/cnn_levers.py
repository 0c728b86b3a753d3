"""Measure the levers for a cheaper cnn on the validation split (issue 12).

Usage:
  python research/cnn_levers.py speed [--variants a,b] [--steps 120] [--prefetch 2]
                                        [--precision float32|bfloat16]
  python research/cnn_levers.py train [--variants a,b] [--seed 1] [--reference]
  python research/cnn_levers.py bnstats --models results/experiments/cnn-*/model.keras,...
  python research/cnn_levers.py tta --models results/experiments/cnn-*/model.keras,...
  python research/cnn_levers.py shifts --models A/model.keras,... [--split val|test]
  python research/cnn_levers.py teardown [--runs 6] [--epochs 2]
  (any mode: --threads INTRA,INTER sets TensorFlow's thread pools; default: TensorFlow's own)

`speed` times training steps of each variant right after the Keras example convnet in the
same process (the ratio is what transfers between machines). `train` trains each variant on
the 55,000 training images (an ensemble variant trains its members one after the other) and
reports validation accuracy, with and without test-time shifts
(and before the weight average, for variants that use one), and the wall time; with
--reference the Keras example trains first and each time is also given as a multiple of its.
Rows are appended to results/benchmarks/levers.jsonl (--log), which the tutorial's comparison
chapter shows. `bnstats` takes trained cnn models and reports their validation accuracy with
the batch-norm statistics as trained and re-estimated on clean and on augmented training
images; `tta` reports their validation errors with several kinds of test-time augmentation;
`shifts` their errors answering through `models.ShiftedViews` at several confidence thresholds.
`teardown` trains the cnn for a few epochs with the build's own `train.train`, alternately with
tf.data's autotuning on and (as the build has it) off, and prints the seconds `fit` spends
outside its epochs.
The test set is not touched, except by `shifts --split test`, which reports and chooses
nothing: this script is for choosing. The variants are VARIANTS
below; "before" is the cnn as it was before issue 12.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mnist_core.config import default_config  # noqa: E402
from mnist_core.data import load_mnist  # noqa: E402
from mnist_core.provenance import cpu_model  # noqa: E402

# Each variant: stages of conv widths (max-pooling between stages), the stem, the schedule.
BASE = {"stages": [[16], [32, 32], [64, 64]], "stem": "conv", "epochs": 24, "batch": 128,
        "peak": 3e-3, "warmup": 1.0, "ema": False, "smoothing": 0.1, "wd": 0.01, "head": "gap",
        "augment": [10.0, 0.1, 2.0], "members": 1, "clean_last": 0, "bn_decay": True}
# "before" is the cnn as it was before issue 12; the tables measure every lever against it.
VARIANTS = {
    "before": {},
    "e12": {"epochs": 12},
    "e12_ema": {"epochs": 12, "ema": True},
    "e16": {"epochs": 16},
    "slim": {"stages": [[16], [24, 32], [48, 64]]},
    "drop3": {"stages": [[16], [32], [64, 64]]},
    "w32": {"stages": [[32], [32], [64, 64]]},
    "s2stem": {"stages": [[32, 32], [64, 64]], "stem": "s2"},
    "b256": {"batch": 256, "peak": 5e-3},
    "slim_e14": {"stages": [[16], [24, 32], [48, 64]], "epochs": 14},
    "drop3_e14": {"stages": [[16], [32], [64, 64]], "epochs": 14},
    "d3b256": {"stages": [[16], [32], [64, 64]], "batch": 256, "peak": 5e-3},
    "s2b256": {"stages": [[32, 32], [64, 64]], "stem": "s2", "batch": 256, "peak": 5e-3},
    "three": {"stages": [[16], [32], [64]]},
    "d3w48": {"stages": [[16], [32], [48, 64]]},
    "d3b512": {"stages": [[16], [32], [64, 64]], "batch": 512, "peak": 8e-3},
    "before_ema": {"ema": True},
    "d3_e15": {"stages": [[16], [32], [64, 64]], "epochs": 15},
    "d3b256_e16": {"stages": [[16], [32], [64, 64]], "epochs": 16, "batch": 256, "peak": 5e-3},
    "three_e18": {"stages": [[16], [32], [64]], "epochs": 18},
    "d3_e15_p5": {"stages": [[16], [32], [64, 64]], "epochs": 15, "peak": 5e-3, "warmup": 0.5},
    "d3_e15_flat": {"stages": [[16], [32], [64, 64]], "epochs": 15, "head": "flatten"},
    "d3_e15_halfaug": {"stages": [[16], [32], [64, 64]], "epochs": 15, "augment": [5.0, 0.05, 1.0]},
    "s2_e15": {"stages": [[32, 32], [64, 64]], "stem": "s2", "epochs": 15},
    "d3w48b256_e18": {"stages": [[16], [32], [48, 64]], "epochs": 18, "batch": 256,
                      "peak": 5e-3},
    "d3x15": {"stages": [[24], [48], [96, 96]]},
    "d3w96": {"stages": [[16], [32], [96, 96]]},
    "d3_e22": {"stages": [[16], [32], [64, 64]], "epochs": 22},
    "two14_e18": {"epochs": 18},
    "d3w96_e17": {"stages": [[16], [32], [96, 96]], "epochs": 17},
    "d3_e11_x2": {"stages": [[16], [32], [64, 64]], "epochs": 11, "members": 2},
    "d3_e18_ema": {"stages": [[16], [32], [64, 64]], "epochs": 18, "ema": True},
    "d3b256_e18_ema": {"stages": [[16], [32], [64, 64]], "epochs": 18, "ema": True,
                       "batch": 256, "peak": 5e-3},
    "two14_e15": {"epochs": 15},
    "two14_e12": {"epochs": 12},
    "d3c3_e15": {"stages": [[16], [32], [64, 64, 64]], "epochs": 15},
    "two14_clean1": {"epochs": 15, "clean_last": 1},
    "two14_h128": {"epochs": 15, "head": "gap128"},
    "two14_bnwd0": {"epochs": 15, "bn_decay": False},
    "two14_w40": {"stages": [[16], [40, 40], [64, 64]], "epochs": 15},
    "two14_w24": {"stages": [[24], [32, 32], [64, 64]], "epochs": 15},
}


# What each variant changes, in words, for the tables in the README and the tutorial.
CHANGES = {
    "before": "the cnn before issue 12: 16 / 32-32 / 64-64, 24 epochs",
    "before_ema": "the cnn before issue 12 (16 / 32-32 / 64-64, 24 epochs), weight average",
    "d3_e18_ema": "one 14x14 convolution instead of two (16 / 32 / 64-64), 18 epochs, "
                  "weight average",
    "d3b256_e18_ema": "16 / 32 / 64-64, batch 256 (peak 5e-3), 18 epochs, weight average",
    "d3_e15": "16 / 32 / 64-64, 15 epochs",
    "d3b256_e16": "16 / 32 / 64-64, batch 256 (peak 5e-3), 16 epochs",
    "three_e18": "three convolutions (16 / 32 / 64), 18 epochs",
    "d3_e15_p5": "16 / 32 / 64-64, 15 epochs, peak 5e-3 after half an epoch of warm-up",
    "d3_e15_flat": "16 / 32 / 64-64, 15 epochs, the 7x7x64 features flattened into the "
                   "classifier instead of averaged",
    "d3_e15_halfaug": "16 / 32 / 64-64, 15 epochs, half the augmentation (5 degrees, 5%, 1 px)",
    "s2_e15": "a strided 5x5 stem (32 channels straight to 14x14), 32 / 64-64, 15 epochs",
    "d3w48b256_e18": "16 / 32 / 48-64, batch 256 (peak 5e-3), 18 epochs",
    "d3_e22": "16 / 32 / 64-64, 22 epochs",
    "two14_e18": "two convolutions at 14x14 as before issue 12 (16 / 32-32 / 64-64), 18 epochs",
    "d3_e11_x2": "two 16 / 32 / 64-64 models of 11 epochs each, their probabilities averaged",
    "d3w96_e17": "16 / 32 / 96-96, 17 epochs",
    "two14_e15": "two convolutions at 14x14 (16 / 32-32 / 64-64), 15 epochs",
    "two14_e12": "two convolutions at 14x14 (16 / 32-32 / 64-64), 12 epochs",
    "d3c3_e15": "three convolutions at 7x7 (16 / 32 / 64-64-64), 15 epochs",
    "two14_clean1": "16 / 32-32 / 64-64, 15 epochs, the last one without augmentation",
    "two14_h128": "16 / 32-32 / 64-64, 15 epochs, a 128-unit ReLU layer before the classifier",
    "two14_bnwd0": "16 / 32-32 / 64-64, 15 epochs, no weight decay on batch-norm scales and "
                   "offsets",
    "two14_w40": "16 / 40-40 / 64-64, 15 epochs",
    "two14_w24": "24 / 32-32 / 64-64, 15 epochs",
}


def spec(name: str) -> dict:
    return {**BASE, **VARIANTS[name]}


def build(s: dict, steps_per_epoch: int):
    import keras
    from keras import layers

    from mnist_core.models import OneCycle, conv_bn_relu

    inputs = keras.Input(shape=(28, 28, 1))
    x = inputs
    for i, widths in enumerate(s["stages"]):
        for j, w in enumerate(widths):
            strided = s["stem"] == "s2" and i == 0 and j == 0
            x = conv_bn_relu(x, w, kernel=5 if strided else 3, strides=2 if strided else 1)
        if i < len(s["stages"]) - 1:
            x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x) if s["head"] == "flatten" else layers.GlobalAveragePooling2D()(x)
    if s["head"] == "gap128":
        x = layers.Dense(128, activation="relu")(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    total = steps_per_epoch * s["epochs"]
    optimizer = keras.optimizers.AdamW(
        OneCycle(s["peak"], total, int(steps_per_epoch * s["warmup"])), weight_decay=s["wd"],
        use_ema=s["ema"], ema_momentum=0.999)
    if not s["bn_decay"]:
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta"])
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=s["smoothing"]),
                  metrics=["accuracy"])
    return model


def pipeline(x, y, batch: int, seed: int, augment=(10.0, 0.1, 2.0), prefetch: int = 2,
             clean_after: int | None = None):
    """train.augmented_batches with this variant's augmentation strengths; with
    ``clean_after``, batches from that step on are not augmented."""
    from mnist_core.models import augment_batch
    from mnist_core.train import augmented_batches

    if clean_after is None:
        return augmented_batches(x, y, batch, seed,
                                 lambda images: augment_batch(images, *augment), prefetch)
    import tensorflow as tf

    def maybe(step, batch_xy):
        images, labels = batch_xy
        return tf.cond(step < clean_after, lambda: augment_batch(images, *augment),
                       lambda: images), labels

    return (tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(batch).repeat().enumerate()
            .map(maybe, num_parallel_calls=1).prefetch(prefetch))


def batch_norm_statistics(model, images: np.ndarray) -> None:
    """Set every batch norm's moving mean and variance to their exact values over ``images``,
    layer by layer (each layer sees the re-estimated layers before it)."""
    import keras

    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        upstream = keras.Model(model.inputs, layer.input)
        total = squares = 0.0
        count = 0
        for start in range(0, len(images), 2000):
            a = np.asarray(upstream(images[start:start + 2000], training=False), np.float64)
            a = a.reshape(-1, a.shape[-1])
            total, squares, count = total + a.sum(0), squares + (a ** 2).sum(0), count + len(a)
        mean = total / count
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign((squares / count - mean ** 2).astype(np.float32))


def bnstats(paths: list[str], splits) -> None:
    """Validation accuracy of trained models with their batch-norm statistics re-estimated."""
    import keras
    import tensorflow as tf

    # Importing mnist_core.models also registers the cnn's layers for loading.
    from mnist_core.models import augment_batch

    labels = splits.y_val.argmax(1)
    sample = splits.x_train[np.random.default_rng(0).choice(len(splits.x_train), 20000, False)]
    tf.random.set_seed(0)
    augmented = np.concatenate([augment_batch(tf.constant(sample[i:i + 1000])).numpy()
                                for i in range(0, len(sample), 1000)])
    for path in paths:
        model = keras.models.load_model(path)
        weights = model.get_weights()
        accuracy = {}
        for name, images in (("as trained", None), ("clean", sample), ("augmented", augmented)):
            model.set_weights(weights)
            if images is not None:
                batch_norm_statistics(model, images)
            p = model.predict(splits.x_val, batch_size=1000, verbose=0)
            accuracy[name] = float((p.argmax(1) == labels).mean())
        print(f"{path}: {model.count_params():,} params; validation accuracy "
              + ", ".join(f"{k} {v:.2%}" for k, v in accuracy.items())
              + " (statistics re-estimated on 20,000 training images)", flush=True)


def transformed(x: np.ndarray, degrees: float = 0.0, zoom: float = 1.0, dx: float = 0.0,
                dy: float = 0.0) -> np.ndarray:
    """``x`` rotated, scaled and shifted, all images alike (the training augmentation's
    transform with fixed instead of random amounts)."""
    import math

    import tensorflow as tf

    c, s = math.cos(math.radians(degrees)) / zoom, math.sin(math.radians(degrees)) / zoom
    centre = 13.5
    row = [c, -s, centre - c * centre + s * centre - dx, s, c,
           centre - s * centre - c * centre - dy, 0.0, 0.0]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.constant(x), transforms=tf.constant([row] * len(x), tf.float32),
        output_shape=[28, 28], fill_value=0.0, interpolation="BILINEAR",
        fill_mode="CONSTANT").numpy()


def tta_errors(paths: list[str], splits) -> None:
    """Validation errors of trained models with test-time augmentation: the mean probabilities
    over the image and some transformed copies of it."""
    import keras
    import tensorflow as tf

    from mnist_core.models import augment_batch

    x, labels = splits.x_val, splits.y_val.argmax(1)
    shifts = [transformed(x, dx=dx, dy=dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    rotations = [transformed(x, degrees=d) for d in (-3, 3)]
    zooms = [transformed(x, zoom=z) for z in (0.95, 1.05)]
    tf.random.set_seed(0)
    augmented = [augment_batch(tf.constant(x)).numpy() for _ in range(8)]
    views = [x, *shifts, *rotations, *zooms, *augmented]
    # Each scheme averages some of the views (by position in ``views``).
    schemes = {"none": [0], "4 one-pixel shifts": range(5), "rotations +-3 degrees": [0, 5, 6],
               "zooms +-5%": [0, 7, 8], "all eight": range(9),
               "8 training augmentations": range(9, 17)}
    for path in paths:
        model = keras.models.load_model(path)
        # Each view once; the schemes share them.
        probs = [model.predict(v, batch_size=1000, verbose=0) for v in views]
        errors = {name: int((sum(probs[i] for i in chosen).argmax(1) != labels).sum())
                  for name, chosen in schemes.items()}
        print(f"{path}: validation errors of {len(labels):,} with test-time augmentation "
              + ", ".join(f"{k} {v}" for k, v in errors.items()), flush=True)


def shift_errors(paths: list[str], splits, split: str) -> None:
    """Errors of trained cnns answering through ``models.ShiftedViews``: the network alone, all
    images from nine views, and only those under a few confidence thresholds (the cnn's is
    ``SHIFTS_BELOW``), with the share of images that take the nine views."""
    import keras
    import numpy as np

    from mnist_core.models import SHIFTS_BELOW, ShiftedViews, with_shifted_views

    x, labels = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}").argmax(1)
    for path in paths:
        model = keras.models.load_model(path)
        # A file the build saved holds the network inside ShiftedViews: take the network.
        network = next((layer.network for layer in model.layers
                        if isinstance(layer, ShiftedViews)), model)
        bare = network.predict(x, batch_size=1000, verbose=0)
        cells = [f"network alone {int((bare.argmax(1) != labels).sum())}"]
        # 2.0: above any probability, so every image takes the nine views.
        for threshold in (2.0, SHIFTS_BELOW, 0.6, 0.5):
            served = with_shifted_views(network, threshold)
            probs = served.predict(x, batch_size=1000, verbose=0)
            label = "nine views for all" if threshold > 1 else f"below {threshold:g}"
            cells.append(f"{label} {int((probs.argmax(1) != labels).sum())} "
                         f"({np.mean(bare.max(1) < threshold):.1%} of images)")
        print(f"{path}: {split} errors of {len(labels):,}: " + ", ".join(cells), flush=True)


def shifted_probs(model, x: np.ndarray) -> np.ndarray:
    """Mean softmax over the image and its four one-pixel shifts."""
    total = model.predict(x, batch_size=1000, verbose=0)
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        total += model.predict(np.roll(x, (dy, dx), axis=(1, 2)), batch_size=1000, verbose=0)
    return total / 5


def teardown(data, runs: int, epochs: int) -> None:
    """Seconds of the cnn's fit outside its epochs, with and without tf.data's autotuning."""
    import dataclasses

    import tensorflow as tf

    from mnist_core import train as train_mod

    fixed = train_mod.augmented_batches
    tuned = tf.data.Options()
    tuned.autotune.enabled = True

    def autotuned(*a, **k):
        return fixed(*a, **k).with_options(tuned)

    config = dataclasses.replace(default_config("cnn"), epochs=epochs)
    splits = train_mod.make_splits(data, config)
    kinds = {"autotuning on": autotuned, "autotuning off (the build)": fixed}
    outside: dict[str, list[float]] = {label: [] for label in kinds}
    for i in range(runs):
        label = list(kinds)[i % 2]  # alternating, autotuned first
        train_mod.augmented_batches = kinds[label]
        try:
            run = train_mod.train(config, splits)
        finally:
            train_mod.augmented_batches = fixed
        epochs_s = sum(run.epoch_times)  # each epoch's own seconds, validation included
        outside[label].append(run.wall_time_s - epochs_s)
        print(f"run {i + 1}, {label}: {run.wall_time_s - epochs_s:.1f} s outside the epochs "
              f"(epochs {epochs_s:.1f} s, fit {run.wall_time_s:.1f} s)", flush=True)
    for label, seconds in outside.items():
        print(f"{label}: " + ", ".join(f"{x:.1f}" for x in seconds) + " s outside the epochs")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["speed", "train", "bnstats", "tta", "shifts", "teardown"])
    ap.add_argument("--variants", default="before")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reference", action="store_true",
                    help="train the Keras example first and give each time as a multiple of it")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--log", type=Path, default=REPO / "results" / "benchmarks" / "levers.jsonl")
    ap.add_argument("--threads", default=None, metavar="INTRA,INTER",
                    help="TensorFlow's intra- and inter-op thread pools (default: its own sizes)")
    ap.add_argument("--prefetch", type=int, default=2,
                    help="speed: batches the pipeline makes ahead (-1: tf.data's tuning)")
    ap.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                    help="speed: the arithmetic of the variant's layers (the Keras example's stays "
                         "float32)")
    ap.add_argument("--runs", type=int, default=6, help="teardown: runs, half of them autotuned")
    ap.add_argument("--epochs", type=int, default=2, help="teardown: epochs per run")
    ap.add_argument("--models", default="",
                    help="bnstats, tta, shifts: comma-separated model.keras files")
    ap.add_argument("--split", choices=["val", "test"], default="val",
                    help="shifts: the images to count errors on (test: to report, never to "
                         "choose)")
    args = ap.parse_args()
    import tensorflow as tf

    if args.threads:
        # Only possible before TensorFlow runs its first op.
        intra, inter = (int(n) for n in args.threads.split(","))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    import keras

    from mnist_core import train as train_mod
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s): {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    data = load_mnist(args.data_dir)
    splits = train_mod.make_splits(data, default_config("cnn"))
    print(f"CPU: {cpu_model()}; threads (intra, inter): "
          f"{args.threads or 'TensorFlow default'}", flush=True)
    if args.mode in ("bnstats", "tta", "shifts"):
        paths = [p for p in args.models.split(",") if p]
        if not paths:
            sys.exit(f"{args.mode} needs --models A/model.keras[,B/model.keras...]")
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            sys.exit(f"no such model file: {', '.join(missing)}")
        if args.mode == "shifts":
            shift_errors(paths, splits, args.split)
        else:
            (bnstats if args.mode == "bnstats" else tta_errors)(paths, splits)
        return 0
    if args.mode == "teardown":
        teardown(data, args.runs, args.epochs)
        return 0
    args.log.parent.mkdir(parents=True, exist_ok=True)

    if args.mode == "speed":
        from mnist_core.models import build_keras_example

        def rate(model, batch, warmup=20):
            # One fit, clocked between batches: a second fit would open a second iterator and
            # wait for the first one to shut down (the stall train.training_data avoids).
            marks = []
            clock = keras.callbacks.LambdaCallback(on_train_batch_end=lambda step, logs: (
                marks.append(time.perf_counter()) if step in (warmup - 1, warmup + args.steps - 1)
                else None))
            model.fit(pipeline(splits.x_train, splits.y_train, batch, 1, prefetch=args.prefetch),
                      verbose=0,
                      steps_per_epoch=warmup + args.steps, epochs=1, callbacks=[clock])
            return args.steps * batch / (marks[1] - marks[0])

        # Machines are shared: time the Keras example right before each variant and compare.
        for name in names:
            s = spec(name)
            train_mod.seed_everything(1)
            ref = rate(build_keras_example(default_config("keras_example"), 430), 128)
            with train_mod.computing_in(args.precision):  # as the build trains the cnn
                model = build(s, 430)
            r = rate(model, s["batch"])
            budget = 2.0 * 15 * r / ref
            print(f"{name} (prefetch {args.prefetch}, {args.precision}): {r:,.0f} img/s vs "
                  f"keras example {ref:,.0f} ({r / ref:.2f}x), {model.count_params():,} params; "
                  f"2.0x the example allows {budget:.1f} epochs", flush=True)
        return 0

    reference = None
    if args.reference:
        # The Keras example, trained as the models benchmark trains it, in this process.
        config = default_config("keras_example", seed=args.seed)
        run = train_mod.train(config, train_mod.make_splits(data, config))
        reference = run.wall_time_s
        print(f"keras_example: {reference:.0f} s", flush=True)
    for name in names:
        s = spec(name)
        steps = -(-len(splits.x_train) // s["batch"])
        labels = splits.y_val.argmax(1)
        start = time.perf_counter()
        raw, probs, shifted, members = {}, 0.0, 0.0, []
        # An ensemble trains its members one after the other, each from its own seed.
        for member in range(s["members"]):
            train_mod.seed_everything(args.seed + 1000 * member)
            model = build(s, steps)

            def on_epoch_end(epoch, logs, name=name, start=start, raw=raw):
                print(f"  {name} epoch {epoch + 1}: val {logs['val_accuracy']:.4f} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
                # Keras swaps in the moving average after the last epoch; this is before it.
                raw["val"] = logs["val_accuracy"]

            clean_after = (steps * (s["epochs"] - s["clean_last"]) if s["clean_last"] else None)
            model.fit(pipeline(splits.x_train, splits.y_train, s["batch"], args.seed + 1000 * member,
                               s["augment"], clean_after=clean_after),
                      steps_per_epoch=steps, epochs=s["epochs"], verbose=0,
                      validation_data=(splits.x_val, splits.y_val),
                      callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)])
            p = model.predict(splits.x_val, batch_size=1000, verbose=0)
            members.append(float((p.argmax(1) == labels).mean()))
            probs, shifted = probs + p, shifted + shifted_probs(model, splits.x_val)
        wall = time.perf_counter() - start
        plain = float((probs.argmax(1) == labels).mean())
        tta = float((shifted.argmax(1) == labels).mean())
        row = {"variant": name, "change": CHANGES.get(name, name), "seed": args.seed, **s, "params": model.count_params() * s["members"],
               "member_val_accuracy": members,
               "wall_s": wall, "val_accuracy": plain, "val_accuracy_last_weights": raw["val"], "val_accuracy_tta": tta,
               "reference_wall_s": reference, "cpu": cpu_model(),
               # Rows without this field were timed with Keras' batch norm and an iterator per epoch.
               "batch_norm": "fused"}
        print(f"{name}: val {plain:.2%} (last weights {raw['val']:.2%}, tta {tta:.2%}), "
              f"{wall:.0f} s" + (f" = {wall / reference:.2f}x the Keras example" if reference else ""),
              flush=True)
        with args.log.open("a") as f:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train one experiment: seed everything, format the data, fit, time each epoch."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from . import interrupts
from .config import MODELS, ExperimentConfig
from .data import Mnist, as_image_batch, flatten_and_scale, one_hot
from .models import augment_batch, build_model


@dataclass
class Splits:
    """The model-ready arrays: training, validation (held out from training) and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_images: np.ndarray  # the raw uint8 test images, for figures
    test_labels: np.ndarray  # the raw digit labels


def make_splits(data: Mnist, config: ExperimentConfig) -> Splits:
    """Format the data for the model and hold the last ``val_size`` training images out."""
    fmt = flatten_and_scale if MODELS[config.model].input_kind == "flat" else as_image_batch
    x, y = data.x_train, data.y_train
    if config.train_limit:
        x, y = x[: config.train_limit], y[: config.train_limit]
    cut = len(x) - config.val_size
    x_test, y_test = data.x_test, data.y_test
    if config.test_limit:
        x_test, y_test = x_test[: config.test_limit], y_test[: config.test_limit]
    return Splits(
        x_train=fmt(x[:cut]), y_train=one_hot(y[:cut]),
        x_val=fmt(x[cut:]), y_val=one_hot(y[cut:]),
        x_test=fmt(x_test), y_test=one_hot(y_test),
        test_images=x_test, test_labels=y_test,
    )


class EpochTimer(keras.callbacks.Callback):
    """Wall time of every epoch, so curves can be read against the clock."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


class StopBetweenBatches(keras.callbacks.Callback):
    """Ctrl-C takes effect between two batches (see ``interrupts``), never inside a step."""

    def _check(self, *_args, **_kwargs) -> None:
        interrupts.check()

    on_train_batch_end = on_test_batch_end = on_epoch_end = _check


class Progress(keras.callbacks.Callback):
    """One line per epoch a person can read: where the build is and how long is left.

    ``later``: the training still to come after this model, as a multiple of this model's
    (from ``experiments.TRAIN_COST``), so the line can estimate the rest of the build too.
    """

    def __init__(self, name: str, epochs: int, position: tuple[int, int] = (1, 1),
                 later: float = 0.0) -> None:
        super().__init__()
        self.name, self.epochs, self.position, self.later = name, epochs, position, later

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        elapsed = time.perf_counter() - self._start
        whole = elapsed / (epoch + 1) * self.epochs
        left = whole - elapsed
        metrics = ", ".join(f"{k} {v:.4f}" if "loss" in k else f"{k} {v:.2%}"
                            for k, v in logs.items() if k != "learning_rate")
        n, total = self.position
        build = (f", about {_clock(left + whole * self.later)} until all {total} models are "
                 f"trained" if n < total else "")
        print(f"[mnist-report] {self.name} (model {n} of {total}) Epoch {epoch + 1}/"
              f"{self.epochs}: {metrics}; {_clock(elapsed)} elapsed, about {_clock(left)} left "
              f"for {self.name}{build}", flush=True)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@dataclass
class TrainedRun:
    model: keras.Model  # float32, whatever precision it trained in
    history: dict[str, list[float]]
    epoch_times: list[float]
    wall_time_s: float
    train_size: int
    precision: str = "float32"


@contextmanager
def computing_in(precision: str):
    """Layers made inside compute in ``precision`` ("float32" or "bfloat16": Keras' mixed
    precision, weights in float32). Layers take the global policy when they are made, so it
    is set for the block only."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def built(config: ExperimentConfig, steps_per_epoch: int,
          precision: str = "float32") -> keras.Model:
    """The model of ``config``, its layers computing in ``precision`` (weights stay float32)."""
    with computing_in(precision):
        return build_model(config, steps_per_epoch)


def seed_everything(seed: int) -> None:
    """Same seed, same config, same machine: same numbers (op determinism on)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def augmented_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,
                      augment: Callable | None = None, prefetch: int = 2) -> tf.data.Dataset:
    """Shuffled batches, each augmented afresh (``augment``, default the cnn's), without end:
    fit it with ``steps_per_epoch``. ``prefetch``: batches made ahead (-1: tf.data's tuning)."""
    augment = augment or augment_batch
    batches = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        # One map call per batch: vectorised, and deterministic with a single worker.
        .map(lambda images, labels: (augment(images), labels), num_parallel_calls=1)
        # One iterator for the whole fit: Keras otherwise makes one per epoch, and each
        # tear-down can wait (see below).
        .repeat()
        # Depth 0-8 or tf.data's tuning all ran the cnn equally fast (cnn_levers.py speed).
        .prefetch(prefetch)
    )
    if prefetch == tf.data.AUTOTUNE:
        return batches
    # Nothing here is tuned, so no autotuning thread: deleting an iterator waits for that
    # thread's sleep between optimisations, which grows to a minute, and so fit() sat idle
    # for 0-52 s after its last epoch (py-spy and gdb: ~IteratorResource waiting on
    # Model::OptimizeLoop; measured in CI builds and benchmarks on the AMD EPYC machine).
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.with_options(options)


def training_data(config: ExperimentConfig, splits: Splits):
    """Arrays as they are, or a tf.data pipeline that augments every batch afresh."""
    if not MODELS[config.model].augment:
        return splits.x_train, splits.y_train
    return augmented_batches(splits.x_train, splits.y_train, config.batch_size, config.seed)


def train(config: ExperimentConfig, splits: Splits,
          position: tuple[int, int] = (1, 1), later: float = 0.0,
          precision: str = "float32") -> TrainedRun:
    """Fit the model named in ``config``, one progress line per epoch (``position``: model n of m;
    ``later``: the build's training after this model, as a multiple of this model's), its
    layers computing in ``precision`` (see ``experiments.training_precision``).

    On a terminal Keras' progress bar shows the batches as well.
    """
    seed_everything(config.seed)
    steps = -(-len(splits.x_train) // config.batch_size)
    model = built(config, steps, precision)
    timer = EpochTimer()
    validation = (splits.x_val, splits.y_val) if len(splits.x_val) else None
    start = time.perf_counter()
    data = training_data(config, splits)
    pipeline = isinstance(data, tf.data.Dataset)  # it batches and shuffles by itself
    with interrupts.deferred():
        fit = model.fit(
            *((data,) if pipeline else data),
            batch_size=None if pipeline else config.batch_size,
            shuffle=not pipeline,
            steps_per_epoch=steps if pipeline else None,
            epochs=config.epochs,
            validation_data=validation,
            callbacks=[timer, StopBetweenBatches(), Progress(config.model, config.epochs, position, later)],
            verbose=1 if sys.stdout.isatty() else 0,
        )
    wall = time.perf_counter() - start
    if precision != "float32":
        # Evaluated, saved and exported in float32 (the weights are float32 already): CPUs
        # without bfloat16 instructions answer at full speed, and so does ONNX Runtime Web.
        network = built(config, steps)
        network.set_weights(model.get_weights())
        # The optimizer's state too, so the saved model loads as a trained one does.
        network.optimizer.build(network.trainable_variables)
        for mine, trained in zip(network.optimizer.variables, model.optimizer.variables,
                                 strict=True):
            mine.assign(trained)
        model = network
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    return TrainedRun(model, history, timer.times, wall, len(splits.x_train), precision)

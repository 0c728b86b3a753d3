"""Train one experiment: format the data, seed everything, fit, time each epoch.

``prepare`` and ``fit`` are the plain Keras the tutorial shows and its notebook runs;
``train`` is the build's wrapper around them: seeds, precision, progress and Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from . import interrupts
from .config import MODELS, ExperimentConfig
from .data import Mnist
from .models import build_model


def prepare(images: np.ndarray, labels: np.ndarray, flat: bool):
    """Images as floats in [0, 1], in rows of 784 (``flat``) or as 28x28x1 pictures,
    and each label as ten numbers, a 1 at the digit's place (what the loss compares)."""
    shape = (-1, 784) if flat else (-1, 28, 28, 1)
    x = images.reshape(shape).astype("float32") / 255
    y = keras.utils.to_categorical(labels, 10)
    return x, y


def fit(model: keras.Model, x, y, validation_data, epochs: int,
        batch_size: int | None = 128, callbacks=(), **options) -> keras.callbacks.History:
    """Train ``model``; ``history.history`` keeps each epoch's loss and accuracy."""
    return model.fit(x, y, batch_size=batch_size, epochs=epochs,
                     validation_data=validation_data, callbacks=list(callbacks), **options)


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
    flat = MODELS[config.model].input_kind == "flat"
    x, y = data.x_train, data.y_train
    if config.train_limit:
        x, y = x[: config.train_limit], y[: config.train_limit]
    cut = len(x) - config.val_size
    x_test, y_test = data.x_test, data.y_test
    if config.test_limit:
        x_test, y_test = x_test[: config.test_limit], y_test[: config.test_limit]
    x_train, y_train = prepare(x[:cut], y[:cut], flat)
    x_val, y_val = prepare(x[cut:], y[cut:], flat)
    x_test_ready, y_test_ready = prepare(x_test, y_test, flat)
    return Splits(x_train, y_train, x_val, y_val, x_test_ready, y_test_ready,
                  test_images=x_test, test_labels=y_test)


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
    (from ``ModelInfo.train_cost``), so the line can estimate the rest of the build too.
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
        return _float32_output(build_model(config, steps_per_epoch), precision)


def _float32_output(model: keras.Model, precision: str) -> keras.Model:
    """``model`` with its last layer in float32 where the rest computes in bfloat16: the
    probabilities need more than bfloat16's 8 bits of mantissa for the loss."""
    if precision != "float32":
        model.layers[-1].dtype_policy = keras.DTypePolicy("float32")
    return model


@keras.saving.register_keras_serializable(package="mnist_core")
class FusedBatchNorm(layers.BatchNormalization):
    """Keras' batch norm, trained with TensorFlow's one fused kernel: the same weights, the
    same statistics, the same inference, in fewer operations (Keras 3 computes the batch
    statistics and the normalisation as separate ones, keras-team/keras-core#225)."""

    def call(self, inputs, training=None, mask=None):
        fusable = (keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4
                   and self.axis in (-1, 3) and mask is None and not self.renorm)
        if not (training and self.trainable and fusable):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
        # The op returns the unbiased variance; Keras keeps the biased one, as moments gives.
        n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], variance.dtype)
        variance = variance * (n - 1.0) / n
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs


def for_training(model: keras.Model, precision: str) -> tuple[keras.Model, keras.Layer | None]:
    """What the build trains in place of ``model``, the same network computed faster on a CPU:
    batch norm through ``FusedBatchNorm``, and the augmentation layers (a layer named
    "augment") taken out, for the input pipeline to apply (``augmented_batches``), so that
    they run beside the training step rather than inside it. (network, augmentation or None).
    """
    augment = next((layer for layer in model.layers if layer.name == "augment"), None)
    network = keras.Model(augment.output, model.output) if augment is not None else model
    has_batch_norm = any(type(layer) is layers.BatchNormalization for layer in network.layers)
    if augment is None and not has_batch_norm:
        return model, None

    def clone(layer):
        kind = FusedBatchNorm if type(layer) is layers.BatchNormalization else type(layer)
        return kind.from_config(layer.get_config())

    with computing_in(precision):
        fast = _float32_output(keras.models.clone_model(network, clone_function=clone),
                               precision)
    fast.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])
    return fast, augment


def copy_trained(trained: keras.Model, into: keras.Model) -> keras.Model:
    """``into`` (the same network, maybe with its augmentation layers) with the weights of
    ``trained``, layer by layer in order, and its optimizer's state, so that it saves and
    loads as the trained model would."""
    def weighted(model):
        return [layer for layer in model.layers if layer.weights and layer.name != "augment"]

    for source, target in zip(weighted(trained), weighted(into), strict=True):
        target.set_weights(source.get_weights())
    into.optimizer.build(into.trainable_variables)
    for target, source in zip(into.optimizer.variables, trained.optimizer.variables, strict=True):
        target.assign(source)
    return into


def seed_everything(seed: int) -> None:
    """Same seed, same config, same machine: same numbers (op determinism on)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def augmented_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,
                      augment: keras.Layer) -> tf.data.Dataset:
    """Shuffled batches, each through ``augment`` afresh, without end: fit it with
    ``steps_per_epoch``."""
    batches = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        # One map call per batch: vectorised, and deterministic with a single worker.
        .map(lambda images, labels: (augment(images, training=True), labels),
             num_parallel_calls=1)
        # One iterator for the whole fit: Keras otherwise makes one per epoch.
        .repeat()
        .prefetch(2)
    )
    # Nothing here is tuned, so no autotuning thread: deleting an iterator waits for that
    # thread's sleep between optimisations, which left fit() idle after its last epoch.
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.with_options(options)


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
    network, augment = for_training(model, precision)
    timer = EpochTimer()
    validation = (splits.x_val, splits.y_val) if len(splits.x_val) else None
    callbacks = [timer, StopBetweenBatches(), Progress(config.model, config.epochs, position, later)]
    verbose = 1 if sys.stdout.isatty() else 0
    start = time.perf_counter()
    with interrupts.deferred():
        if augment is None:
            history = fit(network, splits.x_train, splits.y_train, validation, config.epochs,
                          config.batch_size, callbacks, verbose=verbose)
        else:
            batches = augmented_batches(splits.x_train, splits.y_train, config.batch_size,
                                        config.seed, augment)
            history = fit(network, batches, None, validation, config.epochs, None, callbacks,
                          steps_per_epoch=steps, shuffle=False, verbose=verbose)
    wall = time.perf_counter() - start
    if network is not model or precision != "float32":
        # Evaluated, saved and exported as the plain Keras model of the builder, in float32:
        # CPUs without bfloat16 instructions answer at full speed, and so does ONNX Runtime Web.
        model = copy_trained(network, built(config, steps))
    history = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    return TrainedRun(model, history, timer.times, wall, len(splits.x_train), precision)

"""The model registry: one builder per model, each returning a compiled Keras model.

``config.MODELS`` holds what can be said about a model without TensorFlow
(title, input kind, default epochs); this module holds how it is built.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from . import MnistReportError
from .config import MODELS, ExperimentConfig


def build_classic(config: ExperimentConfig, steps_per_epoch: int) -> keras.Model:
    """The classic tutorial's network, exactly: 63,018 parameters, Adam, cross-entropy."""
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(64, activation="elu"),
            layers.Dropout(0.9),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.7),
            layers.Dense(32, activation="elu"),
            layers.Dense(10, activation="softmax"),
        ],
        name="classic",
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def build_mlp(config: ExperimentConfig, steps_per_epoch: int) -> keras.Model:
    """The same idea done right: wider layers, light dropout, a decaying learning rate."""
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(10, activation="softmax"),
        ],
        name="mlp",
    )
    # Cosine decay to zero: big steps early, fine ones at the end, no tuning of when to drop.
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-3, decay_steps=steps_per_epoch * config.epochs)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


@keras.saving.register_keras_serializable(package="mnist_core")
class FusedBatchNorm(layers.BatchNormalization):
    """Keras' batch norm, trained with TensorFlow's fused kernel (same weights, same inference).

    Keras 3 computes the batch statistics and the normalisation as separate TensorFlow ops
    (keras-team/keras-core#225, "BatchNorm is slow"); with the one fused op tf.keras used to
    call, the cnn's training steps run 1.1-1.3x faster on a 2-core CPU (cnn_levers.py speed).
    Inference, saving and the ONNX export take Keras' own path unchanged.
    """

    def call(self, inputs, training=None, mask=None):
        fusable = (keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4
                   and self.axis in (-1, 3) and mask is None and not self.renorm)
        if not (training and self.trainable and fusable):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
        # The op returns the unbiased variance; Keras keeps the biased one, as moments gives.
        n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], variance.dtype)
        variance = variance * (n - 1.0) / n
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs


def conv_bn_relu(x, filters: int, kernel: int = 3, strides: int = 1):
    """Convolution, then batch norm (so no bias needed), then ReLU."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = FusedBatchNorm()(x)
    return layers.ReLU()(x)


@keras.saving.register_keras_serializable(package="mnist_core")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak``, then linear decay to zero (a one-cycle schedule)."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int):
        self.peak, self.total_steps, self.warmup_steps = peak, total_steps, max(warmup_steps, 1)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        up = self.peak * step / self.warmup_steps
        remaining = keras.ops.maximum(self.total_steps - step, 0.0)
        down = self.peak * remaining / max(self.total_steps - self.warmup_steps, 1)
        return keras.ops.where(step < self.warmup_steps, up, down)

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}


def augment_batch(images, degrees: float = 10.0, scale: float = 0.1, pixels: float = 2.0):
    """Random rotation (up to ``degrees``), scale (up to ``scale``) and shift (up to ``pixels``).

    The defaults are the cnn's; benchmarks/cnn_levers.py tries others. One batched op per batch
    keeps augmentation cheap on a CPU (over 20,000 images/s here).
    """
    import math

    import tensorflow as tf

    batch = tf.shape(images)[0]
    angle = tf.random.uniform([batch], -degrees, degrees) * (math.pi / 180.0)
    zoom = 1.0 + tf.random.uniform([batch], -scale, scale)
    shift_x = tf.random.uniform([batch], -pixels, pixels)
    shift_y = tf.random.uniform([batch], -pixels, pixels)
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    centre = 13.5
    # The transform maps each output pixel to the input pixel it samples: rotate and scale
    # about the centre, then shift.
    a2 = centre - cos * centre + sin * centre - shift_x
    b2 = centre - sin * centre - cos * centre - shift_y
    zeros = tf.zeros([batch])
    transforms = tf.stack([cos, -sin, a2, sin, cos, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[28, 28], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")


def build_cnn(config: ExperimentConfig, steps_per_epoch: int) -> keras.Model:
    """A small batch-norm CNN sized for a 2-core CPU: 70,746 parameters, 15 epochs.

    Chosen on the validation split (benchmarks/cnn_levers.py, and benchmarks/gpu_sweep.py for
    six seeds per variant; the tutorial's "How the cnn got cheaper" shows the numbers): the
    16-32-32-64-64 net of before issue 12 needs 15 epochs, not 24, with AdamW and a one-cycle
    rate; dropping its second 14x14 convolution looked free on one seed but cost 0.13 points over
    six, more than more epochs, wider 7x7 layers or other regularisation won back. With
    FusedBatchNorm, one data iterator per fit and no tf.data autotuning it trains in 1.4-1.6x
    the Keras example's time, in bfloat16 (where the CPU has it) 1.3x (models_benchmark.py,
    2-core AMD EPYC).
    """
    inputs = keras.Input(shape=(28, 28, 1))
    x = conv_bn_relu(inputs, 16)
    x = layers.MaxPooling2D()(x)
    x = conv_bn_relu(x, 32)
    x = conv_bn_relu(x, 32)
    x = layers.MaxPooling2D()(x)
    x = conv_bn_relu(x, 64)
    x = conv_bn_relu(x, 64)
    x = layers.GlobalAveragePooling2D()(x)
    # float32 probabilities even when the layers before compute in bfloat16 (8-bit mantissa).
    outputs = layers.Dense(10, activation="softmax", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name="cnn")
    total = steps_per_epoch * config.epochs
    # Decoupled weight decay and label smoothing both fight over-confidence on a model that
    # fits the training set almost perfectly; one warm-up epoch keeps batch norm stable.
    optimizer = keras.optimizers.AdamW(OneCycle(3e-3, total, steps_per_epoch), weight_decay=0.01)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                  metrics=["accuracy"])
    return model


# The eight one-pixel moves (rows, columns) a served cnn also looks at, and the confidence
# below which it does: on the validation split (nine cnn seeds) every answer the shifts changed
# had a confidence under 0.70 from the image alone, and 0.8 sent 2.7% of the images through them.
ONE_PIXEL_SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))
SHIFTS_BELOW = 0.8


@keras.saving.register_keras_serializable(package="mnist_core")
class ShiftedViews(layers.Layer):
    """A trained network's answer; where it is unsure (top probability below ``threshold``),
    the mean softmax over the image and its eight one-pixel shifts instead.

    Test-time augmentation, kept inside the saved model so that ``evaluate``, ``predict`` and
    the ONNX export (for the in-page widget) give the same answers. Only the unsure images
    pay for the eight extra passes, so batch inference stays near the bare network's speed.
    """

    def __init__(self, network: keras.Model, threshold: float = SHIFTS_BELOW, **kwargs):
        super().__init__(**kwargs)
        self.network, self.threshold = network, float(threshold)

    def call(self, images):
        import tensorflow as tf

        probs = self.network(images, training=False)
        unsure = tf.where(tf.reduce_max(probs, axis=1) < self.threshold)  # [k, 1] row numbers
        picked = tf.gather_nd(images, unsure)
        padded = tf.pad(picked, [[0, 0], [1, 1], [1, 1], [0, 0]])
        # A 28x28 window of the padded image at an offset: the digit moved, zeros behind it.
        views = [picked] + [padded[:, 1 - dy:29 - dy, 1 - dx:29 - dx, :]
                            for dy, dx in ONE_PIXEL_SHIFTS]
        # One blank image more, so that the second pass never has an empty batch: TensorFlow's
        # CPU convolution mis-shapes one, and a branch (tf.cond) would not export to ONNX.
        blank = tf.zeros(tf.concat([[1], tf.shape(images)[1:]], axis=0), images.dtype)
        answers = self.network(tf.concat([*views, blank], axis=0), training=False)[:-1]
        mean = tf.reduce_mean(tf.reshape(answers, [len(views), -1, probs.shape[-1]]), axis=0)
        return tf.tensor_scatter_nd_update(probs, unsure, mean)

    def compute_output_shape(self, input_shape):
        return self.network.compute_output_shape(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold,
                "network": keras.saving.serialize_keras_object(self.network)}

    @classmethod
    def from_config(cls, config: dict) -> "ShiftedViews":
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network, **config)


def with_shifted_views(network: keras.Model, threshold: float = SHIFTS_BELOW) -> keras.Model:
    """``network`` wrapped in ``ShiftedViews``, compiled with its loss for ``evaluate``."""
    inputs = keras.Input(shape=(28, 28, 1), name="pixels")
    outputs = ShiftedViews(network, threshold, name="shifted_views")(inputs)
    served = keras.Model(inputs, outputs, name=f"{network.name}_served")
    served.compile(loss=network.loss, metrics=["accuracy"])
    return served


def served_model(model: keras.Model, config: ExperimentConfig) -> keras.Model:
    """The trained ``model`` as it is evaluated, saved and exported."""
    return with_shifted_views(model) if MODELS[config.model].test_time_shifts else model


def build_keras_example(config: ExperimentConfig, steps_per_epoch: int) -> keras.Model:
    """keras-io/examples/vision/mnist_convnet.py, unchanged: the reference peer."""
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ],
        name="keras_example",
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


BUILDERS: dict[str, Callable[[ExperimentConfig, int], keras.Model]] = {
    "classic": build_classic,
    "mlp": build_mlp,
    "cnn": build_cnn,
    "keras_example": build_keras_example,
}


def build_model(config: ExperimentConfig, steps_per_epoch: int) -> keras.Model:
    """Build and compile the model named in ``config`` (schedules need the steps per epoch)."""
    if config.model not in BUILDERS:
        raise MnistReportError(f"unknown model {config.model!r}; choose one of: {', '.join(MODELS)}")
    return BUILDERS[config.model](config, steps_per_epoch)


def summary_text(model: keras.Model) -> str:
    """Keras' own printed summary, captured as text."""
    lines: list[str] = []
    model.summary(print_fn=lambda line, line_break=True: lines.append(line))
    return "\n".join(lines).rstrip()


def summary_rows(model: keras.Model) -> list[dict]:
    """The summary as data: one row per layer, for tables in the documents."""
    return [
        {
            "layer": layer.name,
            "type": type(layer).__name__,
            "output_shape": str(tuple(layer.output.shape)),
            "params": int(layer.count_params()),
        }
        for layer in model.layers
    ]

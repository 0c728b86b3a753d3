"""The networks: one builder per model, ``build_<name>``, in plain Keras.

The tutorial prints these functions and its notebook runs them as they are, so they use
nothing but Keras: the build adds progress, Ctrl-C safety and the precision from outside
(``train.py``). ``config.MODELS`` holds what is known of a model without building it.
"""

from __future__ import annotations

import inspect

import keras
from keras import layers

from . import MnistReportError
from .config import MODELS, ExperimentConfig


def build_classic() -> keras.Model:
    """The classic tutorial's network, exactly: 63,018 parameters, Adam, cross-entropy."""
    inputs = keras.Input(shape=(784,))
    x = layers.Dense(64, activation="elu")(inputs)
    x = layers.Dropout(0.9)(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.7)(x)
    x = layers.Dense(32, activation="elu")(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="classic")
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def build_mlp(epochs: int, steps_per_epoch: int) -> keras.Model:
    """The same kind of network done right: wider layers, light dropout, a decaying rate."""
    inputs = keras.Input(shape=(784,))
    x = layers.Dense(512, activation="relu")(inputs)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="mlp")
    # Big steps early, small ones at the end: no need to choose when to slow down.
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, epochs * steps_per_epoch)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def build_keras_example() -> keras.Model:
    """keras-io/examples/vision/mnist_convnet.py, unchanged: 34,826 parameters."""
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


def conv_bn_relu(x, filters: int):
    """A 3x3 convolution, batch normalisation (which makes a bias useless), ReLU."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def build_cnn(epochs: int, steps_per_epoch: int) -> keras.Model:
    """Five convolutions with batch norm, trained on moved, lit and noised digits."""
    # Active only in training: every epoch sees each digit slightly rotated, scaled
    # and moved, on a lighter or darker background, with more or less contrast and
    # with noise: digits as people photograph them, not only as MNIST has them.
    augment = keras.Sequential([
        layers.RandomRotation(10 / 360, fill_mode="constant"),
        layers.RandomZoom(0.1, fill_mode="constant"),
        layers.RandomTranslation(2 / 28, 2 / 28, fill_mode="constant"),
        layers.RandomBrightness(0.4, value_range=(0, 1)),
        layers.RandomContrast(0.6, value_range=(0, 1)),
        layers.GaussianNoise(0.15),
    ], name="augment")
    inputs = keras.Input(shape=(28, 28, 1))
    x = augment(inputs)
    x = conv_bn_relu(x, 16)
    x = layers.MaxPooling2D()(x)  # 28x28 -> 14x14
    x = conv_bn_relu(x, 32)
    x = conv_bn_relu(x, 32)
    x = layers.MaxPooling2D()(x)  # 14x14 -> 7x7
    x = conv_bn_relu(x, 64)
    x = conv_bn_relu(x, 64)
    x = layers.GlobalAveragePooling2D()(x)  # one number per feature map
    outputs = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="cnn")
    # One epoch of warm-up (batch norm's statistics settle), then a cosine decay.
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=epochs * steps_per_epoch,
        warmup_target=3e-3, warmup_steps=steps_per_epoch)
    # Weight decay and label smoothing both keep a network that fits its training
    # images almost perfectly from growing over-confident.
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                  metrics=["accuracy"])
    return model


# The eight one-pixel moves (rows, columns) a served cnn also looks at, and the confidence
# below which it does: chosen on the validation split (docs/cnn-history.md).
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


def build_model(config: ExperimentConfig, steps_per_epoch: int) -> keras.Model:
    """The compiled model named in ``config``: ``build_<name>``, given the epochs and the
    steps per epoch where it asks for them (its learning-rate schedule does)."""
    if config.model not in MODELS:
        raise MnistReportError(f"unknown model {config.model!r}; choose one of: {', '.join(MODELS)}")
    builder = globals()[f"build_{config.model}"]
    wanted = inspect.signature(builder).parameters
    given = {"epochs": config.epochs, "steps_per_epoch": steps_per_epoch}
    return builder(**{name: value for name, value in given.items() if name in wanted})


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

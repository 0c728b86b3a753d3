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


BUILDERS: dict[str, Callable[[ExperimentConfig, int], keras.Model]] = {
    "classic": build_classic,
    "mlp": build_mlp,
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

"""Typed configuration: one object per experiment, no globals.

This module must stay free of TensorFlow so that the CLI and the render step
can read configurations without paying for the TensorFlow import.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from . import MnistReportError


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines one training run (with the data and the code)."""

    model: str
    epochs: int
    batch_size: int = 128
    seed: int = 1
    # Held out from the end of the training set for validation curves and every
    # modelling choice; the test set is never used to choose anything.
    val_size: int = 5000
    # Quick smoke runs train and test on the first N images only.
    train_limit: int | None = None
    test_limit: int | None = None

    def validate(self) -> None:
        if self.model not in MODELS:
            raise MnistReportError(
                f"unknown model {self.model!r}; choose one of: {', '.join(MODELS)}"
            )
        if self.epochs < 1:
            raise MnistReportError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise MnistReportError(f"batch size must be at least 1, got {self.batch_size}")
        if self.val_size < 0:
            raise MnistReportError(f"validation size must be >= 0, got {self.val_size}")
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise MnistReportError(f"{name} must be at least 1, got {value}")
        if self.train_limit is not None and self.val_size >= self.train_limit:
            raise MnistReportError(
                f"validation size {self.val_size} leaves no training images "
                f"out of train_limit={self.train_limit}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ExperimentConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ModelInfo:
    """Everything the project knows about a model except how it is built: its builder is
    ``models.build_<name>``, and this entry is the only other place a model is named.

    The code a builder reaches is found by ``provenance.code_fingerprints``, so no list of
    helper functions is kept here.
    """

    name: str
    title: str
    summary: str
    input_kind: str  # "flat" (784 floats) or "image" (28x28x1)
    epochs: int
    batch_size: int
    # Where unsure, answer with the mean over the image and its one-pixel shifts
    # (models.ShiftedViews).
    test_time_shifts: bool = False
    # May train in bfloat16 mixed precision where the CPU has bfloat16 instructions
    # (experiments.training_precision); served in float32 either way.
    bfloat16: bool = False
    # Built by `mnist-report build` unless --models says otherwise.
    default: bool = True
    # Training seconds per 1,000 images per epoch, float32 and (for a bfloat16 model) bfloat16:
    # only their ratios are used, for the progress line's estimate of the rest of a build.
    # docs/benchmarks.md says how they were measured.
    train_cost: float = 0.30
    bfloat16_cost: float | None = None

    def training_settings(self) -> dict:
        """The fields that change how the model trains or answers (the rest only describe it)."""
        return {"input_kind": self.input_kind, "test_time_shifts": self.test_time_shifts}


MODELS: dict[str, ModelInfo] = {
    "classic": ModelInfo(
        name="classic",
        title="Classic feed-forward network",
        summary="The classic tutorial's network, unchanged: two heavy dropouts (0.9, 0.7).",
        input_kind="flat",
        epochs=10,
        batch_size=128,
        train_cost=0.021,
    ),
    "mlp": ModelInfo(
        name="mlp",
        title="Feed-forward network, done right",
        summary="The same kind of network with light dropout (0.2), wider layers and a cosine "
                "learning-rate decay.",
        input_kind="flat",
        epochs=15,
        batch_size=128,
        train_cost=0.046,
    ),
    # The peer every speed figure is compared with: keras-io/examples/vision/mnist_convnet.py.
    "keras_example": ModelInfo(
        name="keras_example",
        title="Keras example convnet (reference)",
        summary="The Keras documentation's MNIST convnet: two convolutions with max-pooling, "
                "dropout 0.5, Adam, batch 128, 15 epochs.",
        input_kind="image",
        epochs=15,
        batch_size=128,
        train_cost=0.18,
    ),
    "cnn": ModelInfo(
        name="cnn",
        title="Convolutional network with batch norm and augmentation",
        summary="Convolutions that see strokes wherever they are, batch normalisation, "
                "training images randomly moved, lit and noised, label smoothing, AdamW and a "
                "cosine learning rate; where it is unsure, it answers with the mean over the "
                "image and its eight one-pixel shifts.",
        input_kind="image",
        epochs=15,
        batch_size=128,
        test_time_shifts=True,
        bfloat16=True,
        train_cost=0.30,
        bfloat16_cost=0.23,
    ),
}

# The peer every training time is compared with, in the same build or benchmark run.
REFERENCE_MODEL = "keras_example"
# Overrides the training precision (experiments.training_precision): auto, float32, bfloat16.
PRECISION_VARIABLE = "MNIST_REPORT_PRECISION"

# Derived from MODELS, in its order (the tutorial's order).
DEFAULT_MODELS: tuple[str, ...] = tuple(name for name, info in MODELS.items() if info.default)


def default_config(model: str, *, epochs: int | None = None, seed: int = 1,
                   quick: bool = False) -> ExperimentConfig:
    """The configuration `mnist-report build` uses for a model."""
    if model not in MODELS:
        raise MnistReportError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    info = MODELS[model]
    if quick:
        config = ExperimentConfig(model=model, epochs=epochs or 1, batch_size=info.batch_size,
                                  seed=seed, val_size=500, train_limit=3000, test_limit=1000)
    else:
        config = ExperimentConfig(model=model, epochs=epochs or info.epochs,
                                  batch_size=info.batch_size, seed=seed)
    config.validate()
    return config

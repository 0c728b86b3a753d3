"""The model registry: the classic network exactly as the classic tutorial has it."""

from __future__ import annotations

import pytest

from mnist_core import MnistReportError
from mnist_core.config import ExperimentConfig, default_config


def test_classic_layers_and_parameters():
    from mnist_core.models import build_model, summary_rows

    model = build_model(default_config("classic"), steps_per_epoch=10)
    rows = summary_rows(model)
    assert [(r["type"], r["output_shape"]) for r in rows] == [
        ("Dense", "(None, 64)"), ("Dropout", "(None, 64)"),
        ("Dense", "(None, 128)"), ("Dropout", "(None, 128)"),
        ("Dense", "(None, 32)"), ("Dense", "(None, 10)"),
    ]
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert [layer.activation.__name__ for layer in dense] == ["elu", "relu", "elu", "softmax"]
    assert [layer.rate for layer in model.layers if hasattr(layer, "rate")] == [0.9, 0.7]
    assert model.count_params() == 63018
    assert model.loss == "categorical_crossentropy"
    assert type(model.optimizer).__name__ == "Adam"


@pytest.mark.parametrize("kwargs, message", [
    ({"model": "resnet", "epochs": 1}, "unknown model 'resnet'"),
    ({"model": "classic", "epochs": 0}, "epochs must be at least 1"),
    ({"model": "classic", "epochs": 1, "batch_size": 0}, "batch size"),
    ({"model": "classic", "epochs": 1, "train_limit": 100, "val_size": 100}, "leaves no training"),
])
def test_bad_configurations(kwargs, message):
    with pytest.raises(MnistReportError, match=message):
        ExperimentConfig(**kwargs).validate()

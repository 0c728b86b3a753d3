"""The model registry: the classic network exactly as the classic tutorial has it."""

from __future__ import annotations

import pytest

from mnist_core import MnistReportError
from mnist_core.config import ExperimentConfig, default_config


def test_classic_layers_and_parameters():
    from mnist_core.models import build_model, summary_rows

    model = build_model(default_config("classic"), steps_per_epoch=10)
    rows = summary_rows(model)
    # The functional Model API, as the classic tutorial builds it: an Input, then the layers.
    assert type(model).__name__ == "Functional"
    assert [(r["type"], r["output_shape"]) for r in rows] == [
        ("InputLayer", "(None, 784)"),
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


def test_keras_example_matches_the_published_parameter_count():
    from mnist_core.models import build_model

    # keras-io/examples/vision/mnist_convnet.py prints "Total params: 34,826".
    model = build_model(default_config("keras_example"), steps_per_epoch=10)
    assert model.count_params() == 34826


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_registry_models_build_and_predict(name, mnist):
    import numpy as np

    from mnist_core.config import MODELS
    from mnist_core.models import build_model
    from mnist_core.train import prepare

    model = build_model(default_config(name), steps_per_epoch=10)
    # The parameter counts the README's model table states.
    assert model.count_params() == {"mlp": 535_818, "cnn": 70_746}[name]
    x, _ = prepare(mnist.x_test[:4], mnist.y_test[:4], flat=MODELS[name].input_kind == "flat")
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (4, 10)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_the_cnn_augments_in_training_only(mnist):
    import numpy as np

    from mnist_core.models import build_model
    from mnist_core.train import prepare

    import keras

    keras.utils.set_random_seed(1)
    model = build_model(default_config("cnn"), steps_per_epoch=10)
    augment = model.get_layer("augment")
    images, _ = prepare(mnist.x_train[:64], mnist.y_train[:64], flat=False)
    changed = np.asarray(augment(images, training=True))
    assert changed.shape == images.shape and not np.allclose(changed, images)
    # Shifts of 2 px, 10-degree turns and 10% zooms (the first three layers) keep the ink
    # within the zoom factor squared.
    moved = images
    for layer in augment.layers[:3]:
        moved = layer(moved, training=True)
    ink_ratio = np.asarray(moved).sum(axis=(1, 2, 3)) / images.sum(axis=(1, 2, 3))
    assert np.all((ink_ratio > 0.78) & (ink_ratio < 1.25))
    # The rest changes the levels: the background is no longer black everywhere.
    assert np.median(np.abs(changed - np.asarray(moved))) > 0.01
    assert np.array_equal(np.asarray(augment(images, training=False)), images)


def test_the_cnn_learning_rate_warms_up_then_decays():
    from mnist_core.models import build_model

    model = build_model(default_config("cnn", epochs=10), steps_per_epoch=10)
    schedule = model.optimizer.learning_rate if callable(model.optimizer.learning_rate) else \
        model.optimizer._learning_rate
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 109)]
    assert values[0] == 0.0 and values[1] == pytest.approx(1.5e-3) and values[2] == pytest.approx(3e-3)
    assert values[2] > values[3] > values[4] > 0 and values[4] < 1e-4


def test_shifted_views_average_nine_views_of_the_unsure_images_only(served_untrained_cnn,
                                                                  tmp_path):
    import keras
    import numpy as np

    from mnist_core.models import ONE_PIXEL_SHIFTS

    network, served, x, bare, threshold = served_untrained_cnn
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    # Shifted by (dy, dx): the pixel at (r, c) moves to (r + dy, c + dx), zeros come in behind.
    views = [x] + [padded[:, 1 - dy:29 - dy, 1 - dx:29 - dx] for dy, dx in ONE_PIXEL_SHIFTS]
    assert (views[1][:, 1:] == x[:, :-1]).all() and (views[1][:, 0] == 0).all()
    mean = np.mean([np.asarray(network(v, training=False)) for v in views], axis=0)
    unsure = bare.max(axis=1) < threshold
    assert 0 < unsure.sum() < len(x)
    expected = np.where(unsure[:, None], mean, bare)
    got = np.asarray(served(x))
    assert np.abs(got - expected).max() < 1e-5
    assert not np.allclose(mean[unsure], bare[unsure], atol=1e-4)  # the views did change them
    # The saved file loads in safe mode and answers the same, one image or none at a time too.
    served.save(tmp_path / "served.keras")
    loaded = keras.saving.load_model(tmp_path / "served.keras", compile=False, safe_mode=True)
    assert np.abs(np.asarray(loaded(x)) - got).max() < 1e-6
    import tensorflow as tf

    traced = tf.function(lambda batch: loaded(batch, training=False), reduce_retracing=True)
    for i in (int(np.argmin(bare.max(1))), int(np.argmax(bare.max(1)))):  # unsure, then sure
        assert np.abs(np.asarray(loaded(x[i:i + 1])) - got[i:i + 1]).max() < 1e-6
        assert np.abs(np.asarray(traced(x[i:i + 1])) - got[i:i + 1]).max() < 1e-6


def test_only_the_cnn_is_served_with_shifted_views():
    from mnist_core.models import ShiftedViews, build_model, served_model

    for name in ("classic", "mlp", "cnn", "keras_example"):
        model = build_model(default_config(name), steps_per_epoch=10)
        served = served_model(model, default_config(name))
        wrapped = any(isinstance(layer, ShiftedViews) for layer in served.layers)
        assert wrapped == (name == "cnn"), name

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


def test_keras_example_matches_the_published_parameter_count():
    from mnist_core.models import build_model

    # keras-io/examples/vision/mnist_convnet.py prints "Total params: 34,826".
    model = build_model(default_config("keras_example"), steps_per_epoch=10)
    assert model.count_params() == 34826


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_registry_models_build_and_predict(name, mnist):
    import numpy as np

    from mnist_core.config import MODELS
    from mnist_core.data import as_image_batch, flatten_and_scale
    from mnist_core.models import build_model

    model = build_model(default_config(name), steps_per_epoch=10)
    # The parameter counts the README's model table states.
    assert model.count_params() == {"mlp": 535_818, "cnn": 70_746}[name]
    fmt = flatten_and_scale if MODELS[name].input_kind == "flat" else as_image_batch
    probs = np.asarray(model(fmt(mnist.x_test[:4]), training=False))
    assert probs.shape == (4, 10)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_augmentation_moves_pixels_but_keeps_the_digit(mnist):
    import numpy as np

    from mnist_core.data import as_image_batch
    from mnist_core.models import augment_batch

    images = as_image_batch(mnist.x_train[:64])
    moved = np.asarray(augment_batch(images))
    assert moved.shape == images.shape
    assert not np.allclose(moved, images)
    # Shifts of 2 px, 10-degree turns and 10% zooms keep the ink within the zoom factor squared.
    ink_ratio = moved.sum(axis=(1, 2, 3)) / images.sum(axis=(1, 2, 3))
    assert np.all((ink_ratio > 0.78) & (ink_ratio < 1.25))


def test_one_cycle_schedule_shape():
    from mnist_core.models import OneCycle

    schedule = OneCycle(peak=1.0, total_steps=100, warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    assert values == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0])


def test_fused_batch_norm_trains_and_infers_as_keras_batch_norm():
    """The cnn's batch norm takes TensorFlow's fused kernel in training (issue 12: 1.1-1.3x
    faster steps here); outputs, gradients and moving statistics must stay Keras'."""
    import keras
    import numpy as np
    import tensorflow as tf

    from mnist_core.models import FusedBatchNorm

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (16, 7, 7, 8)).astype("float32"))
    plain, fused = keras.layers.BatchNormalization(), FusedBatchNorm()
    results = []
    for layer in (plain, fused):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, 8, dtype="float32"))
        layer.beta.assign(np.linspace(-0.3, 0.3, 8, dtype="float32"))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))
        grads = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance,
                        layer(x, training=False)])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-4)
    # It saves and loads by name, so a trained cnn file reads back without extra code.
    config = keras.layers.serialize(fused)
    assert type(keras.layers.deserialize(config)) is FusedBatchNorm


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

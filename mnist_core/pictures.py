"""What a trained convolutional network holds, as plain numbers for the tutorial's figures:
the filters of its first layer, the feature maps of one digit layer by layer, and (for a
network that augments its training images) a few augmented copies of that digit.

Made at render time from the saved model, since they only illustrate the results (they are
not part of the result key), and cached beside the model by ``render.network_pictures``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import quiet_tensorflow

MAPS_PER_LAYER = 6
AUGMENTED = 8


def _rounded(array: np.ndarray) -> list:
    return np.round(array.astype("float64"), 3).tolist()


def network_pictures(model_path: Path, digit: np.ndarray, seed: int = 1) -> dict | None:
    """Filters, feature maps and augmented copies of ``digit`` (28x28 uint8) for the model
    saved at ``model_path``; None for a network without convolutions."""
    quiet_tensorflow()
    import keras

    from . import models  # noqa: F401  (registers the served cnn's wrapper for loading)

    served = keras.saving.load_model(model_path, compile=False)
    wrapped = [layer for layer in served.layers if hasattr(layer, "network")]
    network = wrapped[0].network if wrapped else served
    convs = [layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convs:
        return None
    kernel = convs[0].get_weights()[0]  # (height, width, 1 input channel, filters)
    # What each convolution passes on: after its ReLU where the ReLU is a layer of its own.
    relus = [layer for layer in network.layers if isinstance(layer, keras.layers.ReLU)]
    stages = relus or convs
    probe = keras.Model(network.inputs, [layer.output for layer in stages])
    x = digit.reshape(1, 28, 28, 1).astype("float32") / 255
    outputs = probe([x], training=False)
    feature_maps = []
    for n, (layer, maps) in enumerate(zip(stages, outputs), 1):
        maps = keras.ops.convert_to_numpy(maps)[0]
        feature_maps.append({"layer": n, "size": int(maps.shape[0]), "count": int(maps.shape[-1]),
                             "maps": _rounded(maps[:, :, :MAPS_PER_LAYER].transpose(2, 0, 1))})
    augmented = None
    augment = next((layer for layer in network.layers if layer.name == "augment"), None)
    if augment is not None:
        keras.utils.set_random_seed(seed)
        copies = augment(np.repeat(x, AUGMENTED, axis=0), training=True)
        copies = keras.ops.convert_to_numpy(copies)[..., 0]
        augmented = np.clip(np.round(copies * 255), 0, 255).astype(np.uint8).tolist()
    return {
        "digit": digit.tolist(),
        "filters": _rounded(kernel[:, :, 0, :].transpose(2, 0, 1)),
        "feature_maps": feature_maps,
        "augmented": augmented,
    }

"""Tell which digit is written in an image: preprocessing the MNIST way, then the model.

``preprocess`` turns any image (a photo, a scan, a paint-program drawing; dark on light or
light on dark; any size) into a 28x28 MNIST-like input, the way the MNIST database itself
was made: gray levels, digit light on dark, cropped to its bounding box, scaled to fit a
20x20 box keeping its aspect ratio, pasted into 28x28 so that its centre of mass is in the
middle. ``recognize`` runs a saved model on the result.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from . import MnistReportError
from .results import MODEL_FILE, best_model_folder

ImageLike = Any  # a path, a PIL image or a NumPy array
# The tutorial's worked example: a 3 rendered black on white at 160x200 pixels.
EXAMPLE_IMAGE = Path(__file__).resolve().parent / "examples" / "digit.png"
# Below this fraction of the brightest ink a pixel is noise, not digit. MNIST keeps its
# faint anti-aliased edges inside the 20x20 box, so the threshold must stay low (5% keeps
# 84% of MNIST test digits bit-identical through preprocess; 15% only 66%).
NOISE = 0.05


@dataclass(frozen=True)
class Prediction:
    digit: int
    confidence: float
    probabilities: list[float]

    @property
    def runner_up(self) -> int:
        return int(np.argsort(self.probabilities)[-2])


# --- Reading images ----------------------------------------------------------------

def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise MnistReportError(f"{path}: no such file")
    if path.is_dir():
        raise MnistReportError(f"{path}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise MnistReportError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            frame = next(iter(ImageSequence.Iterator(image)))  # animated: the first frame
            frame.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MnistReportError(f"{path}: image too large (over Pillow's decompression-bomb "
                               f"limit of {Image.MAX_IMAGE_PIXELS:,} pixels)") from None
    except UnidentifiedImageError:
        raise MnistReportError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MnistReportError(f"{path}: damaged or truncated image ({exc})") from None
    return frame


def to_gray(image: ImageLike) -> np.ndarray:
    """Any supported input -> 2-D float array of gray levels 0-255 (transparency handled)."""
    if isinstance(image, (str, os.PathLike)):
        image = _open(Path(image))
    if isinstance(image, Image.Image):
        return _pil_to_gray(image)
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        mode = "RGBA" if array.shape[-1] == 4 else "RGB"
        return _pil_to_gray(Image.fromarray(_to_uint8(array), mode))
    if array.ndim != 2 or min(array.shape) < 1:
        raise MnistReportError(f"array of shape {array.shape} is not an image "
                               "(expected HxW, HxWx1, HxWx3 or HxWx4)")
    return _to_uint8(array).astype(np.float32)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise MnistReportError("image array has NaN or infinite values")
    top = array.max(initial=0)
    scale = 255.0 if top <= 1.0 else (255.0 / 65535.0 if top > 255 else 1.0)
    return np.clip(array * scale, 0, 255).astype(np.uint8)


def _pil_to_gray(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if array.max(initial=0) > 255 else 255.0
        return (array * 255.0 / top).astype(np.float32)
    if image.mode == "F":
        return _to_uint8(np.asarray(image)).astype(np.float32)
    if "A" in image.getbands() or image.mode == "P" and "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        gray = np.asarray(rgba.convert("L"), dtype=np.float32)
        if alpha.min() < 1.0:
            # Strokes drawn on a transparent canvas: lay them on a background that contrasts
            # with the ink, so dark ink and light ink both stay visible.
            opaque = alpha > 0.5
            ink = gray[opaque].mean() if opaque.any() else 0.0
            background = 255.0 if ink < 128 else 0.0
            return gray * alpha + background * (1.0 - alpha)
        return gray
    return np.asarray(image.convert("L"), dtype=np.float32)


# --- The MNIST preprocessing, step by step --------------------------------------------

def _bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def preprocess_steps(image: ImageLike) -> list[tuple[str, np.ndarray]]:
    """Each stage of the preprocessing, for the tutorial's figure; the last is the input."""
    gray = to_gray(image)
    steps = [("gray levels", gray)]
    # MNIST digits are light on dark: the border of a picture is its background.
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    light = 255.0 - gray if np.median(border) > 127 else gray
    background = np.median(np.concatenate([light[0], light[-1], light[:, 0], light[:, -1]]))
    light = np.clip(light - background, 0, None)
    if light.max() < 1e-6 or light.max() - light.min() < 8:
        raise MnistReportError("blank image: no digit found (uniform gray levels)")
    light = light * (255.0 / light.max())
    steps.append(("light on dark", light))
    top, bottom, left, right = _bounding_box(light > NOISE * 255)
    crop = light[top:bottom, left:right]
    steps.append(("cropped", crop))
    height, width = crop.shape
    factor = 20.0 / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    if size != (width, height):
        crop = np.asarray(Image.fromarray(crop.astype(np.float32), "F")
                          .resize(size, Image.Resampling.LANCZOS))
    box = np.clip(crop, 0, 255)
    steps.append(("fit in 20x20", box))
    canvas = np.zeros((28, 28), np.float32)
    h, w = box.shape
    top, left = (28 - h) // 2, (28 - w) // 2
    canvas[top:top + h, left:left + w] = box
    canvas = _centre_of_mass(canvas)
    steps.append(("28x28, centred", canvas))
    return steps


def _centre_of_mass(canvas: np.ndarray) -> np.ndarray:
    """Shift by whole pixels so the centre of mass lands on pixel (14, 14), as in MNIST."""
    total = canvas.sum()
    ys, xs = np.indices(canvas.shape)
    dy = int(round(14.0 - (ys * canvas).sum() / total))
    dx = int(round(14.0 - (xs * canvas).sum() / total))
    ys_nz, xs_nz = np.nonzero(canvas)
    # Never push ink off the frame: clamp the shift to what the digit's box allows.
    dy = int(np.clip(dy, -ys_nz.min(), 27 - ys_nz.max()))
    dx = int(np.clip(dx, -xs_nz.min(), 27 - xs_nz.max()))
    return np.roll(canvas, (dy, dx), axis=(0, 1))


def preprocess(image: ImageLike) -> np.ndarray:
    """Any digit image -> 28x28 uint8, light on dark, as in MNIST."""
    return np.clip(np.rint(preprocess_steps(image)[-1][1]), 0, 255).astype(np.uint8)


# --- The model -----------------------------------------------------------------------------

def find_best_model(out: str | os.PathLike = "results") -> Path:
    """The model file of the best experiment in a results folder (``results.best_experiment``)."""
    return best_model_folder(Path(out)) / MODEL_FILE


class Recognizer:
    """A loaded model plus a traced forward pass: fast for one image and for batches."""

    def __init__(self, model_path: str | os.PathLike):
        path = Path(model_path)
        if not path.is_file():
            raise MnistReportError(f"{path}: model file not found")
        from . import models  # noqa: F401  (registers the custom schedule class)
        import keras
        import tensorflow as tf

        try:
            # safe_mode: a .keras file cannot run arbitrary code (no lambda deserialisation).
            self.model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:
            raise MnistReportError(f"{path}: not a Keras model this tool can load "
                                   f"({type(exc).__name__})") from None
        shape = self.model.inputs[0].shape
        self.flat = len(shape) == 2
        self._forward = tf.function(lambda x: self.model(x, training=False),
                                    reduce_retracing=True)
        self.path = path

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Probabilities for a batch of 28x28 uint8 images (MNIST-like)."""
        x = images.astype(np.float32) / 255.0
        x = x.reshape(len(x), 784) if self.flat else x.reshape(len(x), 28, 28, 1)
        out = []
        for start in range(0, len(x), 1000):
            out.append(np.asarray(self._forward(x[start:start + 1000])))
        return np.concatenate(out).astype(np.float64)

    def recognize(self, image: ImageLike) -> Prediction:
        return self.recognize_batch([image])[0]

    def recognize_batch(self, images: list[ImageLike]) -> list[Prediction]:
        batch = np.stack([preprocess(image) for image in images])
        return [_prediction(p) for p in self.probabilities(batch)]


def _prediction(probs: np.ndarray) -> Prediction:
    probs = probs / probs.sum()
    digit = int(probs.argmax())
    return Prediction(digit, float(probs[digit]), [float(p) for p in probs])


def recognize(image: ImageLike, model: str | os.PathLike | None = None) -> Prediction:
    """Which digit is in ``image``? Uses the best model in ``results/`` unless told otherwise."""
    return Recognizer(model or find_best_model()).recognize(image)


def recognize_example(recognizer: Recognizer, image: ImageLike) -> dict:
    """The tutorial's worked example: every preprocessing step and the prediction, as data."""
    steps = preprocess_steps(image)
    prediction = recognizer.recognize(image)
    return {
        "steps": [{"name": name, "image": np.clip(np.rint(a), 0, 255).astype(int).tolist()}
                  for name, a in steps],
        "digit": prediction.digit,
        "confidence": prediction.confidence,
        "probabilities": prediction.probabilities,
    }

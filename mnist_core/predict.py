"""Tell which digit is written in an image: preprocessing the MNIST way, then the model.

``preprocess`` turns any image (a photo, a scan, a paint-program drawing; dark on light or
light on dark; any size) into a 28x28 MNIST-like input, the way the MNIST database itself
was made: gray levels, digit light on dark, cropped to its bounding box, scaled to fit a
20x20 box keeping its aspect ratio, pasted into 28x28 so that its centre of mass is in the
middle. ``recognize`` runs a saved model on the result.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError
from scipy import ndimage

from . import MnistReportError
from .calibration import apply_temperature
from .results import MODEL_FILE, RESULTS_FILE, list_experiment_dirs

ImageLike = Any  # a path, a PIL image or a NumPy array
# The tutorial's worked example: a 3 rendered black on white at 160x200 pixels.
EXAMPLE_IMAGE = Path(__file__).resolve().parent / "examples" / "digit.png"
# Below this fraction of the brightest ink a pixel is noise, not digit. MNIST keeps its
# faint anti-aliased edges inside the 20x20 box, so the threshold must stay low (5% keeps
# 84% of MNIST test digits bit-identical through preprocess; 15% only 66%).
NOISE = 0.05
WORK_SIDE = 1024           # larger pictures are first shrunk by block means to this side
GRID = 48                  # the paper is estimated on a grid this many cells long
OPENING = 0.1              # ... by a grey opening this wide (x2, +1 cell): wider than a stroke
MIN_RANGE = 8              # gray levels: a picture with less contrast is blank
SPECK = 0.02               # a mark under 2% of the digit's largest mark is a speck
NEAR = 0.3                 # marks this close (times the largest mark's size) are the digit's
MARK = 0.25                # a mark over 25% of the digit's largest one, set apart: another digit
MARGIN = 2                 # pixels kept around the ink: the digit's soft edge
# "Unsure" (chosen on validation digits and made-up non-digits; see benchmarks/photo_benchmark.py)
MIN_CONFIDENCE = 0.9       # calibrated confidence under this: unsure
MIN_CONTRAST = 10.0        # ink level under this many sigma of paper noise: no clear ink
MAX_ASPECT = 2.0           # ink box wider than this times its height: not one digit


@dataclass(frozen=True)
class Prediction:
    digit: int
    confidence: float
    probabilities: list[float]
    unsure: bool = False

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
        # A phone stores a photo taken sideways unrotated, with an EXIF Orientation tag
        # that every viewer obeys: obey it first.
        return _pil_to_gray(ImageOps.exif_transpose(image))
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


# --- The preprocessing, step by step ---------------------------------------------------

@dataclass
class Prepared:
    """One picture made MNIST-like, and what its ink analysis found."""

    image: np.ndarray           # 28x28 uint8, light digit on black, as the model wants it
    contrast: float             # ink level over the paper's noise (sigma): low = no clear ink
    other_marks: int            # digit-sized marks set apart from the digit (two digits?)
    aspect: float               # width / height of the digit's box (two digits side by side?)
    steps: list[tuple[str, np.ndarray]] | None = None


def _block_mean(gray: np.ndarray, factor: int) -> np.ndarray:
    h, w = (gray.shape[0] // factor) * factor, (gray.shape[1] // factor) * factor
    return gray[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _rank(values: np.ndarray, fraction: float) -> float:
    """The value at rank floor(fraction * (n - 1)) in ascending order (0.5: the lower median)."""
    k = int(fraction * (values.size - 1))
    # (a full sort is faster than a partial one on small arrays with many equal values)
    if values.size < 20000:
        return float(np.sort(values.ravel())[k])
    return float(np.partition(values.ravel(), k)[k])


def _medians(values: np.ndarray) -> tuple[float, float]:
    """The lower and upper median: ranks floor((n - 1) / 2) and n - 1 - that, ascending."""
    flat = values.ravel()
    k = (flat.size - 1) // 2
    ordered = np.sort(flat) if flat.size < 20000 else np.partition(flat, [k, flat.size - 1 - k])
    return float(ordered[k]), float(ordered[flat.size - 1 - k])


def _extremes3(a: np.ndarray) -> tuple[float, float]:
    """Lowest and highest 3x3 mean among the 3x3 windows inside the image."""
    if min(a.shape) < 3:
        return float(a.min()), float(a.max())
    rows = a[:-2] + a[1:-1] + a[2:]
    sums = rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]
    return float(sums.min()) / 9.0, float(sums.max()) / 9.0


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a mask by ``radius`` pixels in each direction (a square neighbourhood)."""
    out = mask.copy()
    for d in range(1, radius + 1):
        out[d:] |= mask[:-d]
        out[:-d] |= mask[d:]
    grown = out.copy()
    for d in range(1, radius + 1):
        grown[:, d:] |= out[:, :-d]
        grown[:, :-d] |= out[:, d:]
    return grown


def _slide(a: np.ndarray, radius: int, axis: int, pick) -> np.ndarray:
    """Minimum or maximum over a window of 2 * radius + 1 along one axis (clipped at edges)."""
    out = a.copy()
    n = a.shape[axis]
    for d in range(1, min(radius, n - 1) + 1):
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(0, n - d), slice(d, n)
        out[tuple(lo)] = pick(out[tuple(lo)], a[tuple(hi)])
        out[tuple(hi)] = pick(out[tuple(hi)], a[tuple(lo)])
    return out


def _upsample(grid: np.ndarray, shape: tuple[int, int], block: int) -> np.ndarray:
    """Bilinear interpolation between block centres (edges held), back to ``shape``."""
    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n_out) + 0.5) / block - 0.5, 0, n_in - 1)
        low = np.floor(pos).astype(np.int64)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (pos - low)
    y0, y1, fy = axis(shape[0], grid.shape[0])
    x0, x1, fx = axis(shape[1], grid.shape[1])
    rows = grid[y0] * (1 - fy)[:, None] + grid[y1] * fy[:, None]
    return rows[:, x0] * (1 - fx)[None, :] + rows[:, x1] * fx[None, :]


def _background(light: np.ndarray, median: float) -> tuple[np.ndarray, bool]:
    """The paper under the ink (ink bright, paper dark): a grey opening at a coarse scale.

    The picture is averaged in BLOCK x BLOCK cells (BLOCK = ceil(longer side / GRID)); on
    that grid a minimum then a maximum over (2r+1) x (2r+1) cells, r = ceil(OPENING x the
    grid's longer side), remove every bright thing narrower than the window - the strokes -
    and keep what is broader - light gradients, shadows; bilinear interpolation brings it
    back to full size.
    """
    h, w = light.shape
    if float(light.min()) == median:
        # Half the picture or more is one flat level (a drawing, or MNIST itself): that level
        # is the paper. (An opening would also eat into a bold digit's wide strokes.)
        return np.full((h, w), median, np.float32), True
    block = int(np.ceil(max(h, w) / GRID))
    grid = _block_mean(light, block) if block > 1 else light
    if grid.size == 0:
        grid = np.full((1, 1), float(light.min()))
    radius = int(np.ceil(OPENING * max(grid.shape)))
    opened = _slide(_slide(grid, radius, 0, np.minimum), radius, 1, np.minimum)
    opened = _slide(_slide(opened, radius, 0, np.maximum), radius, 1, np.maximum)
    if block == 1:
        return opened, False
    return _upsample(opened, (h, w), block), False


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold over a 256-bin histogram from 0 to the maximum."""
    top = float(values.max())
    if top <= 0:
        return 0.0
    counts = np.bincount(np.minimum((values.ravel() * (256.0 / top)).astype(np.int64), 255),
                         minlength=256).astype(np.float64)
    centres = (np.arange(256) + 0.5) * (top / 256.0)
    w0 = np.cumsum(counts)
    m0 = np.cumsum(counts * centres)
    total, mean_all = w0[-1], m0[-1]
    w1 = total - w0
    # (where a class is empty the numerator is 0 too: those splits score 0)
    between = (mean_all * w0 - m0 * total) ** 2 / np.maximum(w0 * w1, 1e-12)
    return float((np.argmax(between) + 1) * (top / 256.0))


def _gap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    """Pixels between two boxes (top, bottom, left, right; 0 if they touch or overlap)."""
    dy = max(0, a[0] - b[1], b[0] - a[1])
    dx = max(0, a[2] - b[3], b[2] - a[3])
    return max(dy, dx)


def _select_digit(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Keep the largest mark and the marks near it; count the digit-sized marks left out."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count <= 1:
        return mask, 0
    areas = np.bincount(labels.ravel())[1:]
    boxes = [(s[0].start, s[0].stop, s[1].start, s[1].stop)
             for s in ndimage.find_objects(labels)]
    main = int(np.argmax(areas))
    box = boxes[main]
    size = max(box[1] - box[0], box[3] - box[2])
    kept = {main}
    grew = True
    while grew:  # a 5's top bar or a dotted stroke joins once it is near the kept box
        grew = False
        for i in range(count):
            if i not in kept and areas[i] >= SPECK * areas[main] \
                    and _gap(box, boxes[i]) <= NEAR * size:
                kept.add(i)
                box = (min(box[0], boxes[i][0]), max(box[1], boxes[i][1]),
                       min(box[2], boxes[i][2]), max(box[3], boxes[i][3]))
                grew = True
    other = sum(1 for i in range(count) if i not in kept and areas[i] >= MARK * areas[main])
    chosen = np.zeros(count + 1, bool)
    chosen[[i + 1 for i in kept]] = True
    return chosen[labels], other


def prepare(image: ImageLike, steps: bool = False) -> Prepared:
    """Make any picture of a digit MNIST-like; see the module docstring for each step."""
    gray = to_gray(image)
    record = [("gray levels", gray)] if steps else None
    if gray.max() - gray.min() < MIN_RANGE:
        raise MnistReportError("blank image: no digit found (uniform gray levels)")
    factor = int(np.ceil(max(gray.shape) / WORK_SIDE))
    work = _block_mean(gray, factor) if factor > 1 else gray
    # Ink is what stands out from the paper, darker or lighter: compare the darkest and the
    # lightest 3x3 neighbourhood with the median (the paper is most of the picture).
    darkest, lightest = _extremes3(work)
    paper, upper = _medians(work)
    dark_ink = paper - darkest >= lightest - paper
    light = 255.0 - work if dark_ink else work
    # (the lower median of 255 - work is 255 - the upper median of work)
    background, uniform = _background(light, 255.0 - upper if dark_ink else paper)
    flat = light - background
    # The noise of the paper: 1.4826 x the median absolute deviation (ink is under half the
    # picture); 0 when half the picture is one flat level.
    sigma = 0.0
    if not uniform:
        centre = _rank(flat, 0.5)
        sigma = 1.4826 * _rank(np.abs(flat - centre), 0.5)
    threshold = max(_otsu(np.maximum(flat, 0)), 4.0 * sigma)
    mask = flat > threshold
    if not mask.any():
        raise MnistReportError("blank image: no digit found (no ink stands out)")
    digit, other = _select_digit(mask)
    # The ink's level: the brightest ink pixel, less 3 sigma of noise (the max of a clean
    # drawing; close to the stroke's core in a noisy photo).
    ink = max(float(flat[digit].max()) - 3.0 * sigma, threshold + 1.0)
    floor = min(3.0 * sigma, threshold / 2)
    light_on_dark = np.clip((flat - floor) * (255.0 / max(ink - floor, 1e-6)), 0, 255)
    # Keep the digit's marks and MARGIN pixels around them (its soft anti-aliased edge).
    light_on_dark[~_dilate(digit, MARGIN)] = 0.0
    if record is not None:
        record.append(("light on dark", light_on_dark))
        record.append(("ink found", np.where(digit, 255.0, np.where(mask, 90.0, 0.0))))
    top, bottom, left, right = _bounding_box(light_on_dark > NOISE * 255)
    crop = light_on_dark[top:bottom, left:right]
    height, width = crop.shape
    factor20 = 20.0 / max(height, width)
    size = (max(1, round(width * factor20)), max(1, round(height * factor20)))
    box = crop
    if size != (width, height):
        box = np.asarray(Image.fromarray(crop.astype(np.float32), "F")
                         .resize(size, Image.Resampling.LANCZOS))
    box = np.clip(box, 0, 255)
    canvas = np.zeros((28, 28), np.float32)
    h, w = box.shape
    canvas[(28 - h) // 2:(28 - h) // 2 + h, (28 - w) // 2:(28 - w) // 2 + w] = box
    canvas = _centre_of_mass(canvas)
    if record is not None:
        record += [("cropped", crop), ("fit in 20x20", box), ("28x28, centred", canvas)]
    return Prepared(image=np.clip(np.rint(canvas), 0, 255).astype(np.uint8),
                    contrast=ink / max(sigma, 1.0), other_marks=other,
                    aspect=width / height, steps=record)


def _bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def preprocess_steps(image: ImageLike) -> list[tuple[str, np.ndarray]]:
    """Each stage of the preprocessing, for the tutorial's figure; the last is the input."""
    return prepare(image, steps=True).steps


def _centre_of_mass(canvas: np.ndarray) -> np.ndarray:
    """Shift by whole pixels so the centre of mass lands on pixel (14, 14), as in MNIST."""
    rows, cols = canvas.sum(axis=1), canvas.sum(axis=0)
    total = rows.sum()
    # Python's round(): halves go to the even neighbour.
    dy = round(14.0 - float(rows @ _INDEX) / total)
    dx = round(14.0 - float(cols @ _INDEX) / total)
    filled_rows, filled_cols = np.flatnonzero(rows), np.flatnonzero(cols)
    # Never push ink off the frame: clamp the shift to what the digit's box allows.
    dy = min(max(dy, -int(filled_rows[0])), 27 - int(filled_rows[-1]))
    dx = min(max(dx, -int(filled_cols[0])), 27 - int(filled_cols[-1]))
    out = np.zeros_like(canvas)
    out[max(dy, 0):28 + min(dy, 0), max(dx, 0):28 + min(dx, 0)] = \
        canvas[max(-dy, 0):28 - max(dy, 0), max(-dx, 0):28 - max(dx, 0)]
    return out


_INDEX = np.arange(28, dtype=np.float64)


def preprocess(image: ImageLike) -> np.ndarray:
    """Any digit image -> 28x28 uint8, light on dark, as in MNIST."""
    return prepare(image).image


# --- The model -----------------------------------------------------------------------------

def find_best_model(out: str | os.PathLike = "results") -> Path:
    """The saved model with the best test accuracy in a results folder (quick runs last)."""
    candidates = []
    for folder in list_experiment_dirs(Path(out)):
        try:
            results = json.loads((folder / RESULTS_FILE).read_text())
        except (OSError, ValueError):
            continue
        if (folder / MODEL_FILE).is_file():
            full = results.get("config", {}).get("train_limit") is None
            candidates.append((full, results["metrics"]["test"]["accuracy"], folder / MODEL_FILE))
    if not candidates:
        raise MnistReportError(f"no trained model in {out}; run `mnist-report build` first "
                               "(or pass --model PATH)")
    return max(candidates)[2]


def _calibration(model_path: Path) -> dict:
    """The calibration entry of the results.json beside a model file ({} when there is none)."""
    try:
        results = json.loads((model_path.parent / RESULTS_FILE).read_text())
        calibration = results.get("calibration") or {}
        float(calibration.get("temperature", 1.0))
        return calibration
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


class Recognizer:
    """A loaded model plus a traced forward pass: fast for one image and for batches.

    Probabilities are calibrated: the model's log-probabilities divided by the temperature
    fitted on the validation split at evaluation time (``results.json`` beside the model,
    ``calibration.temperature``; 1.0 - the model as it is - when there is none).
    """

    def __init__(self, model_path: str | os.PathLike, temperature: float | None = None,
                 min_confidence: float | None = None):
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
        calibration = _calibration(path)
        self.temperature = float(temperature if temperature is not None
                                 else calibration.get("temperature", 1.0))
        self.min_confidence = float(MIN_CONFIDENCE if min_confidence is None
                                    else min_confidence)

    def raw_probabilities(self, images: np.ndarray) -> np.ndarray:
        """The model's own output for a batch of 28x28 uint8 images (MNIST-like)."""
        x = images.astype(np.float32) / 255.0
        x = x.reshape(len(x), 784) if self.flat else x.reshape(len(x), 28, 28, 1)
        out = []
        for start in range(0, len(x), 1000):
            out.append(np.asarray(self._forward(x[start:start + 1000])))
        return np.concatenate(out).astype(np.float64)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for a batch of 28x28 uint8 images (MNIST-like)."""
        return apply_temperature(self.raw_probabilities(images), self.temperature)

    def recognize(self, image: ImageLike) -> Prediction:
        return self.recognize_batch([image])[0]

    def recognize_batch(self, images: list[ImageLike]) -> list[Prediction]:
        prepared = [prepare(image) for image in images]
        return self.predictions(prepared)

    def predictions(self, prepared: list[Prepared]) -> list[Prediction]:
        """Digit, calibrated confidence and the unsure flag for pictures already prepared."""
        probs = self.probabilities(np.stack([p.image for p in prepared]))
        return [_prediction(row, unsure_reason(p, float(row.max()), self.min_confidence))
                for p, row in zip(prepared, probs)]


def unsure_reason(prepared: Prepared, confidence: float, min_confidence: float) -> str | None:
    """Why the answer should not be trusted, or None.

    The picture's own analysis speaks first (no clear ink, a second digit-sized mark, a
    mark far wider than a digit), then the calibrated confidence.
    """
    if prepared.contrast < MIN_CONTRAST:
        return "no clear ink"
    if prepared.other_marks:
        return "more than one mark"
    if prepared.aspect > MAX_ASPECT:
        return "wider than a digit"
    if confidence < min_confidence:
        return "low confidence"
    return None


def unsure(prepared: Prepared, confidence: float, min_confidence: float | None = None) -> bool:
    """True when the answer for this picture should not be trusted (see ``unsure_reason``)."""
    threshold = MIN_CONFIDENCE if min_confidence is None else min_confidence
    return unsure_reason(prepared, confidence, threshold) is not None


def _prediction(probs: np.ndarray, reason: str | None = None) -> Prediction:
    probs = probs / probs.sum()
    digit = int(probs.argmax())
    return Prediction(digit, float(probs[digit]), [float(p) for p in probs],
                      unsure=reason is not None)


def recognize(image: ImageLike, model: str | os.PathLike | None = None) -> Prediction:
    """Which digit is in ``image``? Uses the best model in ``results/`` unless told otherwise."""
    return Recognizer(model or find_best_model()).recognize(image)


def recognize_example(recognizer: Recognizer, image: ImageLike) -> dict:
    """The tutorial's worked example: every preprocessing step and the prediction, as data."""
    prepared = prepare(image, steps=True)
    prediction = recognizer.predictions([prepared])[0]
    steps = prepared.steps
    return {
        "steps": [{"name": name, "image": np.clip(np.rint(a), 0, 255).astype(int).tolist()}
                  for name, a in steps],
        "digit": prediction.digit,
        "confidence": prediction.confidence,
        "probabilities": prediction.probabilities,
        "unsure": prediction.unsure,
        "min_confidence": recognizer.min_confidence,
    }

"""Tell which digit is written in a picture, and say when not sure.

``prepare`` (and ``preprocess``, its 28x28 result) turns any picture of a digit - a phone
photo of ink on gray paper under uneven light, a scan, a paint-program drawing, MNIST itself -
into the input MNIST's networks expect; ``Recognizer`` runs a saved model on it, with
calibrated probabilities and an "unsure" flag.

The algorithm, exactly (every constant is a module-level name below):

 1. Read. Decode the file (first frame of an animation); apply the EXIF Orientation tag
    (Pillow ``ImageOps.exif_transpose``). Gray levels 0-255 as float: Pillow's "L" conversion
    (L = R*299/1000 + G*587/1000 + B*114/1000); 16-bit images whose maximum exceeds 255
    scaled by 255/65535. With
    transparency (any alpha < 255): gray*alpha + B*(1-alpha), B = 255 if the mean gray of the
    pixels with alpha > 0.5 is under 128, else 0. NumPy arrays: HxW, HxWx1, HxWx3 or HxWx4
    (floats with max <= 1 are scaled by 255).
 2. Blank: if max - min of the gray levels < MIN_RANGE (8), stop: "blank image".
 3. Work size: if the longer side exceeds WORK_SIDE (1024), shrink by the integer factor
    f = ceil(longer side / 1024): drop the last (side mod f) rows/columns, then average each
    f x f block.
 4. Polarity. darkest/lightest = the lowest/highest mean of a 3x3 window lying wholly inside
    the picture (the picture itself when a side is under 3). With ordered values v[0..n-1],
    lower median m = v[floor((n-1)/2)], upper median M = v[n-1-floor((n-1)/2)]. The ink is
    dark if m - darkest >= lightest - m; then light = 255 - gray, else light = gray
    (ink is bright in ``light``, as in MNIST).
 5. Paper (background). Let p = lower median of ``light`` (= 255 - M when inverted).
    a. If min(light) == p (half the picture or more is one flat level: a drawing, MNIST):
       background = p everywhere, sigma = 0.
    b. Otherwise: block b = ceil(longer side / GRID), GRID = 48; the grid G = b x b block
       means (as in step 3; b = 1: G = light). r = ceil(OPENING * longer side of G),
       OPENING = 0.1. Grey opening on G: a running minimum over 2r+1 cells along rows (the
       window clipped at the edges), then along columns, then a running maximum the same
       way. Back to full size when b > 1: bilinear interpolation with source coordinate
       (i + 0.5) / b - 0.5 along each axis, clamped to [0, size-1] (edges held).
       flat = light - background; sigma = 1.4826 * lower median of |flat - lower median of
       flat|.
    (In case a, flat = light - p, sigma = 0.)
 6. Ink. Otsu's threshold on max(flat, 0): 256 bins over [0, top], top = max; bin of a value
    = min(floor(value * 256 / top), 255), bin centres (k + 0.5) * top / 256; the threshold is
    (k* + 1) * top / 256 for the k* (first, on ties) that maximises the between-class variance
    (mu * w0 - m0 * N)^2 / (w0 * w1) with cumulative counts w0, w1 = N - w0, cumulative
    first moment m0 and mean mu. threshold = max(Otsu, 4 * sigma); ink mask = flat > threshold.
    No pixel above it: "blank image".
 7. The digit. Label the mask's 8-connected components. The largest (by pixel count) is the
    digit's; its size s = max(height, width) of its bounding box. Repeatedly add any other
    component with at least SPECK (0.02) of the largest's pixels whose bounding box is at most
    NEAR * s (0.3) pixels from the box of the components kept so far (gap = max of the
    vertical and horizontal gaps between the boxes, 0 when they overlap), growing the box,
    until none is added. other_marks = the components left out with at least MARK (0.25) of
    the largest's pixels (a second digit, for "unsure").
 8. Levels. ink = max(max of flat over the digit's pixels - 3 sigma, threshold + 1);
    floor = min(3 sigma, threshold / 2); out = clip((flat - floor) * 255 / (ink - floor),
    0, 255); pixels farther than MARGIN (2) pixels (chessboard distance) from the digit's
    pixels are set to 0.
 9. MNIST's own steps. Crop to the bounding box of out > NOISE * 255 (NOISE = 0.05). Scale
    so the longer side is 20: size = (max(1, round(w * 20 / L)), max(1, round(h * 20 / L))),
    Python rounding (halves to even), Pillow's LANCZOS resize of the float image (skipped
    when the size is unchanged), clipped to 0-255. Paste into a 28x28 zero canvas at
    ((28 - h) // 2, (28 - w) // 2). Shift by whole pixels so the centre of mass is at
    (14, 14): dy = round(14 - sum(row index * row sum) / total), dx likewise, each clamped
    so no nonzero pixel leaves the frame. Round half to even and convert to uint8.
10. Unsure (``unsure_reason``): contrast = ink / max(sigma, 1) under MIN_CONTRAST (10):
    "no clear ink"; other_marks > 0: "more than one mark"; crop width / height over
    MAX_ASPECT (1.7): "wider than a digit"; calibrated confidence under MIN_CONFIDENCE (0.97,
    or ``--min-confidence``): "low confidence". MIN_CONFIDENCE and MAX_ASPECT are the pair
    that flags the most made-up non-digits while flagging at most 1.5% of the validation
    digits, with the cnn model (benchmarks/photo_benchmark.py prints the grid; chosen again
    whenever the cnn changes).

Calibration: ``probabilities`` = softmax(log(model output) / T), T from the calibration entry
of the results.json beside the model (fitted on the validation split; 1 when absent).
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from . import MnistReportError
from .calibration import apply_temperature
from .results import MODEL_FILE, RESULTS_FILE, best_model_folder

ImageLike = Any  # a path, a PIL image or a NumPy array
ORIENTATION = 0x0112  # the EXIF tag
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
MIN_CONFIDENCE = 0.97      # calibrated confidence under this: unsure
MIN_CONTRAST = 10.0        # ink level under this many sigma of paper noise: no clear ink
MAX_ASPECT = 1.7           # ink box wider than this times its height: not one digit


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
    try:
        info = path.stat()  # one system call for the three checks
    except FileNotFoundError:
        raise MnistReportError(f"{path}: no such file") from None
    if stat.S_ISDIR(info.st_mode):
        raise MnistReportError(f"{path}: is a directory, not an image")
    if info.st_size == 0:
        raise MnistReportError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            frame = Image.open(path)  # an animation opens on its first frame
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
        if image.getexif().get(ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
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
    return np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.float32)


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
    light_on_dark[~ndimage.maximum_filter(digit, size=2 * MARGIN + 1)] = 0.0
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
    """The model file of the best experiment in a results folder (``results.best_experiment``)."""
    return best_model_folder(Path(out)) / MODEL_FILE


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
    return Prediction(digit, float(probs[digit]), probs.tolist(),
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

"""Make any picture of a digit MNIST-like: the input MNIST's networks expect.

``prepare`` (and ``preprocess``, its 28x28 result) turns any picture of a digit - a phone
photo of ink on gray paper under uneven light, a scan, a paint-program drawing, MNIST itself -
into a 28x28 light digit on black, and says what its ink analysis found (contrast, other
marks, aspect) for the "unsure" rule of ``predict``. ``web/preprocess.js`` is the same
algorithm in the browser; this module imports nothing of the model, like that file.

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

Step 10, the "unsure" rule, is ``predict.unsure_reason``'s.
"""

from __future__ import annotations

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

ImageLike = Any  # a path, a PIL image or a NumPy array
ORIENTATION = 0x0112  # the EXIF tag
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
MIN_CONTRAST = 10.0        # ink level under this many sigma of paper noise: no clear ink


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


def _median(values: np.ndarray, method: str = "lower") -> float:
    """The lower (or upper) median: a value of the picture itself, never the mean of two, so
    that a flat level found by it compares equal to the pixels (step 5a) - np.median averages."""
    return float(np.quantile(values, 0.5, method=method))


def _extremes3(a: np.ndarray) -> tuple[float, float]:
    """Lowest and highest 3x3 mean among the 3x3 windows inside the image."""
    if min(a.shape) < 3:
        return float(a.min()), float(a.max())
    rows = a[:-2] + a[1:-1] + a[2:]
    sums = rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]
    return float(sums.min()) / 9.0, float(sums.max()) / 9.0


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
    window = 2 * int(np.ceil(OPENING * max(grid.shape))) + 1
    # "nearest" repeats the edge cell, which is inside the window already: the same as a
    # window clipped at the edges, as step 5b and preprocess.js have it.
    opened = ndimage.grey_opening(grid, size=(window, window), mode="nearest")
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
    paper, upper = _median(work), _median(work, "higher")
    dark_ink = paper - darkest >= lightest - paper
    light = 255.0 - work if dark_ink else work
    # (the lower median of 255 - work is 255 - the upper median of work)
    background, uniform = _background(light, 255.0 - upper if dark_ink else paper)
    flat = light - background
    # The noise of the paper: 1.4826 x the median absolute deviation (ink is under half the
    # picture); 0 when half the picture is one flat level.
    sigma = 0.0
    if not uniform:
        centre = _median(flat)
        sigma = 1.4826 * _median(np.abs(flat - centre))
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
    # The box of the pixels above NOISE (find_objects takes integer labels: the mask as 0/1).
    crop = light_on_dark[ndimage.find_objects((light_on_dark > NOISE * 255).view(np.uint8))[0]]
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


def preprocess_steps(image: ImageLike) -> list[tuple[str, np.ndarray]]:
    """Each stage of the preprocessing, for the tutorial's figure; the last is the input."""
    return prepare(image, steps=True).steps


def _centre_of_mass(canvas: np.ndarray) -> np.ndarray:
    """Shift by whole pixels so the centre of mass lands on pixel (14, 14), as in MNIST."""
    # NumPy's sums, not ndimage.center_of_mass: a mirror-symmetric digit's centre lies exactly
    # between two pixels, where the rounding of the sums decides the shift; center_of_mass
    # sums in another order and would move some of those digits the other way.
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


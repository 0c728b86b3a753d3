"""Photo-like pictures made from MNIST digits, and pictures that are not one digit.

Used by ``benchmarks/photo_benchmark.py`` (hundreds per condition) and by
``tests/test_predict.py`` (a few per condition). Each MNIST digit (light on dark, 28x28) is used as the ink's coverage:
it is enlarged, laid as ink on paper, then lit, blurred, noised and JPEG-compressed the way a
phone photo of a page is. Everything is drawn from a ``numpy.random.Generator``, so a seed
gives the same pictures every time.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu")]
# Letters that nobody could tell from a digit when handwritten (O/0, l/1, S/5, Z/2, B/8,
# b/6, g/9, q/9, G/6, ...) are left out: the tool is right to read them as digits.
LETTERS = "ACEFHJKLMNPRTUVWXYacdefhkmnprtuvwxy"


def _fonts() -> list[Path]:
    try:
        import matplotlib
        FONT_DIRS.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    except ImportError:
        pass
    for folder in FONT_DIRS:
        found = sorted(p for p in folder.glob("DejaVu*.ttf") if "ExtraLight" not in p.name
                       and "Display" not in p.name)
        if found:
            return found
    raise RuntimeError("no DejaVu fonts found (apt install fonts-dejavu-core, or matplotlib)")


# --- ink coverage (0..1, 1 = full ink) --------------------------------------------------

def coverage(digit: np.ndarray, height: int, rng: np.random.Generator,
             thicken: int = 0) -> np.ndarray:
    """An MNIST digit enlarged so that its 28x28 frame is ``height`` pixels tall."""
    a = digit.astype(np.float32) / 255.0
    if thicken:
        a = ndimage.grey_dilation(a, size=(thicken, thicken))
    image = Image.fromarray(a, "F").resize((height, height), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(image), 0, 1)


def letter_coverage(rng: np.random.Generator, height: int) -> np.ndarray:
    fonts = _fonts()
    font = ImageFont.truetype(str(fonts[rng.integers(len(fonts))]), int(height * 0.7))
    image = Image.new("L", (height, height), 0)
    ImageDraw.Draw(image).text((height / 2, height / 2), str(rng.choice(list(LETTERS))),
                               fill=255, font=font, anchor="mm")
    return np.asarray(image, np.float32) / 255.0


def scribble_coverage(rng: np.random.Generator, height: int) -> np.ndarray:
    """A random smooth pen path: loops and zigzags that are no digit."""
    image = Image.new("L", (height, height), 0)
    n = int(rng.integers(6, 14))
    points = rng.uniform(0.12, 0.88, size=(n, 2)) * height
    # smooth the polyline by Chaikin corner cutting
    for _ in range(3):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        points = np.empty((2 * len(q), 2))
        points[0::2], points[1::2] = q, r
    width = max(2, int(height * rng.uniform(0.05, 0.1)))
    ImageDraw.Draw(image).line([tuple(p) for p in points], fill=255, width=width,
                               joint="curve")
    return np.asarray(image, np.float32) / 255.0


def pair_coverage(first: np.ndarray, second: np.ndarray, height: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Two MNIST digits side by side, as one writes a two-digit number."""
    a, b = coverage(first, height, rng), coverage(second, height, rng)
    overlap = int(height * rng.uniform(0.25, 0.4))  # MNIST frames have wide margins
    out = np.zeros((height, 2 * height - overlap), np.float32)
    out[:, :height] = a
    out[:, height - overlap:] = np.maximum(out[:, height - overlap:], b)
    return out


# --- paper, light and camera ----------------------------------------------------------

def _place(cov: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    canvas = np.zeros(shape, np.float32)
    h, w = cov.shape
    top = int(rng.integers(0, max(1, shape[0] - h)))
    left = int(rng.integers(0, max(1, shape[1] - w)))
    canvas[top:top + h, left:left + w] = cov[: shape[0] - top, : shape[1] - left]
    return canvas


def _gradient(shape, amplitude: float, rng) -> np.ndarray:
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xs / shape[1] + np.sin(angle) * ys / shape[0]
    return amplitude * (ramp - ramp.mean()) * 2


def _compose(cov, paper, ink) -> np.ndarray:
    """Ink over paper: each RGB channel mixes paper and ink by the ink's coverage."""
    paper = np.broadcast_to(np.asarray(paper, np.float32), cov.shape + (3,)) \
        if np.ndim(paper) <= 1 else paper
    ink = np.asarray(ink, np.float32)
    return paper * (1 - cov[..., None]) + ink * cov[..., None]


def _camera(rgb: np.ndarray, rng, noise=(3, 8), blur=(0.5, 1.2), quality=(60, 90)) -> Image.Image:
    rgb = ndimage.gaussian_filter(rgb, sigma=(rng.uniform(*blur),) * 2 + (0,))
    rgb = rgb + rng.normal(0, rng.uniform(*noise), rgb.shape)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    return _jpeg(image, int(rng.integers(*quality)))


def _jpeg(image: Image.Image, quality: int, **kw) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, **kw)
    buf.seek(0)
    return Image.open(buf)


def photo(cov: np.ndarray, rng: np.random.Generator, canvas=(300, 300),
          paper_level=(95, 140), ink_level=(10, 45), gradient=(10, 25), tint=0.0,
          ink_color=None, noise=(3, 8), blur=(0.5, 1.2)) -> Image.Image:
    """Ink ``cov`` photographed on gray paper under room light."""
    cov = _place(cov, canvas, rng)
    level = rng.uniform(*paper_level)
    paper = level + _gradient(canvas, rng.uniform(*gradient), rng)
    tone = 1 + rng.uniform(-tint, tint, 3)
    paper = paper[..., None] * tone
    ink = ink_color if ink_color is not None else [rng.uniform(*ink_level)] * 3
    return _camera(_compose(cov, paper, ink), rng, noise=noise, blur=blur)


# --- the conditions -----------------------------------------------------------------------

def gray_paper(digit, rng):
    return photo(coverage(digit, int(rng.integers(160, 260)), rng), rng)


def exif_sideways(digit, rng):
    upright = photo(coverage(digit, int(rng.integers(160, 260)), rng), rng,
                    paper_level=(150, 230), canvas=(400, 300))
    # A phone held sideways stores the sensor's pixels unrotated and an Orientation tag
    # that tells viewers how to turn them: 6 = turn 90 degrees clockwise, 8 = anticlockwise.
    tag = int(rng.choice([6, 8]))
    stored = upright.transpose(Image.Transpose.ROTATE_90 if tag == 6
                               else Image.Transpose.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = tag
    return _jpeg(stored.convert("RGB"), 90, exif=exif.tobytes())


def specks(digit, rng):
    cov = _place(coverage(digit, 200, rng), (300, 300), rng)
    for _ in range(int(rng.integers(1, 3))):
        while True:  # a speck away from the ink
            y, x = rng.integers(8, 292, 2)
            if cov[max(0, y - 12):y + 12, max(0, x - 12):x + 12].max() < 0.05:
                break
        r = rng.uniform(2, 5)
        ys, xs = np.ogrid[:300, :300]
        cov = np.maximum(cov, np.clip(r + 0.5 - np.hypot(ys - y, xs - x), 0, 1))
    return _camera(_compose(cov, [245] * 3, [25] * 3), rng, noise=(1, 3))


def small_on_page(digit, rng):
    cov = _place(coverage(digit, int(rng.integers(60, 90)), rng), (900, 1200), rng)
    return _camera(_compose(cov, [240] * 3, [30] * 3), rng, noise=(1, 3))


def marker_blur(digit, rng):
    cov = coverage(digit, 220, rng, thicken=2)
    cov = ndimage.gaussian_filter(cov, rng.uniform(1.5, 2.5))
    cov = np.clip(cov * 1.3, 0, 1)
    return _camera(_compose(_place(cov, (300, 300), rng), [245] * 3, [15] * 3), rng,
                   noise=(1, 3))


def lined_paper(digit, rng):
    cov = _place(coverage(digit, 220, rng), (300, 300), rng)
    paper = np.full((300, 300, 3), 240.0, np.float32)
    step, offset = int(rng.integers(22, 34)), int(rng.integers(0, 20))
    for y in range(offset, 300, step):  # light-blue rules, a red margin
        paper[y:y + 2] = [150, 185, 235]
    margin = int(rng.integers(20, 50))
    paper[:, margin:margin + 2] = [235, 120, 120]
    return _camera(_compose(cov, paper, [30, 30, 60]), rng, noise=(2, 5))


def shadow(digit, rng):
    cov = _place(coverage(digit, 200, rng), (300, 300), rng)
    ys, xs = np.mgrid[0:300, 0:300]
    angle = rng.uniform(0, 2 * np.pi)
    edge = np.cos(angle) * (xs - 150) + np.sin(angle) * (ys - 150) + rng.uniform(-60, 60)
    dark = 1 - rng.uniform(0.3, 0.5) / (1 + np.exp(-edge / rng.uniform(8, 25)))
    paper = np.repeat(230 * dark[..., None], 3, axis=2)
    ink = 25 * dark[..., None]
    rgb = paper * (1 - cov[..., None]) + ink * cov[..., None]
    return _camera(rgb, rng)


def colored_ink(digit, rng):
    inks = [[30, 50, 170], [180, 30, 30], [20, 120, 40], [110, 30, 140]]
    papers = [[250, 250, 245], [250, 240, 170], [200, 225, 250], [230, 250, 220]]
    cov = coverage(digit, int(rng.integers(160, 260)), rng)
    cov = _place(cov, (300, 300), rng)
    return _camera(_compose(cov, papers[rng.integers(len(papers))],
                            inks[rng.integers(len(inks))]), rng)


def pencil(digit, rng):
    cov = coverage(digit, 220, rng)
    grain = ndimage.gaussian_filter(rng.uniform(0.5, 1.0, cov.shape), 1)
    cov = _place(cov * grain, (300, 300), rng)
    return _camera(_compose(cov, [235] * 3, [rng.uniform(90, 130)] * 3), rng, noise=(2, 5))


def chalkboard(digit, rng):
    cov = _place(coverage(digit, 220, rng), (300, 300), rng)
    board = [30, rng.uniform(50, 80), 45] + _gradient((300, 300), 10, rng)[..., None]
    return _camera(_compose(cov, board, [225, 230, 225]), rng)


CONDITIONS: dict[str, Callable] = {
    "gray paper, light gradient, noise, JPEG": gray_paper,
    "phone JPEG stored sideways (EXIF)": exif_sideways,
    "a speck or two on white paper": specks,
    "small digit on a large white page": small_on_page,
    "thick marker, blurred": marker_blur,
    "lined paper, dark-blue ink": lined_paper,
    "soft shadow across the page": shadow,
    "colored ink on colored paper": colored_ink,
    "pencil": pencil,
    "chalk on a green board": chalkboard,
}


# --- not one digit ----------------------------------------------------------------------

def _written(cov, rng):
    """A non-digit mark photographed like a digit: white or gray paper."""
    if rng.random() < 0.5:
        return photo(cov, rng)
    return _camera(_compose(_place(cov, (300, 300), rng), [240] * 3, [30] * 3), rng,
                   noise=(1, 4))


def letter(rng, digits=None):
    return _written(letter_coverage(rng, int(rng.integers(160, 260))), rng)


def scribble(rng, digits=None):
    return _written(scribble_coverage(rng, int(rng.integers(160, 260))), rng)


def digit_pair(rng, digits):
    i, j = rng.choice(len(digits), 2, replace=False)
    cov = pair_coverage(digits[i], digits[j], int(rng.integers(120, 160)), rng)
    return _written(cov, rng)


def empty_page(rng, digits=None):
    return photo(np.zeros((10, 10), np.float32), rng)


NON_DIGITS: dict[str, Callable] = {
    "letters (DejaVu fonts)": letter,
    "scribbles": scribble,
    "two digits": digit_pair,
    "empty page, noise": empty_page,
}

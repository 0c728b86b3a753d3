"""Digits as people write and photograph them: the test digits, corrupted in the common ways.

Each corruption takes a batch of 28x28 uint8 digits (white on black, as MNIST) and a NumPy
random generator, and returns the corrupted batch, uint8. They follow the published
descriptions of the MNIST-C benchmark (Mu and Gilmer, 2019) and of common image corruptions
(Hendrycks and Dietterich, 2019), written here with NumPy and SciPy, plus two kinds of real
handwriting MNIST lacks: low-resolution scans enlarged (blocky, soft strokes) and thick
marker strokes. A fixed seed gives the same corrupted digits every time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _each(images: np.ndarray, change: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return _to_uint8(np.stack([change(image.astype("float64")) for image in images]))


def _affine(images: np.ndarray, rng: np.random.Generator, matrix_of) -> np.ndarray:
    """Each image through the 2x2 ``matrix_of(rng)`` about its centre (bilinear, zeros outside)."""
    centre = np.array([13.5, 13.5])

    def move(image):
        matrix = matrix_of(rng)
        inverse = np.linalg.inv(matrix)
        return ndimage.affine_transform(image, inverse, offset=centre - inverse @ centre,
                                        order=1, cval=0.0)
    return _each(images, move)


def shot_noise(images, rng):
    """Photon noise: each pixel a Poisson count around its brightness."""
    return _to_uint8(rng.poisson(images / 255.0 * 60) / 60 * 255)


def gaussian_noise(images, rng):
    return _to_uint8(images + rng.normal(0, 0.2 * 255, images.shape))


def impulse_noise(images, rng):
    """Salt and pepper: 10% of the pixels turned fully white or black."""
    out = images.copy()
    hit = rng.random(images.shape) < 0.10
    out[hit] = np.where(rng.random(int(hit.sum())) < 0.5, 0, 255)
    return out


def glass_blur(images, rng):
    """A blur, then every pixel taken from a random neighbour, twice, as through frosted glass."""
    x = ndimage.gaussian_filter(images.astype("float64"), (0, 0.7, 0.7))
    n, rows, cols = np.indices(x.shape)
    for _ in range(2):
        dr, dc = rng.integers(-1, 2, size=(2, *x.shape))
        x = x[n, np.clip(rows + dr, 0, 27), np.clip(cols + dc, 0, 27)]
    return _to_uint8(ndimage.gaussian_filter(x, (0, 0.7, 0.7)))


def motion_blur(images, rng):
    """The camera moved: a line-shaped blur 7-9 pixels long in a random direction."""
    def blur(image):
        length = int(rng.integers(7, 10))
        kernel = np.zeros((length, length))
        kernel[length // 2, :] = 1.0
        kernel = ndimage.rotate(kernel, rng.uniform(0, 180), reshape=False, order=1)
        return ndimage.convolve(image, kernel / kernel.sum(), mode="constant")
    return _each(images, blur)


def defocus_blur(images, rng):
    return _each(images, lambda image: ndimage.gaussian_filter(image, rng.uniform(1.0, 1.5)))


def shear(images, rng):
    return _affine(images, rng, lambda g: np.array([[1.0, g.choice([-1, 1]) * g.uniform(0.3, 0.6)],
                                                    [0.0, 1.0]]))


def scale(images, rng):
    """Written smaller or larger than MNIST's 20x20 box: 0.5-0.8 or 1.2-1.3 times."""
    return _affine(images, rng, lambda g: np.eye(2) * (g.uniform(0.5, 0.8) if g.random() < 0.7
                                                       else g.uniform(1.2, 1.3)))


def rotate(images, rng):
    def turned(g):
        angle = np.deg2rad(g.choice([-1, 1]) * g.uniform(20, 45))
        return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return _affine(images, rng, turned)


def translate(images, rng):
    """Off centre by 3-5 pixels."""
    def moved(image):
        return ndimage.shift(image, rng.choice([-1, 1], 2) * rng.integers(3, 6, 2), order=0)
    return _each(images, moved)


def brightness(images, rng):
    """A gray background: the paper is lit, the ink brighter still."""
    return _to_uint8(images * 0.6 + 100)


def contrast(images, rng):
    """Faint ink: a third of the contrast, around mid-gray."""
    return _to_uint8((images - 128.0) * 0.3 + 128)


def fog(images, rng):
    """Smooth random haze laid over the digit."""
    def foggy(image):
        haze = ndimage.gaussian_filter(rng.random((28, 28)), 4)
        haze = (haze - haze.min()) / (np.ptp(haze) + 1e-9)
        return image * 0.7 + haze * 160
    return _each(images, foggy)


def stripe(images, rng):
    """A bar across the digit: the pixels of a 3-5 pixel wide band inverted."""
    def striped(image):
        width = int(rng.integers(3, 6))
        start = int(rng.integers(6, 22 - width))
        out = image.copy()
        if rng.random() < 0.5:
            out[:, start:start + width] = 255 - out[:, start:start + width]
        else:
            out[start:start + width, :] = 255 - out[start:start + width, :]
        return out
    return _each(images, striped)


def _line(image, rng, dotted: bool, zigzag: bool):
    out = image.copy()
    points = rng.uniform(0, 27, size=(2, 2)) if not zigzag else None
    if zigzag:
        xs = np.linspace(rng.uniform(0, 5), rng.uniform(22, 27), 6)
        ys = rng.uniform(4, 24) + np.where(np.arange(6) % 2, -3, 3)
        segments = list(zip(zip(xs[:-1], ys[:-1]), zip(xs[1:], ys[1:])))
    else:
        segments = [(tuple(points[0]), tuple(points[1]))]
    for (x0, y0), (x1, y1) in segments:
        steps = int(np.hypot(x1 - x0, y1 - y0) * 2) + 1
        for t, (x, y) in enumerate(zip(np.linspace(x0, x1, steps), np.linspace(y0, y1, steps))):
            if dotted and (t // 3) % 2:
                continue
            out[int(round(y)), int(round(x))] = 255
    return out


def dotted_line(images, rng):
    return _each(images, lambda image: _line(image, rng, dotted=True, zigzag=False))


def zigzag(images, rng):
    return _each(images, lambda image: _line(image, rng, dotted=False, zigzag=True))


def spatter(images, rng):
    """Drops of ink around the digit: a few small blobs."""
    def spattered(image):
        drops = np.zeros((28, 28))
        for _ in range(int(rng.integers(3, 7))):
            r, c = rng.integers(0, 28, 2)
            drops[r, c] = 1
        drops = ndimage.grey_dilation(drops, size=(2, 2))
        return np.maximum(image, drops * 255)
    return _each(images, spattered)


def edges(images, rng):
    """Outlines only: where the brightness changes (Sobel), not the strokes themselves."""
    def outline(image):
        smooth = ndimage.gaussian_filter(image, 0.5)
        magnitude = np.hypot(ndimage.sobel(smooth, 0), ndimage.sobel(smooth, 1))
        return (magnitude > 0.35 * magnitude.max()) * 255.0
    return _each(images, outline)


def low_resolution(images, rng):
    """Scanned at 10x10 or 12x12 pixels, then enlarged: blocky strokes with soft edges."""
    def blocky(image):
        size = int(rng.choice([10, 12]))
        small = ndimage.zoom(image, size / 28, order=1)
        big = ndimage.zoom(small, 28 / size, order=0)[:28, :28]
        return np.pad(big, ((0, 28 - big.shape[0]), (0, 28 - big.shape[1])))
    return _each(images, blocky)


def thick_marker(images, rng):
    """Written with a thick, slightly blurred marker: strokes 2-3 pixels wider."""
    def thick(image):
        size = int(rng.integers(3, 5))
        return ndimage.gaussian_filter(ndimage.grey_dilation(image, size=(size, size)), 0.6)
    return _each(images, thick)


# In the order the tutorial's table lists them.
CORRUPTIONS: dict[str, Corruption] = {
    "shot noise": shot_noise,
    "gaussian noise": gaussian_noise,
    "impulse noise": impulse_noise,
    "glass blur": glass_blur,
    "motion blur": motion_blur,
    "defocus blur": defocus_blur,
    "shear": shear,
    "scale": scale,
    "rotate": rotate,
    "translate": translate,
    "brightness": brightness,
    "contrast": contrast,
    "fog": fog,
    "stripe": stripe,
    "dotted line": dotted_line,
    "zigzag": zigzag,
    "spatter": spatter,
    "edges": edges,
    "low resolution": low_resolution,
    "thick marker": thick_marker,
}
SEED = 2019


def corrupted(images: np.ndarray, kind: str, seed: int = SEED) -> np.ndarray:
    """``images`` with the corruption ``kind``, the same for the same seed."""
    rng = np.random.default_rng([seed, list(CORRUPTIONS).index(kind)])
    return CORRUPTIONS[kind](images, rng)

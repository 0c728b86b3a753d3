"""How the small test images in this folder were made (drawn with Pillow, by hand-set strokes).

Run: python tests/data/make_digits.py  (rewrites the images; they are committed)
"""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent.parent / "mnist_core" / "examples" / "digit.png"


def strokes(size, lines, width, ink, paper, mode="L"):
    image = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(image)
    for line in lines:
        draw.line(line, fill=ink, width=width, joint="curve")
    return image


# A 7 drawn black on white on a wide canvas, off-centre (like a phone photo of paper).
seven = strokes((320, 240), [[(120, 40), (230, 45), (170, 210)], [(150, 125), (215, 120)]],
                18, 20, 235)
seven.save(HERE / "seven_black_on_white.png")

# A 2 white on black, small and low-quality JPEG.
two = strokes((64, 80), [[(14, 22), (22, 10), (40, 10), (48, 22), (44, 36), (14, 68), (52, 68)]],
              6, 250, 5)
two.save(HERE / "two_white_on_black.jpg", quality=60)

# A 4 in dark ink on a transparent canvas (what paint programs export).
four = strokes((200, 260), [[(120, 30), (30, 170), (170, 170)], [(125, 30), (125, 240)]],
               16, (30, 30, 200, 255), (0, 0, 0, 0), mode="RGBA")
four.save(HERE / "four_rgba_transparent.png")

# A 1 as a palette image.
one = strokes((90, 150), [[(52, 15), (44, 135)]], 10, 0, 255).convert("P")
one.save(HERE / "one_palette.png")

# A 0 as a 16-bit gray image (scanner output).
zero = Image.new("I;16", (120, 160), 60000)
ImageDraw.Draw(zero).ellipse((25, 20, 95, 140), outline=3000, width=12)
zero.save(HERE / "zero_16bit.png")

# A 3 rendered from a font, for the tutorial's worked example (black on white, 160x200).
font = ImageFont.load_default(size=170)
three = Image.new("L", (160, 200), 255)
ImageDraw.Draw(three).text((80, 100), "3", fill=0, font=font, anchor="mm")
three.save(EXAMPLE)


# --- Photo-like pictures (issue 11): ink on gray paper under room light -----------------------

import numpy as np  # noqa: E402
from PIL import ImageFilter  # noqa: E402

rng = np.random.default_rng(11)


def photo(cover, paper=120, ink=35, gradient=20, noise=5, specks=(), rgb_paper=None,
          rgb_ink=None):
    """Ink coverage (L image, 255 = ink) -> an RGB 'photo': gray paper, gradient, blur, noise."""
    cov = np.asarray(cover.filter(ImageFilter.GaussianBlur(1.2)), np.float32) / 255
    h, w = cov.shape
    for y, x, r in specks:
        ys, xs = np.ogrid[:h, :w]
        cov = np.maximum(cov, np.clip(r + 0.5 - np.hypot(ys - y, xs - x), 0, 1))
    ramp = np.linspace(-gradient, gradient, w)[None, :] + np.linspace(-gradient / 2, gradient / 2, h)[:, None]
    base = np.array(rgb_paper if rgb_paper else [paper] * 3, np.float32)
    paper_rgb = base[None, None, :] + ramp[..., None]
    ink_rgb = np.array(rgb_ink if rgb_ink else [ink] * 3, np.float32)
    rgb = paper_rgb * (1 - cov[..., None]) + ink_rgb * cov[..., None]
    rgb += rng.normal(0, noise, rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def jpeg(image, path, quality=80, exif=None):
    kwargs = {"exif": exif.tobytes()} if exif is not None else {}
    image.save(path, quality=quality, **kwargs)


# A 5 on gray paper (level ~120) with a light gradient and a speck: the tutorial's example
# (PNG, 160x200) and a JPEG test picture.
five = strokes((160, 200), [[(112, 40), (62, 42), (56, 95), (90, 88), (112, 108), (110, 145),
                             (82, 162), (52, 150)]], 11, 255, 0)
example = photo(five, specks=[(30, 130, 3)])
example.save(EXAMPLE)
jpeg(photo(five, paper=105, specks=[(170 - 20, 20, 2), (25, 140, 3)]), HERE / "five_gray_paper.jpg", 75)

# A 2 photographed sideways: pixels stored rotated, EXIF Orientation 6 (turn 90 clockwise).
two_up = photo(strokes((180, 220), [[(50, 70), (70, 40), (115, 38), (132, 70), (115, 110),
                                      (48, 180), (140, 180)]], 12, 255, 0), paper=200, ink=40)
exif = Image.Exif()
exif[0x0112] = 6
jpeg(two_up.transpose(Image.Transpose.ROTATE_90), HERE / "two_sideways_exif.jpg", 80, exif)

# A small 4 on a large white page, blue ink.
page = Image.new("L", (900, 700), 0)
page.paste(strokes((60, 80), [[(40, 8), (10, 52), (52, 52)], [(40, 8), (40, 76)]], 5, 255, 0),
           (610, 180))
jpeg(photo(page, paper=235, gradient=8, noise=3, rgb_ink=(40, 50, 160)), HERE / "four_small_on_page.jpg", 70)

# A 7 in red ink on lined paper.
lined = np.asarray(strokes((200, 240), [[(50, 50), (150, 50), (90, 210)], [(75, 130), (135, 128)]],
                           12, 255, 0), np.float32)
lined_photo = np.asarray(photo(Image.fromarray(lined.astype(np.uint8)), rgb_paper=(245, 245, 240),
                               rgb_ink=(190, 30, 30), gradient=6, noise=3), np.float32).copy()
lined_photo[20::28] = lined_photo[20::28] * 0.2 + np.array([150, 185, 235]) * 0.8
jpeg(Image.fromarray(lined_photo.astype(np.uint8)), HERE / "seven_red_lined.jpg", 80)

# Not one digit: a letter K, a scribble, two digits side by side, an empty gray page.
font_path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
letter = Image.new("L", (180, 220), 0)
ImageDraw.Draw(letter).text((90, 110), "K", fill=255, anchor="mm",
                            font=ImageFont.truetype(str(font_path), 150) if font_path.exists()
                            else ImageFont.load_default(size=150))
jpeg(photo(letter), HERE / "letter_k.jpg", 80)
scribble = strokes((200, 200), [[(30, 100), (60, 30), (90, 170), (120, 40), (150, 160),
                                 (180, 60), (40, 60), (170, 140)]], 9, 255, 0)
jpeg(photo(scribble, paper=200), HERE / "scribble.jpg", 80)
pair = Image.new("L", (300, 200), 0)
pair.paste(strokes((120, 180), [[(80, 20), (30, 110), (100, 110)], [(80, 20), (80, 165)]], 11, 255, 0), (10, 10))
pair.paste(strokes((120, 180), [[(20, 20), (100, 20), (50, 165)]], 11, 255, 0), (170, 10))
jpeg(photo(pair, paper=210), HERE / "two_digits_47.jpg", 80)
jpeg(photo(Image.new("L", (200, 200), 0), paper=125), HERE / "empty_gray_page.jpg", 80)

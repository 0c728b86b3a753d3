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

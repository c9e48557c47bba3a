"""Pictures for the demo campaigns, drawn with Pillow: flat, quiet product illustrations, no photos to ship.

Each is drawn at twice its size and scaled down, which smooths the edges ImageDraw leaves jagged. Everything is
seeded, so the same call draws the same picture.
"""

from __future__ import annotations

import functools
import io
import random

from PIL import Image, ImageDraw, ImageFilter

Color = tuple[int, int, int]
SCALE = 2

CREAM: Color = (251, 244, 234)
PEACH: Color = (246, 221, 196)
SUN: Color = (249, 201, 138)
SOIL: Color = (112, 77, 48)
SOIL_DARK: Color = (84, 56, 34)
SOIL_LIGHT: Color = (142, 101, 69)
PCB: Color = (28, 104, 72)
PCB_DARK: Color = (19, 76, 52)
GOLD: Color = (219, 167, 72)
CHIP: Color = (35, 39, 43)
LEAF: Color = (63, 143, 79)
LEAF_DARK: Color = (44, 110, 60)
ACCENT: Color = (194, 65, 12)
WATER: Color = (86, 160, 170)
WATER_DARK: Color = (52, 120, 134)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _canvas(width: int, height: int, top: Color, bottom: Color) -> Image.Image:
    """A vertical gradient at twice the size."""
    w, h = width * SCALE, height * SCALE
    column = Image.new("RGB", (1, h))
    for y in range(h):
        t = y / max(1, h - 1)
        column.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    return column.resize((w, h))


def _finish(image: Image.Image) -> bytes:
    return _png(image.resize((image.width // SCALE, image.height // SCALE), Image.Resampling.LANCZOS))


def _glow(image: Image.Image, center: tuple[int, int], radius: int, color: Color) -> None:
    halo = Image.new("RGBA", image.size, (0, 0, 0, 0))
    x, y = center
    ImageDraw.Draw(halo).ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*color, 150))
    halo = halo.filter(ImageFilter.GaussianBlur(radius // 2))
    image.paste(halo, (0, 0), halo)


def _soil(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], seed: int) -> None:
    left, top, right, bottom = box
    draw.rectangle(box, fill=SOIL)
    rng = random.Random(seed)
    for band in range(top + 60, bottom, 90):
        draw.line([(left, band), (right, band + rng.randint(-12, 12))], fill=SOIL_DARK, width=4)
    for _ in range((right - left) * (bottom - top) // 9000):
        x, y, r = rng.randint(left, right), rng.randint(top + 10, bottom), rng.randint(4, 14)
        draw.ellipse((x - r, y - r * 0.7, x + r, y + r * 0.7), fill=rng.choice((SOIL_DARK, SOIL_LIGHT)))


def _leaf(draw: ImageDraw.ImageDraw, base: tuple[int, int], length: int, lean: int, color: Color) -> None:
    x, y = base
    tip = (x + lean, y - length)
    draw.polygon(
        [base, (x + lean // 2 - length // 4, y - length // 2), tip, (x + lean // 2 + length // 4, y - length // 2)],
        fill=color,
    )
    draw.line([base, tip], fill=LEAF_DARK, width=4)


def _sprout(draw: ImageDraw.ImageDraw, ground: tuple[int, int], height: int) -> None:
    x, y = ground
    draw.line([(x, y), (x, y - height)], fill=LEAF_DARK, width=12)
    _leaf(draw, (x, y - height * 2 // 3), height // 2, -height // 2, LEAF)
    _leaf(draw, (x, y - height), height // 2, height // 2, LEAF)
    _leaf(draw, (x, y - height // 3), height // 3, height // 3, LEAF_DARK)


def _prongs(left: int, width: int) -> list[tuple[int, int]]:
    """Where the probe's two prongs start, and how wide they are."""
    prong_w = width // 5
    return [(left + width // 8, prong_w), (left + width - width // 8 - prong_w, prong_w)]


def _sensor(image: Image.Image, left: int, top: int, width: int, body: int, prong: int) -> None:
    """The Loam probe seen from the front: a board with a chip, an LED and gold traces, two prongs below."""
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((left, top, left + width, top + body), radius=width // 10, fill=PCB)
    for x, prong_w in _prongs(left, width):
        draw.rounded_rectangle((x, top + body - 20, x + prong_w, top + body + prong), radius=prong_w // 2, fill=PCB)
        draw.line([(x + prong_w // 2, top + body - 10), (x + prong_w // 2, top + body + prong - prong_w)], GOLD, 8)
    draw.rounded_rectangle(
        (left + 14, top + 14, left + width - 14, top + body - 14), radius=width // 14, outline=PCB_DARK, width=6
    )
    chip = width // 3
    cx, cy = left + width // 2 - chip // 2, top + body // 2 - chip // 2
    for i in range(5):
        step = chip * (i + 1) // 6
        draw.line([(cx - 16, cy + step), (cx + chip + 16, cy + step)], fill=(200, 200, 196), width=5)
        draw.line([(cx + step, cy - 16), (cx + step, cy + chip + 16)], fill=(200, 200, 196), width=5)
    draw.rounded_rectangle((cx, cy, cx + chip, cy + chip), radius=8, fill=CHIP)
    draw.ellipse((cx + 12, cy + 12, cx + 26, cy + 26), fill=(80, 86, 92))
    for x0, y0, x1, y1 in (
        (left + 40, top + 60, cx - 20, top + 60),
        (left + 40, top + 60, left + 40, top + body - 60),
        (cx + chip + 20, cy + chip // 2, left + width - 40, cy + chip // 2),
        (left + width - 40, cy + chip // 2, left + width - 40, top + body - 40),
    ):
        draw.line([(x0, y0), (x1, y1)], fill=GOLD, width=6)
    rng = random.Random(width)
    for _ in range(7 if width >= 400 else 0):  # resistors and capacitors, on the larger drawings
        x = rng.randint(left + 70, left + width - 110)
        y = rng.choice((rng.randint(top + 90, cy - 60), rng.randint(cy + chip + 40, top + body - 90)))
        draw.rectangle((x, y, x + 36, y + 18), fill=(226, 214, 190))
        draw.rectangle((x, y, x + 8, y + 18), fill=(190, 190, 186))
        draw.rectangle((x + 28, y, x + 36, y + 18), fill=(190, 190, 186))
    header = width // 4
    draw.rectangle(
        (left + width // 2 - header // 2, top - 26, left + width // 2 + header // 2, top + 40), fill=(244, 242, 236)
    )
    for i in range(3):
        px = left + width // 2 - header // 2 + header * (2 * i + 1) // 6
        draw.rectangle((px - 7, top - 10, px + 7, top + 10), fill=(120, 120, 116))
    led = (left + width - 60, top + 56)
    _glow(image, led, 46, (120, 230, 140))
    draw = ImageDraw.Draw(image)
    draw.ellipse((led[0] - 14, led[1] - 14, led[0] + 14, led[1] + 14), fill=(160, 245, 170))
    for hole_x in (left + 36, left + width - 36):
        draw.ellipse((hole_x - 12, top + body - 48, hole_x + 12, top + body - 24), fill=CREAM, outline=GOLD, width=5)


def _signal(draw: ImageDraw.ImageDraw, center: tuple[int, int], color: Color) -> None:
    x, y = center
    for radius in (50, 95, 140):
        draw.arc((x - radius, y - radius, x + radius, y + radius), 220, 320, fill=color, width=12)


@functools.cache  # the same picture every time: drawn once a process
def loam_cover() -> bytes:
    width, height = 1600, 900
    image = _canvas(width, height, CREAM, PEACH)
    draw = ImageDraw.Draw(image)
    draw.ellipse((2350, 170, 2850, 670), fill=SUN)
    ground = 1180
    _sensor(image, 1380, 430, 460, 700, 420)
    soil = Image.new("RGB", image.size)
    _soil(ImageDraw.Draw(soil), (0, ground, image.width, image.height), seed=7)
    mask = Image.new("L", image.size, 0)
    mask_draw = ImageDraw.Draw(mask)
    mask_draw.rectangle((0, ground, image.width, image.height), fill=255)
    for x, prong_w in _prongs(1380, 460):  # the buried prongs show faintly through the topsoil
        mask_draw.rounded_rectangle((x, ground, x + prong_w, 1130 + 420), radius=prong_w // 2, fill=150)
    image.paste(soil, (0, 0), mask)
    draw = ImageDraw.Draw(image)
    _sprout(draw, (820, ground + 10), 360)
    _sprout(draw, (2500, ground + 10), 260)
    _signal(draw, (1610, 380), ACCENT)
    return _finish(image)


@functools.cache  # the same picture every time: drawn once a process
def loam_board() -> bytes:
    """The board from above, on a cutting mat with a ruler."""
    width, height = 1200, 900
    image = _canvas(width, height, (47, 93, 80), (40, 82, 70))
    draw = ImageDraw.Draw(image)
    for x in range(0, image.width, 80):
        draw.line([(x, 0), (x, image.height)], fill=(62, 112, 98), width=2)
    for y in range(0, image.height, 80):
        draw.line([(0, y), (image.width, y)], fill=(62, 112, 98), width=2)
    shadow = Image.new("RGBA", image.size, (0, 0, 0, 0))
    ImageDraw.Draw(shadow).rounded_rectangle((820, 260, 1640, 860), radius=60, fill=(0, 0, 0, 110))
    shadow = shadow.filter(ImageFilter.GaussianBlur(30))
    image.paste(shadow, (0, 0), shadow)
    _sensor(image, 780, 200, 820, 620, 760)
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((200, 1560, 2200, 1700), radius=12, fill=(236, 229, 214))
    for i, x in enumerate(range(240, 2180, 40)):
        draw.line([(x, 1560), (x, 1560 + (60 if i % 5 == 0 else 30))], fill=(90, 84, 76), width=4)
    return _finish(image)


@functools.cache  # the same picture every time: drawn once a process
def loam_chart() -> bytes:
    """A week of soil moisture as the app draws it: dries out, watered, dries out again."""
    width, height = 1200, 900
    image = _canvas(width, height, CREAM, PEACH)
    draw = ImageDraw.Draw(image)
    card = (220, 180, 2180, 1620)
    shadow = Image.new("RGBA", image.size, (0, 0, 0, 0))
    ImageDraw.Draw(shadow).rounded_rectangle((230, 210, 2190, 1650), radius=48, fill=(90, 60, 30, 60))
    shadow = shadow.filter(ImageFilter.GaussianBlur(24))
    image.paste(shadow, (0, 0), shadow)
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(card, radius=48, fill=(255, 255, 255))
    left, top, right, bottom = 360, 420, 2040, 1440
    for y in range(top, bottom + 1, 170):
        draw.line([(left, y), (right, y)], fill=(236, 231, 224), width=4)
    threshold = top + 640
    for x in range(left, right, 60):
        draw.line([(x, threshold), (x + 30, threshold)], fill=ACCENT, width=6)
    points = []
    level = 0.82
    for step in range(57):
        if step in (22, 44):
            level = 0.86
        level -= 0.018
        x = left + (right - left) * step // 56
        points.append((x, round(bottom - (bottom - top) * level)))
    area = [*points, (right, bottom), (left, bottom)]
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    ImageDraw.Draw(overlay).polygon(area, fill=(*WATER, 70))
    image.paste(overlay, (0, 0), overlay)
    draw = ImageDraw.Draw(image)
    draw.line(points, fill=WATER_DARK, width=12, joint="curve")
    for x, y in (points[22], points[44]):
        draw.ellipse((x - 22, y - 22, x + 22, y + 22), fill=(255, 255, 255), outline=WATER_DARK, width=8)
    draw.rounded_rectangle((360, 260, 760, 330), radius=35, fill=(233, 244, 246))
    draw.rounded_rectangle((800, 260, 1040, 330), radius=35, fill=(253, 236, 226))
    return _finish(image)


@functools.cache  # the same picture every time: drawn once a process
def loam_pot() -> bytes:
    """The sensor in a pot on a windowsill."""
    width, height = 1200, 900
    image = _canvas(width, height, (236, 243, 246), (250, 240, 228))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 1380, image.width, image.height), fill=(222, 205, 184))
    draw.rectangle((0, 1380, image.width, 1400), fill=(200, 180, 156))
    _sprout(draw, (1080, 860), 520)
    _sprout(draw, (1280, 860), 420)
    _sensor(image, 1290, 520, 250, 380, 200)
    draw = ImageDraw.Draw(image)
    draw.polygon([(760, 840), (1640, 840), (1540, 1400), (860, 1400)], fill=(196, 104, 62))
    draw.rounded_rectangle((720, 800, 1680, 900), radius=20, fill=(214, 122, 78))
    draw.ellipse((780, 800, 1620, 880), fill=SOIL)
    return _finish(image)


@functools.cache  # the same picture every time: drawn once a process
def paddy_cover() -> bytes:
    """A solar buoy afloat in a paddy field at dawn (for the campaign in review)."""
    width, height = 1600, 900
    image = _canvas(width, height, (253, 236, 214), (244, 214, 190))
    draw = ImageDraw.Draw(image)
    draw.ellipse((500, 160, 900, 560), fill=SUN)
    draw.polygon(
        [(0, 760), (700, 620), (1500, 700), (2300, 600), (3200, 720), (3200, 900), (0, 900)], fill=(150, 170, 140)
    )
    water = _canvas(width, height - 420, (126, 178, 176), WATER_DARK)
    image.paste(water, (0, 840))
    draw = ImageDraw.Draw(image)
    rng = random.Random(11)
    for row in range(9):
        y = 900 + row * row * 11 + row * 40
        size = 24 + row * 9
        for x in range(-40 + (row % 2) * 60, image.width, 110 + row * 18):
            x += rng.randint(-8, 8)
            draw.line([(x, y), (x - size // 3, y - size)], fill=LEAF, width=3 + row // 2)
            draw.line([(x, y), (x + size // 3, y - size)], fill=LEAF_DARK, width=3 + row // 2)
            draw.line([(x, y), (x, y - size - 6)], fill=LEAF, width=3 + row // 2)
    bx, by = 2000, 1330
    draw.ellipse((bx - 260, by + 40, bx + 260, by + 120), fill=WATER_DARK)
    draw.chord((bx - 220, by - 220, bx + 220, by + 220), 180, 360, fill=(242, 190, 60))
    draw.rectangle((bx - 220, by - 8, bx + 220, by + 40), fill=(226, 160, 40))
    draw.polygon(
        [(bx - 150, by - 170), (bx + 150, by - 170), (bx + 120, by - 120), (bx - 120, by - 120)], fill=(40, 60, 90)
    )
    for x in range(bx - 120, bx + 130, 60):
        draw.line([(x, by - 168), (x - 6, by - 122)], fill=(90, 120, 160), width=4)
    draw.line([(bx + 110, by - 180), (bx + 150, by - 420)], fill=(60, 60, 60), width=10)
    _signal(draw, (bx + 150, by - 440), ACCENT)
    return _finish(image)

"""The demo world's artwork, as pure image generators: posters in series, room plates, wall
materials, notice boards, framed prints, signs, whiteboards, clocks and extinguishers (RGB float
arrays at the wall texture's resolution; NaN marks transparent texels)."""

from __future__ import annotations

import functools

import numpy as np

# ---------------------------------------------------------------- wall textures


def _hsv(hue: float, sat: float, val: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6.0) % 6.0
    return val - val * sat * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def random_colour(rng: np.random.Generator, sat=(0.45, 0.95), val=(0.45, 0.95), hue: float | None = None) -> np.ndarray:
    hue = rng.random() if hue is None else hue % 1.0
    return _hsv(hue, rng.uniform(*sat), rng.uniform(*val)) * 255.0


@functools.lru_cache(maxsize=1)
def glyph_alphabet() -> np.ndarray:
    """32 fixed 5×5 block glyphs: the demo world's "script" (same in every world)."""
    rng = np.random.default_rng(20240)
    glyphs = []
    while len(glyphs) < 32:
        glyph = rng.random((5, 5)) < 0.5
        if 9 <= glyph.sum() <= 16 and glyph.any(0).all() and glyph.any(1).sum() >= 4:
            glyphs.append(glyph)
    return np.stack(glyphs)


DIGITS = ("111101101101111", "010110010010111", "111001111100111", "111001111001111", "101101111001001",
          "111100111001111", "111100111101111", "111001010010010", "111101111101111", "111101111001111")


def _stamp(canvas: np.ndarray, mask: np.ndarray, top: int, left: int, colour: np.ndarray) -> None:
    """Paint `colour` where `mask` is set, with the mask's corner at (top, left); clipped to the canvas."""
    h, w = mask.shape
    rows, cols = slice(max(top, 0), min(top + h, canvas.shape[0])), slice(max(left, 0), min(left + w, canvas.shape[1]))
    sub = mask[rows.start - top: rows.stop - top, cols.start - left: cols.stop - left]
    canvas[rows, cols][sub] = colour


def _text(canvas: np.ndarray, rng: np.random.Generator, top: int, left: int, width: int, scale: int,
          colour: np.ndarray) -> None:
    """A line of random glyphs (scaled by `scale` texels per block) fitting in `width`."""
    alphabet = glyph_alphabet()
    step = 6 * scale
    for k in range(max(1, width // step)):
        if rng.random() < 0.15 and k:  # word gap
            continue
        glyph = np.kron(alphabet[rng.integers(len(alphabet))], np.ones((scale, scale), bool))
        _stamp(canvas, glyph, top, left + k * step, colour)


POSTER_SERIES = 12  # poster series: a layout and colour scheme shared by several designs


def poster_series(seed: int, design: int) -> int:
    """The series a poster design belongs to (the first draw of the design's generator)."""
    return int(np.random.default_rng([seed, 1, design]).integers(POSTER_SERIES))


def poster_image(seed: int, design: int) -> np.ndarray:
    """The poster of one design as (rows, cols, 3) float texels (level 0), its bottom at row -1.

    Posters come in series, as a campaign's posters do: the series fixes the size, colours, layout
    and kind of picture; the design fixes the headline, the text and the picture's details. Two
    posters of one series look alike from afar and differ in their fine print.
    """
    rng = np.random.default_rng([seed, 1, design])
    look = np.random.default_rng([seed, 6, int(rng.integers(POSTER_SERIES))])
    h, w = int(look.integers(32, 56)), int(look.integers(40, 81))
    hue = look.random()
    bg, ink, accent = random_colour(look, hue=hue), random_colour(look, hue=hue + look.uniform(0.3, 0.7)), random_colour(look, val=(0.1, 0.4))
    extra = random_colour(look)
    img = np.zeros((h, w, 3)) + bg
    band = int(look.integers(7, 12))  # headline band at the top
    panel_h = int((h - band) * look.uniform(0.4, 0.65))
    panel_left = bool(look.random() < 0.5)  # the picture spans the width, or the left part beside the text
    pw = int(w * look.uniform(0.45, 0.6)) if panel_left else w - 6
    top, left = band + 2, 3
    ph = h - band - 5 if panel_left else panel_h
    rows, cols = np.mgrid[0:ph, 0:pw]
    panel = np.zeros((ph, pw, 3)) + extra
    motif = int(look.integers(4))
    if motif == 0:  # stripes: the series' direction and period, this poster's phase and a badge
        period = int(look.integers(3, 8))
        coord = (cols, rows, rows + cols)[int(look.integers(3))] + int(rng.integers(period * 2))
        panel[(coord // period) % 2 == 1] = ink
    elif motif == 1:  # grid of coloured blocks: the series' grid, this poster's colours
        ny, nx = int(look.integers(2, 4)), int(look.integers(3, 6))
        palette = np.stack([bg, ink, accent, extra])
        cell = rng.integers(len(palette), size=(ny, nx))[np.minimum(rows * ny // ph, ny - 1),
                                                         np.minimum(cols * nx // pw, nx - 1)]
        panel[:] = palette[cell]
        panel[(rows * ny % ph < ny) | (cols * nx % pw < nx)] = accent
    elif motif == 2:  # a shape: the series' kind, this poster's position and size
        cy, cx = rng.uniform(0.3, 0.7) * ph, rng.uniform(0.25, 0.75) * pw
        radius = rng.uniform(0.25, 0.45) * min(ph, pw)
        kind = int(look.integers(3))
        dist = np.hypot(rows - cy, cols - cx) if kind < 2 else np.abs(rows - cy) + np.abs(cols - cx)
        panel[(dist < radius) & ((dist > radius * 0.6) if kind == 1 else True)] = ink
    else:  # a landscape photo: this poster's skyline
        horizon = rng.uniform(0.4, 0.7) * ph
        ridge = horizon - rng.uniform(1, 0.4 * ph) * np.abs(np.sin(cols * rng.uniform(0.08, 0.4) + rng.uniform(0, 6)))
        panel[rows > ridge] = ink
        panel[rows > horizon + 0.2 * ph] = accent
    for _ in range(int(rng.integers(1, 4))):  # small marks of this poster in its picture
        y, x, r = rng.uniform(0, ph), rng.uniform(0, pw), rng.uniform(1.0, 3.0)
        panel[np.hypot(rows - y, cols - x) < r] = (bg, ink, accent)[int(rng.integers(3))]
    img[top: top + ph, left: left + pw] = panel
    img[:band] = accent
    _text(img, rng, 1 + (band - 5) // 2, 2, w - 4, 1, bg)  # headline
    text_top, text_left = (top, left + pw + 3) if panel_left else (top + ph + 2, 3)
    text_w = w - text_left - 3
    for line in range(text_top, h - 7, 7):  # text, then fine print
        _text(img, rng, line, text_left, text_w - int(rng.integers(0, max(1, text_w // 3))), 1, ink)
    if not panel_left:
        _scribble(img, rng, h - 5, 3, w - 6, 2, ink)
    img[[0, -1]] = img[:, [0, -1]] = 25.0  # thin dark frame
    return img


def room_plate(room: int) -> np.ndarray:
    """A white plate (9 × 14 texels) with a 3-digit room number in dark blocks."""
    plate = np.full((9, 14, 3), 235.0)
    plate[[0, -1]] = plate[:, [0, -1]] = 90.0
    for k, digit in enumerate(f"{room % 1000:03d}"):
        mask = np.array([c == "1" for c in DIGITS[int(digit)]]).reshape(5, 3)
        _stamp(plate, mask, 2, 1 + 4 * k, np.array([30.0, 30.0, 40.0]))
    return plate


def wall_material(kind: int, colour: np.ndarray, rows: np.ndarray, cols: np.ndarray, rail_row: int) -> np.ndarray:
    """Albedo of a wall zone: paint with a dado rail (0), brick (1), wood panels (2), glazed tiles (3),
    pinstripe wallpaper (4) or two-tone paint (5). The building's few materials repeat."""
    shade = np.ones(rows.shape)
    if kind == 0:
        shade += 0.025 * np.sin(rows * 1.7 + cols * 0.9) * np.sin(cols * 0.37 - rows * 0.23)
        shade[(rows >= rail_row - 3) & (rows < rail_row)] = 0.7  # dado rail at 1 m
    elif kind == 1:
        course = rows // 4
        brick = (cols + 6 * (course % 2)) // 12
        shade = 0.8 + 0.35 * ((course * 7919 + brick * 104729) % 97) / 97
        shade[(rows % 4 == 0) | ((cols + 6 * (course % 2)) % 12 == 0)] = 1.6  # light mortar
    elif kind == 2:
        board = cols // 9
        shade = 0.8 + 0.25 * ((board * 7919) % 61) / 61 + 0.06 * np.sin(rows * 0.9 + board * 2.3 + cols * 0.2)
        shade[cols % 9 == 0] = 0.45
    elif kind == 3:
        tile = (rows // 10) * 131 + cols // 10
        shade = 0.92 + 0.12 * ((tile * 7919) % 53) / 53
        shade[(rows % 10 == 0) | (cols % 10 == 0)] = 0.6
    elif kind == 4:
        shade[cols % 6 < 2] = 0.8
    else:
        shade[rows >= rail_row] = 0.65
        shade[(rows >= rail_row - 2) & (rows < rail_row)] = 1.35
    return np.clip(colour * shade[..., None], 0, 255)


PAPER = np.array([[246, 244, 236], [250, 236, 140], [246, 190, 200], [180, 215, 245], [190, 235, 180],
                  [250, 205, 150]], float)
INKS = np.array([[25, 25, 30], [30, 50, 150], [170, 30, 30], [20, 110, 50]], float)


def _scribble(canvas: np.ndarray, rng: np.random.Generator, top: int, left: int, width: int, lines: int,
              colour: np.ndarray, spacing: int = 2) -> None:
    """Lines of handwriting: words as runs of one-texel marks (the finest detail on the walls)."""
    for line in range(lines):
        row = top + line * spacing
        if not 0 <= row < canvas.shape[0]:
            return
        x, end = 0, width - int(rng.integers(0, max(1, width // 3)))
        while x < end:
            n = int(rng.integers(1, 6))
            canvas[row, left + x: left + min(x + n, end)] = colour
            x += n + 1


def _frame(img: np.ndarray, colour, width: int = 1) -> np.ndarray:
    img[:width] = img[-width:] = colour
    img[:, :width] = img[:, -width:] = colour
    return img


def notice_board(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A cork board covered in notes, photos and pins: alike from afar, each its own collage."""
    img = np.zeros((h, w, 3)) + np.array([172.0, 128.0, 82.0])
    for _ in range(int(w * h / 110)):
        nh, nw = int(rng.integers(8, 16)), int(rng.integers(7, 15))
        top, left = int(rng.integers(2, h - nh - 1)), int(rng.integers(2, w - nw - 1))
        if rng.random() < 0.25:  # a photo: white border, a coloured scene
            img[top:top + nh, left:left + nw] = 240.0
            img[top + 1:top + nh - 3, left + 1:left + nw - 1] = random_colour(rng)
            cy, cx = top + 1 + int(rng.integers(0, nh - 4)), left + 1 + int(rng.integers(0, nw - 2))
            img[cy: cy + 3, cx: cx + 3] = random_colour(rng, val=(0.1, 0.9))
            img[top + nh - 3: top + nh, left:left + nw] = 240.0
        else:
            img[top:top + nh, left:left + nw] = PAPER[int(rng.integers(len(PAPER)))]
            ink = INKS[int(rng.integers(len(INKS)))]
            if rng.random() < 0.5:
                img[top + 1:top + 3, left + 1:left + nw - 1] = random_colour(rng, val=(0.2, 0.6))
            _scribble(img, rng, top + 4, left + 1, nw - 2, (nh - 4) // 2, ink)
        img[top, left + nw // 2] = (210.0, 30.0, 30.0)  # pin
    return _frame(img, np.array([110.0, 75.0, 40.0]), 2)


def framed_picture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A framed print: landscape, abstract shapes, a colour-block grid or banded art."""
    h, w = h - 4, w - 4  # inside the frame
    rows, cols = np.mgrid[0:h, 0:w]
    kind = int(rng.integers(4))
    if kind == 0:  # landscape: sky gradient, hills, a sun
        horizon = rng.uniform(0.35, 0.7) * h
        top, low = random_colour(rng, sat=(0.2, 0.7), val=(0.7, 1.0)), random_colour(rng, sat=(0.1, 0.5), val=(0.8, 1.0))
        img = top + (low - top) * (rows / h)[..., None]
        ridge = horizon - rng.uniform(1, 0.3 * h) * np.abs(np.sin(cols * rng.uniform(0.05, 0.3) + rng.uniform(0, 6)))
        img[rows > ridge] = random_colour(rng, sat=(0.3, 0.8), val=(0.25, 0.6))
        img[rows > horizon + 0.15 * h] = random_colour(rng, sat=(0.3, 0.8), val=(0.3, 0.7))
        sy, sx, r = rng.uniform(0.1, 0.3) * h, rng.uniform(0.15, 0.85) * w, rng.uniform(1.5, 0.15 * min(h, w) + 2)
        img[np.hypot(rows - sy, cols - sx) < r] = random_colour(rng, sat=(0.6, 1.0), val=(0.9, 1.0), hue=rng.uniform(0, 0.15))
    elif kind == 1:  # abstract: discs and bars on a ground
        img = np.zeros((h, w, 3)) + random_colour(rng, sat=(0.0, 0.5), val=(0.3, 1.0))
        for _ in range(int(rng.integers(3, 8))):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, 0.35 * min(h, w) + 2)
            shape = np.hypot(rows - cy, cols - cx) < r if rng.random() < 0.5 else \
                (np.abs(rows - cy) < r / 2) & (np.abs(cols - cx) < r * rng.uniform(0.5, 2.5))
            img[shape] = random_colour(rng)
    elif kind == 2:  # colour-block grid with black lines
        xs = np.sort(rng.choice(np.arange(3, w - 3), size=int(rng.integers(1, 4)), replace=False))
        ys = np.sort(rng.choice(np.arange(3, h - 3), size=int(rng.integers(1, 4)), replace=False))
        blocks = np.searchsorted(ys, rows) * 7 + np.searchsorted(xs, cols)
        palette = np.stack([np.full(3, 240.0), np.full(3, 240.0), random_colour(rng), random_colour(rng), random_colour(rng)])
        img = palette[rng.integers(len(palette), size=64)[blocks]]
        img[np.isin(rows, ys) | np.isin(cols, xs)] = 20.0
    else:  # bands of three colours at an angle
        palette = np.stack([random_colour(rng) for _ in range(3)])
        coord = rows * rng.uniform(-1, 1) + cols * rng.uniform(-1, 1)
        img = palette[(np.floor(coord / rng.uniform(2.0, 6.0)).astype(int)) % 3]
    frames = np.array([[25.0, 25.0, 25.0], [190.0, 150.0, 60.0], [120.0, 80.0, 45.0], [235.0, 235.0, 235.0]])
    return _frame(np.pad(img, ((2, 2), (2, 2), (0, 0))), frames[int(rng.integers(4))], 2)


SIGN_COLOURS = np.array([[30, 80, 160], [20, 120, 60], [240, 240, 235], [40, 40, 45]], float)


def _arrow(size: int, direction: int) -> np.ndarray:
    """A filled arrow pointing left (0), right (1) or up (2) in a size × size mask."""
    rows, cols = np.mgrid[0:size, 0:size] - (size - 1) / 2
    along, across = (-cols, rows) if direction == 0 else (cols, rows) if direction == 1 else (-rows, cols)
    head = (along >= 0) & (np.abs(across) <= size / 2 - along)
    shaft = (along < 0) & (np.abs(across) <= size / 8 + 0.5)
    return head | shaft


def wall_sign(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A plaque in one of the building's sign colours: an arrow or pictogram and a line of text."""
    bg = SIGN_COLOURS[int(rng.integers(len(SIGN_COLOURS)))]
    ink = np.full(3, 20.0) if bg.mean() > 150 else np.full(3, 245.0)
    img = np.zeros((h, w, 3)) + bg
    icon = h - 4
    if rng.random() < 0.6:
        _stamp(img, _arrow(icon, int(rng.integers(3))), 2, 2, ink)
    else:
        rows, cols = np.mgrid[0:icon, 0:icon] - (icon - 1) / 2
        _stamp(img, (np.hypot(rows, cols) < icon / 2) & (np.abs(rows) + np.abs(cols) > icon / 4), 2, 2, ink)
    _text(img, rng, (h - 5) // 2, icon + 4, w - icon - 6, 1, ink)
    return _frame(img, ink * 0.5 + bg * 0.5)


def whiteboard(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A whiteboard with marker writing, boxes and circles."""
    img = np.full((h, w, 3), 246.0)
    rows, cols = np.mgrid[0:h, 0:w]
    for _ in range(int(rng.integers(2, 5))):
        ink = INKS[int(rng.integers(len(INKS)))]
        top, left = int(rng.integers(3, h - 10)), int(rng.integers(3, w - 20))
        width = int(rng.integers(12, min(40, w - left - 3)))
        if rng.random() < 0.6:
            _scribble(img, rng, top, left, width, int(rng.integers(2, 5)), ink, spacing=3)
        else:
            cy, cx, r = top + 4, left + width / 2, rng.uniform(3, 7)
            dist = np.hypot(rows - cy, cols - cx) if rng.random() < 0.5 else np.maximum(np.abs(rows - cy),
                                                                                          np.abs(cols - cx))
            img[(dist < r) & (dist >= r - 1)] = ink
    return _frame(img, np.array([175.0, 178.0, 185.0]), 2)


@functools.lru_cache(maxsize=1)
def fixtures() -> dict[str, np.ndarray]:
    """Fittings identical all over the building, NaN where transparent."""
    rows, cols = np.mgrid[0:14, 0:14] - 6.5
    clock = np.full((14, 14, 3), np.nan)
    r = np.hypot(rows, cols)
    clock[r < 7] = 245.0
    clock[(r < 7) & (r >= 6)] = 30.0
    clock[(np.abs(cols) < 0.6) & (rows < 0) & (rows > -5)] = 20.0
    clock[(np.abs(rows) < 0.6) & (cols > 0) & (cols < 4)] = 20.0
    extinguisher = np.full((32, 10, 3), np.nan)
    extinguisher[:11] = (200.0, 25.0, 25.0)  # sign above ...
    extinguisher[2:9, 2:8] = 245.0
    extinguisher[3:8, 4:6] = (200.0, 25.0, 25.0)
    extinguisher[14:32, 1:9] = (185.0, 20.0, 20.0)  # ... and the extinguisher below it
    extinguisher[12:15, 3:7] = 30.0
    extinguisher[18:24, 2:8] = 235.0
    return {"clock": clock, "extinguisher": extinguisher}

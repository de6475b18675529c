"""The demo world: a synthetic indoor floor rendered as equirectangular frames (pure numpy, no I/O).

The world is a ring corridor: a closed loop of four straight corridors around a rectangular block,
as on an office floor, walked clockwise (right turns). It is 2.5D: two walls (the outer wall on the
walker's left, the inner wall on the right), a tiled floor and a ceiling with light panels. Every
pixel ray is intersected in closed form: the horizontal part of a ray depends only on the frame
column, so the walls are found once per column and the rows follow from the ray's elevation.

Coordinates are metres: x = easting, y = northing, z = up (floor at 0). The corridor centreline is
the rectangle (0, 0)-(A, B); the route's arc length `s` starts at its south-west corner and runs
north first (heading 0), then east (90), south (180) and west (270). Wall textures are indexed by
(s, z), so both traversals of the route see the same wall at the same `s`.

Conventions, shared with vidvpr.geometry and vidvpr.trajectory: equirect column centre (col + 0.5)
looks at yaw ``((col + 0.5) / W - 0.5) · 360°`` to the right of the camera heading and row centre
(row + 0.5) at pitch ``(0.5 - (row + 0.5) / H) · 180°``; headings are compass degrees (0 = north,
90 = east, clockwise). A frame rendered at heading h therefore shows compass bearing h + yaw at yaw,
which is what ``view heading = camera heading + view yaw`` assumes.

Content: one place per poster, spread evenly along the route (away from corners), with a
room-number plate beside it. Posters come in series (a shared size, colour scheme, layout and kind
of picture); each design has its own headline, text and picture details, so posters of one series
look alike from afar and are told apart by their fine print. A few places deliberately share a
whole design (perceptual aliasing, like the same fire notice on every corridor), told apart only by
their plates and surroundings. Between the places hang doors with number plates and the clutter of
an office floor, so that every couple of metres of wall at eye level shows something: notice
boards, whiteboards and signs that are each their own, framed prints that hang at several places,
clocks and fire extinguishers that are all alike. Wall materials (paint, two-tone paint, brick,
wood, tiles, wallpaper) in a few colours, doors and floor tiles repeat, as they do in real
buildings. What identifies a place is in the detail (text, notes, numbers, patterns), which is
what video compression removes first.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from vidvpr.demo.definition import PlacesSpec, RouteSpec

RENDER_VERSION = 2  # bump when the pictures change for the same definition (invalidates old renders)
TEXEL_M = 0.02  # wall texture resolution at mip level 0
MIP_LEVELS = 5  # 2, 4, 8, 16, 32 cm texels, chosen per column from the ray's footprint
OUTER, INNER = 0, 1  # wall index: the loop is walked clockwise, so the outer wall is on the left
FLOOR_TILE_M = 0.6
CEILING_TILE_M = 0.6
LIGHT_SPACING_M = 4.0
LIGHT_HALF_M = 0.3
AMBIENT = 0.45  # share of the light that does not fall off with distance
FALLOFF_M = 18.0  # distance over which the rest of the light falls to 1/e
CORNER_MARGIN_M = 2.5  # no poster centre closer than this to a corner of the centreline
MAX_VIEW_M = 400.0  # floor and ceiling farther than this are always behind a wall


@dataclass(frozen=True)
class Place:
    """One poster with its room-number plate."""

    index: int
    s_m: float  # poster centre, route arc length
    wall: int  # OUTER or INNER
    design: int  # equal designs look identical
    room: int  # number on the plate beside the poster


@dataclass(frozen=True)
class WallItem:
    """Something on a wall: a poster, plate, door, notice board, print, sign, whiteboard or fitting."""

    wall: int  # OUTER or INNER
    s_m: float  # centre, route arc length
    width_m: float
    bottom_m: float
    height_m: float
    kind: str
    look: int  # items of one kind with equal `look` look identical (a design, room, print, colour...)


@dataclass(frozen=True)
class CameraPose:
    """Where the 360° camera is: position on the floor plan and compass heading of yaw 0."""

    east_m: float
    north_m: float
    heading_deg: float


@dataclass(frozen=True)
class Lighting:
    """Per-traversal photometry: global gain, RGB tint, and Gaussian sensor noise (luma)."""

    gain: float = 1.0
    tint_rgb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    noise_std: float = 0.0  # in 8-bit levels; 0 = none
    noise_seed: tuple[int, ...] = ()  # e.g. (world seed, traversal index, frame index)


@dataclass(frozen=True, eq=False)
class World:
    """The built world: geometry, places and wall textures (level 0; mipmaps derived lazily)."""

    route: RouteSpec
    seed: int
    places: tuple[Place, ...]
    walls: np.ndarray  # (2, rows, cols, 3) uint8 albedo; row 0 at the wall top, column c covers s in [c, c+1) * texel_s_m
    items: tuple[WallItem, ...] = ()  # what paint_walls hung on the walls

    @property
    def texel_s_m(self) -> float:
        return self.route.length_m / self.walls.shape[2]

    def texel_index(self, s_m: float, z_m: float) -> tuple[int, int]:
        """(row, col) of the level-0 texel showing height `z_m` at arc length `s_m`."""
        row = int(np.clip(math.floor((self.route.wall_height_m - z_m) / TEXEL_M), 0, self.walls.shape[1] - 1))
        return row, int(math.floor((s_m % self.route.length_m) / self.texel_s_m)) % self.walls.shape[2]

    @cached_property
    def mipmaps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All levels packed as RGBA uint32 in one flat array, and per level: start of each wall
        (levels, 2), rows and columns. Each level averages 2×2 texels of the one before."""
        alpha = np.full((*self.walls.shape[:3], 1), 255, np.uint8)
        levels = [np.concatenate([self.walls, alpha], axis=3)]
        for _ in range(1, MIP_LEVELS):
            levels.append(np.stack([cv2.resize(wall, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
                                    for wall in levels[-1]]))
        bases, offset = np.zeros((MIP_LEVELS, 2), np.int64), 0
        for index, rgba in enumerate(levels):
            bases[index] = offset, offset + rgba[0, ..., 0].size
            offset += rgba[..., 0].size
        flat = np.concatenate([rgba.reshape(-1) for rgba in levels]).view(np.uint32)
        return flat, bases, np.array([rgba.shape[1] for rgba in levels]), np.array([rgba.shape[2] for rgba in levels])

    @cached_property
    def plane_textures(self) -> dict[str, tuple[list[np.ndarray], tuple[float, float]]]:
        """Periodic RGBA textures of the floor and ceiling (mip levels) and their texel size (x, y) in m."""
        return {"floor": floor_texture(), "ceiling": ceiling_texture(self.route)}


# ---------------------------------------------------------------- the walker's path


def _direction(bearing_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rad = np.radians(bearing_deg)
    return np.sin(rad), np.cos(rad)


def path_length_m(route: RouteSpec, lateral_offset_m: float) -> float:
    """Length of one loop walked `lateral_offset_m` to the right of the centreline."""
    return route.loop_length_m(lateral_offset_m)


def walker_poses(route: RouteSpec, lateral_offset_m: float,
                 distance_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(east, north, heading) after walking `distance_m` (wrapping around the loop) from the start of the
    west corridor's straight, `lateral_offset_m` right of the centreline, heading along the path."""
    a, b = route.sides_m
    rc, offset = route.corner_radius_m, lateral_offset_m
    radius = rc - offset
    straights = (b - 2 * rc, a - 2 * rc, b - 2 * rc, a - 2 * rc)
    arc = math.pi / 2 * radius
    starts = ((offset, rc), (rc, b - offset), (a - offset, b - rc), (a - rc, offset))
    u = np.mod(np.asarray(distance_m, dtype=float), path_length_m(route, offset))
    east, north, heading = np.empty_like(u), np.empty_like(u), np.empty_like(u)
    u0 = 0.0
    for leg in range(4):
        bearing = 90.0 * leg
        dx, dy = _direction(np.array(bearing))
        (x0, y0), length = starts[leg], straights[leg]
        on = (u >= u0) & (u < u0 + length)
        east[on], north[on], heading[on] = x0 + (u[on] - u0) * dx, y0 + (u[on] - u0) * dy, bearing
        u0 += length
        cx, cy = x0 + length * dx + radius * dy, y0 + length * dy - radius * dx  # centre: to the right
        on = (u >= u0) & (u < u0 + arc) if leg < 3 else (u >= u0)
        turned = np.degrees((u[on] - u0) / radius)
        px, py = _direction(bearing + turned - 90.0)
        east[on], north[on], heading[on] = cx + radius * px, cy + radius * py, np.mod(bearing + turned, 360.0)
        u0 += arc
    return east, north, heading


# ---------------------------------------------------------------- wall textures


def _hsv(hue: float, sat: float, val: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6.0) % 6.0
    return val - val * sat * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _colour(rng: np.random.Generator, sat=(0.45, 0.95), val=(0.45, 0.95), hue: float | None = None) -> np.ndarray:
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
    bg, ink, accent = _colour(look, hue=hue), _colour(look, hue=hue + look.uniform(0.3, 0.7)), _colour(look, val=(0.1, 0.4))
    extra = _colour(look)
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


def plan_places(route: RouteSpec, spec: PlacesSpec, seed: int) -> tuple[Place, ...]:
    """Spread `spec.count` places evenly over the four corridors (in proportion to their length,
    away from the corners); pick walls, shared designs and room numbers from the seed."""
    rng = np.random.default_rng([seed, 2])
    corners = (0.0, *route.corners_s_m)
    usable = [corners[k + 1] - corners[k] - 2 * CORNER_MARGIN_M for k in range(4)]
    quota = np.floor(np.array(usable) / sum(usable) * spec.count).astype(int)
    quota[np.argsort(-(np.array(usable) / sum(usable) * spec.count - quota))[: spec.count - quota.sum()]] += 1
    centres = []
    for k in range(4):
        step = usable[k] / quota[k]
        centres += [corners[k] + CORNER_MARGIN_M + (i + 0.5) * step for i in range(quota[k])]
    walls = rng.permutation(np.arange(spec.count) % 2)
    designs = np.arange(spec.count)
    sharing = rng.choice(spec.count, size=spec.places_sharing, replace=False)
    designs[np.sort(sharing)] = spec.count + np.arange(spec.places_sharing) % max(spec.shared_designs, 1)
    rooms = 100 * (1 + np.searchsorted(np.array(corners[1:]), centres, side="right")) + rng.permutation(spec.count) % 100
    return tuple(Place(i, float(centres[i]), int(walls[i]), int(designs[i]), int(rooms[i])) for i in range(spec.count))


def _material(kind: int, colour: np.ndarray, rows: np.ndarray, cols: np.ndarray, rail_row: int) -> np.ndarray:
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
            img[top + 1:top + nh - 3, left + 1:left + nw - 1] = _colour(rng)
            cy, cx = top + 1 + int(rng.integers(0, nh - 4)), left + 1 + int(rng.integers(0, nw - 2))
            img[cy: cy + 3, cx: cx + 3] = _colour(rng, val=(0.1, 0.9))
            img[top + nh - 3: top + nh, left:left + nw] = 240.0
        else:
            img[top:top + nh, left:left + nw] = PAPER[int(rng.integers(len(PAPER)))]
            ink = INKS[int(rng.integers(len(INKS)))]
            if rng.random() < 0.5:
                img[top + 1:top + 3, left + 1:left + nw - 1] = _colour(rng, val=(0.2, 0.6))
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
        top, low = _colour(rng, sat=(0.2, 0.7), val=(0.7, 1.0)), _colour(rng, sat=(0.1, 0.5), val=(0.8, 1.0))
        img = top + (low - top) * (rows / h)[..., None]
        ridge = horizon - rng.uniform(1, 0.3 * h) * np.abs(np.sin(cols * rng.uniform(0.05, 0.3) + rng.uniform(0, 6)))
        img[rows > ridge] = _colour(rng, sat=(0.3, 0.8), val=(0.25, 0.6))
        img[rows > horizon + 0.15 * h] = _colour(rng, sat=(0.3, 0.8), val=(0.3, 0.7))
        sy, sx, r = rng.uniform(0.1, 0.3) * h, rng.uniform(0.15, 0.85) * w, rng.uniform(1.5, 0.15 * min(h, w) + 2)
        img[np.hypot(rows - sy, cols - sx) < r] = _colour(rng, sat=(0.6, 1.0), val=(0.9, 1.0), hue=rng.uniform(0, 0.15))
    elif kind == 1:  # abstract: discs and bars on a ground
        img = np.zeros((h, w, 3)) + _colour(rng, sat=(0.0, 0.5), val=(0.3, 1.0))
        for _ in range(int(rng.integers(3, 8))):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, 0.35 * min(h, w) + 2)
            shape = np.hypot(rows - cy, cols - cx) < r if rng.random() < 0.5 else \
                (np.abs(rows - cy) < r / 2) & (np.abs(cols - cx) < r * rng.uniform(0.5, 2.5))
            img[shape] = _colour(rng)
    elif kind == 2:  # colour-block grid with black lines
        xs = np.sort(rng.choice(np.arange(3, w - 3), size=int(rng.integers(1, 4)), replace=False))
        ys = np.sort(rng.choice(np.arange(3, h - 3), size=int(rng.integers(1, 4)), replace=False))
        blocks = np.searchsorted(ys, rows) * 7 + np.searchsorted(xs, cols)
        palette = np.stack([np.full(3, 240.0), np.full(3, 240.0), _colour(rng), _colour(rng), _colour(rng)])
        img = palette[rng.integers(len(palette), size=64)[blocks]]
        img[np.isin(rows, ys) | np.isin(cols, xs)] = 20.0
    else:  # bands of three colours at an angle
        palette = np.stack([_colour(rng) for _ in range(3)])
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


# decor between the places: (maker, height range, width range in texels, bottom in m, share)
DECOR = (
    ("notice board", notice_board, (28, 44), (40, 90), 1.0, 0.3),
    ("picture", framed_picture, (18, 40), (18, 50), 1.35, 0.25),
    ("sign", wall_sign, (9, 14), (18, 40), 1.75, 0.15),
    ("whiteboard", whiteboard, (34, 48), (60, 100), 0.95, 0.1),
    ("extinguisher", None, None, None, 0.55, 0.12),
    ("clock", None, None, None, 2.25, 0.08),
)
PRINTS = 60  # framed prints of a world: each hangs at several places


def paint_walls(route: RouteSpec, places: tuple[Place, ...], seed: int) -> tuple[np.ndarray, tuple[WallItem, ...]]:
    """Level-0 textures of both walls: material zones, skirting, posters and plates (the places),
    doors with their number plates, and in between the clutter of an office floor: notice boards,
    whiteboards and signs, each its own; prints, clocks and extinguishers that repeat. Returns the
    textures and the items hung on them."""
    rng = np.random.default_rng([seed, 3])
    cols_total = int(round(route.length_m / TEXEL_M / 2 ** (MIP_LEVELS - 1))) * 2 ** (MIP_LEVELS - 1)
    wall_rows = int(round(route.wall_height_m / TEXEL_M))
    rows_total = -(-wall_rows // 2 ** (MIP_LEVELS - 1)) * 2 ** (MIP_LEVELS - 1)
    texel_s = route.length_m / cols_total
    walls = np.empty((2, rows_total, cols_total, 3), np.uint8)
    palette = [_colour(rng, sat=(0.05, 0.35), val=(0.6, 0.9)) for _ in range(6)]
    rail_row = wall_rows - int(round(1.0 / TEXEL_M))
    for wall in (OUTER, INNER):
        start = 0
        while start < cols_total:
            stop = min(cols_total, start + int(rng.uniform(6.0, 16.0) / texel_s))
            rows, cols = np.mgrid[0:rows_total, start:stop]
            kind = int(rng.choice(6, p=[0.4, 0.15, 0.1, 0.1, 0.1, 0.15]))
            walls[wall, :, start:stop] = _material(kind, palette[int(rng.integers(len(palette)))], rows, cols, rail_row)
            start = stop
    walls[:, wall_rows - 5:] = (60, 55, 50)  # skirting board (and the padding below the floor)
    taken = np.zeros((2, cols_total), bool)
    corners = np.array((0.0, *route.corners_s_m))

    def span(s_m: float, width_px: int) -> np.ndarray:
        first = int(round(s_m / texel_s)) - width_px // 2
        return np.arange(first, first + width_px) % cols_total

    def free(wall: int, s_m: float, width_m: float, margin_m: float) -> bool:
        if np.min(np.abs(corners - s_m)) < route.half_width_m + width_m / 2 + 0.3:
            return False
        return not taken[wall, span(s_m, int((width_m + 2 * margin_m) / texel_s))].any()

    items: list[WallItem] = []

    def put(wall: int, image: np.ndarray, s_m: float, bottom_m: float, margin_m: float, kind: str, look: int) -> None:
        img = image[:, ::-1] if wall == INNER else image  # read left to right from the corridor
        top = wall_rows - int(round(bottom_m / TEXEL_M)) - img.shape[0]
        cols, rows = span(s_m, img.shape[1]), slice(top, top + img.shape[0])
        shown = ~np.isnan(img[..., 0])  # NaN texels are transparent
        texels = walls[wall, rows, cols].transpose(1, 0, 2)  # (rows, cols, 3), a copy
        texels[shown] = np.clip(img[shown], 0, 255).astype(np.uint8)
        walls[wall, rows, cols] = texels.transpose(1, 0, 2)
        taken[wall, span(s_m, img.shape[1] + int(2 * margin_m / texel_s))] = True
        items.append(WallItem(wall, float(s_m % route.length_m), img.shape[1] * TEXEL_M,
                              (wall_rows - top - img.shape[0]) * TEXEL_M, img.shape[0] * TEXEL_M, kind, int(look)))

    for place in places:
        poster = poster_image(seed, place.design)
        bottom = 1.05 + 0.25 * (np.random.default_rng([seed, 4, place.index]).random())
        put(place.wall, poster, place.s_m, bottom, 0.4, "poster", place.design)
        side = 1.0 if place.wall == OUTER else -1.0  # the viewer's right along s
        put(place.wall, room_plate(place.room), place.s_m + side * (poster.shape[1] * TEXEL_M / 2 + 0.35), 1.45,
            0.4, "plate", place.room)
    door_colours = [_colour(rng, sat=(0.2, 0.6), val=(0.3, 0.7)) for _ in range(3)]
    for wall in (OUTER, INNER):
        s, number = float(rng.uniform(3.0, 8.0)), 1
        while s < route.length_m:
            if free(wall, s, 1.08 + 0.7, 0.3):
                colour = int(rng.integers(len(door_colours)))
                door = np.zeros((106, 54, 3)) + door_colours[colour]
                door[:4], door[:, :4], door[:, -4:] = 70.0, 70.0, 70.0
                door[50:53, 42:47] = 200.0  # handle
                door[12:40, 15:39] = door[12:40, 15:39] * 0.55 + 60  # window panel
                put(wall, door, s, 0.0, 0.2, "door", colour)
                # 500-899, so door numbers never repeat the places' (100-499)
                room = 100 * (5 + int(np.searchsorted(corners[1:], s, side="right"))) + 50 * wall + number % 50
                put(wall, room_plate(room), s + (0.75 if wall == OUTER else -0.75), 1.45, 0.1, "plate", room)
                number += 1
            s += float(rng.uniform(4.0, 11.0))
    kit = fixtures()
    prints: dict[int, np.ndarray] = {}
    shares = np.array([entry[-1] for entry in DECOR])
    for wall in (OUTER, INNER):
        s, count = float(rng.uniform(0.0, 1.0)), 0
        while s < route.length_m:
            name, maker, heights, widths, bottom, _ = DECOR[int(rng.choice(len(DECOR), p=shares / shares.sum()))]
            look = 0
            if name == "picture":
                number = look = int(rng.integers(PRINTS))
                if number not in prints:
                    own = np.random.default_rng([seed, 7, number])
                    prints[number] = framed_picture(own, int(own.integers(*heights)), int(own.integers(*widths)))
                image = prints[number]
            elif maker is None:
                image = kit[name]
            else:
                image = None
                size = int(rng.integers(*heights)), int(rng.integers(*widths))
            width = (image.shape[1] if image is not None else size[1]) * TEXEL_M
            lift = float(rng.uniform(-0.1, 0.15)) if maker is not None else 0.0
            if free(wall, s + width / 2, width, 0.15):
                if image is None:  # drawn only when it fits, from its own generator
                    image, look = maker(np.random.default_rng([seed, 5, wall, count]), *size), 2 * count + wall
                    count += 1
                put(wall, image, s + width / 2, bottom + lift, 0.15, name, look)
                s += width + float(rng.uniform(0.2, 1.2))
            else:
                s += 0.25
    return walls, tuple(items)


@functools.lru_cache(maxsize=4)
def build_world(route: RouteSpec, places: PlacesSpec, seed: int) -> World:
    """The world of a seed: places and wall textures (cached: building takes a fraction of a second)."""
    planned = plan_places(route, places, seed)
    walls, items = paint_walls(route, planned, seed)
    return World(route, seed, planned, walls, items)


def _mip_chain(rgb: np.ndarray) -> list[np.ndarray]:
    """RGBA uint8 levels of a periodic texture, each half the size of the previous one."""
    rgba = np.dstack([np.clip(rgb + 0.5, 0, 255).astype(np.uint8), np.full(rgb.shape[:2], 255, np.uint8)])
    levels = [rgba]
    while len(levels) < MIP_LEVELS:
        levels.append(cv2.resize(levels[-1], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    return levels


@functools.lru_cache(maxsize=1)
def floor_texture() -> tuple[list[np.ndarray], tuple[float, float]]:
    """Floor tiles with a per-tile shade and dark grout; the pattern repeats every 8 × 8 tiles."""
    tile_px = int(round(FLOOR_TILE_M / TEXEL_M))
    rows, cols = np.mgrid[0:8 * tile_px, 0:8 * tile_px]
    shade = np.random.default_rng(11).uniform(0.82, 1.18, (8, 8))[rows // tile_px, cols // tile_px]
    shade[(rows % tile_px == 0) | (cols % tile_px == 0)] = 0.55
    return _mip_chain(np.array([150.0, 140.0, 122.0]) * shade[..., None]), (TEXEL_M, TEXEL_M)


def ceiling_texture(route: RouteSpec) -> tuple[list[np.ndarray], tuple[float, float]]:
    """Ceiling tiles with a light panel at every node of the light grid (whose spacing divides the
    rectangle's sides, so the panels run down the middle of every corridor)."""
    a, b = route.sides_m
    period = (a / max(1, round(a / LIGHT_SPACING_M)), b / max(1, round(b / LIGHT_SPACING_M)))
    step = 2 ** (MIP_LEVELS - 1)
    size = [max(step, int(round(p / TEXEL_M / step)) * step) for p in period]
    texel = (period[0] / size[0], period[1] / size[1])
    y, x = (np.mgrid[0:size[1], 0:size[0]] + 0.5) * np.array(texel[::-1])[:, None, None]
    tiles = np.array(period) / np.maximum(1, np.round(np.array(period) / CEILING_TILE_M))
    grid = ((x % tiles[0]) < 0.025) | ((y % tiles[1]) < 0.025)
    lamp = (np.minimum(x, period[0] - x) < LIGHT_HALF_M) & (np.minimum(y, period[1] - y) < LIGHT_HALF_M)
    rgb = np.where(grid[..., None], [170.0, 170.0, 165.0], [214.0, 214.0, 206.0])
    rgb[lamp] = (255.0, 252.0, 240.0)
    return _mip_chain(rgb), texel


# ---------------------------------------------------------------- rendering


@dataclass(frozen=True)
class ColumnHits:
    """Where each frame column's horizontal ray meets a wall."""

    dist_m: np.ndarray  # horizontal distance from the camera
    wall: np.ndarray  # OUTER or INNER
    s_m: np.ndarray  # route arc length of the hit
    cos_incidence: np.ndarray  # |cos| of the angle between the ray and the wall's normal


def _wall_lines(route: RouteSpec) -> list[tuple[str, float, float, float, int, float, float]]:
    """(axis, value, lo, hi, wall, s0, sign): the wall `axis = value` between lo and hi along the
    other axis, with s = s0 + sign * other coordinate."""
    a, b = route.sides_m
    lines = []
    for wall, w in ((OUTER, route.half_width_m), (INNER, -route.half_width_m)):
        lo_x, hi_x, lo_y, hi_y = -w, a + w, -w, b + w
        lines += [("x", -w, lo_y, hi_y, wall, 0.0, 1.0), ("y", b + w, lo_x, hi_x, wall, b, 1.0),
                  ("x", a + w, lo_y, hi_y, wall, a + 2 * b, -1.0), ("y", -w, lo_x, hi_x, wall, 2 * (a + b), -1.0)]
    return lines


def cast_columns(route: RouteSpec, east_m: float, north_m: float, bearings_deg: np.ndarray) -> ColumnHits:
    """Nearest wall along each horizontal ray (compass bearings) from a point inside the corridor."""
    dx, dy = _direction(bearings_deg)
    best = np.full(dx.shape, np.inf)
    wall, s, cos_inc = np.zeros(dx.shape, np.int64), np.zeros(dx.shape), np.zeros(dx.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        for axis, value, lo, hi, wall_id, s0, sign in _wall_lines(route):
            along, across, start, other = (dx, dy, east_m, north_m) if axis == "x" else (dy, dx, north_m, east_m)
            t = (value - start) / along
            hit = other + t * across
            ok = (t > 1e-9) & (t < best) & (hit >= lo) & (hit <= hi)
            best = np.where(ok, t, best)
            wall = np.where(ok, wall_id, wall)
            s = np.where(ok, s0 + sign * hit, s)
            cos_inc = np.where(ok, np.abs(along), cos_inc)
    return ColumnHits(best, wall, np.mod(s, route.length_m), cos_inc)


@functools.lru_cache(maxsize=8)
def _frame_grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Yaw (deg) of each column centre, tan of each row centre's pitch (H, 1), and the column
    index of every pixel as a float32 remap map (H, W)."""
    yaw_deg = ((np.arange(width) + 0.5) / width - 0.5) * 360.0
    pitch = (0.5 - (np.arange(height) + 0.5) / height) * math.pi
    columns = np.broadcast_to(np.arange(width, dtype=np.float32), (height, width)).copy()
    return yaw_deg, np.tan(pitch)[:, None], columns


def _light(dist_m: np.ndarray) -> np.ndarray:
    """Share of full brightness at a 3D distance from the camera (a walker's view of a lit corridor)."""
    return AMBIENT + (1.0 - AMBIENT) * np.exp(-dist_m / FALLOFF_M)


def _render_planes(world: World, pose: CameraPose, dx: np.ndarray, dy: np.ndarray, tan: np.ndarray,
                   out: np.ndarray, colour_gain: np.ndarray) -> None:
    """Ceiling (upper half) and floor (lower half) into `out` (H, W, 4), lit per row.

    Horizontal distance, mip level and light depend only on the row. The textures are periodic,
    so each band of rows with the same mip level is one remap of the wrapped coordinates.
    """
    route = world.route
    height, width = out.shape[:2]
    half = height // 2
    for name, first, above in (("ceiling", 0, route.wall_height_m - route.camera_height_m),
                               ("floor", half, route.camera_height_m)):
        levels, texel = world.plane_textures[name]
        t = np.abs(tan[first: first + half, 0])
        dist = np.minimum(above / np.maximum(t, 1e-9), MAX_VIEW_M)
        sin_cos = t / (1.0 + t * t)  # sin(pitch) cos(pitch): how the pixel stretches radially
        footprint = dist * np.sqrt((2 * math.pi / width) * (math.pi / height) / np.maximum(sin_cos, 1e-9))
        level = np.clip(np.floor(np.log2(np.maximum(footprint / min(texel), 1.0))), 0, len(levels) - 1).astype(int)
        for start, stop in _runs(level):
            tex = levels[level[start]]
            r = dist[start:stop, None].astype(np.float32)
            shrink = 0.5 ** level[start]  # texture pixels per level-0 texel
            map_x = _wrap((np.float32(pose.east_m) + r * dx) * np.float32(shrink / texel[0]), tex.shape[1])
            map_y = _wrap((np.float32(pose.north_m) + r * dy) * np.float32(shrink / texel[1]), tex.shape[0])
            cv2.remap(tex, map_x, map_y, cv2.INTER_LINEAR, dst=out[first + start: first + stop], borderMode=cv2.BORDER_WRAP)
    cv2.multiply(out, _plane_light(width, height, route.wall_height_m - route.camera_height_m, route.camera_height_m,
                                   tuple(colour_gain.tolist())), dst=out, dtype=cv2.CV_8U)


@functools.lru_cache(maxsize=4)
def _plane_light(width: int, height: int, above_m: float, below_m: float, gain_rgb: tuple[float, ...]) -> np.ndarray:
    """Light × colour gain of every ceiling and floor pixel (H, W, 4) float32: it depends only on
    the row (the 3D distance to the plane along the row's pitch), so it is computed once per size."""
    pitch = (0.5 - (np.arange(height) + 0.5) / height) * math.pi
    dist = np.where(pitch > 0, above_m, below_m) / np.maximum(np.abs(np.sin(pitch)), 1e-9)
    rows = np.ones((height, 4))
    rows[:, :3] = _light(np.minimum(dist, MAX_VIEW_M))[:, None] * np.array(gain_rgb)
    return np.ascontiguousarray(np.broadcast_to(rows[:, None, :], (height, width, 4)), dtype=np.float32)


def _wrap(coord: np.ndarray, period: int) -> np.ndarray:
    """Coordinates wrapped into [0, period] (np.mod is 20× slower; remap is slow outside the texture)."""
    return coord - np.floor(coord * np.float32(1 / period)) * np.float32(period)


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of the runs of equal consecutive values."""
    cuts = (np.flatnonzero(np.diff(values)) + 1).tolist()
    return list(zip([0, *cuts], [*cuts, len(values)]))


def render_equirect_frame(world: World, pose: CameraPose, size: tuple[int, int],
                          lighting: Lighting = Lighting()) -> np.ndarray:
    """The 360° view from `pose` as an equirectangular RGB frame (height, width, 3) uint8.

    Deterministic: equal arguments give identical pixels (noise comes from `lighting.noise_seed`).
    """
    width, height = size
    route = world.route
    yaw_deg, tan, columns = _frame_grid(width, height)
    bearings = pose.heading_deg + yaw_deg
    hits = cast_columns(route, pose.east_m, pose.north_m, bearings)
    dx, dy = (v.astype(np.float32) for v in _direction(bearings))
    colour_gain = lighting.gain * np.asarray(lighting.tint_rgb, dtype=float)
    out = np.empty((height, width, 4), np.uint8)
    _render_planes(world, pose, dx, dy, tan, out, colour_gain)
    # walls: one texture column per frame column (mip level from the ray's footprint along the
    # wall), lit per texel by its 3D distance, stretched over the rows where the ray meets the wall
    flat, bases, rows, cols = world.mipmaps
    wall_rows = int(round(route.wall_height_m / TEXEL_M))
    footprint = hits.dist_m * (2 * math.pi / width) / np.maximum(hits.cos_incidence, 0.05)
    level = np.clip(np.floor(np.log2(np.maximum(footprint / TEXEL_M, 1.0))), 0, MIP_LEVELS - 1).astype(np.int64)
    col = np.floor(hits.s_m / (world.texel_s_m * 2.0 ** level)).astype(np.int64) % cols[level]
    row0 = np.arange(wall_rows)[:, None]
    strip = np.take(flat, (row0 >> level) * cols[level] + bases[level, hits.wall] + col).view(np.uint8)
    rise = route.wall_height_m - (row0 + 0.5) * TEXEL_M - route.camera_height_m
    light = _light(np.hypot(hits.dist_m, rise)) * (0.8 + 0.2 * hits.cos_incidence)
    gain = np.append(colour_gain, 1.0).astype(np.float32)
    strip = cv2.multiply(strip.reshape(wall_rows, width, 4), light.astype(np.float32)[..., None] * gain, dtype=cv2.CV_8U)
    above = route.wall_height_m - route.camera_height_m
    dist = hits.dist_m.astype(np.float32)
    map_y = np.float32(above / TEXEL_M - 0.5) - (dist * np.float32(1 / TEXEL_M)) * tan.astype(np.float32)
    np.clip(map_y, -2.0, wall_rows + 1.0, out=map_y)
    walls = cv2.remap(strip, columns, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # the wall covers rows whose pitch lies between its foot and its top (tan falls with the row)
    top = np.searchsorted(-tan[:, 0], -above / hits.dist_m)
    foot = np.searchsorted(-tan[:, 0], route.camera_height_m / hits.dist_m, side="right")
    index = np.arange(height, dtype=np.int32)[:, None]
    on_wall = ((index >= top.astype(np.int32)) & (index < foot.astype(np.int32))).view(np.uint8)
    cv2.copyTo(walls, on_wall, out)
    rgb = cv2.cvtColor(out, cv2.COLOR_RGBA2RGB)
    if lighting.noise_std > 0:  # luma noise in 2×2 blocks (drawing it per pixel costs more than the render)
        noise = np.random.default_rng(lighting.noise_seed).standard_normal((height // 2, width // 2), dtype=np.float32)
        noise = cv2.resize(noise * np.float32(lighting.noise_std), (width, height), interpolation=cv2.INTER_NEAREST)
        rgb = cv2.add(rgb, cv2.merge([noise] * 3), dtype=cv2.CV_8U)
    return rgb

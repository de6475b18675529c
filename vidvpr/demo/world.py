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

Content: one place per poster, spread evenly along the route (away from corners). Each poster has
its own design from a per-design random generator (colour layout, stripes, block grids, shapes and
glyph "text"); a few places deliberately share designs (perceptual aliasing, like the same fire
notice on every corridor), told apart only by their room-number plates. Doors, wall materials
(paint, brick, wood, tiles) and floor tiles repeat, as they do in real buildings.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from vidvpr.demo.definition import PlacesSpec, RouteSpec

RENDER_VERSION = 1  # bump when the pictures change for the same definition (invalidates old renders)
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


def poster_image(seed: int, design: int) -> np.ndarray:
    """The poster of one design as (rows, cols, 3) float texels (level 0), its bottom at row -1."""
    rng = np.random.default_rng([seed, 1, design])
    h, w = int(rng.integers(30, 56)), int(rng.integers(40, 81))
    hue = rng.random()
    bg, ink, accent = _colour(rng, hue=hue), _colour(rng, hue=hue + rng.uniform(0.3, 0.7)), _colour(rng, val=(0.1, 0.4))
    img = np.zeros((h, w, 3)) + bg
    motif = int(rng.integers(4))
    rows, cols = np.mgrid[0:h, 0:w]
    if motif == 0:  # stripes, vertical, horizontal or diagonal
        period = int(rng.integers(4, 12))
        coord = (cols, rows, rows + cols)[int(rng.integers(3))]
        img[(coord // period) % 2 == 1] = ink
    elif motif == 1:  # grid of coloured blocks
        ny, nx = int(rng.integers(2, 5)), int(rng.integers(3, 7))
        palette = np.stack([bg, ink, accent, _colour(rng)])
        cells = rng.integers(len(palette), size=(ny, nx))
        cell = cells[np.minimum(rows * ny // h, ny - 1), np.minimum(cols * nx // w, nx - 1)]
        img[:] = palette[cell]
        img[(rows * ny % h < ny) | (cols * nx % w < nx)] = accent
    elif motif == 2:  # a big shape: disc, ring or diamond
        cy, cx, radius = rng.uniform(0.35, 0.65) * h, rng.uniform(0.3, 0.7) * w, rng.uniform(0.25, 0.45) * min(h, w)
        kind = int(rng.integers(3))
        dist = np.hypot(rows - cy, cols - cx) if kind < 2 else np.abs(rows - cy) + np.abs(cols - cx)
        img[(dist < radius) & ((dist > radius * 0.6) if kind == 1 else True)] = ink
    else:  # a block of text
        for line in range(2, h - 8, 8):
            _text(img, rng, line + 6, 3, w - 6 - int(rng.integers(0, w // 3)), 1, ink)
    band = int(rng.integers(7, 12))  # headline band at the top
    img[:band] = accent
    _text(img, rng, 1 + (band - 5) // 2 if band < 12 else 1, 2, w - 4, 1, bg)
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


def _material(kind: int, colour: np.ndarray, rows: np.ndarray, cols: np.ndarray, rail_row: int,
              rng: np.random.Generator) -> np.ndarray:
    """Albedo of a wall zone: paint (0), brick (1), wood panels (2) or glazed tiles (3)."""
    shade = np.ones(rows.shape)
    if kind == 0:
        shade += rng.normal(0.0, 0.025, rows.shape)
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
    else:
        tile = (rows // 10) * 131 + cols // 10
        shade = 0.92 + 0.12 * ((tile * 7919) % 53) / 53
        shade[(rows % 10 == 0) | (cols % 10 == 0)] = 0.6
    return np.clip(colour * shade[..., None], 0, 255)


def paint_walls(route: RouteSpec, places: tuple[Place, ...], seed: int) -> np.ndarray:
    """Level-0 textures of both walls: material zones, skirting, doors, posters and plates."""
    rng = np.random.default_rng([seed, 3])
    cols_total = int(round(route.length_m / TEXEL_M / 2 ** (MIP_LEVELS - 1))) * 2 ** (MIP_LEVELS - 1)
    wall_rows = int(round(route.wall_height_m / TEXEL_M))
    rows_total = -(-wall_rows // 2 ** (MIP_LEVELS - 1)) * 2 ** (MIP_LEVELS - 1)
    texel_s = route.length_m / cols_total
    walls = np.empty((2, rows_total, cols_total, 3), np.uint8)
    palette = [_colour(rng, sat=(0.05, 0.35), val=(0.6, 0.9)) for _ in range(6)]
    for wall in (OUTER, INNER):
        start = 0
        while start < cols_total:
            stop = min(cols_total, start + int(rng.uniform(8.0, 22.0) / texel_s))
            rows, cols = np.mgrid[0:rows_total, start:stop]
            kind = int(rng.choice(4, p=[0.5, 0.2, 0.15, 0.15]))
            rail_row = wall_rows - int(round(1.0 / TEXEL_M))
            walls[wall, :, start:stop] = _material(kind, palette[int(rng.integers(6))], rows, cols, rail_row, rng)
            start = stop
    walls[:, wall_rows - 5:] = (60, 55, 50)  # skirting board (and the padding below the floor)

    def cols_of(s_m: float, width_px: int) -> int:
        return int(round(s_m / texel_s)) - width_px // 2

    def put(wall: int, image: np.ndarray, s_m: float, bottom_m: float) -> None:
        img = image[:, ::-1] if wall == INNER else image  # read left to right from the corridor
        top = wall_rows - int(round(bottom_m / TEXEL_M)) - img.shape[0]
        idx = np.arange(cols_of(s_m, img.shape[1]), cols_of(s_m, img.shape[1]) + img.shape[1]) % cols_total
        walls[wall, top: top + img.shape[0], idx] = np.clip(img, 0, 255).astype(np.uint8).transpose(1, 0, 2)

    busy: list[list[tuple[float, float]]] = [[], []]
    for place in places:
        poster = poster_image(seed, place.design)
        bottom = 1.05 + 0.25 * (np.random.default_rng([seed, 4, place.index]).random())
        put(place.wall, poster, place.s_m, bottom)
        side = 1.0 if place.wall == OUTER else -1.0  # the viewer's right along s
        plate_s = place.s_m + side * (poster.shape[1] * TEXEL_M / 2 + 0.35)
        put(place.wall, room_plate(place.room), plate_s, 1.45)
        half = poster.shape[1] * TEXEL_M / 2
        busy[place.wall].append((min(place.s_m - half, plate_s - 0.2) - 0.4, max(place.s_m + half, plate_s + 0.2) + 0.4))
    door_colours = [_colour(rng, sat=(0.2, 0.6), val=(0.3, 0.7)) for _ in range(4)]
    corners = np.array((0.0, *route.corners_s_m))
    for wall in (OUTER, INNER):
        s = float(rng.uniform(3.0, 8.0))
        while s < route.length_m:
            near_corner = np.min(np.abs(corners - s)) < route.half_width_m + 1.2
            if not near_corner and not any(lo - 0.6 < s < hi + 0.6 for lo, hi in busy[wall]):
                door = np.zeros((106, 54, 3)) + door_colours[int(rng.integers(4))]
                door[:4], door[:, :4], door[:, -4:] = 70.0, 70.0, 70.0
                door[50:53, 42:47] = 200.0  # handle
                door[12:40, 15:39] = door[12:40, 15:39] * 0.55 + 60  # window panel
                put(wall, door, s, 0.0)
            s += float(rng.uniform(4.0, 11.0))
    return walls


@functools.lru_cache(maxsize=4)
def build_world(route: RouteSpec, places: PlacesSpec, seed: int) -> World:
    """The world of a seed: places and wall textures (cached: building takes a fraction of a second)."""
    planned = plan_places(route, places, seed)
    return World(route, seed, planned, paint_walls(route, planned, seed))


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

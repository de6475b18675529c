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

from vidvpr.demo.artwork import (
    fixtures,
    framed_picture,
    notice_board,
    poster_image,
    random_colour,
    room_plate,
    wall_material,
    wall_sign,
    whiteboard,
)
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
    """Per-traversal photometry: global gain, RGB tint, Gaussian sensor noise (luma), and the scene's
    light: "day" (the ceiling lights) or "night" (a few lamps and the camera's own; vidvpr.demo.lighting)."""

    gain: float = 1.0
    tint_rgb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    noise_std: float = 0.0  # in 8-bit levels; 0 = none
    noise_seed: tuple[int, ...] = ()  # e.g. (world seed, traversal index, frame index)
    scene: str = "day"


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


def direction_xy(bearing_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
        dx, dy = direction_xy(np.array(bearing))
        (x0, y0), length = starts[leg], straights[leg]
        on = (u >= u0) & (u < u0 + length)
        east[on], north[on], heading[on] = x0 + (u[on] - u0) * dx, y0 + (u[on] - u0) * dy, bearing
        u0 += length
        cx, cy = x0 + length * dx + radius * dy, y0 + length * dy - radius * dx  # centre: to the right
        on = (u >= u0) & (u < u0 + arc) if leg < 3 else (u >= u0)
        turned = np.degrees((u[on] - u0) / radius)
        px, py = direction_xy(bearing + turned - 90.0)
        east[on], north[on], heading[on] = cx + radius * px, cy + radius * py, np.mod(bearing + turned, 360.0)
        u0 += arc
    return east, north, heading


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
    palette = [random_colour(rng, sat=(0.05, 0.35), val=(0.6, 0.9)) for _ in range(6)]
    rail_row = wall_rows - int(round(1.0 / TEXEL_M))
    for wall in (OUTER, INNER):
        start = 0
        while start < cols_total:
            stop = min(cols_total, start + int(rng.uniform(6.0, 16.0) / texel_s))
            rows, cols = np.mgrid[0:rows_total, start:stop]
            kind = int(rng.choice(6, p=[0.4, 0.15, 0.1, 0.1, 0.1, 0.15]))
            walls[wall, :, start:stop] = wall_material(kind, palette[int(rng.integers(len(palette)))], rows, cols, rail_row)
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
    door_colours = [random_colour(rng, sat=(0.2, 0.6), val=(0.3, 0.7)) for _ in range(3)]
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

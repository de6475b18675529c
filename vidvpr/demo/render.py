"""Rendering the demo world as equirectangular frames: walls found per column in closed form,
floor and ceiling per row from the ray's elevation, mip-mapped textures, lights and sensor
noise (pure numpy and OpenCV, no I/O). Conventions: see `vidvpr.demo.world`."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from vidvpr.demo.definition import RouteSpec
from vidvpr.demo.world import (
    AMBIENT,
    FALLOFF_M,
    INNER,
    MAX_VIEW_M,
    MIP_LEVELS,
    OUTER,
    TEXEL_M,
    CameraPose,
    Lighting,
    World,
    direction_xy,
)
from vidvpr.demo.lighting import night_plane_light, night_wall_light


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
    dx, dy = direction_xy(bearings_deg)
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
                   out: np.ndarray, colour_gain: np.ndarray, night: bool = False) -> None:
    """Ceiling (upper half) and floor (lower half) into `out` (H, W, 4), lit per row by day, per
    pixel at night (`vidvpr.demo.lighting`).

    Horizontal distance and mip level depend only on the row. The textures are periodic, so each
    band of rows with the same mip level is one remap of the wrapped coordinates.
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
    if night:
        light = night_plane_light(world, pose, dx, dy, tan, MAX_VIEW_M)[..., None] * np.append(colour_gain, 0.0)
        cv2.multiply(out, (light + np.array([0, 0, 0, 1], np.float32)).astype(np.float32), dst=out, dtype=cv2.CV_8U)
        return
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
    dx, dy = (v.astype(np.float32) for v in direction_xy(bearings))
    colour_gain = lighting.gain * np.asarray(lighting.tint_rgb, dtype=float)
    out = np.empty((height, width, 4), np.uint8)
    night = lighting.scene == "night"
    _render_planes(world, pose, dx, dy, tan, out, colour_gain, night)
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
    if night:
        light = night_wall_light(world, pose, hits.dist_m, dx, dy, hits.cos_incidence, rise)
    else:
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

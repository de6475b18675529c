"""Night in the demo world: the ceiling lights off but for a few scattered lamps, and the camera's
own light falling off with distance (pure numpy, no I/O).

By day the renderer lights every surface by the ceiling panels, which hang everywhere, so light
depends only on the distance from the camera (`vidvpr.demo.render`). At night it depends on where
the surface is: each lamp and the camera's light give an irradiance that falls off with distance,

    E(p) = NIGHT_AMBIENT + CAMERA_POWER / (1 + |p - camera|² / CAMERA_REACH_M²)
                         + Σ_lamps LAMP_POWER / (1 + |p - lamp|² / LAMP_REACH_M²)

(a point light's inverse square, softened near the source), summed in linear light. Textures hold
display values (gamma 2.2), so a surface of display value v lit by E shows v · E^(1/2.2): the light
is turned into that display-space factor before it multiplies the texture. A lit lamp's ceiling
panel glows (factor 1). Lamps are nodes of the ceiling's light grid on the corridors' centreline,
chosen from the world's seed, so every night walk of a world passes the same lamps. The walk's
exposure (`lighting_gain`), tint and sensor noise are applied by the renderer as by day.
"""

from __future__ import annotations

import functools

import numpy as np

from vidvpr.demo.definition import RouteSpec
from vidvpr.demo.world import LIGHT_HALF_M, LIGHT_SPACING_M, CameraPose, World

LAMP_SHARE = 0.15  # share of the ceiling panels on the corridors' centreline left on at night
LAMP_POWER = 1.2  # linear irradiance a lamp gives at distance 0 (day light on a near wall is about 1)
LAMP_REACH_M = 1.5  # distance at which a lamp's light has halved
CAMERA_POWER = 0.15  # the camera's own light
CAMERA_REACH_M = 1.5
NIGHT_AMBIENT = 0.002  # what is left everywhere (exit signs, windows)
LAMP_CUTOFF_M = 40.0  # lamps farther than this from the camera are left out (under 0.2% of their light reaches)
DISPLAY_GAMMA = 2.2


@functools.lru_cache(maxsize=8)
def night_lamps(route: RouteSpec, seed: int) -> np.ndarray:
    """(n, 3) positions of the lamps left on at night: ceiling light-grid nodes on the centreline
    (east, north, just below the ceiling), each on with probability LAMP_SHARE, from the seed."""
    a, b = route.sides_m
    period = (a / max(1, round(a / LIGHT_SPACING_M)), b / max(1, round(b / LIGHT_SPACING_M)))
    nodes = {(0.0, round(k * period[1], 6)) for k in range(round(b / period[1]) + 1)}
    nodes |= {(round(a, 6), round(k * period[1], 6)) for k in range(round(b / period[1]) + 1)}
    nodes |= {(round(k * period[0], 6), 0.0) for k in range(round(a / period[0]) + 1)}
    nodes |= {(round(k * period[0], 6), round(b, 6)) for k in range(round(a / period[0]) + 1)}
    ordered = np.array(sorted(nodes), dtype=np.float64)
    on = np.random.default_rng([seed, 9]).random(len(ordered)) < LAMP_SHARE
    lamps = np.zeros((int(on.sum()), 3))
    lamps[:, :2] = ordered[on]
    lamps[:, 2] = route.wall_height_m - 0.02
    return lamps


def _near_lamps(world: World, pose: CameraPose) -> np.ndarray:
    lamps = night_lamps(world.route, world.seed)
    near = np.hypot(lamps[:, 0] - pose.east_m, lamps[:, 1] - pose.north_m) < LAMP_CUTOFF_M
    return lamps[near].astype(np.float32)


def irradiance(lamps: np.ndarray, camera_xyz: tuple[float, float, float], x: np.ndarray, y: np.ndarray,
               z: np.ndarray | float) -> np.ndarray:
    """Linear night irradiance at surface points (x, y, z) (broadcast together), float32."""
    cx, cy, cz = (np.float32(v) for v in camera_xyz)
    out = np.float32(NIGHT_AMBIENT) + np.float32(CAMERA_POWER) / (
        1 + ((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) * np.float32(1 / CAMERA_REACH_M ** 2))
    for lx, ly, lz in lamps:
        out = out + np.float32(LAMP_POWER) / (
            1 + ((x - lx) ** 2 + (y - ly) ** 2 + (z - lz) ** 2) * np.float32(1 / LAMP_REACH_M ** 2))
    return out.astype(np.float32, copy=False)


def to_display(linear: np.ndarray) -> np.ndarray:
    """The display-space factor of a linear light level (what multiplies a gamma-2.2 texture)."""
    return np.power(np.maximum(linear, 0, dtype=np.float32), np.float32(1 / DISPLAY_GAMMA))


def night_wall_light(world: World, pose: CameraPose, dist_m: np.ndarray, dx: np.ndarray, dy: np.ndarray,
                     cos_incidence: np.ndarray, rise_m: np.ndarray) -> np.ndarray:
    """Display-space light (rows, W) of the wall texels a frame's columns hit: column c's ray meets
    the wall `dist_m[c]` away along (dx, dy)[c]; texel row r is `rise_m[r]` above the camera."""
    route = world.route
    x = (pose.east_m + dist_m * dx).astype(np.float32)[None, :]
    y = (pose.north_m + dist_m * dy).astype(np.float32)[None, :]
    z = (route.camera_height_m + rise_m).astype(np.float32).reshape(-1, 1)
    linear = irradiance(_near_lamps(world, pose), (pose.east_m, pose.north_m, route.camera_height_m), x, y, z)
    return to_display(linear) * (0.8 + 0.2 * cos_incidence).astype(np.float32)[None, :]


def night_plane_light(world: World, pose: CameraPose, dx: np.ndarray, dy: np.ndarray, tan: np.ndarray,
                      max_view_m: float) -> np.ndarray:
    """Display-space light (H, W) of the ceiling (upper half) and floor (lower half) pixels of a
    frame whose columns look along (dx, dy) and rows at pitch atan(tan); lit lamp panels glow (1)."""
    route = world.route
    height, half = tan.shape[0], tan.shape[0] // 2
    lamps = _near_lamps(world, pose)
    out = np.empty((height, dx.shape[0]), np.float32)
    camera = (pose.east_m, pose.north_m, route.camera_height_m)
    for first, z, above in ((0, route.wall_height_m, route.wall_height_m - route.camera_height_m),
                            (half, 0.0, route.camera_height_m)):
        t = np.abs(tan[first:first + half, 0]).astype(np.float32)
        r = np.minimum(np.float32(above) / np.maximum(t, np.float32(1e-9)), np.float32(max_view_m))[:, None]
        x = np.float32(pose.east_m) + r * dx.astype(np.float32)[None, :]
        y = np.float32(pose.north_m) + r * dy.astype(np.float32)[None, :]
        light = to_display(irradiance(lamps, camera, x, y, np.float32(z)))
        if z > 0:  # the ceiling: lamps that are on glow
            for lx, ly, _ in lamps:
                panel = (np.abs(x - lx) < LIGHT_HALF_M) & (np.abs(y - ly) < LIGHT_HALF_M)
                light[panel] = 1.0
        out[first:first + half] = light
    return out

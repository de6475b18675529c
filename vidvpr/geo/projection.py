"""Equirectangular ↔ perspective geometry as pure functions (no I/O).

Conventions, written once and tested (tests/test_geometry.py):

* Equirectangular frame of W×H pixels; pixel (col, row) covers [col, col+1) × [row, row+1) and its
  centre (col + 0.5, row + 0.5) looks at longitude ``((col + 0.5) / W - 0.5) · 360°`` and latitude
  ``(0.5 - (row + 0.5) / H) · 180°``. Yaw 0 is the centre column; positive yaw turns right (towards
  larger columns); positive pitch looks up. This matches py360convert's ``u_deg``/``v_deg`` and
  ffmpeg's v360 ``yaw``/``pitch``.
* Perspective view: exact pinhole, square pixels, principal point at the image centre, pixel
  centres at (i + 0.5, j + 0.5): ``fx = fy = (W/2) / tan(hfov/2)``, ``cx = W/2``, ``cy = H/2``.
  The vertical field of view follows from the size: ``vfov = 2·atan((H/2) / fy)``.
  ffmpeg's v360 also samples at pixel centres; py360convert spreads the field of view between the
  outer pixel centres instead, which differs by half a pixel at the border.
* Camera axes for rays: x right, y up, z forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_FOV_DEG = 1.0
MAX_FOV_DEG = 179.0


@dataclass(frozen=True)
class PinholeIntrinsics:
    """Intrinsics of a perspective view in pixels (OpenCV convention, pixel centres at +0.5)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    hfov_deg: float
    vfov_deg: float

    def matrix(self) -> list[list[float]]:
        """The 3×3 camera matrix K as nested lists (JSON-friendly)."""
        return [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]]


def pinhole_intrinsics(width: int, height: int, hfov_deg: float) -> PinholeIntrinsics:
    """Intrinsics of a `width`×`height` view with horizontal field of view `hfov_deg`."""
    fx = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    vfov_deg = math.degrees(2.0 * math.atan((height / 2.0) / fx))
    return PinholeIntrinsics(width, height, fx, fx, width / 2.0, height / 2.0, float(hfov_deg), vfov_deg)


def floor_to_multiple(value: float, multiple: int) -> int:
    """Largest positive multiple of `multiple` not above `value` (at least `multiple`)."""
    return max(multiple, int(math.floor(value / multiple + 1e-9)) * multiple)


def default_view_size(src_width: int, hfov_deg: float, aspect: float = 16 / 9, multiple: int = 16) -> tuple[int, int]:
    """View size whose centre has the source's angular resolution, so nothing is upsampled.

    Equirectangular: src_width / 2π pixels per radian. Pinhole centre: fx = (W/2)/tan(hfov/2)
    pixels per radian. Equal when W = src_width · tan(hfov/2) / π; both sides are rounded down
    to a multiple of 16 so the view never asks for more detail than the source has. A
    5760-wide Insta360 export at 90° gives 1824×1024.
    """
    width = floor_to_multiple(src_width * math.tan(math.radians(hfov_deg) / 2.0) / math.pi, multiple)
    height = floor_to_multiple(width / aspect, multiple)
    return width, height


def view_rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Rotation taking camera-frame rays (x right, y up, z forward) into the world frame.

    Pitch first (about the camera x axis, positive looks up), then yaw (about the vertical
    axis, positive turns right).
    """
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    cp, sp, cy, sy = math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw)
    pitch_up = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    yaw_right = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    return yaw_right @ pitch_up


def perspective_rays(intrinsics: PinholeIntrinsics) -> np.ndarray:
    """Unit-less camera rays (H, W, 3) through every pixel centre of the view."""
    cols = (np.arange(intrinsics.width) + 0.5 - intrinsics.cx) / intrinsics.fx
    rows = (intrinsics.cy - (np.arange(intrinsics.height) + 0.5)) / intrinsics.fy
    x, y = np.meshgrid(cols, rows)
    return np.stack([x, y, np.ones_like(x)], axis=-1)


def view_world_rays(width: int, height: int, yaw_deg: float, pitch_deg: float, hfov_deg: float) -> np.ndarray:
    """World-frame rays (H, W, 3) through the pixel centres of a perspective view."""
    return perspective_rays(pinhole_intrinsics(width, height, hfov_deg)) @ view_rotation(yaw_deg, pitch_deg).T


def world_rays_to_lon_lat(rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude (right positive) and latitude (up positive) in radians of world-frame rays."""
    x, y, z = rays[..., 0], rays[..., 1], rays[..., 2]
    return np.arctan2(x, z), np.arctan2(y, np.hypot(x, z))


def lon_lat_to_equirect_pixel(lon: np.ndarray, lat: np.ndarray, src_width: int, src_height: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous source coordinates in OpenCV's remap convention (integer = pixel centre)."""
    map_x = (lon / (2.0 * math.pi) + 0.5) * src_width - 0.5
    map_y = (0.5 - lat / math.pi) * src_height - 0.5
    return map_x, map_y


def equirect_to_perspective_maps(
    src_width: int,
    src_height: int,
    out_width: int,
    out_height: int,
    yaw_deg: float,
    pitch_deg: float,
    hfov_deg: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Source sampling maps (float32, H×W each) for one perspective view of an equirect frame.

    ``map_x`` wraps across the ±180° seam (sample with a wrapping border); ``map_y`` is clamped
    to the first and last row centre, since rows beyond the poles do not exist.
    """
    rays = view_world_rays(out_width, out_height, yaw_deg, pitch_deg, hfov_deg)
    lon, lat = world_rays_to_lon_lat(rays)
    map_x, map_y = lon_lat_to_equirect_pixel(lon, lat, src_width, src_height)
    map_x = np.mod(map_x + 0.5, src_width) - 0.5
    map_y = np.clip(map_y, 0.0, src_height - 1.0)
    return map_x.astype(np.float32), map_y.astype(np.float32)


def sample_bilinear(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Exact float64 bilinear sampling with horizontal wrap and vertical clamp.

    The reference every faster remap is measured against (OpenCV quantises weights to 1/32 px).
    """
    src = image.astype(np.float64)
    height, width = src.shape[:2]
    x0 = np.floor(map_x).astype(np.int64)
    y0 = np.floor(map_y).astype(np.int64)
    fx = (map_x - x0)[..., None] if src.ndim == 3 else map_x - x0
    fy = (map_y - y0)[..., None] if src.ndim == 3 else map_y - y0
    xa, xb = np.mod(x0, width), np.mod(x0 + 1, width)
    ya, yb = np.clip(y0, 0, height - 1), np.clip(y0 + 1, 0, height - 1)
    top = src[ya, xa] * (1 - fx) + src[ya, xb] * fx
    bottom = src[yb, xa] * (1 - fx) + src[yb, xb] * fx
    return top * (1 - fy) + bottom * fy


def direction_to_view_pixel(
    lon_deg: float, lat_deg: float, yaw_deg: float, pitch_deg: float, intrinsics: PinholeIntrinsics
) -> tuple[float, float] | None:
    """Continuous pixel (x, y) (pixel centres at +0.5) where a world direction lands in a view,
    or None when it is behind the camera."""
    lon, lat = math.radians(lon_deg), math.radians(lat_deg)
    world = np.array([math.cos(lat) * math.sin(lon), math.sin(lat), math.cos(lat) * math.cos(lon)])
    camera = view_rotation(yaw_deg, pitch_deg).T @ world
    if camera[2] <= 1e-9:
        return None
    return (intrinsics.cx + intrinsics.fx * camera[0] / camera[2],
            intrinsics.cy - intrinsics.fy * camera[1] / camera[2])

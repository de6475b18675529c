"""Dual-fisheye geometry as pure functions (no I/O): the equidistant lens model, a two-lens rig's
sampling maps for any set of viewing rays, and the seam blend between the lenses.

Conventions, shared with `vidvpr.geo.projection` (tests/test_fisheye_maths.py pins them):

* Rays are in the camera body's frame: x right, y up, z forward. Yaw 0 (the equirect centre
  column, the forward view) is lens 0's axis; lens 1 faces backward (yaw 180°).
* A lens's own frame: x towards image-right, y towards image-up, z out of the lens. Its rotation
  into the body is ``Ry(facing_yaw) · Ry(yaw) · Rx(pitch) · Rz(roll)``: the lens's small mounting
  rotations (positive pitch tilts its axis up, positive yaw turns it right, positive roll turns
  its image-right axis up) applied in its own frame, then the nominal facing.
* Equidistant fisheye: a ray at angle θ from the lens axis lands ``radius_px · θ / (fov/2)`` from
  the image-circle centre, in the direction of its azimuth; the circle's rim is θ = fov/2.
* Image coordinates are continuous with pixel centres at +0.5 (pixel (i, j) covers [i, i+1));
  OpenCV's maps (integer = pixel centre) are these minus 0.5.

A direction seen by both lenses (the overlap, fov > 180°) is blended across the seam, the great
circle halfway between the two axes, with weights that ramp linearly over `feather_deg` and sum
to one; a lens whose circle does not reach a direction, or whose sample would fall outside its
part of the frame, gets no weight there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

SEAM_FEATHER_DEG = 10.0  # width of the blend band across the seam (the overlap of 200° lenses is 20°)


def rotation_x(angle_deg: float) -> np.ndarray:
    """Rotation about x; positive turns +z towards +y (looks up)."""
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def rotation_y(angle_deg: float) -> np.ndarray:
    """Rotation about y; positive turns +z towards +x (turns right)."""
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rotation_z(angle_deg: float) -> np.ndarray:
    """Rotation about z; positive turns +x towards +y."""
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def lens_rotation(facing_yaw_deg: float, pitch_deg: float = 0.0, yaw_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """Lens-to-body rotation: the lens's own pitch, yaw and roll, then its nominal facing."""
    return rotation_y(facing_yaw_deg) @ rotation_y(yaw_deg) @ rotation_x(pitch_deg) @ rotation_z(roll_deg)


@dataclass(frozen=True)
class FisheyeLens:
    """One equidistant fisheye lens on a source image.

    `bounds` (x0, y0, x1, y1) is the part of its stream's image that belongs to this lens (its
    half of a side-by-side frame); samples are kept inside it.
    """

    stream: int
    centre_x_px: float
    centre_y_px: float
    radius_px: float
    fov_deg: float
    rotation: np.ndarray  # lens → body
    bounds: tuple[float, float, float, float]

    @property
    def half_fov_rad(self) -> float:
        return math.radians(self.fov_deg) / 2.0

    @property
    def pixels_per_radian(self) -> float:
        return self.radius_px / self.half_fov_rad

    def scaled(self, factor: float) -> FisheyeLens:
        """The same lens on an image scaled by `factor` (the chroma planes: 0.5)."""
        x0, y0, x1, y1 = self.bounds
        return replace(self, centre_x_px=self.centre_x_px * factor, centre_y_px=self.centre_y_px * factor,
                       radius_px=self.radius_px * factor, bounds=(x0 * factor, y0 * factor, x1 * factor, y1 * factor))


def ray_angles(lens: FisheyeLens, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(θ from the lens axis, azimuth in the lens image) of body-frame rays (..., 3), radians."""
    local = rays @ lens.rotation  # row vectors: (R^T r)^T = r^T R
    x, y, z = local[..., 0], local[..., 1], local[..., 2]
    return np.arctan2(np.hypot(x, y), z), np.arctan2(y, x)


def project(lens: FisheyeLens, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Continuous image coordinates (x, y) where body-frame rays land, and their angle θ from the axis."""
    theta, azimuth = ray_angles(lens, rays)
    radius = lens.pixels_per_radian * theta
    return lens.centre_x_px + radius * np.cos(azimuth), lens.centre_y_px - radius * np.sin(azimuth), theta


def unproject(lens: FisheyeLens, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Body-frame unit rays (..., 3) through continuous image coordinates (inverse of `project`)."""
    dx, dy = np.asarray(x, dtype=np.float64) - lens.centre_x_px, lens.centre_y_px - np.asarray(y, dtype=np.float64)
    theta = np.hypot(dx, dy) / lens.pixels_per_radian
    azimuth = np.arctan2(dy, dx)
    local = np.stack([np.sin(theta) * np.cos(azimuth), np.sin(theta) * np.sin(azimuth), np.cos(theta)], axis=-1)
    return local @ lens.rotation.T


def seam_offset_deg(lenses: tuple[FisheyeLens, FisheyeLens], rays: np.ndarray) -> np.ndarray:
    """How far each ray lies from the seam towards lens 0's axis: (θ1 − θ0) / 2 in degrees."""
    theta0, _ = ray_angles(lenses[0], rays)
    theta1, _ = ray_angles(lenses[1], rays)
    return np.degrees(theta1 - theta0) / 2.0


@dataclass(frozen=True)
class LensSamples:
    """Where one lens samples for each output pixel (OpenCV map convention) and with what weight."""

    stream: int
    map_x: np.ndarray  # float32
    map_y: np.ndarray
    weight: np.ndarray  # float32, the lenses' weights sum to 1


def _inside(lens: FisheyeLens, x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = lens.bounds
    return (theta <= lens.half_fov_rad) & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def blend_weights(offset_deg: np.ndarray, seen0: np.ndarray, seen1: np.ndarray, feather_deg: float) -> np.ndarray:
    """Lens 0's weight from the seam offset: a linear ramp over the feather where both lenses see
    the direction, 1 or 0 where only one does, and the nearer lens where neither does."""
    if feather_deg > 0:
        ramp = np.clip(0.5 + offset_deg / feather_deg, 0.0, 1.0)
    else:
        ramp = (offset_deg >= 0).astype(np.float64)
    nearer = (offset_deg >= 0).astype(np.float64)
    return np.where(seen0 & seen1, ramp, np.where(seen0, 1.0, np.where(seen1, 0.0, nearer)))


def rig_samples(lenses: tuple[FisheyeLens, FisheyeLens], rays: np.ndarray,
                feather_deg: float = SEAM_FEATHER_DEG) -> list[LensSamples]:
    """Each lens's sampling maps and weights for body-frame rays (H, W, 3); a lens with no weight
    anywhere is left out, so a view inside one hemisphere samples one lens only."""
    projected = [project(lens, rays) for lens in lenses]
    seen = [_inside(lens, x, y, theta) for lens, (x, y, theta) in zip(lenses, projected)]
    weight0 = blend_weights(seam_offset_deg(lenses, rays), seen[0], seen[1], feather_deg)
    samples = []
    for lens, (x, y, _), weight in zip(lenses, projected, (weight0, 1.0 - weight0)):
        if not np.any(weight > 0):
            continue
        x0, y0, x1, y1 = lens.bounds
        # kept inside the lens's own part of the frame: never a pixel of the other lens
        map_x = np.clip(x, x0 + 0.5, x1 - 0.5) - 0.5
        map_y = np.clip(y, y0 + 0.5, y1 - 0.5) - 0.5
        samples.append(LensSamples(lens.stream, map_x.astype(np.float32), map_y.astype(np.float32),
                                   weight.astype(np.float32)))
    return samples


def equirect_rays(width: int, height: int) -> np.ndarray:
    """Body-frame rays (H, W, 3) through the pixel centres of a `width` × `height` equirect frame."""
    lon = ((np.arange(width) + 0.5) / width - 0.5) * 2.0 * math.pi
    lat = (0.5 - (np.arange(height) + 0.5) / height) * math.pi
    lon_grid, lat_grid = np.meshgrid(lon, lat)
    cos_lat = np.cos(lat_grid)
    return np.stack([cos_lat * np.sin(lon_grid), np.sin(lat_grid), cos_lat * np.cos(lon_grid)], axis=-1)


def lens_image_rays(lens: FisheyeLens) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
    """Rays through every pixel centre of the lens's part of the frame, whether each lies inside
    the image circle, and that part's (rows, cols): what a renderer needs to draw the lens."""
    x0, y0, x1, y1 = (int(round(value)) for value in lens.bounds)
    cols, rows = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
    inside = np.hypot(cols - lens.centre_x_px, rows - lens.centre_y_px) <= lens.radius_px
    return unproject(lens, cols, rows), inside, (slice(y0, y1), slice(x0, x1))


def rig_on_streams(facings_deg: tuple[float, float], centres_px: tuple[tuple[float, float], tuple[float, float]],
                   radii_px: tuple[float, float], fov_deg: float, angles_deg: tuple[tuple[float, float, float], ...],
                   lens_size: tuple[int, int], side_by_side: bool) -> tuple[FisheyeLens, FisheyeLens]:
    """The two lenses of a rig on its stream(s): side by side in one `2w` × `h` frame (lens 1 on the
    right half), or one `w` × `h` stream each. `angles_deg` are each lens's (pitch, yaw, roll)."""
    width, height = lens_size
    lenses = []
    for index in range(2):
        x0 = index * width if side_by_side else 0
        lenses.append(FisheyeLens(0 if side_by_side else index, centres_px[index][0], centres_px[index][1],
                                  radii_px[index], fov_deg, lens_rotation(facings_deg[index], *angles_deg[index]),
                                  (float(x0), 0.0, float(x0 + width), float(height))))
    return lenses[0], lenses[1]

"""The camera of imported footage: from a field of view, from intrinsics, or from an OpenCV
calibration file; its pinhole model as vidvpr records it; undistortion maps.

Conventions. Matrices and distortion coefficients are kept as OpenCV has them: the centre of
pixel i is at coordinate i, coefficients k1 k2 p1 p2 [k3 [k4 k5 k6 [s1 s2 s3 s4 [tx ty]]]]. The
sidecar's `geometry.intrinsics` uses vidvpr's convention (pixel i's centre at i + 0.5, the one
`vidvpr slice` writes), so cx and cy there are OpenCV's + 0.5.

Calibration files: YAML as OpenCV's cv2.FileStorage writes it (`camera_matrix` and
`distortion_coefficients` as `!!opencv-matrix`, the names OpenCV's calibration sample uses) or as
ROS camera_info files have it (the same keys as plain maps of rows, cols and data); `K`/`D` and
`cameraMatrix`/`distCoeffs` are accepted too. Or JSON with `camera_matrix` (3x3 rows, 9 numbers,
or {"data": [...]}) and `distortion` (or `dist_coeffs`, `distortion_coefficients`). Optional
`image_width` and `image_height` (or `image_size` [w, h]) say what size it was made at.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vidvpr.core.errors import BadInput
from vidvpr.core.records import read_json_object, read_text_file

MATRIX_KEYS = ("camera_matrix", "cameraMatrix", "K")
DISTORTION_KEYS = ("distortion_coefficients", "distortion", "dist_coeffs", "distCoeffs", "D")
DISTORTION_COUNTS = (0, 4, 5, 8, 12, 14)  # the lengths cv2.undistort accepts
DEFAULT_UNDISTORT_ALPHA = 0.0  # cv2.getOptimalNewCameraMatrix: 0 = only pixels with picture, no black corners
MIN_HFOV_DEG, MAX_HFOV_DEG = 0.0, 180.0  # exclusive


@dataclass(frozen=True)
class Camera:
    """A camera model for frames of `width` x `height` (OpenCV pixel convention)."""

    width: int
    height: int
    matrix: tuple[tuple[float, float, float], ...]  # 3x3
    distortion: tuple[float, ...]
    given_by: str
    calibration: Path | None = None
    calibration_size: tuple[int, int] | None = None

    @property
    def fx(self) -> float:
        return self.matrix[0][0]

    @property
    def fy(self) -> float:
        return self.matrix[1][1]

    @property
    def cx(self) -> float:
        return self.matrix[0][2]

    @property
    def cy(self) -> float:
        return self.matrix[1][2]

    @property
    def distorted(self) -> bool:
        return any(value != 0.0 for value in self.distortion)

    def fov_deg(self) -> tuple[float, float]:
        """(horizontal, vertical) field of view of the pinhole part, edge to edge, in degrees."""
        left, right = self.cx + 0.5, self.width - 0.5 - self.cx
        top, bottom = self.cy + 0.5, self.height - 0.5 - self.cy
        hfov = math.degrees(math.atan(left / self.fx) + math.atan(right / self.fx))
        vfov = math.degrees(math.atan(top / self.fy) + math.atan(bottom / self.fy))
        return hfov, vfov


def hfov_camera(width: int, height: int, hfov_deg: float, pixel_aspect: Fraction = Fraction(1)) -> Camera:
    """A centred pinhole with horizontal field of view `hfov_deg` (--hfov) and square pixels, or
    pixels `pixel_aspect` times as wide as tall (a video's sample aspect ratio): fy = fx · aspect."""
    check_hfov(hfov_deg)
    focal = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    matrix = ((focal, 0.0, width / 2.0 - 0.5), (0.0, focal * float(pixel_aspect), height / 2.0 - 0.5), (0.0, 0.0, 1.0))
    return Camera(width, height, matrix, (), "--hfov")


def check_hfov(hfov_deg: float) -> None:
    if not (math.isfinite(hfov_deg) and MIN_HFOV_DEG < hfov_deg < MAX_HFOV_DEG):
        raise BadInput(f"--hfov must be between {MIN_HFOV_DEG:g} and {MAX_HFOV_DEG:g} degrees (exclusive), "
                       f"got {hfov_deg:g}")


def intrinsics_camera(width: int, height: int, intrinsics: tuple[float, float, float, float]) -> Camera:
    """A pinhole from --intrinsics fx,fy,cx,cy (pixels, OpenCV convention)."""
    fx, fy, cx, cy = intrinsics
    camera = Camera(width, height, ((fx, 0.0, cx), (0.0, fy, cy), (0.0, 0.0, 1.0)), (), "--intrinsics")
    check_camera(camera, "--intrinsics")
    return camera


def check_camera(camera: Camera, source: str) -> None:
    """Focal lengths positive, every value finite, the principal point on the frame."""
    values = [v for row in camera.matrix for v in row] + list(camera.distortion)
    if not all(math.isfinite(v) for v in values):
        raise BadInput(f"{source}: camera values must be finite numbers")
    if not (camera.fx > 0 and camera.fy > 0):
        raise BadInput(f"{source}: focal lengths fx and fy must be positive, got {camera.fx:g} and {camera.fy:g}")
    if not (-0.5 <= camera.cx <= camera.width - 0.5 and -0.5 <= camera.cy <= camera.height - 0.5):
        raise BadInput(f"{source}: principal point ({camera.cx:g}, {camera.cy:g}) lies outside the "
                       f"{camera.width}x{camera.height} frame")
    hfov, vfov = camera.fov_deg()
    if not (0 < hfov < MAX_HFOV_DEG and 0 < vfov < MAX_HFOV_DEG):
        raise BadInput(f"{source}: field of view {hfov:.3g}x{vfov:.3g} degrees is not in (0, 180)")


# ---------------------------------------------------------------- calibration files


def _numbers(value: Any, path: Path, key: str) -> list[float]:
    """A flat list of finite numbers from nested lists (or {"data": [...]}, as OpenCV's JSON writes)."""
    if isinstance(value, dict) and "data" in value:
        value = value["data"]
    flat: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            if len(flat) + len(stack) > 64:
                raise BadInput(f"{path}: {key} has too many values")
            stack.extend(reversed(item))
        else:
            flat.append(item)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        raise BadInput(f"{path}: {key} must hold numbers")
    try:
        numbers = [float(v) for v in flat]
    except OverflowError:  # an integer beyond the float range
        raise BadInput(f"{path}: {key} holds a number too large") from None
    if not all(math.isfinite(v) for v in numbers):
        raise BadInput(f"{path}: {key} holds a value that is not a finite number")
    return numbers


def _first(data: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    return next(((key, data[key]) for key in keys if key in data and data[key] is not None), None)


def _size(data: dict[str, Any], path: Path) -> tuple[int, int] | None:
    """The image size a calibration was made at, if the file says."""
    if "image_size" in data and data["image_size"] is not None:
        numbers = _numbers(data["image_size"], path, "image_size")
    elif "image_width" in data and "image_height" in data:
        numbers = _numbers([data["image_width"], data["image_height"]], path, "image_width/image_height")
    else:
        return None
    if len(numbers) != 2 or not all(v.is_integer() and 0 < v < 1e6 for v in numbers):
        raise BadInput(f"{path}: image size must be two positive whole numbers (width, height)")
    return int(numbers[0]), int(numbers[1])


class _OpenCvYamlLoader(yaml.SafeLoader):
    """YAML as OpenCV's FileStorage writes it: `!!opencv-matrix` maps (rows, cols, dt, data)."""


_OpenCvYamlLoader.add_constructor("tag:yaml.org,2002:opencv-matrix",
                                  lambda loader, node: loader.construct_mapping(node, deep=True))


def _opencv_yaml(path: Path, text: str) -> dict[str, Any]:
    """The top level of an OpenCV (or ROS camera_info) calibration YAML, or BadInput naming it.

    Read with PyYAML rather than cv2.FileStorage, whose parser corrupts memory on some malformed
    files (found by fuzzing: the process aborts); OpenCV's "%YAML:1.0" header is YAML 1.0 syntax.
    """
    text = re.sub(r"\A%YAML:1\.0[^\n]*\n", "", text.lstrip("\ufeff"))
    try:
        data = yaml.load(text, Loader=_OpenCvYamlLoader)  # noqa: S506 (a SafeLoader)
    except (yaml.YAMLError, ValueError, RecursionError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise BadInput(f"{path}: not a readable calibration YAML ({reason})") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a YAML mapping of calibration values, found {type(data).__name__}")
    return {str(key): value for key, value in data.items()}


def read_calibration(path: Path) -> Camera:
    """The camera an OpenCV calibration file describes (see the module doc), or BadInput naming it."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        data = read_json_object(path, "calibration file")
    else:
        data = _opencv_yaml(path, read_text_file(path, "calibration file"))
    found = _first(data, MATRIX_KEYS)
    if found is None:
        raise BadInput(f"{path}: no camera matrix (expected a key {' or '.join(MATRIX_KEYS)})")
    key, value = found
    numbers = _numbers(value, path, key)
    if len(numbers) != 9:
        raise BadInput(f"{path}: {key} must be a 3x3 matrix, found {len(numbers)} values")
    matrix = np.array(numbers).reshape(3, 3)
    if matrix[0, 1] != 0 or matrix[1, 0] != 0 or matrix[2].tolist() != [0.0, 0.0, 1.0]:
        raise BadInput(f"{path}: {key} must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew)")
    distortion: list[float] = []
    found = _first(data, DISTORTION_KEYS)
    if found is not None:
        distortion = _numbers(found[1], path, found[0])
        if len(distortion) not in DISTORTION_COUNTS:
            raise BadInput(f"{path}: {found[0]} has {len(distortion)} coefficients; OpenCV's model takes "
                           f"{', '.join(map(str, DISTORTION_COUNTS[1:]))}")
    size = _size(data, path)
    width, height = size or (1, 1)
    return Camera(width, height, tuple(tuple(float(v) for v in row) for row in matrix),  # type: ignore[arg-type]
                  tuple(distortion), "calibration file", path, size)


def fit_to_frames(camera: Camera, width: int, height: int) -> Camera:
    """The calibration for frames of `width` x `height`: as is, scaled when it was made at another
    size of the same shape, refused when the shapes differ. Files that give no size are taken to
    be for these frames."""
    source = str(camera.calibration or camera.given_by)
    size = camera.calibration_size
    if size is None or size == (width, height):
        fitted = replace(camera, width=width, height=height)
    elif abs(size[0] * height - size[1] * width) > max(size[0], width) * 0.01 * min(height, size[1]):
        raise BadInput(f"{source}: calibrated at {size[0]}x{size[1]}, which is not the shape of the "
                       f"{width}x{height} frames")
    else:
        sx, sy = width / size[0], height / size[1]
        (fx, _, cx), (_, fy, cy), _ = camera.matrix
        matrix = ((fx * sx, 0.0, (cx + 0.5) * sx - 0.5), (0.0, fy * sy, (cy + 0.5) * sy - 0.5), (0.0, 0.0, 1.0))
        fitted = replace(camera, width=width, height=height, matrix=matrix)
    check_camera(fitted, source)
    return fitted


# ---------------------------------------------------------------- undistortion


@dataclass(frozen=True)
class Undistortion:
    """Remap tables taking distorted frames to the pinhole `camera` (one pair per plane size)."""

    camera: Camera  # the undistorted frames' camera: no distortion
    alpha: float
    luma: tuple[np.ndarray, np.ndarray]
    chroma: tuple[np.ndarray, np.ndarray]


def _half(matrix: np.ndarray) -> np.ndarray:
    """The camera matrix of a plane of half the size (4:2:0 chroma): pixel i's centre at 2i + 0.5."""
    half = matrix.copy()
    half[0, 0] /= 2.0
    half[1, 1] /= 2.0
    half[0, 2] = (matrix[0, 2] + 0.5) / 2.0 - 0.5
    half[1, 2] = (matrix[1, 2] + 0.5) / 2.0 - 0.5
    return half


def undistortion(camera: Camera, alpha: float = DEFAULT_UNDISTORT_ALPHA) -> Undistortion:
    """OpenCV's undistortion of `camera`'s frames into a pinhole of the same size (`alpha` as in
    cv2.getOptimalNewCameraMatrix), as remap tables for the luma and the half-size chroma planes."""
    import cv2

    if not camera.distorted:
        raise BadInput(f"{camera.calibration or camera.given_by}: --undistort: the calibration has no distortion "
                       "coefficients (nothing to undo)")
    if not 0.0 <= alpha <= 1.0:
        raise BadInput(f"--undistort-alpha must be in [0, 1], got {alpha:g}")
    size = (camera.width, camera.height)
    matrix, coefficients = np.array(camera.matrix, dtype=np.float64), np.array(camera.distortion, dtype=np.float64)
    new_matrix, _ = cv2.getOptimalNewCameraMatrix(matrix, coefficients, size, alpha, size)
    luma = cv2.initUndistortRectifyMap(matrix, coefficients, None, new_matrix, size, cv2.CV_32FC1)
    chroma = cv2.initUndistortRectifyMap(_half(matrix), coefficients, None, _half(new_matrix),
                                         (camera.width // 2, camera.height // 2), cv2.CV_32FC1)
    pinhole = replace(camera, matrix=tuple(tuple(float(v) for v in row) for row in new_matrix),  # type: ignore[arg-type]
                      distortion=())
    check_camera(pinhole, f"{camera.calibration or camera.given_by} (undistorted)")
    return Undistortion(pinhole, alpha, luma, chroma)


def undistort_planes(planes: list[np.ndarray], maps: Undistortion) -> list[np.ndarray]:
    """Y, U, V planes remapped (bilinear) to the undistorted pinhole."""
    import cv2

    out = []
    for index, plane in enumerate(planes):
        map_x, map_y = maps.luma if index == 0 else maps.chroma
        out.append(cv2.remap(np.ascontiguousarray(plane), map_x, map_y, cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE))
    return out


def camera_from_options(hfov_deg: float | None, intrinsics: tuple[float, float, float, float] | None,
                        calibration: Path | None, width: int, height: int,
                        pixel_aspect: Fraction = Fraction(1)) -> Camera:
    """The camera of `width` x `height` frames from whichever of --hfov, --intrinsics, --calibration was
    given; `pixel_aspect` (the video's sample aspect ratio) shapes the pixels of --hfov's pinhole."""
    if hfov_deg is not None:
        return hfov_camera(width, height, hfov_deg, pixel_aspect)
    if intrinsics is not None:
        return intrinsics_camera(width, height, intrinsics)
    if calibration is None:
        raise BadInput("the camera: give --hfov, --intrinsics or --calibration")
    return fit_to_frames(read_calibration(calibration), width, height)

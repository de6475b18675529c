"""Image sequences: which images, in which order, at which times, and their pixels as video planes.

Images are JPEG or PNG, taken from a folder, a glob pattern or a list of files, in natural name
order (`img2` before `img10`). Each is one frame: at i / --fps, or at the time its file name or
its EXIF DateTimeOriginal gives (`frame_times`). Every image is looked at (header only, Pillow)
before any frame is written, so a size that disagrees or an unreadable file is refused before
anything exists; each is decoded once, when its frame is encoded.
"""

from __future__ import annotations

import calendar
import contextlib
import glob
import logging
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidvpr.core.errors import BadInput
from vidvpr.media.probe import ColorInfo

LOG = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png"}  # Pillow's names; MPO: a JPEG with extra pictures
TIME_SOURCES = ("auto", "fps", "name", "exif")
EVEN_MODES = ("crop", "pad")
DEFAULT_IMAGE_FPS = Fraction(1)
TIMED_TIME_BASE = Fraction(1, 90_000)  # frames timed by name or EXIF: the MPEG clock, 11 µs ticks
EPOCH_DIGITS = {10: 1, 13: 1_000, 16: 1_000_000, 19: 1_000_000_000}  # integer stems: s, ms, µs, ns since 1970
EXIF_IFD, DATETIME_ORIGINAL, SUBSEC_ORIGINAL, OFFSET_ORIGINAL, ORIENTATION = 0x8769, 0x9003, 0x9291, 0x9011, 0x0112
GLOB_CHARACTERS = re.compile(r"[*?[]")
# how image frames are stored: BT.601 matrix, limited range (what swscale converts RGB with), sRGB
IMAGE_COLOR = ColorInfo(range_code=1, space_code=6, primaries_code=1, transfer_code=13)


def natural_key(name: str) -> tuple[tuple[int, Any], ...]:
    """Sort key putting `img2` before `img10`: runs of digits compare as numbers, text case-blind;
    names that still tie (`img02`, `img2`) in plain text order."""
    return (*((0, int(part)) if part.isdigit() else (1, part.lower()) for part in re.split(r"(\d+)", name) if part),
            (2, name))


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def find_images(sources: Sequence[str | Path]) -> tuple[Path, list[Path]]:
    """(folder the names are relative to, images in natural order) from a folder, a glob pattern or files."""
    wanted = "*.jpg, *.jpeg or *.png"
    if len(sources) == 1 and Path(sources[0]).is_dir():
        folder = Path(sources[0])
        try:
            images = [path for path in folder.iterdir() if _is_image(path) and path.is_file()]
        except OSError as exc:
            raise BadInput(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
        if not images:
            raise BadInput(f"{folder}: no images ({wanted}) in this folder")
    elif len(sources) == 1 and not Path(sources[0]).exists() and GLOB_CHARACTERS.search(str(sources[0])):
        pattern = str(sources[0])
        images = [Path(name) for name in glob.glob(pattern) if _is_image(Path(name)) and Path(name).is_file()]
        if not images:
            raise BadInput(f"{pattern}: no images ({wanted}) match this pattern")
        folder = Path(os.path.commonpath([str(path.parent) for path in images]))
    else:
        images = [Path(source) for source in sources]
        for path in images:
            if not path.is_file():
                raise BadInput(f"{path}: {'is a folder; give one folder alone' if path.is_dir() else 'file not found'}")
            if not _is_image(path):
                raise BadInput(f"{path}: not a JPEG or PNG image ({wanted}); a video is imported alone")
        folder = Path(os.path.commonpath([str(path.absolute().parent) for path in images]))
        seen: dict[str, Path] = {}
        for path in images:  # one file named twice would be two frames of one picture
            key = os.path.abspath(path)  # "a/1.jpg", "./a/1.jpg" and "a/../a/1.jpg" alike
            if key in seen:
                raise BadInput(f"{path}: given twice (also as {seen[key]}); each image is one frame, name it once")
            seen[key] = path
    images.sort(key=lambda path: natural_key(path.absolute().relative_to(folder.absolute()).as_posix()))
    return folder, images


# ---------------------------------------------------------------- looking at each image


@dataclass(frozen=True)
class ImageInfo:
    """What an image's header says: its size as shown (after EXIF rotation), format and EXIF time."""

    path: Path
    width: int
    height: int
    format: str  # "jpeg" or "png"
    exif_time_s: Fraction | None  # DateTimeOriginal (+ SubSecTimeOriginal, OffsetTimeOriginal), UTC epoch
    exif_offset_known: bool


def _exif_time(ifd: Any) -> tuple[Fraction | None, bool]:
    """(epoch seconds, whether a UTC offset was given) of EXIF DateTimeOriginal; (None, False) if absent."""
    text = ifd.get(DATETIME_ORIGINAL)
    if not isinstance(text, str):
        return None, False
    try:
        stamp = datetime.strptime(text.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None, False
    seconds = Fraction(calendar.timegm(stamp.timetuple()))
    sub = ifd.get(SUBSEC_ORIGINAL)
    if isinstance(sub, str) and sub.strip().rstrip("\x00").isdigit():
        digits = sub.strip().rstrip("\x00")[:9]
        seconds += Fraction(int(digits), 10 ** len(digits))
    offset = ifd.get(OFFSET_ORIGINAL)
    match = re.fullmatch(r"([+-])(\d\d):(\d\d)", offset.strip().rstrip("\x00")) if isinstance(offset, str) else None
    if match:
        sign = 1 if match.group(1) == "+" else -1
        seconds -= sign * (int(match.group(2)) * 3600 + int(match.group(3)) * 60)
    return seconds, match is not None


@contextlib.contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Pillow's warnings about odd EXIF ignored: nothing a user must act on, and not one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def scan_image(path: Path) -> ImageInfo:
    """Read an image's header (not its pixels), or BadInput naming it."""
    from PIL import Image

    try:
        with _quiet_pillow(), Image.open(path) as image:
            kind = FORMATS.get(str(image.format))
            if kind is None:
                raise BadInput(f"{path}: a {image.format} image; vidvpr import reads JPEG and PNG")
            width, height = image.size
            exif = image.getexif()
            if exif.get(ORIENTATION) in (5, 6, 7, 8):  # turned a quarter: shown with width and height swapped
                width, height = height, width
            time_s, offset_known = _exif_time(exif.get_ifd(EXIF_IFD))
    except BadInput:
        raise
    except Exception as exc:  # Pillow raises many kinds on damaged files (OSError, SyntaxError, struct.error, ...)
        raise BadInput(f"{path}: not a readable image ({_reason(exc)})") from None
    return ImageInfo(Path(path), width, height, kind, time_s, offset_known)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def check_sizes(infos: Sequence[ImageInfo]) -> tuple[int, int]:
    """The sequence's frame size; BadInput naming the first image whose size differs from the first's."""
    width, height = infos[0].width, infos[0].height
    odd = next((info for info in infos if (info.width, info.height) != (width, height)), None)
    if odd is not None:
        raise BadInput(f"{odd.path}: {odd.width}x{odd.height}, but {infos[0].path.name} is {width}x{height}; "
                       "every image of a sequence must have the same size")
    return width, height


# ---------------------------------------------------------------- frame times


@dataclass(frozen=True)
class ImageTimes:
    """When each image is shown: seconds from the first, where that came from, and the video clock."""

    times_s: list[Fraction]
    time_base: Fraction
    fps: Fraction  # the rate given, or the median rate of the timed images
    times_from: str
    t0_epoch_s: float | None


def name_time_s(stem: str, epoch_only: bool) -> Fraction | None:
    """The time in a file name's last number: decimals are seconds; integers of 10, 13, 16 or 19
    digits are s, ms, µs or ns since 1970 (TUM, EuRoC, ROS bags); other integers are seconds
    unless `epoch_only`."""
    numbers = re.findall(r"\d+(?:\.\d+)?", stem)
    if not numbers:
        return None
    text = numbers[-1]
    whole = text.split(".")[0]
    if "." in text:
        if epoch_only and len(whole) not in (9, 10):
            return None
        try:
            return Fraction(Decimal(text))
        except (InvalidOperation, ValueError):
            return None
    if len(whole) in EPOCH_DIGITS:
        return Fraction(int(whole), EPOCH_DIGITS[len(whole)])
    return None if epoch_only else Fraction(int(whole))


def _increasing(times: list[Fraction], images: Sequence[Path], what: str) -> None:
    for i in range(1, len(times)):
        if times[i] <= times[i - 1]:
            raise BadInput(f"{images[i]}: its time from {what} ({float(times[i]):.6f} s) is not after "
                           f"{images[i - 1].name}'s ({float(times[i - 1]):.6f} s); in natural name order, image "
                           "times must increase (or time the images with --times fps)")


def _rate(times: list[Fraction], fallback: Fraction) -> Fraction:
    if len(times) < 2:
        return fallback
    steps = np.diff(np.array([float(t) for t in times]))
    return Fraction(1 / float(np.median(steps))).limit_denominator(1001)


def _warn_partly_timed(paths: Sequence[Path], stamps: Sequence[Fraction | None], what: str, option: str) -> None:
    """Warn when some images carry a time and others not, naming the first without: `auto` then
    times them all at --fps, which the user of a timed sequence did not mean."""
    timed = sum(stamp is not None for stamp in stamps)
    if 0 < timed < len(stamps):
        missing = next(path for path, stamp in zip(paths, stamps) if stamp is None)
        LOG.warning("%s: no %s, unlike %d of the %d images, so all are timed at --fps %s (--times %s names "
                    "each image without one)", missing, what, timed, len(stamps), DEFAULT_IMAGE_FPS, option)


def frame_times(infos: Sequence[ImageInfo], source: str = "auto", fps: Fraction | None = None) -> ImageTimes:
    """The images' times: `source` "fps" (i / fps), "name", "exif", or "auto" (names when every name
    is an epoch time, else EXIF when every image has one and they increase, else i / fps)."""
    if source not in TIME_SOURCES:
        raise BadInput(f"Unknown --times '{source}'. Use {', '.join(TIME_SOURCES)}.")
    if fps is not None and fps <= 0:
        raise BadInput(f"--fps must be positive, got {fps}")
    if fps is not None and source in ("name", "exif"):
        raise BadInput(f"--fps times images that carry no time; --times {source} reads theirs (drop one of them)")
    paths = [info.path for info in infos]
    if source == "auto" and fps is None:
        names = [name_time_s(path.stem, epoch_only=True) for path in paths]
        exif = [info.exif_time_s for info in infos]
        if all(t is not None for t in names) and len(paths) > 1:
            source = "name"
        elif all(t is not None for t in exif) and len(paths) > 1:
            if all(b > a for a, b in zip(exif, exif[1:])):  # type: ignore[operator]
                source = "exif"
            else:
                LOG.warning("%s: EXIF times do not increase from image to image (whole seconds?); timed at "
                            "--fps %s instead", paths[0].parent, DEFAULT_IMAGE_FPS)
        if source == "auto":  # a stray image without a time must not switch the timing without a word
            _warn_partly_timed(paths, names, "time since 1970 in its name", "name")
            _warn_partly_timed(paths, exif, "EXIF DateTimeOriginal", "exif")
    if source in ("auto", "fps"):
        rate = fps or DEFAULT_IMAGE_FPS
        return ImageTimes([i / rate for i in range(len(infos))], 1 / rate, rate, f"--fps {rate}", None)
    if source == "name":
        stamps = [name_time_s(path.stem, epoch_only=False) for path in paths]
        missing = next((path for path, t in zip(paths, stamps) if t is None), None)
        if missing is not None:
            raise BadInput(f"{missing}: --times name: no number in the file name to read a time from")
        what = "its file name"
    else:
        stamps = [info.exif_time_s for info in infos]
        missing = next((path for path, t in zip(paths, stamps) if t is None), None)
        if missing is not None:
            raise BadInput(f"{missing}: --times exif: no EXIF DateTimeOriginal in this image")
        what = "EXIF"
    _increasing(stamps, paths, what)  # type: ignore[arg-type]
    t0 = stamps[0]
    relative = [t - t0 for t in stamps]  # type: ignore[operator]
    ticks = [round(t / TIMED_TIME_BASE) for t in relative]
    for i in range(1, len(ticks)):
        if ticks[i] <= ticks[i - 1]:
            raise BadInput(f"{paths[i]}: less than 1/{TIMED_TIME_BASE.denominator} s after {paths[i - 1].name}; "
                           "frames that close cannot be told apart in the video")
    described = "file names" if source == "name" else "EXIF DateTimeOriginal" + (
        "" if all(info.exif_offset_known for info in infos) else " (local time: no UTC offset recorded)")
    return ImageTimes([tick * TIMED_TIME_BASE for tick in ticks], TIMED_TIME_BASE, _rate(relative, DEFAULT_IMAGE_FPS),
                      described, float(t0))  # type: ignore[arg-type]


# ---------------------------------------------------------------- pixels


def even_size(width: int, height: int, mode: str) -> tuple[int, int, str | None]:
    """(width, height, what was done) making a frame size even for yuv420p: crop or pad at the right
    and bottom, so the top-left corner and the principal point stay where they are."""
    if mode not in EVEN_MODES:
        raise BadInput(f"Unknown --even '{mode}'. Use {' or '.join(EVEN_MODES)}.")
    if width % 2 == 0 and height % 2 == 0:
        return width, height, None
    step = -1 if mode == "crop" else 1
    parts = ["1 column at the right" if width % 2 else "", "1 row at the bottom" if height % 2 else ""]
    verb = "cropped" if mode == "crop" else "padded (edge repeated)"
    new = (width + step * (width % 2), height + step * (height % 2))
    if min(new) < 2:
        raise BadInput(f"{width}x{height} frames are too small to make even by cropping; use --even pad")
    return new[0], new[1], f"{verb} {' and '.join(part for part in parts if part)}"


def make_even(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """`rgb` cropped or edge-padded at the right and bottom to `width` x `height`."""
    rgb = rgb[:height, :width]
    pad_rows, pad_cols = height - rgb.shape[0], width - rgb.shape[1]
    if pad_rows or pad_cols:
        rgb = np.pad(rgb, ((0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")
    return rgb


def read_rgb(info: ImageInfo) -> np.ndarray:
    """An image's pixels as (H, W, 3) uint8 RGB, turned as its EXIF orientation says (16-bit PNG
    scaled to 8 bits, alpha dropped), or BadInput naming it."""
    from PIL import Image, ImageOps

    try:
        with _quiet_pillow(), Image.open(info.path) as image:
            shown = ImageOps.exif_transpose(image)
            if shown.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                grey = (np.asarray(shown, dtype=np.uint16) >> 8).astype(np.uint8)
                rgb = np.repeat(grey[..., None], 3, axis=2)
            elif shown.mode in ("I", "F"):
                raise BadInput(f"{info.path}: {shown.mode} pixels (32-bit) are not supported; save it as 8- or "
                               "16-bit PNG")
            else:
                rgb = np.asarray(shown.convert("RGB"))
    except BadInput:
        raise
    except Exception as exc:  # damaged pixel data behind a valid header
        raise BadInput(f"{info.path}: cannot decode the image ({_reason(exc)})") from None
    if rgb.shape[:2] != (info.height, info.width):
        raise BadInput(f"{info.path}: decodes to {rgb.shape[1]}x{rgb.shape[0]}, its header says "
                       f"{info.width}x{info.height}")
    return np.ascontiguousarray(rgb)


def rgb_to_planes(rgb: np.ndarray) -> list[np.ndarray]:
    """Y, U, V planes (yuv420p, BT.601 limited range: what `IMAGE_COLOR` tags) of an even-sized RGB image."""
    import av

    from vidvpr.media.decode import yuv420p_planes

    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p", dst_colorspace="ITU601", dst_color_range="MPEG")
    return [np.array(plane) for plane in yuv420p_planes(frame)]

"""What a video file is before decoding: size, rate, colour, and which 360° layout it holds.

Every PyAV/libav failure on user input becomes a one-line BadInput naming the file.
"""

from __future__ import annotations

import re
import struct
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidvpr.core.errors import BadInput
from vidvpr.media.insv import has_trailer

SPHERICAL_V1_UUID = bytes.fromhex("ffcc8263f8554a938814587a02521fdd")
MAX_MOOV_BYTES = 64 << 20


def av_problem(exc: Exception) -> str:
    """libav's complaint without the file name it appends (the message names the file already)."""
    text = getattr(exc, "strerror", None) or str(exc)
    return re.sub(r"\s*:\s*'[^']*'$", "", text).strip() or type(exc).__name__


def _videos_in(folder: Path) -> str:
    """What to pass instead of a folder: its videos, as `vidvpr slice --out` lays them out a level down."""
    for pattern in ("*.mp4", "*/*.mp4"):
        if next(folder.glob(pattern), None) is not None:
            return f"; pass the videos in it ({folder / pattern})"
    return ", and it holds no .mp4 video"


def unreadable_video(path: Path, exc: Exception) -> BadInput:
    """The error for a file libav cannot open, saying where the file was cut when it is an MP4 that
    ends inside one of its boxes (a truncated copy: its index, moov, was after the cut)."""
    from vidvpr.media.insv.reader import cut_short_mp4

    cut = cut_short_mp4(path)
    where = f"; {cut.text}" if cut is not None and cut.inside_video else ""
    return BadInput(f"{path}: not a readable video ({av_problem(exc)}){where}")


@dataclass(frozen=True)
class SphericalMetadata:
    """Projection and stereo layout from Spherical Video V1 (XML) or V2 (sv3d/st3d) boxes."""

    version: str  # "v1" or "v2"
    projection: str  # "equirectangular", "cubemap", "mesh", ...
    stereo_mode: str  # "mono", "top-bottom", "left-right"


# libav's codes (AVColorRange, AVColorSpace, AVColorPrimaries, AVColorTransferCharacteristic)
RANGE_NAMES = {0: "unknown", 1: "tv", 2: "pc"}
SPACE_NAMES = {0: "gbr", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
               8: "ycgco", 9: "bt2020nc", 10: "bt2020c"}
PRIMARIES_NAMES = {1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
                   9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
TRANSFER_NAMES = {1: "bt709", 2: "unknown", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
                  13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 18: "arib-std-b67"}


@dataclass(frozen=True)
class ColorInfo:
    """How a stream's sample values are to be read, as libav codes (2 = unspecified, range 0).

    Carried from a source to the views cut from it, so full-range video stays full range and
    a BT.709 or BT.2020 tag is not lost.
    """

    range_code: int = 0
    space_code: int = 2
    primaries_code: int = 2
    transfer_code: int = 2

    @property
    def full_range(self) -> bool:
        return self.range_code == 2

    def names(self) -> dict[str, str]:
        """Human-readable names, as ffprobe prints them ("code N" for rare values)."""
        def name(table: dict[int, str], code: int) -> str:
            return table.get(code, f"code {code}")

        return {"range": name(RANGE_NAMES, self.range_code), "space": name(SPACE_NAMES, self.space_code),
                "primaries": name(PRIMARIES_NAMES, self.primaries_code),
                "transfer": name(TRANSFER_NAMES, self.transfer_code)}


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as far as vidvpr needs to know before decoding."""

    path: Path
    width: int
    height: int
    frames: int  # from the container index; 0 when unknown
    fps: Fraction
    time_base: Fraction
    codec: str
    pix_fmt: str
    duration_s: float | None
    spherical: SphericalMetadata | None
    color: ColorInfo = ColorInfo()
    video_streams: int = 1
    stream_handlers: tuple[str, ...] = ()
    stream_sizes: tuple[tuple[int, int], ...] = ()  # (width, height) of every video stream
    sample_aspect: Fraction = Fraction(1)  # a pixel's width over its height (1: square, or not said)

    @property
    def is_two_to_one(self) -> bool:
        return self.width == 2 * self.height


def color_info(ctx: av.video.codeccontext.VideoCodecContext) -> ColorInfo:
    """The colour tags of a decoder context; yuvj pixel formats are full range by definition."""
    full_by_format = ctx.format is not None and ctx.format.name.startswith("yuvj")
    return ColorInfo(2 if full_by_format else int(ctx.color_range or 0), int(ctx.colorspace or 2),
                     int(ctx.color_primaries or 2), int(ctx.color_trc or 2))


def probe_video(path: Path) -> VideoInfo:
    """Open a video and describe its first video stream, or raise BadInput naming the file."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: file not found")
    if path.is_dir():
        raise BadInput(f"{path}: is a folder, not a video{_videos_in(path)}")
    if not path.is_file():
        raise BadInput(f"{path}: not a file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadInput(f"{path}: no video stream (or zero video frames)")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            if not ctx.width or not ctx.height:
                raise BadInput(f"{path}: video stream has no frame size (not a decodable video)")
            fps = stream.average_rate or stream.guessed_rate or stream.base_rate
            duration_s = float(stream.duration * stream.time_base) if stream.duration else None
            handlers = tuple(str(s.metadata.get("handler_name", "")) for s in container.streams.video)
            sizes = tuple((int(s.codec_context.width or 0), int(s.codec_context.height or 0))
                          for s in container.streams.video)
            return VideoInfo(
                path=path,
                width=ctx.width,
                height=ctx.height,
                frames=int(stream.frames or 0),
                fps=Fraction(fps) if fps else Fraction(0),
                time_base=Fraction(stream.time_base),
                codec=ctx.name,
                pix_fmt=ctx.format.name if ctx.format else "unknown",
                duration_s=duration_s,
                spherical=read_spherical_metadata(path),
                color=color_info(ctx),
                video_streams=len(container.streams.video),
                stream_handlers=handlers,
                stream_sizes=sizes,
                sample_aspect=_sample_aspect(stream),
            )
    except av.error.FFmpegError as exc:
        raise unreadable_video(path, exc) from exc


def display_rotation_deg(path: Path) -> int:
    """How far players turn the first video stream's frames counter-clockwise to show them (0, 90, 180 or 270).

    Phones store portrait video as landscape frames plus a display matrix; ffmpeg applies it when it
    decodes (so `vidvpr encode` sees the turned picture), PyAV does not. Read from the first frame's
    side data; a rotation that is not a quarter turn is refused.
    """
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0), None)
    except av.error.FFmpegError as exc:
        raise unreadable_video(path, exc) from exc
    angle = float(frame.rotation) if frame is not None else 0.0
    turns = round(angle / 90.0)
    if abs(angle - 90.0 * turns) > 0.5:
        raise BadInput(f"{path}: shown rotated by {angle:g}°, not a quarter turn; re-encode it upright first")
    return int(turns % 4) * 90


# libav's AVStereo3DType (the first field of a frame's STEREO3D side data); 0 (2D) is one picture
STEREO_PACKINGS = {1: "side by side", 2: "top and bottom", 3: "frame sequence", 4: "checkerboard",
                   5: "side by side, quincunx", 6: "interleaved lines", 7: "interleaved columns", 8: "unspecified"}


def stereo_packing(path: Path) -> str | None:
    """How the first video frame says it packs a stereo pair (an H.264/HEVC frame-packing SEI or a
    container's stereo tag, as libav hands them to every decoded frame), or None for one picture."""
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0), None)
    except av.error.FFmpegError as exc:
        raise BadInput(f"{path}: not a readable video ({av_problem(exc)})") from exc
    for side in frame.side_data if frame is not None else ():
        if side.type.name == "STEREO3D":
            kind = int.from_bytes(bytes(side)[:4], sys.byteorder)
            return STEREO_PACKINGS.get(kind, f"type {kind}") if kind else None
    return None


def _sample_aspect(stream: av.video.stream.VideoStream) -> Fraction:
    """The stream's sample aspect ratio as players take it (the container's, else the codec's); 1 when unset."""
    ratio = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(ratio) if ratio and ratio > 0 else Fraction(1)


def read_spherical_metadata(path: Path) -> SphericalMetadata | None:
    """Find Spherical Video V1/V2 metadata in an MP4/MOV's moov box; None when absent."""
    moov = _read_top_level_box(path, b"moov")
    if moov is None:
        return None
    v1 = moov.find(SPHERICAL_V1_UUID)
    if v1 >= 0:
        xml = moov[v1 + 16 : v1 + 16 + 8192].decode("utf-8", "replace")
        projection = re.search(r"<GSpherical:ProjectionType>([^<]+)<", xml)
        stereo = re.search(r"<GSpherical:StereoMode>([^<]+)<", xml)
        return SphericalMetadata(
            "v1",
            projection.group(1).strip().lower() if projection else "equirectangular",
            stereo.group(1).strip().lower() if stereo else "mono",
        )
    sv3d = moov.find(b"sv3d")
    if sv3d >= 0:
        kinds = {b"equi": "equirectangular", b"cbmp": "cubemap", b"mshp": "mesh", b"eac ": "equi-angular cubemap"}
        found = [(moov.find(tag, sv3d), name) for tag, name in kinds.items() if moov.find(tag, sv3d) >= 0]
        projection = min(found)[1] if found else "unknown"
        stereo_mode = "mono"
        st3d = moov.find(b"st3d")
        if st3d >= 0 and st3d + 9 <= len(moov):
            # st3d payload: version/flags (4 bytes) then one byte stereo_mode
            stereo_mode = {0: "mono", 1: "top-bottom", 2: "left-right"}.get(moov[st3d + 8], "mono")
        return SphericalMetadata("v2", projection, stereo_mode)
    return None


def _read_top_level_box(path: Path, box_type: bytes) -> bytes | None:
    """Payload of the first top-level ISO-BMFF box of `box_type`, or None (not MP4, absent, huge)."""
    try:
        with open(path, "rb") as handle:
            while True:
                header = handle.read(8)
                if len(header) < 8:
                    return None
                size, kind = struct.unpack(">I4s", header)
                header_len = 8
                if size == 1:
                    large = handle.read(8)
                    if len(large) < 8:
                        return None
                    size = struct.unpack(">Q", large)[0]
                    header_len = 16
                elif size == 0:
                    return handle.read(MAX_MOOV_BYTES) if kind == box_type else None
                if size < header_len:
                    return None
                if kind == box_type:
                    return handle.read(min(size - header_len, MAX_MOOV_BYTES)) if size <= MAX_MOOV_BYTES else None
                handle.seek(size - header_len, 1)
    except OSError:
        return None


EXPORT_HINT = ("export it as an equirectangular MP4 first (GoPro Player, or ffmpeg's v360 filter), then slice that")


def unsupported_360_layout(info: VideoInfo) -> str | None:
    """Why a file is a 360° recording that is not one equirectangular image per frame, else None:
    Insta360 dual fisheye (which `vidvpr slice` reads with its own camera model before asking,
    see `vidvpr.slicing.camera`), GoPro MAX cubemaps, cubemap or mesh metadata.

    Looks at what the file says about itself: extension, camera trailers, stream handlers,
    spherical metadata. Content checks (`looks_dual_fisheye`) cover files that say nothing.
    """
    suffix = info.path.suffix.lower()
    handlers = " ".join(info.stream_handlers).lower()
    if suffix in (".insv", ".insp") or has_trailer(info.path):
        return "an Insta360 dual-fisheye recording (.insv), not equirectangular; vidvpr slice cuts views from it"
    if suffix == ".360" or "gopro" in handlers and info.video_streams >= 2:
        return (f"a GoPro MAX .360 file (equi-angular cubemap in {info.video_streams} streams), not "
                f"equirectangular; {EXPORT_HINT}")
    meta = info.spherical
    if meta is not None and meta.projection not in ("equirectangular",):
        return f"spherical metadata says '{meta.projection}' projection, not equirectangular; {EXPORT_HINT}"
    return None


FISHEYE_CORNER_MAX_LUMA = 24.0  # black surround of a fisheye circle (limited-range black is 16)
FISHEYE_CORNER_MAX_STD = 6.0
FISHEYE_MIN_CONTRAST = 20.0  # the image circles must be clearly brighter than the surround
FISHEYE_CHECK_ROWS = 256  # frames are looked at through a grid of about this many rows (a 4K frame took 0.4 s whole)


def looks_dual_fisheye(luma: np.ndarray) -> bool:
    """Whether a 2:1 luma frame is two fisheye circles side by side (black corners in both halves).

    An equirectangular frame has picture up to every corner (the poles are smeared across the
    top and bottom rows), so eight uniformly black corner regions around two bright circles
    mean a dual-fisheye frame.
    """
    height, width = luma.shape
    if width != 2 * height or height < 8:
        return False
    step = max(1, height // FISHEYE_CHECK_ROWS)  # every step-th row and column: same circles, fewer pixels
    height = height // step
    luma = luma[::step, ::step][:height, :2 * height]
    rows, cols = np.mgrid[0:height, 0:height]
    radius = np.hypot(rows + 0.5 - height / 2, cols + 0.5 - height / 2)
    corners, inside = radius > 0.52 * height, radius < 0.45 * height
    for half in (luma[:, :height], luma[:, height:]):
        values = half.astype(np.float32)
        surround, picture = values[corners], values[inside]
        if not (surround.mean() <= FISHEYE_CORNER_MAX_LUMA and surround.std() <= FISHEYE_CORNER_MAX_STD
                and picture.mean() - surround.mean() >= FISHEYE_MIN_CONTRAST):
            return False
    return True

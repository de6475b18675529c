"""The sidecars one stage writes and a later stage reads, each defined once.

`SliceSidecar` sits beside every view video: cut from 360° video by `vidvpr slice` (kind
"view_video") or brought in from perspective footage by `vidvpr import` (kind
"imported_view_video", with the source and camera records below); `CellSidecar` sits beside every
encoded grid cell (`vidvpr encode`). The writer builds the model and saves it; readers load
the same model, so a renamed field fails at once with a one-line error naming the file.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from vidvpr.core.camera_records import SourceCameraRecord
from vidvpr.core.records import FileRecord, Record, Strict

FRACTION_REGEX = r"^[0-9]{1,12}(/[0-9]{1,12})?$"  # str(Fraction): "30", "30000/1001"
MAX_FRAMES = 10**9  # a day at 10 kHz: anything larger is a damaged sidecar, not a video
CONSTANT_RATE_RULE = "time_s[i] = i / fps"
IDENTITY_SOURCE_RULE = "source_frame_index[i] = i"


class ColorRecord(Strict):
    """Colour range, matrix, primaries and transfer as libav names them ("unknown" when untagged)."""

    range: str = "unknown"
    space: str = "unknown"
    primaries: str = "unknown"
    transfer: str = "unknown"


class SphericalRecord(Strict):
    version: str
    projection: str
    stereo_mode: str


class SourceRecord(Strict):
    """The 360° video a view was cut from."""

    path: str
    bytes: int
    hash: str
    width: int
    height: int
    codec: str
    pix_fmt: str
    fps: str
    frames: int
    spherical_metadata: SphericalRecord | None
    stereo: str
    eye: str | None
    color: ColorRecord
    camera: SourceCameraRecord | None = None  # how it was read (dual fisheye: the lens calibration used)


class IntrinsicsRecord(Strict):
    fx: float
    fy: float
    cx: float
    cy: float
    K: list[list[float]]
    model: Literal["pinhole"] = "pinhole"
    pixel_centers: str = "+0.5"


class GeometryRecord(Strict):
    yaw_deg: float
    pitch_deg: float
    roll_deg: float = 0.0
    hfov_deg: float
    vfov_deg: float
    width: int
    height: int
    intrinsics: IntrinsicsRecord
    interpolation: str
    conventions: str


class FrameTimes(Strict):
    """Presentation time and source frame of every output frame: as rules when regular, else listed."""

    fps: str = Field(pattern=FRACTION_REGEX)
    time_base: str = Field(pattern=FRACTION_REGEX)
    frames: int = Field(ge=1, le=MAX_FRAMES)
    rule: Literal["time_s[i] = i / fps"] | None = None
    time_s: list[float] | None = None
    source_frame_index: list[int] | None = None
    source_frame_index_rule: Literal["source_frame_index[i] = i"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FrameTimes:
        if self.frames < 1:
            raise ValueError("frames must be at least 1")
        if (self.rule is None) == (self.time_s is None):
            raise ValueError("give exactly one of rule and time_s")
        if (self.source_frame_index is None) == (self.source_frame_index_rule is None):
            raise ValueError("give exactly one of source_frame_index and source_frame_index_rule")
        for name in ("time_s", "source_frame_index"):
            values = getattr(self, name)
            if values is not None and len(values) != self.frames:
                raise ValueError(f"{name} has {len(values)} entries for {self.frames} frames")
        if self.rule is not None:
            try:
                if Fraction(self.fps) <= 0:
                    raise ValueError
            except (ValueError, ZeroDivisionError):
                raise ValueError(f"fps {self.fps!r} is not a positive rate") from None
        return self

    @classmethod
    def build(cls, times_s: list[float], source_indices: list[int], fps: Fraction, time_base: Fraction) -> FrameTimes:
        """Times as the rule when every frame sits at i / fps (within half a tick), else listed."""
        frames = len(times_s)
        tolerance = 0.5 * float(time_base) + 1e-6
        regular = all(abs(t - i / float(fps)) < tolerance for i, t in enumerate(times_s))
        identity = source_indices == list(range(frames))
        return cls(fps=str(fps), time_base=str(time_base), frames=frames,
                   rule=CONSTANT_RATE_RULE if regular else None, time_s=None if regular else times_s,
                   source_frame_index=None if identity else source_indices,
                   source_frame_index_rule=IDENTITY_SOURCE_RULE if identity else None)

    def times(self) -> np.ndarray:
        """Seconds of every frame from the first."""
        if self.time_s is not None:
            return np.asarray(self.time_s, dtype=float)
        return np.arange(self.frames) / float(Fraction(self.fps))

    def source_frames(self) -> np.ndarray:
        """Index in the source video of every frame."""
        if self.source_frame_index is not None:
            return np.asarray(self.source_frame_index, dtype=np.int64)
        return np.arange(self.frames, dtype=np.int64)


class ViewEncodingRecord(Strict):
    codec: str
    crf: int | None  # None: the source's own stream, copied (stream_copy)
    preset: str | None
    pix_fmt: str
    color: ColorRecord
    encoder_settings: str | None
    stream_copy: bool = False  # vidvpr import: the source's packets, unchanged, with timestamps from 0


class OutputRecord(Strict):
    """The output file beside the sidecar: its name and size when written."""

    path: str
    bytes: int


# ---------------------------------------------------------------- vidvpr import: perspective footage


class ImportedSourceRecord(Strict):
    """The perspective footage an imported view video came from: one video, or a sequence of images."""

    kind: Literal["video", "images"]
    path: str  # the video, or the folder holding the images
    bytes: int  # the video's size, or all images' together
    hash: str  # the video's content hash, or the hash of every image's name and content hash in order
    width: int  # as shown (a video's display rotation applied, images' EXIF orientation)
    height: int
    codec: str  # the video's codec, or the images' format ("png", "jpeg", "jpeg+png")
    pix_fmt: str
    fps: str = Field(pattern=FRACTION_REGEX)  # the video's rate; images: --fps, or their median rate
    frames: int = Field(ge=1, le=MAX_FRAMES)
    color: ColorRecord
    times_from: str  # "the video's timestamps", "--fps", "file names", "EXIF DateTimeOriginal"
    t0_epoch_s: float | None = None  # UTC time of the first frame, when the images carry absolute times
    images: list[str] | None = None  # images: their names in frame order, relative to `path`
    rotation_deg: Literal[0, 90, 180, 270] = 0  # a video's display rotation (counter-clockwise), applied to its frames

    @model_validator(mode="after")
    def _images_listed(self) -> ImportedSourceRecord:
        if (self.kind == "images") != (self.images is not None):
            raise ValueError("images are listed exactly when the source is a sequence of images")
        if self.images is not None and len(self.images) != self.frames:
            raise ValueError(f"images lists {len(self.images)} names for {self.frames} frames")
        return self


class CameraRecord(Strict):
    """The camera of an imported view, as given, and what the import did to its frames.

    `matrix` and `distortion` are as given (OpenCV: pixel i's centre at i, coefficients k1 k2 p1 p2
    [k3 [k4 k5 k6 [s1 s2 s3 s4 [tx ty]]]]); the view's own pinhole model is in the sidecar's
    geometry.intrinsics (centres at +0.5, after undistortion when done).
    """

    given_by: str  # "--hfov", "--intrinsics" or "calibration file"
    calibration: FileRecord | None
    calibration_size: list[int] | None  # [width, height] the calibration was made at (scaled to the frames)
    matrix: list[list[float]]
    distortion: list[float]
    undistorted: bool
    undistort_alpha: float | None  # cv2.getOptimalNewCameraMatrix: 0 keeps only valid pixels
    even: str | None  # how an odd frame size was made even for yuv420p ("cropped 1 column at the right")


class SliceSidecar(Record):
    """`<view>.json` beside each view video of `vidvpr slice` or `vidvpr import`."""

    SCHEMA = "vidvpr.slice/2"
    KIND = "vidvpr view sidecar"

    kind: Literal["view_video", "imported_view_video"] = "view_video"
    view: str
    source: SourceRecord | ImportedSourceRecord
    geometry: GeometryRecord
    frames: int
    timestamps: FrameTimes
    encoding: ViewEncodingRecord
    output: OutputRecord
    params_hash: str
    params: dict[str, Any]
    versions: dict[str, str]
    command: list[str]
    elapsed_s: float

    camera: CameraRecord | None = None  # imported views: the real camera (sliced views: geometry says it all)

    @model_validator(mode="after")
    def _frames_agree(self) -> SliceSidecar:
        if self.frames != self.timestamps.frames:
            raise ValueError(f"frames ({self.frames}) and timestamps.frames ({self.timestamps.frames}) disagree")
        imported = self.kind == "imported_view_video"
        if imported != isinstance(self.source, ImportedSourceRecord) or imported != (self.camera is not None):
            raise ValueError(f"kind {self.kind!r} needs {'an imported' if imported else 'a 360°'} source record "
                             f"and {'a' if imported else 'no'} camera record")
        return self

    @property
    def imported(self) -> bool:
        """Whether the view came from `vidvpr import` (perspective footage) rather than `vidvpr slice`."""
        return self.kind == "imported_view_video"


class FrameQpRecord(Strict):
    I: int
    P: int
    B: int
    B_ref: int
    rule: str


class CellInputRecord(Strict):
    """The view video a cell was encoded from."""

    path: str
    bytes: int
    hash: str
    width: int
    height: int
    fps: str
    frames: int
    slice_sidecar: str | None


class CellOutputRecord(Strict):
    path: str
    bytes: int
    stream_bytes: int


class CellTimestamps(Strict):
    equal_to_input: bool
    check: str
    input_fps: str


class VmafSamplingRecord(Strict):
    """Which frames VMAF scored (see vidvpr.encoding.quality.VmafSampling)."""

    every: int
    frames_scored: int
    rule: str


class MetricsRecord(Strict):
    """Quality of a cell against the view scaled to the cell's size (see vidvpr.encoding.quality)."""

    psnr_y: float | None
    ssim_y: float
    vmaf: float | None
    frames_compared: int
    reference: str
    decoded_to_reference: str | None  # filters bringing the decoded cell to the reference's format
    measured_in: str
    psnr_y_definition: str
    ssim_y_definition: str
    vmaf_model: str | None
    vmaf_note: str | None
    vmaf_sampling: VmafSamplingRecord | None
    per_frame: dict[str, list[float | None]]


class QuantiserCheck(Strict):
    """What the encoded stream itself says about the quantiser it was coded with."""

    method: str  # where it was read from
    verified: bool  # the stream confirms the requested quantiser by `expected`
    expected: str  # the rule checked
    found: dict[str, Any]  # what was read (value → frame count, flags)
    cannot_show: str | None  # what the stream cannot prove


class ProcessRecord(Strict):
    process_wall_s: float
    process_cpu_s: float
    cells_in_process: int


class EncodeProcessRecord(ProcessRecord):
    encode_s: float
    threads_per_encoder: int
    cpu_s: float | None  # this cell's encoder (its thread, plus its share of the encoder library's pool)
    fps: float | None  # frames / cpu_s: frames per second one core sustains for this cell
    realtime_factor: float | None  # fps / the input's frame rate (>= 1: one core keeps up in real time)
    note: str


class MeasureRecord(Strict):
    """How long measuring took: in the encode process (loopback decoders) or in a separate pass."""

    mode: str
    cpu_s: float | None  # CPU seconds of measuring, for all cells_in_process together
    process_wall_s: float
    cells_in_process: int


class CellSidecar(Record):
    """`qp<NN>.json` (`quality<NN>.json` for JPEG) beside each encoded grid cell of `vidvpr encode`."""

    SCHEMA = "vidvpr.encode/3"
    KIND = "vidvpr encode cell sidecar"

    kind: Literal["encoded_cell"] = "encoded_cell"
    recording: str
    view: str
    resolution: str
    width: int
    height: int
    qp: int  # the quantiser's value (JPEG: its quality)
    quantiser: str  # "qp" or "quality"
    codec: str
    preset: str | None
    flat_qp: bool
    gop: int
    frame_qp: FrameQpRecord | None  # x264/x265: each frame type's QP by the encoder's rule
    quantiser_check: QuantiserCheck
    input: CellInputRecord
    output: CellOutputRecord
    frames: int
    timestamps: CellTimestamps
    duration_s: float
    kbps: float | None
    encoder_settings: str | None
    encoder_args: list[str]
    filter: str
    metrics: MetricsRecord
    encode: EncodeProcessRecord
    measure: MeasureRecord
    params_hash: str
    params: dict[str, Any]
    versions: dict[str, str]
    command: list[str]


class EquirectSidecar(Record):
    """`<recording>.json` beside the equirectangular video `vidvpr slice --equirect` stitches from a
    dual-fisheye recording."""

    SCHEMA = "vidvpr.equirect/1"
    KIND = "vidvpr slice --equirect sidecar"

    kind: Literal["equirect_video"] = "equirect_video"
    source: SourceRecord
    width: int
    height: int
    conventions: str
    frames: int
    timestamps: FrameTimes
    encoding: ViewEncodingRecord
    output: OutputRecord
    params_hash: str
    params: dict[str, Any]
    versions: dict[str, str]
    command: list[str]
    elapsed_s: float

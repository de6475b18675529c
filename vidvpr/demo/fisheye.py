"""`vidvpr demo make --camera dual-fisheye`: the demo world through two back-to-back fisheye
lenses, written as an Insta360-shaped `.insv`, so the native-camera path is verified without a
real scene.

The file is an MP4 (the two circles side by side in one stream, or one stream per lens) followed
by an Insta360 trailer (`vidvpr.media.insv.trailer`) holding what a camera writes: INFO with a
known lens calibration (`DEMO_CALIBRATION`, in the ONE R's string format, sensor crop included),
GPS fixes of the demo trajectory placed on the globe at `UTM_ORIGIN`, gyro and accelerometer
samples of the walk, exposure and frame timestamps. Each lens image is rendered from a
supersampled equirect frame of the world (`render_equirect_frame`) through the same lens model
`vidvpr slice` inverts (`vidvpr.geo.fisheye`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import utm

from vidvpr import __version__
from vidvpr.core.atomic import atomic_output
from vidvpr.core.camera_records import CropRecord, FisheyeCalibration, LensCalibration
from vidvpr.core.heap import defined_heap
from vidvpr.demo.definition import EncodingSpec
from vidvpr.demo.render import render_equirect_frame
from vidvpr.demo.world import CameraPose, Lighting, World
from vidvpr.geo import fisheye, projection
from vidvpr.media.insv.calibration import format_calibration_text, stream_lenses
from vidvpr.media.insv.info import InsvInfo, encode_info
from vidvpr.media.insv.telemetry import GpsFix, encode_exposure, encode_frame_times, encode_gps, encode_imu
from vidvpr.media.insv.trailer import EXPOSURE, FRAME_TIMES, GPS, GYRO, INFO, build_trailer
from vidvpr.slicing.camera import fisheye_rig
from vidvpr.slicing.config import DEFAULT_FISHEYE_FOV_DEG

CAMERA_TYPE = "vidvpr demo dual-fisheye"
# A calibration like a real camera's: a 4000×2000 sensor canvas of which each lens delivers its
# centred 1920 px square, circles a little off-centre, sub-degree tilts, and lens 0's roll written
# near -180° as the ONE R writes it (a convention, read modulo 180°).
DEMO_CALIBRATION = FisheyeCalibration(
    canvas_width_px=4000, canvas_height_px=2000,
    lenses=(LensCalibration(centre_x_px=1003.5, centre_y_px=996.0, radius_px=930.0, pitch_deg=0.4, yaw_deg=-0.3,
                            roll_deg=-178.8),
            LensCalibration(centre_x_px=3001.0, centre_y_px=1004.5, radius_px=931.5, pitch_deg=-0.6, yaw_deg=0.5,
                            roll_deg=1.1)),
    crop=CropRecord(src_width_px=2000, src_height_px=2000, dst_width_px=1920, dst_height_px=1920), lens_code=4242)
FOV_DEG = DEFAULT_FISHEYE_FOV_DEG  # the string carries none: the demo's lenses are what slice assumes
SUPERSAMPLE = 2  # the equirect frame the circles are drawn from has twice their angular resolution ...
PREFILTER_SIGMA_PX = SUPERSAMPLE / 2  # ... and is blurred to it first (anti-aliasing, as a lens and sensor do)
UTM_ORIGIN = (500_000.0, 5_300_000.0, 32, "T")  # where the demo floor's (0, 0) is: easting, northing, zone
GPS_START_UTC_S = 1_714_557_600.0  # 2024-05-01T10:00:00Z, the first frame
CAMERA_CLOCK_START_US = 100_000_000  # the first frame on the camera's own clock
IMU_RATE_HZ = 50
SHUTTER_S = 1 / 120


def demo_rig(frame_size: tuple[int, int], layout: str) -> tuple[fisheye.FisheyeLens, fisheye.FisheyeLens]:
    """The demo lenses on a `frame_size` frame (W × H, both lenses): side by side, or one H × H
    stream each."""
    width, height = frame_size
    lens_size = (width // 2, height)
    sizes = [(width, height)] if layout == "side-by-side" else [lens_size, lens_size]
    return fisheye_rig(stream_lenses(DEMO_CALIBRATION, sizes, layout, FOV_DEG), lens_size, layout)


class DualFisheyeRenderer:
    """Draws the demo world's two lens images for one frame size and layout (maps computed once)."""

    def __init__(self, frame_size: tuple[int, int], layout: str) -> None:
        self.frame_size, self.layout = frame_size, layout
        self.rig = demo_rig(frame_size, layout)
        ppr = min(lens.pixels_per_radian for lens in self.rig)
        height = 2 * math.ceil(SUPERSAMPLE * math.pi * ppr / 2)
        self.equirect_size = (2 * height, height)
        self.lens_maps = []
        for lens in self.rig:
            rays, inside, region = fisheye.lens_image_rays(lens)
            lon, lat = projection.world_rays_to_lon_lat(rays)
            map_x, map_y = projection.lon_lat_to_equirect_pixel(lon, lat, *self.equirect_size)
            map_y = np.clip(map_y, 0.0, height - 1.0)
            self.lens_maps.append((map_x.astype(np.float32), map_y.astype(np.float32), inside, region))

    def panorama(self, world: World, pose: CameraPose, lighting: Lighting) -> np.ndarray:
        """The band-limited equirect frame the lens images are drawn from (RGB uint8): the world as
        this camera resolves it, also what a view rendered straight from the world is cut from."""
        equirect = render_equirect_frame(world, pose, self.equirect_size, lighting)
        return cv2.GaussianBlur(equirect, (0, 0), PREFILTER_SIGMA_PX, borderType=cv2.BORDER_REFLECT)

    def __call__(self, world: World, pose: CameraPose, lighting: Lighting) -> list[np.ndarray]:
        """RGB image of each stream: the side-by-side frame, or one image per lens."""
        equirect = self.panorama(world, pose, lighting)
        width, height = self.frame_size
        streams = [np.zeros((height, width, 3), np.uint8)] if self.layout == "side-by-side" else [
            np.zeros((height, width // 2, 3), np.uint8) for _ in range(2)]
        for lens, (map_x, map_y, inside, (rows, cols)) in zip(self.rig, self.lens_maps):
            drawn = cv2.remap(equirect, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
            streams[lens.stream][rows, cols][inside] = drawn[inside]
        return streams


def straight_view_luma(panorama: np.ndarray, width: int, height: int, yaw_deg: float, pitch_deg: float,
                       hfov_deg: float) -> np.ndarray:
    """Luma plane (float64) of a view cut straight from a panorama, never through a fisheye: exact
    float bilinear sampling, then RGB to yuv420p as the demo's encoder converts its frames
    (libswscale). What the luma of views sliced from the .insv is compared with."""
    import av

    from vidvpr.media.decode import yuv420p_planes

    map_x, map_y = projection.equirect_to_perspective_maps(panorama.shape[1], panorama.shape[0], width, height,
                                                           yaw_deg, pitch_deg, hfov_deg)
    source = panorama.astype(np.float64)
    rgb = np.stack([projection.sample_bilinear(source[..., c], map_x, map_y) for c in range(3)], axis=-1)
    frame = av.VideoFrame.from_ndarray(np.clip(np.round(rgb), 0, 255).astype(np.uint8), format="rgb24")
    return yuv420p_planes(frame.reformat(format="yuv420p"))[0].astype(np.float64)


def demo_trailer(t_s: np.ndarray, east_m: np.ndarray, north_m: np.ndarray, heading_deg: np.ndarray,
                 camera_height_m: float, speed_mps: float, fps: Fraction) -> bytes:
    """The trailer of one traversal: INFO, a void fix then one GPS fix per frame, IMU, exposure and
    frame timestamps, on a camera clock whose first frame is at `CAMERA_CLOCK_START_US`."""
    first_frame_s = CAMERA_CLOCK_START_US / 1e6
    lat, lon = utm.to_latlon(UTM_ORIGIN[0] + np.asarray(east_m), UTM_ORIGIN[1] + np.asarray(north_m), UTM_ORIGIN[2],
                             UTM_ORIGIN[3])
    # the GPS record starts one second before the video with a void fix, as before a lock
    fixes = [GpsFix(GPS_START_UTC_S - 1.0, "V", 0.0, 0.0, 0.0, 0.0, 0.0)] + [
        GpsFix(GPS_START_UTC_S + float(t), "A", float(a), float(o), speed_mps, float(h) % 360.0, camera_height_m)
        for t, a, o, h in zip(t_s, np.atleast_1d(lat), np.atleast_1d(lon), heading_deg)]
    info = InsvInfo(serial_number="VIDVPR-DEMO", camera_type=CAMERA_TYPE, firmware=f"vidvpr {__version__}",
                    calibration_text=format_calibration_text(DEMO_CALIBRATION), window_crop=DEMO_CALIBRATION.crop,
                    frame_rate=round(float(fps)), total_time_s=math.ceil(len(t_s) / float(fps)),
                    first_frame_timestamp_us=CAMERA_CLOCK_START_US,
                    first_gps_timestamp_ms=CAMERA_CLOCK_START_US // 1000 - 1000, is_raw_gyro=False,
                    gyro_record_bytes=56)
    imu_t = np.arange(0.0, len(t_s) / float(fps), 1.0 / IMU_RATE_HZ)
    yaw_rate = np.radians(np.gradient(np.unwrap(np.asarray(heading_deg, float), period=360.0), t_s)) if len(t_s) > 1 \
        else np.zeros(1)
    imu = np.zeros((imu_t.size, 6))
    imu[:, 1] = 1.0  # gravity along the body's up axis (g); the walk's turns about it (rad/s)
    imu[:, 4] = np.interp(imu_t, t_s, yaw_rate)
    records = [(INFO, encode_info(info)), (GYRO, encode_imu(first_frame_s + imu_t, imu)),
               (EXPOSURE, encode_exposure(first_frame_s + t_s, np.full(len(t_s), SHUTTER_S))),
               (FRAME_TIMES, encode_frame_times(first_frame_s + t_s)), (GPS, encode_gps(fixes))]
    return build_trailer(records)


def write_video_streams(path: Path, frames: Iterable[Sequence[np.ndarray]], fps: Fraction, encoding: EncodingSpec,
                        on_frame: Callable[[int], None] | None = None, trailer: bytes = b"") -> int:
    """Encode each frame's stream images (RGB uint8) to an MP4, one video stream per image, frame i at
    pts i in time base 1/fps; append `trailer` (an .insv's); rename into place when complete.
    Returns the number of frames."""
    import av

    count = 0
    # x264 reads heap bytes it never wrote (vidvpr.core.heap): keep them defined while it runs
    with atomic_output(path) as tmp, defined_heap():
        with av.open(str(tmp), mode="w", format="mp4") as container:
            streams = []
            for images in frames:
                if not streams:
                    for image in images:
                        stream = container.add_stream(encoding.codec, rate=fps)
                        stream.pix_fmt, stream.time_base = encoding.pix_fmt, 1 / fps
                        stream.height, stream.width = image.shape[:2]
                        stream.codec_context.time_base = 1 / fps
                        stream.codec_context.thread_count = encoding.threads
                        stream.options = {"crf": str(encoding.crf), "preset": encoding.preset}
                        streams.append(stream)
                for stream, image in zip(streams, images):
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                    frame.pts = count
                    container.mux(stream.encode(frame))
                count += 1
                if on_frame:
                    on_frame(1)
            for stream in streams:
                container.mux(stream.encode(None))
        if trailer:
            with open(tmp, "ab") as handle:
                handle.write(trailer)
    return count

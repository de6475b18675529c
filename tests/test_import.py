"""`vidvpr import`: videos and image sequences become view videos with slice-style sidecars;
frame order, count, timestamps, quality, camera, reruns."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.media import decode_luma_and_times, perspective_test_frame, read_index_code, write_png, write_video
from vidvpr.cli import main
from vidvpr.core.sidecars import SliceSidecar
from vidvpr.ingest import ImportConfig, import_footage
from vidvpr.ingest.images import natural_key, rgb_to_planes
from vidvpr.media.decode import decode_frame_sets, decode_frames
from vidvpr.media.ffmpeg import find_ffmpeg
from vidvpr.media.metrics import image_psnr_db

SIZE = (96, 64)  # W, H of the synthetic footage


def config(**overrides) -> ImportConfig:
    return ImportConfig(**{"hfov_deg": 60.0, **overrides})


def frames(count: int, size: tuple[int, int] = SIZE, seed: int = 0) -> list[np.ndarray]:
    return [perspective_test_frame(size[0], size[1], i, seed) for i in range(count)]


def sidecar_of(result_path: str) -> SliceSidecar:
    return SliceSidecar.load(Path(result_path).with_suffix(".json"))


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-frame H.264 video at irregular times (ms: 0, 40, 70, 130, ...), as phones record."""
    pts = [0, 40, 70, 130, 160, 200, 250, 270, 330, 360]
    return write_video(tmp_path_factory.mktemp("video") / "drive.mp4", frames(10), pts=pts,
                       time_base=Fraction(1, 1000), crf=18, size=SIZE)


# ---------------------------------------------------------------- videos


def test_a_video_keeps_every_frame_in_order_at_its_own_times(vfr_video: Path, tmp_path: Path) -> None:
    result = import_footage([vfr_video], tmp_path / "views", config()).views[0]
    lumas, times = decode_luma_and_times(Path(result.path))
    _, source_times = decode_luma_and_times(vfr_video)
    assert [read_index_code(luma) for luma in lumas] == list(range(10))
    assert times == source_times
    assert sidecar_of(result.path).timestamps.times().tolist() == pytest.approx(source_times, abs=1e-6)


def test_a_plain_h264_video_is_copied_unchanged(vfr_video: Path, tmp_path: Path) -> None:
    result = import_footage([vfr_video], tmp_path / "views", config()).views[0]
    assert result.stream_copy
    copied, source = list(decode_frames(Path(result.path))), list(decode_frames(vfr_video))
    assert all(np.array_equal(a.y, b.y) and np.array_equal(a.u, b.u) for a, b in zip(copied, source))
    encoding = sidecar_of(result.path).encoding
    assert encoding.stream_copy and encoding.crf is None and encoding.codec == "h264"


def test_reencoding_keeps_frames_and_times_and_is_visually_lossless(vfr_video: Path, tmp_path: Path) -> None:
    result = import_footage([vfr_video], tmp_path / "views", config(reencode=True)).views[0]
    assert not result.stream_copy
    out, src = decode_luma_and_times(Path(result.path)), decode_luma_and_times(vfr_video)
    assert out[1] == src[1]
    assert min(image_psnr_db(a, b) for a, b in zip(out[0], src[0])) >= 45.0
    encoding = sidecar_of(result.path).encoding
    assert (encoding.crf, encoding.preset, encoding.stream_copy) == (10, "veryfast", False)


def test_a_stream_that_is_not_h264_yuv420p_is_reencoded(tmp_path: Path) -> None:
    source = write_video(tmp_path / "clip.mp4", frames(4), codec="mpeg4", size=SIZE)
    result = import_footage([source], tmp_path / "views", config()).views[0]
    assert not result.stream_copy and result.frames == 4
    assert [read_index_code(luma) for luma in decode_luma_and_times(Path(result.path))[0]] == [0, 1, 2, 3]


def test_a_video_trimmed_without_reencoding_imports_the_frames_players_show(tmp_path: Path) -> None:
    """`ffmpeg -ss 0.3 -c copy` (or a phone's trim) keeps the frames before the cut for decoding, flagged
    "discard" by an edit list: the container counts 20 frames, players show 11. Import called it
    "truncated or corrupt stream: decoded 11 of 20 frames"."""
    source = write_video(tmp_path / "clip.mp4", frames(20), fps=Fraction(10), size=SIZE)
    trimmed = tmp_path / "trimmed.mp4"
    subprocess.run([find_ffmpeg().path, "-v", "error", "-ss", "0.9", "-i", str(source), "-c", "copy", str(trimmed)],
                   check=True)
    with av.open(str(trimmed)) as container:
        assert container.streams.video[0].frames == 20  # what the container says
    shown, times = decode_luma_and_times(trimmed)
    result = import_footage([trimmed], tmp_path / "views", config()).views[0]
    assert result.stream_copy and result.frames == len(shown) == 11
    lumas, view_times = decode_luma_and_times(Path(result.path))
    assert [read_index_code(luma) for luma in lumas] == [read_index_code(luma) for luma in shown] == list(range(9, 20))
    assert view_times == [t - times[0] for t in times]


def test_a_two_lens_video_trimmed_without_reencoding_decodes_the_frames_players_show(tmp_path: Path) -> None:
    """The same trim on a camera's one-stream-per-lens file: `decode_frame_sets` called it truncated."""
    ffmpeg = find_ffmpeg().path
    lenses = [write_video(tmp_path / f"lens{k}.mp4", frames(20, seed=k), fps=Fraction(10), size=SIZE) for k in (0, 1)]
    both, trimmed = tmp_path / "both.mp4", tmp_path / "trimmed.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(lenses[0]), "-i", str(lenses[1]), "-map", "0", "-map", "1", "-c",
                    "copy", str(both)], check=True)
    subprocess.run([ffmpeg, "-v", "error", "-ss", "0.9", "-i", str(both), "-map", "0", "-c", "copy", str(trimmed)],
                   check=True)
    with av.open(str(trimmed)) as container:
        counted = container.streams.video[0].frames
    pairs = list(decode_frame_sets(trimmed, 2, counted))
    assert counted == 20 and len(pairs) == 11
    assert [read_index_code(pair[0].y) for pair in pairs] == list(range(9, 20))


@pytest.fixture(scope="module")
def portrait_video(vfr_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`vfr_video` with a display matrix turning it 90° counter-clockwise, as phones store portrait video."""
    rotated = tmp_path_factory.mktemp("portrait") / "portrait.mp4"
    subprocess.run([find_ffmpeg().path, "-v", "error", "-display_rotation", "90", "-i", str(vfr_video), "-c", "copy",
                    str(rotated)], check=True)
    return rotated


def test_a_phone_video_shown_rotated_is_imported_as_shown_and_encodes(vfr_video: Path, portrait_video: Path,
                                                                      tmp_path: Path) -> None:
    """A portrait phone video stores landscape frames and a display rotation: the view is the picture as
    players show it (as ffmpeg shows it), so `encode`, which decodes through ffmpeg, sees the same frames."""
    from vidvpr.encoding.grid import encode_grid
    from vidvpr.encoding.plan import EncodeConfig, parse_resolutions

    rotated = portrait_video
    result = import_footage([rotated], tmp_path / "views", config()).views[0]
    assert not result.stream_copy
    out, src = decode_luma_and_times(Path(result.path)), decode_luma_and_times(vfr_video)
    assert out[0][0].shape == (SIZE[0], SIZE[1])  # 90° turns the 96x64 frames into 64x96
    assert min(image_psnr_db(a, np.rot90(b)) for a, b in zip(out[0], src[0])) >= 45.0
    sidecar = sidecar_of(result.path)
    assert (sidecar.source.width, sidecar.source.height, sidecar.source.rotation_deg) == (SIZE[1], SIZE[0], 90)
    assert sidecar.geometry.width == SIZE[1] and sidecar.geometry.hfov_deg == pytest.approx(60.0)
    grid = encode_grid([Path(result.path)], tmp_path / "enc",
                       EncodeConfig(qps=(40,), resolutions=parse_resolutions("32x48"), vmaf=False, preset="ultrafast"))
    assert grid


def test_a_video_flagged_as_a_stereo_pair_is_reencoded_with_a_warning_and_encodes(
        vfr_video: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An H.264 frame-packing SEI (here top and bottom, as ffmpeg carries it from a stereo 360° source
    through crop or v360) was copied into the view, and `vidvpr encode` then failed on every cell
    (ffmpeg's loopback decoder: "File exists", exit 5). The view is re-encoded, which drops the flag."""
    from vidvpr.encoding.grid import encode_grid
    from vidvpr.encoding.plan import EncodeConfig, parse_resolutions

    flagged = tmp_path / "stereo.mp4"
    subprocess.run([find_ffmpeg().path, "-v", "error", "-i", str(vfr_video), "-c:v", "libx264", "-preset",
                    "ultrafast", "-x264-params", "frame-packing=4", "-pix_fmt", "yuv420p", str(flagged)], check=True)
    result = import_footage([flagged], tmp_path / "views", config()).views[0]
    assert not result.stream_copy and result.frames == 10
    assert "flagged as a stereo pair (top and bottom); imported whole, as one camera" in caplog.text
    grid = encode_grid([Path(result.path)], tmp_path / "enc",
                       EncodeConfig(qps=(40,), resolutions=parse_resolutions("48x32"), vmaf=False, preset="ultrafast"))
    assert grid


def test_probe_says_a_video_is_shown_rotated(portrait_video: Path) -> None:
    result = CliRunner().invoke(main, ["probe", str(portrait_video)])
    assert result.exit_code == 0
    assert "96x64 yuv420p" in result.output and "shown rotated 90° (vidvpr import turns it upright)" in result.output


def test_the_sidecar_says_imported_and_records_source_camera_and_frames(vfr_video: Path, tmp_path: Path) -> None:
    result = import_footage([vfr_video], tmp_path / "views", config(recording="walk")).views[0]
    assert Path(result.path) == tmp_path / "views" / "walk" / "camera.mp4"
    car = sidecar_of(result.path)
    assert car.kind == "imported_view_video" and car.imported and car.view == "camera"
    assert car.source.kind == "video" and car.source.path == str(vfr_video) and car.source.hash.startswith("sha256:")
    assert car.timestamps.source_frames().tolist() == list(range(10)) and car.frames == 10
    geometry = car.geometry
    assert (geometry.yaw_deg, geometry.pitch_deg, geometry.hfov_deg, geometry.width, geometry.height) == (0, 0, 60, 96, 64)
    assert geometry.intrinsics.fx == pytest.approx(48 / np.tan(np.radians(30)))
    assert (geometry.intrinsics.cx, geometry.intrinsics.cy) == (48.0, 32.0)  # centre, pixel centres at +0.5
    assert car.camera.given_by == "--hfov" and car.camera.distortion == [] and not car.camera.undistorted


def test_a_rerun_skips_and_changed_options_redo(vfr_video: Path, tmp_path: Path) -> None:
    first = import_footage([vfr_video], tmp_path / "views", config()).views[0]
    again = import_footage([vfr_video], tmp_path / "views", config()).views[0]
    assert not first.skipped and again.skipped
    changed = import_footage([vfr_video], tmp_path / "views", config(hfov_deg=70.0)).views[0]
    assert not changed.skipped and sidecar_of(changed.path).geometry.hfov_deg == 70.0


# ---------------------------------------------------------------- image sequences


def test_natural_name_order_puts_img2_before_img10() -> None:
    names = ["img10.png", "img2.png", "IMG1.png", "img2b.png", "img02.png"]
    assert sorted(names, key=natural_key) == ["IMG1.png", "img02.png", "img2.png", "img2b.png", "img10.png"]


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """img0.png ... img11.png, frame i carrying index i (so natural order is the index order)."""
    for i, rgb in enumerate(frames(12)):
        write_png(tmp_path / "seq" / f"img{i}.png", rgb)
    return tmp_path / "seq"


def test_a_video_named_with_accents_and_spaces_imports_under_a_usable_recording_name(tmp_path: Path) -> None:
    video = write_video(tmp_path / "Straße 2.mp4", frames(3), size=SIZE)
    result = import_footage([video], tmp_path / "views", config()).views[0]
    assert result.recording == "Strasse_2"
    assert Path(result.path).parent == tmp_path / "views" / "Strasse_2"
    assert sidecar_of(result.path).source.path == str(video)  # its own name kept


def test_images_become_one_frame_each_in_natural_order_at_fps(image_folder: Path, tmp_path: Path) -> None:
    result = import_footage([image_folder], tmp_path / "views", config(fps=Fraction(5, 2))).views[0]
    lumas, times = decode_luma_and_times(Path(result.path))
    assert [read_index_code(luma) for luma in lumas] == list(range(12))
    assert times == pytest.approx([i / 2.5 for i in range(12)])
    car = sidecar_of(result.path)
    assert car.source.kind == "images" and car.source.images[:3] == ["img0.png", "img1.png", "img2.png"]
    assert car.timestamps.rule == "time_s[i] = i / fps" and car.timestamps.fps == "5/2"
    assert result.recording == "seq"


def test_image_frames_are_visually_lossless_against_the_images(image_folder: Path, tmp_path: Path) -> None:
    result = import_footage([image_folder], tmp_path / "views", config()).views[0]
    reference = [rgb_to_planes(rgb)[0] for rgb in frames(12)]
    lumas, _ = decode_luma_and_times(Path(result.path))
    assert min(image_psnr_db(a, b) for a, b in zip(lumas, reference)) >= 45.0


def test_a_glob_pattern_and_a_list_of_files_name_the_same_sequence(image_folder: Path, tmp_path: Path) -> None:
    files = sorted(image_folder.glob("*.png"))  # as a shell expands them: img10 before img2
    by_pattern = import_footage([str(image_folder / "img*.png")], tmp_path / "a", config(recording="r")).views[0]
    by_files = import_footage(files, tmp_path / "b", config(recording="r")).views[0]
    assert sidecar_of(by_pattern.path).source.images == sidecar_of(by_files.path).source.images
    assert [read_index_code(y) for y in decode_luma_and_times(Path(by_files.path))[0]] == list(range(12))


def test_epoch_file_names_time_the_frames(tmp_path: Path) -> None:
    stamps_ns = [1403636579763555584, 1403636579813555456, 1403636579863555584, 1403636579963555584]
    for index, stamp in enumerate(stamps_ns):
        write_png(tmp_path / "cam0" / f"{stamp}.png", perspective_test_frame(*SIZE, index))
    result = import_footage([tmp_path / "cam0"], tmp_path / "views", config()).views[0]
    car = sidecar_of(result.path)
    assert car.source.times_from == "file names"
    assert car.timestamps.times() == pytest.approx([(s - stamps_ns[0]) / 1e9 for s in stamps_ns], abs=2e-5)
    assert car.source.t0_epoch_s == pytest.approx(1403636579.763555584)
    assert decode_luma_and_times(Path(result.path))[1] == pytest.approx(car.timestamps.times().tolist(), abs=1e-6)


def test_one_image_without_an_epoch_name_among_timed_ones_is_named_in_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A stray image in a TUM/EuRoC folder switched `auto` from the names' times to 1 fps without a word."""
    for index, stamp in enumerate([1403636579763555584, 1403636579813555456, 1403636579863555584]):
        write_png(tmp_path / "cam0" / f"{stamp}.png", perspective_test_frame(*SIZE, index))
    write_png(tmp_path / "cam0" / "thumbnail.png", perspective_test_frame(*SIZE, 3))
    car = sidecar_of(import_footage([tmp_path / "cam0"], tmp_path / "views", config()).views[0].path)
    assert car.source.times_from == "--fps 1"
    assert ("thumbnail.png: no time since 1970 in its name, unlike 3 of the 4 images, so all are timed at --fps 1 "
            "(--times name names each image without one)") in caplog.text


def test_exif_times_time_the_frames(tmp_path: Path) -> None:
    for index, (clock, sub) in enumerate([("10:00:00", "0"), ("10:00:00", "5"), ("10:00:02", "25")]):
        exif = Image.Exif()
        exif.get_ifd(0x8769).update({0x9003: f"2024:05:01 {clock}", 0x9291: sub, 0x9011: "+02:00"})
        (tmp_path / "phone").mkdir(exist_ok=True)
        Image.fromarray(perspective_test_frame(*SIZE, index)).save(tmp_path / "phone" / f"P{index}.jpg", exif=exif,
                                                                    quality=95)
    car = sidecar_of(import_footage([tmp_path / "phone"], tmp_path / "views", config()).views[0].path)
    assert car.source.times_from == "EXIF DateTimeOriginal"
    assert car.timestamps.times() == pytest.approx([0.0, 0.5, 2.25])
    assert car.source.t0_epoch_s == pytest.approx(1714550400.0)  # 2024-05-01 08:00:00 UTC


def test_odd_sized_images_are_cropped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(3):
        write_png(tmp_path / "odd" / f"f{i}.png", perspective_test_frame(97, 65, i))
    car = sidecar_of(import_footage([tmp_path / "odd"], tmp_path / "views", config()).views[0].path)
    assert (car.geometry.width, car.geometry.height) == (96, 64)
    assert car.camera.even == "cropped 1 column at the right and 1 row at the bottom"
    assert "97x65 frames cropped 1 column at the right and 1 row at the bottom to 96x64" in caplog.text


def test_odd_sized_images_can_be_padded_instead(tmp_path: Path) -> None:
    for i in range(2):
        write_png(tmp_path / "odd" / f"f{i}.png", perspective_test_frame(97, 64, i))
    result = import_footage([tmp_path / "odd"], tmp_path / "views", config(even="pad")).views[0]
    car = sidecar_of(result.path)
    assert (car.geometry.width, car.camera.even) == (98, "padded (edge repeated) 1 column at the right")


def test_grey_and_sixteen_bit_images_are_read(tmp_path: Path) -> None:
    grey = (np.arange(64 * 96).reshape(64, 96) % 256).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "a.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "b.png")  # 16-bit grey PNG
    result = import_footage([tmp_path / "a.png", tmp_path / "b.png"], tmp_path / "views",
                            config(recording="grey")).views[0]
    first, second = decode_luma_and_times(Path(result.path))[0]
    assert image_psnr_db(first, second) >= 45.0  # the same picture at 8 and at 16 bits


# ---------------------------------------------------------------- the camera


def test_intrinsics_are_recorded_with_pixel_centres_at_half(vfr_video: Path, tmp_path: Path) -> None:
    result = import_footage([vfr_video], tmp_path / "v", ImportConfig(intrinsics=(80.0, 82.0, 47.5, 31.5))).views[0]
    car = sidecar_of(result.path)
    intrinsics = car.geometry.intrinsics
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (80.0, 82.0, 48.0, 32.0)
    assert car.geometry.hfov_deg == pytest.approx(2 * np.degrees(np.arctan(48 / 80)), abs=1e-5)
    assert car.camera.matrix == [[80.0, 0.0, 47.5], [0.0, 82.0, 31.5], [0.0, 0.0, 1.0]]


def test_hfov_of_a_video_with_non_square_pixels_keeps_the_vertical_field_of_view(tmp_path: Path,
                                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A PAL-style 16:15 sample aspect ratio: each pixel is 16/15 as wide as tall, so fy = fx * 16/15
    (square pixels gave fy = fx and a vertical field of view 16/15 too wide)."""
    source = tmp_path / "pal.mp4"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(16, 15)
        for index, rgb in enumerate(frames(3)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    result = import_footage([source], tmp_path / "views", config()).views[0]
    intrinsics = sidecar_of(result.path).geometry.intrinsics
    assert intrinsics.fx == pytest.approx(48 / np.tan(np.radians(30)))
    assert intrinsics.fy == pytest.approx(intrinsics.fx * 16 / 15)
    assert "sample aspect ratio 16:15" in caplog.text


def write_yaml_calibration(path: Path, matrix: np.ndarray, distortion: np.ndarray, size: tuple[int, int]) -> Path:
    import cv2

    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    storage.write("image_width", size[0])
    storage.write("image_height", size[1])
    storage.write("camera_matrix", matrix)
    storage.write("distortion_coefficients", distortion)
    storage.release()
    return path


K = np.array([[70.0, 0, 47.5], [0, 70.0, 31.5], [0, 0, 1]])
D = np.array([[-0.3, 0.09, 0.001, -0.002, 0.0]])


def test_yaml_and_json_calibrations_give_the_same_camera(vfr_video: Path, tmp_path: Path) -> None:
    yaml = write_yaml_calibration(tmp_path / "cam.yaml", K, D, SIZE)
    (tmp_path / "cam.json").write_text(json.dumps({"camera_matrix": K.tolist(), "distortion": D.ravel().tolist()}))
    cameras = [sidecar_of(import_footage([vfr_video], tmp_path / name, ImportConfig(calibration=path)).views[0].path).camera
               for name, path in (("a", yaml), ("b", tmp_path / "cam.json"))]
    assert cameras[0].matrix == cameras[1].matrix == K.tolist()
    assert cameras[0].distortion == pytest.approx(D.ravel().tolist()) and cameras[0].calibration_size == [96, 64]
    assert cameras[1].calibration.path.endswith("cam.json") and cameras[1].given_by == "calibration file"


def test_a_calibration_made_at_twice_the_size_is_scaled(vfr_video: Path, tmp_path: Path) -> None:
    big = np.array([[140.0, 0, 95.5], [0, 140.0, 63.5], [0, 0, 1]])
    yaml = write_yaml_calibration(tmp_path / "cam.yaml", big, D, (192, 128))
    car = sidecar_of(import_footage([vfr_video], tmp_path / "v", ImportConfig(calibration=yaml)).views[0].path)
    assert np.allclose(car.camera.matrix, K) and car.camera.calibration_size == [192, 128]


def test_undistortion_puts_points_where_the_recorded_pinhole_says(tmp_path: Path) -> None:
    """Dots rendered through the distorting lens land, after --undistort, where the sidecar's
    intrinsics project them."""
    import cv2

    rays = np.array([[x, y, 1.0] for x in (-0.5, 0.0, 0.45) for y in (-0.3, 0.0, 0.3)])
    width, height = 192, 128
    matrix = np.array([[120.0, 0, 95.5], [0, 120.0, 63.5], [0, 0, 1]])
    distortion = np.array([-0.25, 0.05, 0.0, 0.0, 0.0])
    pixels, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), matrix, distortion)
    image = np.full((height, width, 3), 30, np.uint8)
    for x, y in pixels.reshape(-1, 2):
        cv2.circle(image, (round(x * 16), round(y * 16)), 3 * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    for i in range(2):
        write_png(tmp_path / "lens" / f"f{i}.png", image)
    (tmp_path / "cal.json").write_text(json.dumps({"camera_matrix": matrix.tolist(), "dist_coeffs": distortion.tolist()}))
    result = import_footage([tmp_path / "lens"], tmp_path / "views",
                            ImportConfig(calibration=tmp_path / "cal.json", undistort=True)).views[0]
    car = sidecar_of(result.path)
    assert car.camera.undistorted and car.camera.undistort_alpha == 0.0 and car.geometry.interpolation.startswith("bilinear")
    k = car.geometry.intrinsics
    expected = [(k.fx * x + k.cx - 0.5, k.fy * y + k.cy - 0.5) for x, y, _ in rays]  # OpenCV pixel coordinates
    luma = decode_luma_and_times(Path(result.path))[0][0].astype(float)
    count, labels, _, centres = cv2.connectedComponentsWithStats((luma > 128).astype(np.uint8))
    found = [centres[i] for i in range(1, count)]
    assert len(found) == len(expected)
    for point in expected:
        assert min(np.hypot(*(np.asarray(point) - centre)) for centre in found) < 0.5


def test_the_help_says_in_which_order_auto_chooses_image_times() -> None:
    # review-b: "--fps, file names or EXIF; auto uses the first the images all have" read as "auto is --fps"
    # and left out that `--times name` takes plain numbers as seconds
    help_text = " ".join(CliRunner().invoke(main, ["import", "--help"]).output.split())
    assert "auto, --fps when given, else names when every one is a time since 1970, else EXIF" in help_text
    assert "the file name's last number (seconds," in help_text


def test_the_help_says_the_camera_is_required() -> None:
    """Every option of the camera read as optional in --help; only the error said one is required."""
    help_text = " ".join(CliRunner().invoke(main, ["import", "--help"]).output.split())
    assert "The camera is required: one of --hfov, --intrinsics or --calibration." in help_text


def test_the_command_line_prints_a_json_summary(image_folder: Path, tmp_path: Path) -> None:
    argv = ["import", str(image_folder), "--out", str(tmp_path / "views"), "--hfov", "60", "--positions", "index:5",
            "--json"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [(v["recording"], v["frames"], v["stream_copy"], v["skipped"]) for v in summary["views"]] == \
        [("seq", 12, False, False)]
    assert summary["trajectories"] == [str(tmp_path / "trajectories" / "seq.csv")]
    assert (tmp_path / "trajectories" / "seq.csv").read_text().splitlines()[3] == "1.0,5.0,0.0"


def test_a_rerun_over_an_imported_view_draws_no_progress_bar(vfr_video: Path, tmp_path: Path) -> None:
    argv = ["import", str(vfr_video), "--out", str(tmp_path / "views"), "--hfov", "60", "--quiet"]
    assert CliRunner().invoke(main, argv).exit_code == 0
    again = CliRunner().invoke(main, [*argv[:-1], "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["views"][0]["skipped"]
    assert again.stderr == ""

"""`vidvpr import` on bad input: one line naming the file and the problem, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from tests.media import make_equirect_video, perspective_test_frame, write_png, write_video
from tests.test_slice import _append_to_moov
from vidvpr.cli import main
from vidvpr.core.errors import BadInput
from vidvpr.ingest import ImportConfig, IndexPositions, import_footage
from vidvpr.media.probe import SPHERICAL_V1_UUID

SIZE = (64, 48)


def run(*argv: str) -> object:
    return CliRunner().invoke(main, ["import", *map(str, argv)])


def assert_one_line_exit_2(result, *fragments: str) -> None:
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("vidvpr: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def images(tmp_path: Path) -> Path:
    for i in range(3):
        write_png(tmp_path / "seq" / f"f{i}.png", perspective_test_frame(*SIZE, i))
    return tmp_path / "seq"


def test_a_folder_without_images_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    result = run(tmp_path / "empty", "--out", tmp_path / "views", "--hfov", 60)
    assert_one_line_exit_2(result, "empty: no images (*.jpg, *.jpeg or *.png) in this folder")
    assert not (tmp_path / "views").exists()


def test_an_image_of_another_size_is_named_before_anything_is_written(images: Path, tmp_path: Path) -> None:
    write_png(images / "f10.png", perspective_test_frame(66, 48, 0))
    result = run(images, "--out", tmp_path / "views", "--hfov", 60)
    assert_one_line_exit_2(result, "f10.png: 66x48, but f0.png is 64x48; every image of a sequence must have the same size")
    assert not (tmp_path / "views").exists()


@pytest.mark.parametrize("again", ["f1.png", "./f1.png", "../seq/f1.png"])
def test_an_image_given_twice_is_named(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       again: str) -> None:
    """The same file twice in a list of images was imported as two frames of one picture."""
    monkeypatch.chdir(images)
    result = run("f0.png", "f1.png", again, "--out", tmp_path / "views", "--hfov", 60)
    assert_one_line_exit_2(result, f"{Path(again)}: given twice (also as f1.png)")
    assert not (tmp_path / "views").exists()


def test_images_wider_than_x264_encodes_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    """17000 px wide images were read, then x264 refused to open ("invalid width x height"): exit 4
    naming a temporary file. x264 takes 16384 px a side, and no more."""
    for width in (16384, 16386):
        for i in range(2):
            write_png(tmp_path / str(width) / f"f{i}.png", np.full((2, width, 3), 40 * i, np.uint8))
    assert run(tmp_path / "16384", "--out", tmp_path / "views", "--hfov", 60).exit_code == 0
    result = run(tmp_path / "16386", "--out", tmp_path / "views", "--hfov", 60)
    assert_one_line_exit_2(result, "16386: 16386x2 frames, and x264 encodes at most 16384 pixels a side")
    assert files_under(tmp_path / "views") == ["16384/camera.json", "16384/camera.mp4"]


def test_images_too_small_to_crop_even_name_their_folder(tmp_path: Path) -> None:
    for i in range(2):
        write_png(tmp_path / "dots" / f"f{i}.png", np.full((1, 1, 3), 40 * i, np.uint8))
    result = run(tmp_path / "dots", "--out", tmp_path / "views", "--hfov", 60)
    assert_one_line_exit_2(result, "dots: 1x1 frames are too small to make even by cropping; use --even pad")
    assert not (tmp_path / "views").exists()


def test_an_unreadable_image_is_named(images: Path, tmp_path: Path) -> None:
    (images / "f1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    result = run(images, "--out", tmp_path / "views", "--hfov", 60)
    assert_one_line_exit_2(result, "f1.png: not a readable image")
    assert not (tmp_path / "views").exists()


def test_an_image_cut_short_after_its_header_is_named_and_leaves_nothing(tmp_path: Path) -> None:
    from PIL import Image

    for i in range(3):
        (tmp_path / "seq").mkdir(exist_ok=True)
        Image.fromarray(perspective_test_frame(*SIZE, i)).save(tmp_path / "seq" / f"f{i}.jpg", quality=95)
    data = (tmp_path / "seq" / "f2.jpg").read_bytes()
    (tmp_path / "seq" / "f2.jpg").write_bytes(data[: len(data) * 2 // 3])  # the header survives, the picture not
    result = run(tmp_path / "seq", "--out", tmp_path / "views", "--hfov", 60, "--quiet")  # found mid-run
    assert_one_line_exit_2(result, "f2.jpg: cannot decode the image")
    assert not (tmp_path / "views").exists()  # not even an empty views/seq/ folder


def test_a_file_without_a_video_stream_is_named(tmp_path: Path) -> None:
    audio = tmp_path / "talk.m4a"
    with av.open(str(audio), mode="w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert_one_line_exit_2(run(audio, "--out", tmp_path / "views", "--hfov", 60), "talk.m4a: no video stream")


def test_a_360_video_is_pointed_to_slice(tmp_path: Path) -> None:
    plain = make_equirect_video(tmp_path / "plain.mp4", frames=2)
    xml = (b'<?xml version="1.0"?><rdf:SphericalVideo><GSpherical:ProjectionType>equirectangular'
           b'</GSpherical:ProjectionType></rdf:SphericalVideo>')
    tagged = tmp_path / "room.mp4"
    tagged.write_bytes(_append_to_moov(plain.read_bytes(), b"uuid", SPHERICAL_V1_UUID + xml))
    result = run(tagged, "--out", tmp_path / "views", "--hfov", 60)
    assert_one_line_exit_2(result, "room.mp4: a 360° equirectangular video", "vidvpr slice")


def test_an_insv_recording_is_refused(tmp_path: Path) -> None:
    insv = tmp_path / "VID_1.insv"
    insv.write_bytes(make_equirect_video(tmp_path / "a.mp4", frames=2).read_bytes())
    assert_one_line_exit_2(run(insv, "--out", tmp_path / "views", "--hfov", 60), "VID_1.insv", "dual-fisheye")


@pytest.mark.parametrize("argv, fragment", [
    (["--fps", "0"], "--fps must be positive, got 0"),
    (["--fps", "-2"], "--fps must be positive, got -2"),
    (["--fps", "fast"], "Invalid value for '--fps': 'fast' is not a frame rate"),  # it named no option
    (["--fps", "1e308"], "--fps must be between 1/86400 (a frame a day) and 1000, got 1e+308"),  # overflowed libav
    (["--hfov", "0"], "--hfov must be between 0 and 180 degrees (exclusive), got 0"),
    (["--hfov", "180"], "--hfov must be between 0 and 180 degrees (exclusive), got 180"),
    (["--hfov", "nan"], "--hfov must be between 0 and 180"),
    (["--intrinsics", "1,2,3"], "--intrinsics '1,2,3': expected 4 numbers"),
    (["--intrinsics", "-5,5,30,20"], "focal lengths fx and fy must be positive"),
    (["--intrinsics", "50,50,300,20"], "principal point (300, 20) lies outside the 64x48 frame"),
    (["--positions", "gps"], "--positions 'gps': use index or index:SPACING_M"),
    (["--positions", "index:-1"], "spacing must be a positive number of metres"),
    (["--recording", "a/b"], "--recording 'a/b' must be 1-100 ASCII letters"),
    (["--recording", "Gävle"], "--recording 'Gävle' must be 1-100 ASCII letters"),  # ä is a letter, not ASCII
    (["--undistort"], "--undistort needs --calibration FILE"),
], ids=lambda value: str(value))
def test_nonsense_options_are_one_line(images: Path, tmp_path: Path, argv: list[str], fragment: str) -> None:
    camera = [] if "--hfov" in argv or "--intrinsics" in argv else ["--hfov", "60"]
    result = run(images, "--out", tmp_path / "views", *camera, *argv)
    assert_one_line_exit_2(result, fragment)
    assert not (tmp_path / "views").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["", "--out", "views"], "an empty path among the footage to import"),
    ([".", "--out", ""], "Invalid value for '--out': an empty path"),
    ([".", "--out", "views", "--root", ""], "Invalid value for '--root': an empty path"),
], ids=["source", "out", "root"])
def test_an_empty_path_is_refused_not_read_as_the_current_folder(images: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 argv: list[str], fragment: str) -> None:
    """`vidvpr import "$SRC" --out "$OUT"` with a variable unset: "" was the current folder, whose
    images were imported, or into which the views were written (beside the images)."""
    monkeypatch.chdir(images)
    assert_one_line_exit_2(run(*argv, "--hfov", 60), fragment)
    assert files_under(images.parent) == ["seq/f0.png", "seq/f1.png", "seq/f2.png"]


def test_the_camera_must_be_given_once(images: Path, tmp_path: Path) -> None:
    assert_one_line_exit_2(run(images, "--out", tmp_path / "v"), "the camera: give one of --hfov DEG")
    assert_one_line_exit_2(run(images, "--out", tmp_path / "v", "--hfov", 60, "--intrinsics", "50,50,32,24"),
                           "give only one of (--hfov, --intrinsics given)")


def test_fps_of_a_video_is_refused(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", [perspective_test_frame(*SIZE, i) for i in range(2)], size=SIZE)
    assert_one_line_exit_2(run(video, "--out", tmp_path / "v", "--hfov", 60, "--fps", 5),
                           "--fps times images; a video keeps every frame at its own time")


@pytest.mark.parametrize("times", ["name", "exif", "fps"])
def test_times_of_a_video_is_refused(tmp_path: Path, times: str) -> None:
    """--times name on a video was silently ignored, as if it had been read."""
    video = write_video(tmp_path / "clip.mp4", [perspective_test_frame(*SIZE, i) for i in range(2)], size=SIZE)
    assert_one_line_exit_2(run(video, "--out", tmp_path / "v", "--hfov", 60, "--times", times),
                           f"--times {times} times images; a video keeps every frame at its own time", "clip.mp4")
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("name, text", [
    ("cam.json", json.dumps({"distortion": [0.1, 0, 0, 0]})),
    ("cam.yaml", "%YAML:1.0\n---\ndistortion_coefficients: !!opencv-matrix\n   rows: 1\n   cols: 4\n   dt: d\n"
                 "   data: [ 0.1, 0., 0., 0. ]\n"),
])
def test_a_calibration_without_a_camera_matrix_is_named(images: Path, tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    result = run(images, "--out", tmp_path / "views", "--calibration", tmp_path / name)
    assert_one_line_exit_2(result, f"{name}: no camera matrix")


@pytest.mark.parametrize("text, fragment", [
    ("not: [valid", "not a readable calibration YAML"),
    ('{"camera_matrix": [[1, 0, 0], [0, 1, 0]]}', "camera_matrix must be a 3x3 matrix, found 6 values"),
    ('{"camera_matrix": [[50, 0, 32], [0, 50, 24], [0, 0, 1]], "distortion": [1, 2, 3]}', "3 coefficients"),
    ('{"camera_matrix": [[50, 0, 32], [0, 50, 24], [0, 0, 1]], "image_size": [128, 128]}',
     "calibrated at 128x128, which is not the shape of the 64x48 frames"),
])
def test_a_malformed_calibration_is_named(images: Path, tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / ("cam.json" if text.startswith("{") else "cam.yaml")
    path.write_text(text)
    assert_one_line_exit_2(run(images, "--out", tmp_path / "views", "--calibration", path), path.name, fragment)


def test_undistorting_without_distortion_is_refused(images: Path, tmp_path: Path) -> None:
    path = tmp_path / "pinhole.json"
    path.write_text('{"camera_matrix": [[50, 0, 31.5], [0, 50, 23.5], [0, 0, 1]]}')
    assert_one_line_exit_2(run(images, "--out", tmp_path / "v", "--calibration", path, "--undistort"),
                           "--undistort: the calibration has no distortion coefficients")


def test_a_recording_of_another_source_is_refused_without_force(images: Path, tmp_path: Path) -> None:
    import_footage([images], tmp_path / "views", ImportConfig(hfov_deg=60.0, recording="walk"))
    other = tmp_path / "other"
    for i in range(2):
        write_png(other / f"g{i}.png", perspective_test_frame(*SIZE, i, seed=5))
    before = (tmp_path / "views" / "walk" / "camera.mp4").read_bytes()
    result = run(other, "--out", tmp_path / "views", "--hfov", 60, "--recording", "walk")
    assert_one_line_exit_2(result, "recording 'walk' already holds views imported from", "--force")
    assert (tmp_path / "views" / "walk" / "camera.mp4").read_bytes() == before
    replaced = import_footage([other], tmp_path / "views", ImportConfig(hfov_deg=60.0, recording="walk", force=True))
    assert replaced.views[0].frames == 2


def test_images_changed_since_their_import_are_said_to_be_changed(images: Path, tmp_path: Path) -> None:
    """The refusal read "already holds views imported from /x/seq (sha256:…), not from /x/seq"."""
    import_footage([images], tmp_path / "views", ImportConfig(hfov_deg=60.0))
    write_png(images / "f2.png", perspective_test_frame(*SIZE, 7))
    result = run(images, "--out", tmp_path / "views", "--hfov", 60)
    assert_one_line_exit_2(result, f"recording 'seq' already holds views imported from {images} when it held other "
                                   "content (sha256:", "--force")
    assert f"not from {images}" not in result.stderr


def test_a_recording_of_sliced_views_is_other_content(images: Path, tmp_path: Path, equirect_video: Path) -> None:
    from vidvpr.slicing.config import SliceConfig
    from vidvpr.slicing.slicer import slice_video

    slice_video(equirect_video, tmp_path / "views", SliceConfig(yaws_deg=(0.0,), size=(64, 36)))
    with pytest.raises(BadInput, match="recording 'room' already holds views sliced from"):
        import_footage([images], tmp_path / "views", ImportConfig(hfov_deg=60.0, recording="room"))


def test_images_whose_names_go_back_in_time_are_named(tmp_path: Path) -> None:
    for name in ("a_1700000000.5", "b_1700000000.25"):
        write_png(tmp_path / "t" / f"{name}.png", perspective_test_frame(*SIZE, 0))
    result = run(tmp_path / "t", "--out", tmp_path / "views", "--hfov", 60, "--times", "name")
    assert_one_line_exit_2(result, "b_1700000000.25.png: its time from its file name", "is not after a_1700000000.5.png")


def test_a_trajectory_of_other_frames_is_refused_before_the_view_is_rewritten(images: Path, tmp_path: Path) -> None:
    """--positions index at another --fps: the trajectory was refused only after the view had been
    re-encoded at the new rate, leaving a view whose times its trajectory does not match."""
    first = import_footage([images], tmp_path / "views", ImportConfig(hfov_deg=60.0, positions=IndexPositions()))
    before = Path(first.views[0].sidecar).read_bytes()
    result = run(images, "--out", tmp_path / "views", "--hfov", 60, "--positions", "index", "--fps", 5)
    assert result.exit_code == 4 and "trajectories/seq.csv: already holds another trajectory" in result.stderr
    assert Path(first.views[0].sidecar).read_bytes() == before


def test_a_video_whose_views_were_removed_is_not_imported_beside_a_stale_trajectory(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", [perspective_test_frame(*SIZE, i) for i in range(4)], size=SIZE)
    import_footage([video], tmp_path / "views", ImportConfig(hfov_deg=60.0, positions=IndexPositions(spacing_m=2.0)))
    for path in (tmp_path / "views" / "clip").iterdir():
        path.unlink()
    result = run(video, "--out", tmp_path / "views", "--hfov", 60, "--positions", "index:3")
    assert result.exit_code == 4 and "already holds another trajectory" in result.stderr
    assert files_under(tmp_path / "views") == []
    again = import_footage([video], tmp_path / "views", ImportConfig(hfov_deg=60.0,
                                                                      positions=IndexPositions(spacing_m=2.0)))
    assert again.trajectories == [str(tmp_path / "trajectories" / "clip.csv")]  # the same frames: accepted

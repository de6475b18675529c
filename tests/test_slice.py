"""`vidvpr slice`: geometry of the views, frame accuracy, sidecars, resume and bad input."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from tests.media import (
    MARKER_COLOURS,
    decode_luma_and_times,
    equirect_test_frame,
    marker_colour_at_centre,
    read_frame_code,
    write_video,
)
from vidvpr.media.metrics import image_psnr_db
from vidvpr.geo import projection as geometry
from vidvpr.cli import main
from vidvpr.core.errors import BadInput, OutputError
from vidvpr.slicing.config import SliceConfig
from vidvpr.slicing.slicer import slice_video
from vidvpr.slicing.stage import slice_videos
from vidvpr.media.decode import decode_frames

VIEW_SIZE = (128, 72)


def small_config(**overrides) -> SliceConfig:
    return SliceConfig(size=VIEW_SIZE, **overrides)


@pytest.fixture(scope="module")
def sliced(equirect_video: Path, tmp_path_factory: pytest.TempPathFactory) -> list:
    return slice_video(equirect_video, tmp_path_factory.mktemp("views"), small_config())


def decode_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def finished_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_default_views_are_the_four_horizontal_quarters(sliced: list) -> None:
    assert [r.view for r in sliced] == ["yaw000_pitch+00", "yaw090_pitch+00", "yaw180_pitch+00", "yaw270_pitch+00"]


@pytest.mark.parametrize("view_index", [0, 1, 2, 3])
def test_marker_at_a_yaw_appears_at_the_centre_of_that_view(sliced: list, view_index: int) -> None:
    yaw = (0, 90, 180, 270)[view_index]
    rgb = decode_rgb(Path(sliced[view_index].path))[0]
    assert marker_colour_at_centre(rgb) == MARKER_COLOURS[yaw]


def test_a_slicer_with_the_yaw_sign_flipped_would_fail_the_frame_code_check(equirect_video: Path) -> None:
    """The test media pin the convention: the view at yaw +90 seen from -90 reads wrong indices."""
    frame = next(decode_frames(equirect_video))
    map_x, map_y = geometry.equirect_to_perspective_maps(256, 128, 128, 72, -90.0, 0.0, 90.0)  # mirrored yaw
    mirrored = geometry.sample_bilinear(frame.y, map_x, map_y)
    assert read_frame_code(mirrored, 90.0, 256, 128) != 0
    correct = geometry.sample_bilinear(frame.y, *geometry.equirect_to_perspective_maps(256, 128, 128, 72, 90.0, 0.0, 90.0))
    assert read_frame_code(correct, 90.0, 256, 128) == 0


def test_every_source_frame_appears_once_in_order_in_every_view(sliced: list) -> None:
    for result in sliced:
        yaw = json.loads(Path(result.sidecar).read_text())["geometry"]["yaw_deg"]
        lumas, _ = decode_luma_and_times(Path(result.path))
        assert [read_frame_code(luma, yaw, 256, 128) for luma in lumas] == list(range(12))


def test_view_timestamps_equal_source_timestamps(sliced: list, equirect_video: Path) -> None:
    source_times = [frame.time_s for frame in decode_frames(equirect_video)]
    for result in sliced:
        _, times = decode_luma_and_times(Path(result.path))
        assert times == pytest.approx(source_times, abs=1e-6)


def test_variable_frame_rate_timestamps_survive(tmp_path: Path) -> None:
    pts_ms = [0, 40, 70, 150, 160, 230, 300]
    source = write_video(tmp_path / "vfr.mp4", (equirect_test_frame(256, 128, i) for i in range(len(pts_ms))),
                         pts=pts_ms, time_base=Fraction(1, 1000))
    result = slice_video(source, tmp_path / "out", small_config(yaws_deg=(0.0,)))[0]
    _, times = decode_luma_and_times(Path(result.path))
    assert times == pytest.approx([t / 1000 for t in pts_ms], abs=1e-6)
    sidecar = json.loads(Path(result.sidecar).read_text())
    assert sidecar["timestamps"]["time_s"] == pytest.approx([t / 1000 for t in pts_ms])


def test_fps_resampling_keeps_the_nearest_source_frames(equirect_video: Path, tmp_path: Path) -> None:
    result = slice_video(equirect_video, tmp_path, small_config(yaws_deg=(90.0,), fps=Fraction(10)))[0]
    lumas, times = decode_luma_and_times(Path(result.path))
    assert [read_frame_code(luma, 90.0, 256, 128) for luma in lumas] == [0, 3, 6, 9]
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.3])
    sidecar = json.loads(Path(result.sidecar).read_text())
    assert sidecar["timestamps"]["source_frame_index"] == [0, 3, 6, 9]


def test_sidecar_records_source_geometry_timing_and_versions(sliced: list, equirect_video: Path) -> None:
    sidecar = json.loads(Path(sliced[1].sidecar).read_text())
    assert sidecar["source"]["path"] == str(equirect_video)
    assert sidecar["source"]["hash"].startswith("sha256:") and sidecar["source"]["bytes"] == equirect_video.stat().st_size
    geometry_record = sidecar["geometry"]
    assert (geometry_record["yaw_deg"], geometry_record["pitch_deg"], geometry_record["hfov_deg"]) == (90.0, 0.0, 90.0)
    assert (geometry_record["width"], geometry_record["height"]) == VIEW_SIZE
    assert geometry_record["intrinsics"]["fx"] == pytest.approx(64.0)
    assert geometry_record["intrinsics"]["K"][0][2] == 64.0 and geometry_record["intrinsics"]["K"][1][2] == 36.0
    assert geometry_record["vfov_deg"] == pytest.approx(geometry.pinhole_intrinsics(128, 72, 90).vfov_deg, abs=1e-5)
    assert geometry_record["interpolation"] == "bilinear"
    assert sidecar["frames"] == 12
    assert sidecar["timestamps"]["rule"] == "time_s[i] = i / fps" and sidecar["timestamps"]["fps"] == "30"
    assert {"vidvpr", "pyav", "libavcodec", "x264_threads_per_view"} <= set(sidecar["versions"])
    assert "x264 - core" in sidecar["encoding"]["encoder_settings"]
    assert sidecar["output"]["bytes"] == Path(sliced[1].path).stat().st_size


def test_views_are_visually_lossless_against_an_exact_float_remap(sliced: list, equirect_video: Path) -> None:
    source_luma = [frame.y.copy() for frame in decode_frames(equirect_video)]
    map_x, map_y = geometry.equirect_to_perspective_maps(256, 128, *VIEW_SIZE, 90.0, 0.0, 90.0)
    reference = [geometry.sample_bilinear(luma, map_x, map_y) for luma in source_luma]
    lumas, _ = decode_luma_and_times(Path(sliced[1].path))
    assert image_psnr_db(np.stack(lumas), np.stack(reference)) >= 45.0


def test_rerun_with_same_parameters_skips(sliced: list, equirect_video: Path) -> None:
    out_dir = Path(sliced[0].path).parents[1]
    before = {p: p.stat().st_mtime_ns for p in out_dir.rglob("*.mp4")}
    again = slice_video(equirect_video, out_dir, small_config())
    assert all(r.skipped for r in again)
    assert {p: p.stat().st_mtime_ns for p in out_dir.rglob("*.mp4")} == before


def test_changed_parameters_redo_the_views(equirect_video: Path, tmp_path: Path) -> None:
    slice_video(equirect_video, tmp_path, small_config(yaws_deg=(0.0,)))
    redone = slice_video(equirect_video, tmp_path, small_config(yaws_deg=(0.0,), interp="bicubic"))
    assert not redone[0].skipped
    assert json.loads(Path(redone[0].sidecar).read_text())["geometry"]["interpolation"] == "bicubic"


def test_rerun_produces_identical_views(equirect_video: Path, tmp_path: Path) -> None:
    first = slice_video(equirect_video, tmp_path / "a", small_config(yaws_deg=(0.0,)))[0]
    second = slice_video(equirect_video, tmp_path / "b", small_config(yaws_deg=(0.0,)))[0]
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()


def test_interrupted_run_leaves_no_finished_looking_output(equirect_video: Path, tmp_path: Path) -> None:
    def interrupt_after_three(_: int, seen=[0]) -> None:  # noqa: B006 - counter across calls
        seen[0] += 1
        if seen[0] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        slice_video(equirect_video, tmp_path, small_config(), on_frame=interrupt_after_three)
    assert list(tmp_path.rglob("*.mp4")) == [] and list(tmp_path.rglob("*.json")) == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_top_bottom_stereo_takes_the_chosen_eye(tmp_path: Path) -> None:
    def stereo_frame(index: int) -> np.ndarray:
        top = equirect_test_frame(256, 128, index)
        bottom = np.zeros_like(top)
        return np.concatenate([top, bottom])

    source = write_video(tmp_path / "tb.mp4", (stereo_frame(i) for i in range(3)))
    top = slice_video(source, tmp_path / "top", small_config(yaws_deg=(90.0,), stereo="tb"))[0]
    bottom = slice_video(source, tmp_path / "bottom", small_config(yaws_deg=(90.0,), stereo="tb", eye="bottom"))[0]
    top_lumas, _ = decode_luma_and_times(Path(top.path))
    assert [read_frame_code(luma, 90.0, 256, 128) for luma in top_lumas] == [0, 1, 2]
    bottom_lumas, _ = decode_luma_and_times(Path(bottom.path))
    assert max(float(luma.max()) for luma in bottom_lumas) < 40


def test_spherical_v1_metadata_is_read(tmp_path: Path, equirect_video: Path) -> None:
    from vidvpr.media.probe import SPHERICAL_V1_UUID, read_spherical_metadata

    xml = (b'<?xml version="1.0"?><rdf:SphericalVideo><GSpherical:ProjectionType>equirectangular'
           b'</GSpherical:ProjectionType><GSpherical:StereoMode>top-bottom</GSpherical:StereoMode></rdf:SphericalVideo>')
    tagged = tmp_path / "tagged.mp4"
    tagged.write_bytes(_append_to_moov(equirect_video.read_bytes(), b"uuid", SPHERICAL_V1_UUID + xml))
    meta = read_spherical_metadata(tagged)
    assert meta is not None and (meta.version, meta.projection, meta.stereo_mode) == ("v1", "equirectangular", "top-bottom")


def _append_to_moov(data: bytes, box_type: bytes, payload: bytes) -> bytes:
    """Append a child box at the end of the top-level moov box (fixing its size)."""
    offset = 0
    while offset < len(data):
        size = int.from_bytes(data[offset:offset + 4], "big")
        if data[offset + 4:offset + 8] == b"moov":
            child = (8 + len(payload)).to_bytes(4, "big") + box_type + payload
            end = offset + size
            moov = (size + len(child)).to_bytes(4, "big") + data[offset + 4:end] + child
            return data[:offset] + moov + data[end:]
        offset += size
    raise AssertionError("no moov box")


def test_non_two_to_one_frame_without_metadata_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = write_video(tmp_path / "wide.mp4", (np.zeros((96, 256, 3), np.uint8) for _ in range(2)))
    slice_video(source, tmp_path / "out", small_config(yaws_deg=(0.0,)))
    assert "not 2:1" in caplog.text


def test_probe_says_how_a_two_to_one_video_is_read_once(equirect_video: Path) -> None:
    # it said "equirectangular (2:1, no spherical metadata), equirectangular; no spherical metadata"
    result = CliRunner().invoke(main, ["probe", str(equirect_video)])
    assert result.exit_code == 0
    assert "  360°: equirectangular (2:1, no spherical metadata)" in result.stdout.splitlines()


def test_the_not_two_to_one_warning_points_perspective_footage_to_import(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    # a 16:9 phone video given to slice warned without saying what to do instead
    source = write_video(tmp_path / "phone.mp4", (np.zeros((144, 256, 3), np.uint8) for _ in range(2)))
    slice_video(source, tmp_path / "out", small_config(yaws_deg=(0.0,)))
    assert "perspective footage: `vidvpr import`" in caplog.text


def test_a_warning_about_the_source_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The camera check before any unit runs and the unit itself both warned: every slice warning twice."""
    from vidvpr.slicing.slicer import slice_videos

    source = write_video(tmp_path / "wide.mp4", (np.zeros((96, 256, 3), np.uint8) for _ in range(2)))
    slice_videos([source], tmp_path / "out", small_config(yaws_deg=(0.0,)))
    assert len([record for record in caplog.records if "not 2:1" in record.getMessage()]) == 1


# --- bad input -------------------------------------------------------------------------------

def test_a_field_of_view_whose_matched_size_is_too_large_is_refused_before_any_work(equirect_video: Path,
                                                                                    tmp_path: Path) -> None:
    """--fov 179 without --size asked for a 9328x5232 view of a 256-wide source (an 8.0 GB map of a
    736-wide .insv: MemoryError, or the process killed); --size is held to 8192 a side, so is this."""
    from vidvpr.slicing.slicer import slice_videos

    with pytest.raises(BadInput, match=r"--fov 179: the view size matching the source's resolution would be "
                                       r"\d+x\d+, more than 8192 px a side; give --size WxH"):
        slice_videos([equirect_video], tmp_path / "out", SliceConfig(hfov_deg=179.0))
    assert not (tmp_path / "out").exists()


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"nope\.mp4: file not found"):
        slice_video(tmp_path / "nope.mp4", tmp_path, small_config())


def test_a_file_that_is_not_a_video_is_rejected(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("this is not a video\n" * 50)
    with pytest.raises(BadInput, match="notes.mp4: not a readable video"):
        slice_video(bogus, tmp_path / "out", small_config())


def test_a_video_with_zero_frames_is_rejected(tmp_path: Path) -> None:
    empty = write_video(tmp_path / "empty.mp4", [])
    with pytest.raises(BadInput, match="empty.mp4: .*(zero|no video stream|frame size)"):
        slice_video(empty, tmp_path / "out", small_config())


def test_a_video_cut_before_its_index_is_rejected(equirect_video: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(equirect_video.read_bytes()[: equirect_video.stat().st_size // 2])
    with pytest.raises(BadInput, match="cut.mp4: not a readable video"):
        slice_video(cut, tmp_path / "out", small_config())


def test_a_video_cut_after_its_index_is_rejected_and_leaves_nothing(tmp_path: Path) -> None:
    whole = write_video(tmp_path / "whole.mp4", (equirect_test_frame(256, 128, i) for i in range(12)), faststart=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    with pytest.raises(BadInput, match="cut.mp4: truncated or corrupt stream"):
        slice_video(cut, tmp_path / "out", small_config())
    assert finished_files(tmp_path / "out") == []


def test_a_video_with_garbage_in_its_stream_is_rejected(tmp_path: Path) -> None:
    whole = write_video(tmp_path / "whole.mp4", (equirect_test_frame(256, 128, i) for i in range(12)), faststart=True)
    data = bytearray(whole.read_bytes())
    third = len(data) // 3
    data[third:2 * third] = np.random.default_rng(1).integers(0, 256, third, dtype=np.uint8).tobytes()
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(BadInput, match="corrupt.mp4: corrupt or truncated video stream"):
        slice_video(corrupt, tmp_path / "out", small_config())
    assert finished_files(tmp_path / "out") == []


def test_unwritable_output_directory_is_named(equirect_video: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output directory should go")
    with pytest.raises(OutputError, match="cannot create output directory"):
        slice_video(equirect_video, blocker / "out", small_config())


@pytest.mark.parametrize(("overrides", "message"), [
    ({"size": (8, 8)}, "--size 8x8"),
    ({"size": (20000, 100)}, "--size 20000x100"),
    ({"size": (127, 72)}, "must be even"),
    ({"hfov_deg": 0.0}, "--fov must be in"),
    ({"hfov_deg": 180.0}, "--fov must be in"),
    ({"pitch_deg": 95.0}, "--pitch must be in"),
    ({"fps": Fraction(60)}, "exceeds the source"),
    ({"yaws_deg": (0.0, 360.0)}, "same direction"),
])
def test_out_of_range_options_are_rejected(equirect_video: Path, tmp_path: Path, overrides: dict, message: str) -> None:
    config = SliceConfig(**{"size": VIEW_SIZE, **overrides})
    with pytest.raises(BadInput, match=message):
        slice_video(equirect_video, tmp_path, config)


# --- command line ----------------------------------------------------------------------------

def test_cli_errors_are_one_line_with_nonzero_exit(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["slice", str(tmp_path / "missing.mp4"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"vidvpr: error: {tmp_path / 'missing.mp4'}: file not found"]


def test_cli_rejects_a_malformed_size(equirect_video: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["slice", str(equirect_video), "--out", str(tmp_path), "--size", "big"])
    assert result.exit_code == 2 and "is not WxH" in result.output


@pytest.mark.parametrize(("args", "line"), [
    # these said "Invalid value: 'abc' is not ...", naming no option
    (["--yaw", "abc"], "vidvpr: error: Invalid value for '--yaw': 'abc' is not a comma-separated list of numbers"),
    (["--size", "big"], "vidvpr: error: Invalid value for '--size': 'big' is not WxH (e.g. 1824x1024)"),
    (["--fps", "fast"], "vidvpr: error: Invalid value for '--fps': 'fast' is not a frame rate (e.g. 10 or 30000/1001)"),
    # '0,,90' sliced two views: an empty item is a yaw left out
    (["--yaw", "0,,90"], "vidvpr: error: Invalid value: --yaw has an empty item in '0,,90' (two commas in a row, "
                         "or one at an end)"),
])
def test_cli_a_malformed_option_is_one_line_naming_the_option(equirect_video: Path, tmp_path: Path, args: list[str],
                                                              line: str) -> None:
    result = CliRunner().invoke(main, ["slice", str(equirect_video), "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{line} (see '")
    assert not (tmp_path / "out").exists()


def test_cli_json_summary_lists_every_view(equirect_video: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["slice", str(equirect_video), "--out", str(tmp_path), "--size", "128x72",
                                       "--yaw", "0,180", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert [o["view"] for o in summary["outputs"]] == ["yaw000_pitch+00", "yaw180_pitch+00"]
    assert all(Path(o["path"]).exists() and Path(o["sidecar"]).exists() for o in summary["outputs"])


def test_partial_files_of_killed_runs_are_cleaned_on_rerun(equirect_video: Path, tmp_path: Path) -> None:
    from vidvpr.core.atomic import PARTIAL_MARKER, host_tag

    folder = tmp_path / equirect_video.stem
    folder.mkdir()
    stale = folder / f".yaw000_pitch+00{PARTIAL_MARKER}-{host_tag()}-999999999.mp4"
    stale.write_bytes(b"left by a killed run")
    slice_video(equirect_video, tmp_path, small_config(yaws_deg=(0.0,)))
    assert not stale.exists()


def test_partial_files_of_another_host_on_shared_storage_are_kept(equirect_video: Path, tmp_path: Path) -> None:
    from vidvpr.core.atomic import PARTIAL_MARKER

    folder = tmp_path / equirect_video.stem
    folder.mkdir()
    live_elsewhere = folder / f".yaw000_pitch+00{PARTIAL_MARKER}-otherhost-1.mp4"  # pid 1 is dead nowhere
    live_elsewhere.write_bytes(b"written right now by a run on another machine")
    slice_video(equirect_video, tmp_path, small_config(yaws_deg=(0.0,)))
    assert live_elsewhere.exists()


@pytest.mark.slow
def test_terminated_cli_run_removes_its_partial_outputs(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.media import make_equirect_video

    source = make_equirect_video(tmp_path / "long.mp4", width=512, height=256, frames=240)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "vidvpr", "slice", str(source), "--out", str(out),
                             "--size", "256x144", "--preset", "slow", "--quiet"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(out.rglob(".*partial*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert [p for p in out.rglob("*") if p.is_file()] == []


def test_full_disk_is_reported_and_leaves_nothing(equirect_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from vidvpr.slicing import writer as slicing

    real_open = slicing.av.open

    class FullDisk:
        """An output file object that fails like a full disk after the first bytes."""

        def __init__(self) -> None:
            self.written = 0

        def write(self, data: bytes) -> int:
            self.written += len(data)
            if self.written > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return len(data)

        def seek(self, *args: int) -> int:
            return 0

        def tell(self) -> int:
            return self.written

    def open_on_a_full_disk(target, mode="r", **kwargs):  # noqa: ANN001, ANN003 - mirrors av.open
        if mode == "w":
            Path(target).write_bytes(b"")
            return real_open(FullDisk(), mode="w", format="mp4", **kwargs)
        return real_open(target, mode, **kwargs)

    monkeypatch.setattr(slicing.av, "open", open_on_a_full_disk)
    with pytest.raises(OutputError, match="disk full"):
        slice_video(equirect_video, tmp_path, small_config(yaws_deg=(0.0,)))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_nonsense_arguments_get_one_line_from_the_console_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "vidvpr", "slice", "in.mp4", "--out", str(tmp_path), "--fov", "wide"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "vidvpr: error: Invalid value for '--fov': 'wide' is not a valid float. (see 'vidvpr slice --help')"]


@pytest.mark.parametrize("interp", ["bicubic", "lanczos"])
def test_wide_kernels_at_the_zenith_never_reach_the_opposite_pole(interp: str) -> None:
    from vidvpr.slicing.config import ViewSpec
    from vidvpr.slicing.remap import PlaneRemapper, equirect_sampling

    equirect = np.full((128, 256), 250, np.uint8)
    equirect[:64] = 50  # dark sky, bright ground
    # a narrow view whose samples all fall between the first and second row centres, where
    # the kernel's upper taps lie above the first row
    near_zenith = ViewSpec(0.0, 90.0 - 180.0 / 128, 2.0, 16, 16)
    sampled = PlaneRemapper([equirect_sampling(256, 128, 0, near_zenith, 1, interp)], interp)([equirect])
    assert sampled.min() == 50 and sampled.max() == 50


# --- defects found by review, each pinned ----------------------------------------------------

def test_fps_across_a_gap_keeps_the_nearest_real_frames_with_their_own_times(tmp_path: Path) -> None:
    """30 fps with a 1 s gap, resampled to 10 fps: nearest frames on both sides of the gap, real times."""
    pts_ms = [round(1000 * i / 30) for i in range(30)] + [2000 + round(1000 * i / 30) for i in range(15)]
    source = write_video(tmp_path / "gap.mp4", (equirect_test_frame(256, 128, i) for i in range(len(pts_ms))),
                         pts=pts_ms, time_base=Fraction(1, 1000))
    result = slice_video(source, tmp_path / "out", small_config(yaws_deg=(90.0,), fps=Fraction(10)))[0]
    lumas, times = decode_luma_and_times(Path(result.path))
    kept = [read_frame_code(luma, 90.0, 256, 128) for luma in lumas]
    # targets 0.0..0.9 → frames 0, 3, ..., 27; 1.0-1.4 → frame 29 (0.967 s); 1.5-2.0 → frame 30 (2.0 s); then every third
    assert kept == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 29, 30, 33, 36, 39, 42]
    assert times == pytest.approx([pts_ms[i] / 1000 for i in kept], abs=1e-6)
    sidecar = json.loads(Path(result.sidecar).read_text())
    assert sidecar["timestamps"]["time_s"] == pytest.approx([pts_ms[i] / 1000 for i in kept])
    assert sidecar["timestamps"]["source_frame_index"] == kept


def test_a_source_with_the_same_name_from_another_card_is_refused_without_force(tmp_path: Path) -> None:
    first = write_video((tmp_path / "card1").mkdir() or tmp_path / "card1" / "GS010001.mp4",
                        (equirect_test_frame(256, 128, i) for i in range(3)))
    second = write_video((tmp_path / "card2").mkdir() or tmp_path / "card2" / "GS010001.mp4",
                         (equirect_test_frame(256, 128, i + 5) for i in range(3)))
    slice_video(first, tmp_path / "views", small_config(yaws_deg=(0.0,)))
    before = (tmp_path / "views" / "GS010001" / "yaw000_pitch+00.mp4").read_bytes()
    with pytest.raises(BadInput, match=r"card1/GS010001\.mp4 .*not from .*card2/GS010001\.mp4.*another --out.*--force"):
        slice_video(second, tmp_path / "views", small_config(yaws_deg=(0.0,)))
    assert (tmp_path / "views" / "GS010001" / "yaw000_pitch+00.mp4").read_bytes() == before
    replaced = slice_video(second, tmp_path / "views", small_config(yaws_deg=(0.0,), force=True))[0]
    assert json.loads(Path(replaced.sidecar).read_text())["source"]["path"] == str(second)


def test_a_source_named_with_accents_and_spaces_slices_into_a_usable_recording_name(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = write_video(tmp_path / "VID é 1.mp4", (equirect_test_frame(256, 128, i) for i in range(3)))
    with caplog.at_level("WARNING"):
        first = slice_videos([source], tmp_path / "views", small_config(yaws_deg=(0.0,)))
    assert Path(first[0].path) == tmp_path / "views" / "VID_e_1" / "yaw000_pitch+00.mp4"
    assert "recording VID_e_1" in caplog.text
    assert json.loads(Path(first[0].sidecar).read_text())["source"]["path"] == str(source)  # its own name kept
    again = slice_videos([source], tmp_path / "views", small_config(yaws_deg=(0.0,)))
    assert again[0].skipped and again[0].path == first[0].path


def test_two_inputs_named_alike_as_recordings_are_refused_before_any_work(tmp_path: Path) -> None:
    sources = [write_video(tmp_path / name, (equirect_test_frame(256, 128, i) for i in range(3)))
               for name in ("a b.mp4", "a_b.mp4")]
    with pytest.raises(BadInput, match="'a_b'"):
        slice_videos(sources, tmp_path / "views", small_config(yaws_deg=(0.0,)))
    assert not (tmp_path / "views").exists()


def test_full_range_source_stays_full_range(tmp_path: Path) -> None:
    def black_and_white(index: int) -> np.ndarray:
        rgb = equirect_test_frame(256, 128, index)
        rgb[:, :64] = 0
        rgb[:, 64:128] = 255
        return rgb

    source = write_video(tmp_path / "full.mp4", (black_and_white(i) for i in range(3)), pix_fmt="yuvj420p")
    result = slice_video(source, tmp_path / "out", SliceConfig(yaws_deg=(270.0,), size=(64, 36)))[0]
    with av.open(result.path) as container:
        stream = container.streams.video[0]
        assert int(stream.codec_context.color_range) == 2  # JPEG / full range
        luma = next(container.decode(stream)).to_ndarray(format="gray")
    assert luma.min() <= 3 and luma.max() >= 252  # not squeezed to 16..235
    assert json.loads(Path(result.sidecar).read_text())["encoding"]["color"]["range"] == "pc"


def test_ten_bit_source_slices_to_the_same_views(tmp_path: Path) -> None:
    frames = [equirect_test_frame(256, 128, i) for i in range(4)]
    eight = write_video(tmp_path / "eight.mp4", frames, crf=0)
    ten = write_video(tmp_path / "ten.mp4", frames, crf=0, pix_fmt="yuv420p10le")
    views = [slice_video(source, tmp_path / source.stem, small_config(yaws_deg=(90.0,)))[0] for source in (eight, ten)]
    (luma8, _), (luma10, _) = (decode_luma_and_times(Path(view.path)) for view in views)
    assert [read_frame_code(luma, 90.0, 256, 128) for luma in luma10] == [0, 1, 2, 3]
    assert image_psnr_db(np.stack(luma8), np.stack(luma10)) > 40.0
    assert marker_colour_at_centre(decode_rgb(Path(views[1].path))[0]) == MARKER_COLOURS[90]


@pytest.mark.parametrize(("encoding", "message"), [
    ({"crf": 99}, r"--crf must be in \[0, 51\]"), ({"crf": -1}, r"--crf must be in \[0, 51\]"),
    ({"preset": "bogus"}, "Unknown --preset 'bogus'. Use one of ultrafast"),
])
def test_view_encoder_settings_are_validated(equirect_video: Path, tmp_path: Path, encoding: dict, message: str) -> None:
    from vidvpr.slicing.config import ViewEncoding

    with pytest.raises(BadInput, match=message):
        slice_video(equirect_video, tmp_path, small_config(encoding=ViewEncoding(**encoding)))
    result = CliRunner().invoke(main, ["slice", str(equirect_video), "--out", str(tmp_path), "--crf", "99"])
    assert result.exit_code == 2 and "--crf must be in [0, 51]" in result.stderr


def test_one_missing_view_is_redone_alone(equirect_video: Path, tmp_path: Path) -> None:
    first = slice_video(equirect_video, tmp_path, small_config())
    Path(first[2].path).unlink()
    stamps = {r.view: Path(r.path).stat().st_mtime_ns for r in first if r.view != first[2].view}
    again = slice_video(equirect_video, tmp_path, small_config())
    assert [r.skipped for r in again] == [True, True, False, True]
    assert {r.view: Path(r.path).stat().st_mtime_ns for r in again if r.view in stamps} == stamps
    assert Path(again[2].path).is_file()


def test_views_made_by_an_older_slicer_are_redone(equirect_video: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from vidvpr.slicing import outputs

    slice_video(equirect_video, tmp_path, small_config(yaws_deg=(0.0,)))
    monkeypatch.setattr(outputs, "SLICE_OUTPUT_VERSION", outputs.SLICE_OUTPUT_VERSION + 1)  # a fix in slicing
    assert not slice_video(equirect_video, tmp_path, small_config(yaws_deg=(0.0,)))[0].skipped


def test_deciding_to_skip_reads_no_source_twice(equirect_video: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from vidvpr.core import provenance

    slice_video(equirect_video, tmp_path, small_config(yaws_deg=(0.0,)))
    reads = []
    real = provenance._hash_file_contents
    monkeypatch.setattr(provenance, "_hash_file_contents", lambda path: reads.append(path) or real(path))
    assert slice_video(equirect_video, tmp_path, small_config(yaws_deg=(0.0,)))[0].skipped
    assert reads == []  # served from the hash cache: (device, inode, size, mtime) unchanged


def test_a_source_whose_views_are_all_done_is_never_opened(equirect_video: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from vidvpr.media import decode, probe
    from vidvpr.slicing.stage import slice_videos

    first = slice_videos([equirect_video], tmp_path, small_config())

    def must_not_open(*args, **kwargs):
        raise AssertionError("a finished source was opened")

    monkeypatch.setattr(probe, "probe_video", must_not_open)
    monkeypatch.setattr(decode, "decode_frames", must_not_open)
    again = slice_videos([equirect_video], tmp_path, small_config())
    assert [(r.view, r.path, r.frames) for r in again] == [(r.view, r.path, r.frames) for r in first]
    assert all(r.skipped for r in again)


def test_a_rerun_over_finished_views_loads_neither_pyav_nor_opencv(equirect_video: Path, tmp_path: Path) -> None:
    from tests.imports import imports_of_command

    slice_video(equirect_video, tmp_path, small_config())
    summary, loaded = imports_of_command(["slice", str(equirect_video), "--out", str(tmp_path), "--size",
                                          f"{VIEW_SIZE[0]}x{VIEW_SIZE[1]}", "--json"], ("av", "cv2"))
    assert all(view["skipped"] for view in json.loads(summary)["outputs"]) and loaded == []


def test_finished_and_unfinished_sources_keep_the_order_they_were_given(equirect_video: Path,
                                                                         tmp_path: Path) -> None:
    from vidvpr.slicing.stage import slice_videos

    other = tmp_path / "other.mp4"
    shutil.copy(equirect_video, other)
    slice_videos([equirect_video], tmp_path / "views", small_config(yaws_deg=(0.0, 90.0)))
    results = slice_videos([other, equirect_video], tmp_path / "views", small_config(yaws_deg=(0.0, 90.0)))
    assert [(Path(r.source).stem, r.view, r.skipped) for r in results] == [
        ("other", "yaw000_pitch+00", False), ("other", "yaw090_pitch+00", False),
        (equirect_video.stem, "yaw000_pitch+00", True), (equirect_video.stem, "yaw090_pitch+00", True)]


def test_a_view_of_the_wrong_size_sends_its_source_to_the_full_check(equirect_video: Path, tmp_path: Path) -> None:
    from vidvpr.slicing.outputs import finished_views
    from vidvpr.slicing.stage import slice_videos

    first = slice_videos([equirect_video], tmp_path, small_config(yaws_deg=(0.0, 90.0)))
    with open(first[1].path, "ab") as video:
        video.write(b"\0")
    assert finished_views(equirect_video, tmp_path, small_config(yaws_deg=(0.0, 90.0))) is None
    again = slice_videos([equirect_video], tmp_path, small_config(yaws_deg=(0.0, 90.0)))
    assert [r.skipped for r in again] == [True, False]


def test_a_changed_source_is_hashed_again(tmp_path: Path) -> None:
    from vidvpr.core.provenance import sha256_file

    path = tmp_path / "source.bin"
    path.write_bytes(b"first")
    first = sha256_file(path)
    path.write_bytes(b"other contents")
    assert sha256_file(path) != first


def test_a_failure_in_an_encoder_thread_ends_the_run_without_output(equirect_video: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from vidvpr.slicing import writer

    def broken(*args, **kwargs):
        raise RuntimeError("something no one expected")

    monkeypatch.setattr(writer, "yuv420p_frame", broken)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _run_capturing(outcome, equirect_video, tmp_path), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the run hangs after a writer thread failed"
    assert isinstance(outcome[0], OutputError) and "something no one expected" in str(outcome[0])
    assert finished_files(tmp_path) == []


def _run_capturing(outcome: list, source: Path, out: Path) -> None:
    try:
        slice_video(source, out, small_config())
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        outcome.append(exc)


def test_encoder_settings_are_read_from_the_stream_wherever_the_index_is(tmp_path: Path) -> None:
    """x265 keeps its settings in the MP4 index; a file padded after it defeated byte scanning."""
    from vidvpr.media.settings import encoder_settings_string

    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (128, 256, 3), dtype=np.uint8) for _ in range(40)]
    path = tmp_path / "x265.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx265", rate=30)
        stream.width, stream.height, stream.pix_fmt = 256, 128, "yuv420p"
        stream.options = {"x265-params": "qp=0:log-level=error"}
        for index, rgb in enumerate(noise):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with open(path, "ab") as handle:  # a top-level free box of 2 MiB after the index
        size = 2 << 20
        handle.write(size.to_bytes(4, "big") + b"free" + bytes(size - 8))
    assert path.stat().st_size > 4 << 20
    settings = encoder_settings_string(path)
    assert settings is not None and settings.startswith("x265") and "qp=0" in settings


def test_an_insv_without_a_trailer_is_refused_with_the_fisheye_options_to_slice_it(equirect_video: Path,
                                                                                    tmp_path: Path) -> None:
    insv = tmp_path / "VID_20260101_120000_00_001.insv"
    shutil.copyfile(equirect_video, insv)
    with pytest.raises(BadInput, match=r"no Insta360 magic.*--calibration FILE.*--fisheye-fov DEG"):
        slice_video(insv, tmp_path / "out", small_config())


def test_an_equirect_video_named_insv_is_told_to_be_renamed_not_only_sliced_as_fisheye(equirect_video: Path,
                                                                                       tmp_path: Path) -> None:
    """Without any trailer the name alone made it an Insta360 file; the fisheye options alone would cut
    views from an equirect frame as if it were two lenses."""
    insv = tmp_path / "walk.insv"
    shutil.copyfile(equirect_video, insv)
    with pytest.raises(BadInput, match=r"--fisheye-fov DEG .*; or, if it is an equirectangular video named \.insv, "
                                       r"rename it \.mp4"):
        slice_video(insv, tmp_path / "out", small_config())


def test_a_renamed_insv_is_recognised_by_its_trailer(equirect_video: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "renamed.mp4"
    renamed.write_bytes(equirect_video.read_bytes() + b"\0" * 40 + b"8db42d694ccc418790edff439fe026bf")
    with pytest.raises(BadInput, match="Insta360 trailer: footer: trailer version 0; vidvpr reads version 3"):
        slice_video(renamed, tmp_path / "out", small_config())


def test_a_gopro_360_file_is_refused(equirect_video: Path, tmp_path: Path) -> None:
    gopro = tmp_path / "GS010001.360"
    shutil.copyfile(equirect_video, gopro)
    with pytest.raises(BadInput, match=r"GoPro MAX \.360 file \(equi-angular cubemap"):
        slice_video(gopro, tmp_path / "out", small_config())


def test_a_two_to_one_dual_fisheye_frame_is_refused(tmp_path: Path) -> None:
    def dual_fisheye(index: int) -> np.ndarray:
        rgb = np.zeros((128, 256, 3), np.uint8)
        rows, cols = np.mgrid[0:128, 0:128]
        circle = np.hypot(rows + 0.5 - 64, cols + 0.5 - 64) < 62
        for half in (0, 128):
            rgb[:, half:half + 128][circle] = equirect_test_frame(128, 128, index)[circle] // 2 + 100
        return rgb

    source = write_video(tmp_path / "fisheye.mp4", (dual_fisheye(i) for i in range(2)))
    with pytest.raises(BadInput, match="looks like a dual-fisheye frame"):
        slice_video(source, tmp_path / "out", small_config())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("height", [1000, 1920])
def test_a_large_frame_is_judged_like_a_small_one(height: int) -> None:
    from vidvpr.media.probe import looks_dual_fisheye

    rows, cols = np.mgrid[0:height, 0:height]
    circle = np.hypot(rows + 0.5 - height / 2, cols + 0.5 - height / 2) < 0.48 * height
    fisheye = np.full((height, 2 * height), 16, np.uint8)
    for half in (0, height):
        fisheye[:, half:half + height][circle] = 120
    assert looks_dual_fisheye(fisheye)
    picture = np.random.default_rng(0).integers(30, 220, (height, 2 * height), dtype=np.uint8)
    assert not looks_dual_fisheye(picture)
    picture[:, : height // 3] = 16  # black on one side only: still no pair of circles
    assert not looks_dual_fisheye(picture)


def test_an_equirect_frame_is_not_taken_for_dual_fisheye(equirect_video: Path) -> None:
    from vidvpr.media.probe import looks_dual_fisheye

    assert not looks_dual_fisheye(next(decode_frames(equirect_video)).y)

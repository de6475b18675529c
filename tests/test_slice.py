"""`vidvpr slice`: geometry of the views, frame accuracy, sidecars, resume and bad input."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from tests.media import decode_luma_and_times, equirect_test_frame, read_frame_code, write_video
from vidvpr.media.metrics import image_psnr_db
from vidvpr.geo import projection as geometry
from vidvpr.cli import main
from vidvpr.core.errors import BadInput, OutputError
from vidvpr.slicing.config import SliceConfig
from vidvpr.slicing.slicer import slice_video
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
    rgb = decode_rgb(Path(sliced[view_index].path))[0].astype(int)
    width, height = VIEW_SIZE
    centre = rgb[height // 2 - 1: height // 2 + 1, width // 2 - 1: width // 2 + 1]
    assert (centre[..., 0] > 180).all() and (centre[..., 1] < 90).all()


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


# --- bad input -------------------------------------------------------------------------------

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
        "vidvpr: error: Invalid value for '--fov': 'wide' is not a valid float. (see 'vidvpr --help')"]


@pytest.mark.parametrize("interp", ["bicubic", "lanczos"])
def test_wide_kernels_at_the_zenith_never_reach_the_opposite_pole(interp: str) -> None:
    from vidvpr.slicing.config import ViewSpec
    from vidvpr.slicing.remap import PlaneRemapper

    equirect = np.full((128, 256), 250, np.uint8)
    equirect[:64] = 50  # dark sky, bright ground
    # a narrow view whose samples all fall between the first and second row centres, where
    # the kernel's upper taps lie above the first row
    near_zenith = ViewSpec(0.0, 90.0 - 180.0 / 128, 2.0, 16, 16)
    sampled = PlaneRemapper(256, 128, 0, near_zenith, 1, interp)(equirect)
    assert sampled.min() == 50 and sampled.max() == 50

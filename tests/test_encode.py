"""`vidvpr encode`: parsing and planning, the grid on disk, frame-for-frame cells, constant QP read
back from the stream, rate and quality, resume after interruption, and every bad input."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from tests.media import equirect_test_frame, make_equirect_video, write_video
from vidvpr.encoding import grid as encoding
from vidvpr.encoding import verify
from vidvpr.cli import main
from vidvpr.encoding.plan import (
    EncodeConfig,
    EncodeTarget,
    Resolution,
    default_gop,
    encode_command,
    frame_type_qps,
    parse_qp_spec,
    parse_rate_control,
    parse_resolutions,
    plan_grid,
    validate_config,
)
from vidvpr.encoding.grid import encode_grid, plan_encode
from vidvpr.core.errors import BadInput, OutputError, ProcessFailed
from vidvpr.media.ffmpeg import find_ffmpeg
from vidvpr.core.atomic import partial_path
from vidvpr.core.sidecars import CellSidecar
from vidvpr.core.threads import encoder_threads
from vidvpr.encoding.quality import parse_psnr_stats, read_metrics
from vidvpr.encoding.rdplot import averaged_over, rd_curves, rd_figure
from vidvpr.encoding.table import TABLE_COLUMNS
from vidvpr.media.metrics import psnr_db
from vidvpr.media.view_video import ViewVideo
from vidvpr.slicing.config import SliceConfig
from vidvpr.slicing.slicer import slice_video
from vidvpr.media.settings import encoder_settings_string

VIEW_SIZE = (128, 72)
FRAMES = 16
QPS = (20, 35, 50)
RESOLUTIONS = "128x72,64x36"


def small_config(**overrides) -> EncodeConfig:
    base = EncodeConfig(qps=QPS, resolutions=parse_resolutions(RESOLUTIONS), preset="fast")
    return replace(base, **overrides)


def fake_source(name: str = "yaw000_pitch+00", width: int = 960, height: int = 540, fps: Fraction = Fraction(30)) -> ViewVideo:
    return ViewVideo(Path(f"/data/rec/{name}.mp4"), "rec", name, width, height, fps, 300, 1000, "sha256:x", None)


def finished_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".") and p.suffix == ".mp4"}


def hidden_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.is_file()]


def frame_times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as container:
        return [frame.pts * frame.time_base for frame in container.decode(video=0)]


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two 128×72 view videos of 16 frames made by `vidvpr slice` (with their sidecars)."""
    folder = tmp_path_factory.mktemp("encode-media")
    source = make_equirect_video(folder / "room.mp4", frames=FRAMES)
    results = slice_video(source, folder / "views", SliceConfig(yaws_deg=(0.0, 90.0), size=VIEW_SIZE))
    return [Path(result.path) for result in results]


@pytest.fixture(scope="module")
def grid(views: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, encoding.EncodeResult]:
    out = tmp_path_factory.mktemp("grid")
    return out, encode_grid(views, out, small_config())


def rows_by_cell(rows: list[dict]) -> dict[tuple, dict]:
    return {(row["view"], row["resolution"], row["qp"]): row for row in rows}


# --- parsing and planning: pure functions -------------------------------------------------


def test_qp_range_defaults_to_step_5() -> None:
    assert parse_qp_spec("20..50") == (20, 25, 30, 35, 40, 45, 50)


def test_qp_range_takes_a_step() -> None:
    assert parse_qp_spec("20..30:2") == (20, 22, 24, 26, 28, 30)


def test_qp_list_is_sorted_without_duplicates() -> None:
    assert parse_qp_spec("45, 20,30,20") == (20, 30, 45) and parse_qp_spec(" 20 .. 30 : 10 ") == (20, 30)


def test_empty_qp_range_is_rejected() -> None:
    with pytest.raises(BadInput, match="empty range"):
        parse_qp_spec("50..20")


@pytest.mark.parametrize("spec", ["twenty", "20..", "20..50:0", "20..50:x", "", "20 30"])
def test_malformed_qp_spec_is_rejected(spec: str) -> None:
    with pytest.raises(BadInput, match="qp"):
        parse_qp_spec(spec)


@pytest.mark.parametrize(("codec", "qp"), [("libx264", 52), ("libx264", -1), ("libx265", 60)])
def test_qp_outside_the_codec_range_is_rejected(codec: str, qp: int) -> None:
    with pytest.raises(BadInput, match=rf"qp must be in \[0, 51\] for {codec}, got {qp}"):
        validate_config(EncodeConfig(qps=(30, qp), codecs=(codec,)))


def test_unknown_codec_lists_the_valid_ones() -> None:
    with pytest.raises(BadInput, match="Unknown codec 'vp9'. Use libx264, libx265, libsvtav1, libvpx-vp9, libvvenc"):
        validate_config(EncodeConfig(codecs=("vp9",)))


def test_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(BadInput, match="Unknown preset 'quick' for libx264. Use one of ultrafast, .*medium"):
        validate_config(EncodeConfig(preset="quick"))


def test_resolutions_parse_names_and_sizes_in_order() -> None:
    assert parse_resolutions("720p, 640x360,360p,720p") == (
        Resolution("720p", 720), Resolution("640x360", 360, 640), Resolution("360p", 360))


def test_unknown_resolution_lists_the_valid_ones() -> None:
    with pytest.raises(BadInput, match=r"Unknown resolution 'hd'. Use 360p, 480p, 720p, 1080p or WxH."):
        parse_resolutions("720p,hd")


@pytest.mark.parametrize("spec", ["641x360", "640x9", ","])
def test_odd_tiny_or_empty_sizes_are_rejected(spec: str) -> None:
    with pytest.raises(BadInput, match="res"):
        parse_resolutions(spec)


@pytest.mark.parametrize(("label", "view", "size"), [
    ("480p", (1920, 1080), (854, 480)), ("360p", (1920, 1080), (640, 360)), ("1080p", (3840, 2160), (1920, 1080)),
    ("480p", (1024, 768), (640, 480)), ("360p", (1000, 1000), (360, 360)), ("360p", (999, 1000), (360, 360)),
])
def test_named_resolution_keeps_the_view_aspect_with_an_even_width(label: str, view: tuple, size: tuple) -> None:
    assert parse_resolutions(label)[0].size_for(*view) == size


def test_explicit_size_wins_over_the_view_aspect() -> None:
    assert parse_resolutions("640x480")[0].size_for(1920, 1080) == (640, 480)


def test_grid_plan_has_one_cell_per_view_resolution_and_qp_with_documented_paths() -> None:
    sources = [fake_source("yaw000_pitch+00"), fake_source("yaw090_pitch+00")]
    config = EncodeConfig(qps=(20, 35), resolutions=parse_resolutions("480p,360p"))
    cells = plan_grid(sources, config, Path("/out"))
    assert [(c.source.view, c.resolution, c.width, c.height, c.qp) for c in cells] == [
        (view, res, w, h, qp) for view in ("yaw000_pitch+00", "yaw090_pitch+00")
        for res, w, h in (("480p", 854, 480), ("360p", 640, 360)) for qp in (20, 35)]
    assert cells[0].video == Path("/out/rec/yaw000_pitch+00/480p/qp20.mp4")
    assert cells[0].sidecar == Path("/out/rec/yaw000_pitch+00/480p/qp20.json")
    assert len({c.params_hash for c in cells if c.source.view == "yaw000_pitch+00"}) == 4


def test_upscaling_is_refused() -> None:
    with pytest.raises(BadInput, match=r"720p \(1280x720\) is larger than .* \(960x540\); pass --allow-upscale"):
        plan_grid([fake_source()], EncodeConfig(resolutions=parse_resolutions("720p")), Path("/out"))


def test_upscaling_is_planned_when_allowed() -> None:
    config = EncodeConfig(qps=(30,), resolutions=parse_resolutions("720p"), allow_upscale=True)
    assert [(c.width, c.height) for c in plan_grid([fake_source()], config, Path("/out"))] == [(1280, 720)]


def test_default_resolutions_are_the_named_ones_not_above_the_view() -> None:
    cells = plan_grid([fake_source()], EncodeConfig(qps=(30,)), Path("/out"))
    assert [c.resolution for c in cells] == ["480p", "360p"]


def test_view_smaller_than_every_default_resolution_asks_for_res() -> None:
    with pytest.raises(BadInput, match="pass --res WxH"):
        plan_grid([fake_source(width=128, height=72)], EncodeConfig(), Path("/out"))


def test_two_inputs_with_the_same_recording_and_view_are_rejected() -> None:
    with pytest.raises(BadInput, match="collide"):
        plan_grid([fake_source(), fake_source()], EncodeConfig(qps=(30,)), Path("/out"))


@pytest.mark.parametrize(("fps", "gop"), [(Fraction(30), 60), (Fraction(10), 20), (Fraction(30000, 1001), 60),
                                          (Fraction(1, 4), 1)])
def test_default_gop_is_two_seconds_of_frames(fps: Fraction, gop: int) -> None:
    assert default_gop(fps) == gop


def test_gop_option_fixes_the_gop_of_every_cell() -> None:
    cells = plan_grid([fake_source(fps=Fraction(25))], EncodeConfig(gop=12, qps=(20, 40)), Path("/out"))
    assert {c.gop for c in cells} == {12}


def test_encode_command_decodes_once_scales_once_per_size_and_maps_one_encoder_per_qp() -> None:
    targets = [EncodeTarget(w, h, qp, Path(f"/o/{w}_{qp}.mp4")) for w, h in ((640, 360), (320, 180)) for qp in (20, 50)]
    argv = encode_command("ffmpeg", Path("/v.mp4"), targets, EncodeConfig(), gop=60, threads=1)
    assert isinstance(argv, list) and argv.count("-i") == 1
    graph = argv[argv.index("-filter_complex") + 1]
    assert graph.count("scale=640:360:flags=bicubic") == 1 and graph.count("scale=320:180:flags=bicubic") == 1
    assert argv.count("-map") == 4 and [argv[i + 1] for i, a in enumerate(argv) if a == "-qp"] == ["20", "50"] * 2
    assert argv.count("passthrough") == 4 and argv.count("-sc_threshold") == 4


def test_flat_qp_sets_both_ratios_to_one_for_each_codec() -> None:
    for codec in ("libx264", "libx265"):
        argv = encode_command("ffmpeg", Path("/v.mp4"), [EncodeTarget(64, 36, 30, Path("/o.mp4"))],
                              EncodeConfig(codecs=(codec,), flat_qp=True), gop=10, threads=1)
        params = next(a for a in argv if "ipratio" in a)
        assert "ipratio=1.0" in params and "pbratio=1.0" in params


def test_frame_type_qps_follow_the_x264_constant_qp_rule() -> None:
    assert frame_type_qps(30, 1.4, 1.3) == {"I": 27, "P": 30, "B": 32, "B_ref": 31}
    assert frame_type_qps(30, 1.0, 1.0) == {"I": 30, "P": 30, "B": 30, "B_ref": 30}
    assert frame_type_qps(1, 1.4, 1.3)["I"] == 0 and frame_type_qps(51, 1.4, 1.3)["B"] == 51


def test_rate_control_is_parsed_from_x264_and_x265_settings() -> None:
    x264 = "x264 - core 165 - options: chroma_qp_offset=-2 rc=cqp mbtree=0 qp=30 ip_ratio=1.40 pb_ratio=1.30 aq=0"
    x265 = "x265 (build 217) - options: cbqpoffs=0 rc=cqp qp=35 ipratio=1.00 pbratio=1.00 qpmax=69 qpmin=0"
    assert parse_rate_control(x264) == {"qp": 30, "ipratio": 1.4, "pbratio": 1.3}
    assert parse_rate_control(x265) == {"qp": 35, "ipratio": 1.0, "pbratio": 1.0}


def test_encoder_threads_keep_all_concurrent_encoders_within_the_cores() -> None:
    assert encoder_threads(1, cpu_count=8) == 8
    assert encoder_threads(2 * 2, cpu_count=8) == 2
    assert encoder_threads(14, cpu_count=2) == 1


def test_psnr_is_the_psnr_of_the_mean_mse_like_ffmpeg(tmp_path: Path) -> None:
    (tmp_path / "psnr0.log").write_text("n:1 mse_avg:1 mse_y:1.0 psnr_y:48.13\nn:2 mse_avg:1 mse_y:3.0 psnr_y:43.36\n")
    (tmp_path / "ssim0.log").write_text("n:1 Y:0.99 U:1 V:1 All:0.99 (20)\nn:2 Y:0.97 U:1 V:1 All:0.97 (15)\n")
    metrics = read_metrics(tmp_path, 0, vmaf=False, expected_frames=2)
    assert parse_psnr_stats((tmp_path / "psnr0.log").read_text()) == [1.0, 3.0]
    assert metrics.psnr_y == round(psnr_db(2.0), 4) and metrics.ssim_y == 0.98 and metrics.vmaf is None


def test_metrics_with_missing_frames_fail(tmp_path: Path) -> None:
    (tmp_path / "psnr0.log").write_text("n:1 mse_avg:1 mse_y:1.0\n")
    (tmp_path / "ssim0.log").write_text("n:1 Y:0.99\n")
    with pytest.raises(ProcessFailed, match="expected 2"):
        read_metrics(tmp_path, 0, vmaf=False, expected_frames=2)


def test_rd_curves_average_views_per_resolution_and_qp() -> None:
    rows = [{"recording": "r", "view": v, "resolution": "360p", "width": 640, "height": 360, "qp": qp,
             "kbps": kbps, "psnr_y": psnr} for v, qp, kbps, psnr in
            (("a", 20, 100, 40), ("b", 20, 300, 44), ("a", 30, 50, 35), ("b", 30, 70, 37))]
    assert rd_curves(rows) == {"360p (640x360)": [(20, 200.0, 42.0), (30, 60.0, 36.0)]}


def test_a_named_resolution_at_two_sizes_keeps_both_curves_and_says_what_is_averaged() -> None:
    rows = [{"recording": "r", "view": view, "resolution": res, "width": width, "height": 360, "qp": 30,
             "kbps": kbps, "psnr_y": 40} for view, res, width, kbps in
            (("wide", "360p", 640, 100), ("square", "360p", 480, 80), ("wide", "320x360", 320, 50))]
    assert rd_curves(rows) == {"360p (640x360)": [(30, 100.0, 40.0)], "360p (480x360)": [(30, 80.0, 40.0)],
                               "320x360": [(30, 50.0, 40.0)]}
    assert averaged_over(rows) == "mean over 1 view"
    assert averaged_over([*rows, {**rows[0], "view": "other"}]) == "mean over the views of each size"


def _ink_runs_along(image, line, renderer) -> int:
    """How many separate stretches of ink cross the middle row of a legend handle's box."""
    box = line.get_window_extent(renderer)
    row = image.shape[0] - int(round((box.y0 + box.y1) / 2))
    pixels = image[row, int(box.x0):int(np.ceil(box.x1)), :3].astype(int)
    ink = (255 * 3 - pixels.sum(axis=1)) > 150
    return int(np.sum(np.diff(np.r_[0, ink.astype(int), 0]) == 1))


def test_the_rd_plots_legend_shows_each_resolutions_line_style() -> None:
    # at the default handle length the marker hid the dashes: 32x16 (dashed) looked like 64x32 (solid)
    rows = [{"recording": "r", "view": "v", "resolution": f"{w}x{h}", "width": w, "height": h, "qp": qp,
             "codec": "libx264", "preset": "medium", "flat_qp": False, "kbps": kbps * w / 64, "psnr_y": 40 - qp / 5,
             "quantiser": "qp"} for w, h in ((64, 32), (48, 24), (32, 16)) for qp, kbps in ((25, 2.0), (45, 0.3))]
    figure = rd_figure(rows)
    figure.canvas.draw()
    image, renderer = np.asarray(figure.canvas.buffer_rgba()), figure.canvas.get_renderer()
    for ax in figure.axes:
        legend = ax.get_legend()
        runs = {line.get_linestyle(): _ink_runs_along(image, line, renderer) for line in legend.get_lines()}
        # solid: one unbroken line through the marker; dashed, dotted: a gap on either side of it at least
        assert set(runs) == {"-", "--", ":"}
        assert runs["-"] == 1 and runs["--"] >= 3 and runs[":"] >= 3


# --- the grid on disk ---------------------------------------------------------------------


def test_grid_writes_every_cell_with_its_sidecar_table_and_plot(grid: tuple) -> None:
    out, result = grid
    expected = {f"room/{view}/{res}/qp{qp:02d}.{ext}" for view in ("yaw000_pitch+00", "yaw090_pitch+00")
                for res in ("128x72", "64x36") for qp in QPS for ext in ("mp4", "json")}
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert written == expected | {"encodes.csv", "encodes.json", "rd.png"}
    with open(out / "encodes.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == TABLE_COLUMNS and len(table) == 12
    assert json.loads((out / "encodes.json").read_text())["rows"] == result.rows
    assert (out / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_requested_qp_is_read_back_from_every_stream(grid: tuple) -> None:
    out, result = grid
    for row in result.rows:
        settings = encoder_settings_string(out / row["path"])
        assert re.search(rf"rc=cqp .*(?<![\w-])qp={row['qp']} ", settings), settings


def test_gop_is_fixed_without_scene_cut_keyframes(grid: tuple) -> None:
    out, result = grid
    assert {row["gop"] for row in result.rows} == {60}
    assert all("keyint=60 " in encoder_settings_string(out / row["path"]) and "scenecut=0" in
               encoder_settings_string(out / row["path"]) for row in result.rows)


def test_every_cell_has_the_frames_and_timestamps_of_its_view(grid: tuple, views: list[Path]) -> None:
    out, result = grid
    reference = {view.stem: frame_times(view) for view in views}
    assert all(len(times) == FRAMES for times in reference.values())
    for row in result.rows:
        assert frame_times(out / row["path"]) == reference[row["view"]]
        assert row["frames"] == FRAMES


def test_bitrate_and_psnr_fall_as_qp_rises(grid: tuple) -> None:
    _, result = grid
    cells = rows_by_cell(result.rows)
    for view in ("yaw000_pitch+00", "yaw090_pitch+00"):
        for res in ("128x72", "64x36"):
            kbps = [cells[(view, res, qp)]["kbps"] for qp in QPS]
            psnr = [cells[(view, res, qp)]["psnr_y"] for qp in QPS]
            ssim = [cells[(view, res, qp)]["ssim_y"] for qp in QPS]
            assert kbps == sorted(kbps, reverse=True) and len(set(kbps)) == len(QPS)
            assert psnr == sorted(psnr, reverse=True) and len(set(psnr)) == len(QPS)
            assert ssim == sorted(ssim, reverse=True)


def test_vmaf_is_measured_when_libvmaf_is_available(grid: tuple) -> None:
    _, result = grid
    if not find_ffmpeg().has_vmaf:
        pytest.skip("this ffmpeg has no libvmaf")
    assert all(0 <= row["vmaf"] <= 100 for row in result.rows)


def test_sidecar_records_parameters_hashes_versions_settings_and_metrics(grid: tuple, views: list[Path]) -> None:
    out, result = grid
    meta = json.loads((out / result.rows[0]["path"]).with_suffix(".json").read_text())
    assert meta["schema"] == "vidvpr.encode/3" and len(meta["params_hash"]) == 16
    assert meta["input"]["hash"].startswith("sha256:") and meta["input"]["slice_sidecar"]
    assert meta["versions"]["ffmpeg"] and meta["encoder_settings"].startswith("x264 - core")
    assert meta["frame_qp"] == {**frame_type_qps(meta["qp"], 1.4, 1.3), "rule": meta["frame_qp"]["rule"]}
    assert meta["metrics"]["reference"].count("scale=128:72:flags=bicubic") == 1
    assert len(meta["metrics"]["per_frame"]["psnr_y"]) == FRAMES


@pytest.mark.parametrize("flat_qp", [False, True])
def test_x264_own_log_confirms_the_documented_qp_of_each_frame_type(views: list[Path], tmp_path: Path,
                                                                    flat_qp: bool) -> None:
    config = small_config(flat_qp=flat_qp)
    argv = encode_command(find_ffmpeg().path, views[0], [EncodeTarget(128, 72, 30, tmp_path / "c.mp4")], config,
                          gop=8, threads=1)
    argv[argv.index("-loglevel") + 1] = "info"
    log = subprocess.run(argv, capture_output=True, text=True, check=True).stderr
    averages = {kind: float(qp) for kind, qp in re.findall(r"frame ([IPB]):\d+\s+Avg QP:\s*([\d.]+)", log)}
    expected = frame_type_qps(30, *((1.0, 1.0) if flat_qp else (1.4, 1.3)))
    assert averages["I"] == expected["I"] and averages["P"] == expected["P"]
    assert expected["B_ref"] <= averages["B"] <= expected["B"]
    assert ("ip_ratio=1.00 pb_ratio=1.00" in encoder_settings_string(tmp_path / "c.mp4")) == flat_qp


def stream_qps_by_frame_type(path: Path) -> dict[str, set[int]]:
    """Macroblock QPs the decoder reads from the stream, per frame type (I, P, B)."""
    if not hasattr(av.sidedata, "encparams"):
        pytest.skip("this PyAV cannot export video encoding parameters")
    found: dict[str, set[int]] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"export_side_data": "venc_params"}
        for frame in container.decode(stream):
            params = frame.side_data.get(av.sidedata.sidedata.Type.VIDEO_ENC_PARAMS)
            kind = {1: "I", 2: "P", 3: "B"}[int(frame.pict_type)]
            found.setdefault(kind, set()).update(int(qp) for qp in set(params.qp_map().flat))
    return found


@pytest.mark.parametrize("flat_qp", [False, True])
def test_the_stream_carries_the_documented_qp_of_each_frame_type(views: list[Path], tmp_path: Path,
                                                                 flat_qp: bool) -> None:
    result = encode_grid(views[:1], tmp_path, small_config(qps=(30,), flat_qp=flat_qp, vmaf=False,
                                                           resolutions=parse_resolutions("128x72")))
    meta = json.loads((tmp_path / result.rows[0]["path"]).with_suffix(".json").read_text())
    qps = stream_qps_by_frame_type(tmp_path / result.rows[0]["path"])
    assert qps["I"] == {meta["frame_qp"]["I"]} and qps["P"] == {30}
    assert qps["B"] <= {meta["frame_qp"]["B_ref"], meta["frame_qp"]["B"]}
    documented = {"I": 30, "B": {30}} if flat_qp else {"I": 27, "B": {31, 32}}  # --help: I qp-3, B qp+1/qp+2
    assert qps["I"] == {documented["I"]} and qps["B"] and qps["B"] <= documented["B"]


def test_libx265_cells_use_the_requested_qp(views: list[Path], tmp_path: Path) -> None:
    result = encode_grid(views[:1], tmp_path, small_config(codecs=("libx265",), qps=(30,), vmaf=False,
                                                           resolutions=parse_resolutions("64x36")))
    meta = json.loads((tmp_path / result.rows[0]["path"]).with_suffix(".json").read_text())
    assert parse_rate_control(meta["encoder_settings"])["qp"] == 30 and meta["frames"] == FRAMES


def test_variable_frame_rate_timestamps_survive_and_a_plain_video_warns(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    pts = [0, 33, 70, 100, 141, 170, 200, 251, 270, 300, 333, 370]
    (tmp_path / "rec").mkdir()
    view = write_video(tmp_path / "rec" / "vfr.mp4", (equirect_test_frame(128, 72, i) for i in range(len(pts))),
                       pts=pts, time_base=Fraction(1, 1000))
    result = encode_grid([view], tmp_path / "out", small_config(qps=(30,), vmaf=False))
    assert "not a view video made by `vidvpr slice`" in caplog.text
    assert frame_times(tmp_path / "out" / result.rows[0]["path"]) == [Fraction(p, 1000) for p in pts]


def test_upscaling_works_when_allowed(views: list[Path], tmp_path: Path) -> None:
    result = encode_grid(views[:1], tmp_path, small_config(qps=(40,), vmaf=False, allow_upscale=True,
                                                           resolutions=parse_resolutions("256x144")))
    assert (result.rows[0]["width"], result.rows[0]["height"]) == (256, 144)


def test_two_jobs_encode_the_whole_grid(views: list[Path], tmp_path: Path) -> None:
    result = encode_grid(views, tmp_path, small_config(qps=(40,), vmaf=False, jobs=2))
    assert len(result.encoded) == 4 and all((tmp_path / row["path"]).exists() for row in result.rows)


# --- resume -------------------------------------------------------------------------------


def test_rerun_skips_every_finished_cell(grid: tuple, views: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "grid"
    shutil.copytree(grid[0], out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    result = encode_grid(views, out, small_config())
    assert result.encoded == [] and len(result.skipped) == 12
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == before


def test_a_rerun_that_encodes_nothing_leaves_table_and_plot_as_they_are(grid: tuple, views: list[Path],
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from vidvpr.encoding import table

    out = tmp_path / "grid"
    shutil.copytree(grid[0], out)
    files = ("encodes.csv", "encodes.json", "rd.png")
    before = {name: (out / name).stat().st_mtime_ns for name in files}
    monkeypatch.setattr(table, "plot_rd", lambda rows, path: pytest.fail("the plot was drawn again"))
    result = encode_grid(views, out, small_config())
    assert result.encoded == [] and {name: (out / name).stat().st_mtime_ns for name in files} == before


def test_a_rerun_with_nothing_to_encode_loads_neither_matplotlib_nor_opencv(grid: tuple, views: list[Path],
                                                                          tmp_path: Path) -> None:
    from tests.imports import imports_of_command

    out = tmp_path / "grid"
    shutil.copytree(grid[0], out)
    summary, loaded = imports_of_command(["encode", *map(str, views), "--out", str(out), "--qp", ",".join(map(str, QPS)),
                                          "--res", RESOLUTIONS, "--preset", "fast", "--json"], ("matplotlib", "cv2"))
    assert json.loads(summary)["encoded"] == [] and loaded == []


@pytest.mark.parametrize("damage", ["plot", "csv", "plot record"])
def test_a_damaged_table_or_plot_is_written_again(damage: str, grid: tuple, views: list[Path], tmp_path: Path) -> None:
    from vidvpr.core.records import FileRecord

    out = tmp_path / "grid"
    shutil.copytree(grid[0], out)
    if damage == "plot":
        (out / "rd.png").write_bytes((out / "rd.png").read_bytes()[:-10] + bytes(10))  # same size, other bytes
    elif damage == "csv":
        (out / "encodes.csv").write_text((out / "encodes.csv").read_text().replace("qp35", "qp36"))
    else:
        recorded = json.loads((out / "encodes.json").read_text())
        del recorded["plot"]  # a table from before plots were recorded
        (out / "encodes.json").write_text(json.dumps(recorded))
    damaged = {name: (out / name).read_bytes() for name in ("encodes.csv", "encodes.json", "rd.png")}
    encode_grid(views, out, small_config())
    assert (out / "encodes.csv").read_text() == (grid[0] / "encodes.csv").read_text()
    plot = FileRecord(**json.loads((out / "encodes.json").read_text())["plot"])
    assert plot.path == "rd.png" and plot.matches(out / "rd.png", check_hash=True)
    assert any((out / name).read_bytes() != data for name, data in damaged.items())


def test_rerun_redoes_a_cell_whose_sidecar_was_deleted(grid: tuple, views: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "grid"
    shutil.copytree(grid[0], out)
    lost = out / "room" / "yaw090_pitch+00" / "64x36" / "qp35.json"
    lost.unlink()
    result = encode_grid(views, out, small_config())
    assert result.encoded == [str(lost.with_suffix(".mp4"))] and lost.exists()
    assert finished_files(out) == finished_files(grid[0])


def test_changed_parameters_redo_the_cells(grid: tuple, views: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "grid"
    shutil.copytree(grid[0], out)
    result = encode_grid(views[:1], out, small_config(qps=(35,), gop=8, vmaf=False))
    assert len(result.encoded) == 2 and result.skipped == []


def test_force_redoes_every_cell(grid: tuple, views: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "grid"
    shutil.copytree(grid[0], out)
    result = encode_grid(views[:1], out, small_config(qps=(50,), vmaf=False, force=True))
    assert len(result.encoded) == 2


def test_interrupted_run_resumes_to_the_same_outputs(grid: tuple, views: list[Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = CellSidecar.save
    calls = []

    def interrupt_after_first_sidecar(self: CellSidecar, path: Path) -> None:
        if calls:
            raise KeyboardInterrupt
        calls.append(path)
        real_save(self, path)

    monkeypatch.setattr(CellSidecar, "save", interrupt_after_first_sidecar)
    with pytest.raises(KeyboardInterrupt):
        encode_grid(views, tmp_path, small_config())
    monkeypatch.undo()
    assert len(list(tmp_path.rglob("qp*.json"))) == 1 and hidden_files(tmp_path) == []
    result = encode_grid(views, tmp_path, small_config())
    assert len(result.skipped) == 1 and len(result.encoded) == 11
    assert finished_files(tmp_path) == finished_files(grid[0])
    timing = ("encode_s", "encode_cpu_s", "encode_fps", "realtime_factor")
    strip = [{k: v for k, v in row.items() if k not in timing} for row in result.rows]
    assert strip == [{k: v for k, v in row.items() if k not in timing} for row in grid[1].rows]


@pytest.mark.slow
def test_killed_cli_run_resumes_to_the_same_outputs(grid: tuple, views: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "vidvpr", "encode", *map(str, views), "--out", str(out), "--qp",
            ",".join(map(str, QPS)), "--res", RESOLUTIONS, "--preset", "fast", "--quiet"]
    proc = subprocess.Popen(argv, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not hidden_files(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert hidden_files(out), "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its ffmpeg children, mid-encode
    proc.wait()
    plan = plan_encode(views, out, small_config())
    assert not all(status.done for status in plan)
    assert all((not status.done) or status.cell.sidecar.exists() for status in plan)
    subprocess.run(argv, check=True, timeout=120)
    assert finished_files(out) == finished_files(grid[0]) and hidden_files(out) == []


@pytest.mark.slow
def test_terminated_cli_run_stops_ffmpeg_and_removes_its_partial_outputs(views: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "vidvpr", "encode", *map(str, views), "--out", str(out),
                             "--qp", "20..50", "--res", RESOLUTIONS, "--preset", "fast", "--quiet"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not hidden_files(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert hidden_files(out), "the run ended before it could be terminated"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    time.sleep(0.5)  # an orphaned ffmpeg would still be writing
    assert hidden_files(out) == []
    done = {status.cell.video for status in plan_encode(views, out, small_config(qps=parse_qp_spec("20..50")))
            if status.done}
    assert {p for p in out.rglob("*.mp4")} == done  # whatever is left is finished, with its sidecar


# --- bad input ----------------------------------------------------------------------------


def test_a_file_that_is_not_a_video_is_rejected(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    with pytest.raises(BadInput, match="notes.mp4"):
        encode_grid([fake], tmp_path / "out", small_config())


def test_disk_full_during_an_encode_is_an_output_error_and_leaves_nothing(views: list[Path], tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from vidvpr.core import atomic

    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    monkeypatch.setattr(atomic, "_owner_tag", lambda: "thishost-1-0")  # a predictable temporary name
    video = tmp_path / "room" / "yaw000_pitch+00" / "64x36" / "qp40.mp4"
    video.parent.mkdir(parents=True)
    partial_path(video).symlink_to("/dev/full")  # ffmpeg writes the cell there and gets ENOSPC
    with pytest.raises(OutputError, match="disk full"):
        encode_grid(views[:1], tmp_path, small_config(qps=(40,), resolutions=parse_resolutions("64x36")))
    assert [p for p in tmp_path.rglob("*") if p.is_file() or p.is_symlink()] == []


def test_a_stream_not_at_the_requested_constant_qp_is_rejected_and_leaves_nothing(
        views: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "encoder_settings_string", lambda path: "x264 - core 165 - options: rc=crf crf=23.0")
    with pytest.raises(ProcessFailed, match="do not say rc=cqp qp=40"):
        encode_grid(views[:1], tmp_path, small_config(qps=(40,), vmaf=False))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(("args", "message"), [
    (["--qp", "50..20"], "empty range"),
    (["--qp", "60"], r"qp must be in \[0, 51\]"),
    (["--codec", "vp9"], "--codec: unknown codec 'vp9'. Use libx264, libx265, libsvtav1"),
    (["--res", "hd"], "Use 360p, 480p, 720p, 1080p or WxH"),
    (["--res", "1080p"], "--allow-upscale"),
    (["--gop", "0"], "--gop"),
    (["--qp", "20,,30"], "--qp has an empty item in '20,,30'"),
    (["--codec", "libx264,,libx265"], "--codec has an empty item in 'libx264,,libx265'"),
    (["--res", "64x36,"], "--res has an empty item in '64x36,'"),
    (["--preset", "libx264="], "--preset libx264=: no preset after '='"),
    (["--qp", "20", "--qp", "30"], "--qp 20 and --qp 30: give the grid's values once"),
])
def test_cli_bad_input_is_one_line_with_nonzero_exit_and_writes_nothing(views: list[Path], tmp_path: Path,
                                                                        args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["encode", str(views[0]), "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidvpr: error:") and re.search(message, lines[0])
    assert not (tmp_path / "out").exists()


def test_cli_a_folder_given_as_input_is_one_line_saying_which_videos_to_pass(views: list[Path], tmp_path: Path) -> None:
    # it said "<folder>: not a file"
    slice_out, empty = views[0].parent.parent, tmp_path / "empty"
    empty.mkdir()
    for folder, line in [(slice_out, f"; pass the videos in it ({slice_out / '*/*.mp4'})"),
                         (views[0].parent, f"; pass the videos in it ({views[0].parent / '*.mp4'})"),
                         (empty, ", and it holds no .mp4 video")]:
        result = CliRunner().invoke(main, ["encode", str(folder), "--out", str(tmp_path / "out")])
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [f"vidvpr: error: {folder}: is a folder, not a video{line}"]
    assert not (tmp_path / "out").exists()


def test_cli_out_that_is_a_file_is_one_line_error(views: list[Path], tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    result = CliRunner().invoke(main, ["encode", str(views[0]), "--out", str(taken), "--qp", "40", "--res", "64x36"])
    assert result.exit_code == 4 and result.stderr.strip() == f"vidvpr: error: {taken}: is a file, not an output directory"


def test_a_folder_in_the_way_of_the_table_is_an_output_error(views: list[Path], tmp_path: Path) -> None:
    (tmp_path / "encodes.csv").mkdir()
    with pytest.raises(OutputError, match=r"encodes.csv: cannot write \(Is a directory\)"):
        encode_grid(views[:1], tmp_path, small_config(qps=(40,), resolutions=parse_resolutions("64x36"), vmaf=False))
    assert hidden_files(tmp_path) == []


def test_cli_dry_run_prints_the_plan_and_writes_nothing(grid: tuple, views: list[Path], tmp_path: Path) -> None:
    args = ["encode", *map(str, views), "--qp", "20,35,50", "--res", RESOLUTIONS, "--preset", "fast", "--dry-run"]
    fresh = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert fresh.exit_code == 0, fresh.output
    assert sum(line.startswith("encode ") for line in fresh.stdout.splitlines()) == 12
    assert "12 cells: 12 to encode, 0 already done" in fresh.stdout and not (tmp_path / "out").exists()
    done = CliRunner().invoke(main, [*args, "--out", str(grid[0]), "--json"])
    cells = json.loads(done.stdout)["cells"]
    assert len(cells) == 12 and {cell["action"] for cell in cells} == {"skip"}


def test_cli_json_summary_lists_the_table_and_rows(views: list[Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["encode", str(views[0]), "--out", str(tmp_path), "--qp", "40", "--res",
                                       "64x36", "--no-vmaf", "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert Path(summary["table"]).exists() and Path(summary["plot"]).exists()
    assert [row["qp"] for row in summary["rows"]] == [40] and summary["rows"][0]["vmaf"] is None


# --- defects found by review, each pinned ----------------------------------------------------

def test_the_table_describes_every_cell_under_out_across_runs(views: list[Path], tmp_path: Path) -> None:
    """One cluster job per recording writes into the same --out: the table holds them all."""
    other = tmp_path / "views" / "other" / views[0].name
    other.parent.mkdir(parents=True)
    shutil.copyfile(views[0], other)
    shutil.copyfile(views[0].with_suffix(".json"), other.with_suffix(".json"))
    config = small_config(qps=(35,), resolutions=parse_resolutions("64x36"), vmaf=False)
    encode_grid(views[:1], tmp_path / "out", config)
    result = encode_grid([other], tmp_path / "out", config)
    assert sorted({row["recording"] for row in result.rows}) == ["other", "room"]
    with open(result.table, newline="") as handle:
        assert sorted(row["recording"] for row in csv.DictReader(handle)) == ["other", "room"]
    assert len(json.loads(result.table_json.read_text())["rows"]) == 2


def test_a_cell_too_small_for_vmaf_is_measured_without_it(views: list[Path], tmp_path: Path) -> None:
    ffmpeg = find_ffmpeg()
    if not ffmpeg.has_vmaf:
        pytest.skip("this ffmpeg has no libvmaf")
    result = encode_grid(views[:1], tmp_path, small_config(qps=(30,), resolutions=parse_resolutions("28x16,64x36")))
    by_size = {row["height"]: row for row in result.rows}
    assert by_size[16]["vmaf"] is None and by_size[16]["psnr_y"] is not None and by_size[36]["vmaf"] is not None
    sidecar = json.loads((tmp_path / "room" / "yaw000_pitch+00" / "28x16" / "qp30.json").read_text())
    assert "cannot measure" in sidecar["metrics"]["vmaf_note"]
    assert encode_grid(views[:1], tmp_path, small_config(qps=(30,), resolutions=parse_resolutions("28x16"))).skipped


def test_another_tools_json_list_beside_an_input_is_not_a_sidecar(views: list[Path], tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    clip = tmp_path / "clip.mp4"
    shutil.copyfile(views[0], clip)
    clip.with_suffix(".json").write_text('[{"tool": "someone else\'s"}]')
    with caplog.at_level("WARNING"):
        plan = plan_encode([clip], tmp_path / "out", small_config())
    assert plan and "not a view video made by `vidvpr slice`" in caplog.text


@pytest.mark.parametrize(("sidecar", "why"), [
    (None, "no clip.json beside it"),
    ("[1]", "clip.json is not one (damaged, or another tool's)"),
    ("{", "clip.json is not one (damaged, or another tool's)"),
    ("other size", "clip.json records a video of 5 bytes, this one has "),
])
def test_the_warning_for_a_view_without_its_sidecar_says_what_is_wrong_with_it(
        views: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, sidecar: str | None, why: str) -> None:
    # it said "no matching vidvpr.slice/2 sidecar" for a missing, a damaged and a stale one alike
    clip = tmp_path / "clip.mp4"
    shutil.copyfile(views[0], clip)
    if sidecar == "other size":
        record = json.loads(views[0].with_suffix(".json").read_text())
        record["output"]["bytes"] = 5
        sidecar = json.dumps(record)
    if sidecar is not None:
        clip.with_suffix(".json").write_text(sidecar)
    with caplog.at_level("WARNING"):
        plan_encode([clip], tmp_path / "out", small_config())
    assert f"(no matching vidvpr.slice/2 sidecar: {why}" in caplog.text


def test_a_relative_ffmpeg_path_is_resolved_where_it_was_given(views: list[Path], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "ffmpeg").symlink_to(find_ffmpeg().path)
    monkeypatch.chdir(tmp_path)
    info = find_ffmpeg("./tools/ffmpeg")
    assert Path(info.path).is_absolute() and Path(info.path).parent == tools
    monkeypatch.chdir(views[0].parent)  # the grid runs ffmpeg from scratch folders
    result = encode_grid(views[:1], tmp_path / "out", small_config(qps=(40,), resolutions=parse_resolutions("64x36"),
                                                                     vmaf=False), ffmpeg=info)
    assert len(result.encoded) == 1


def test_ffmpeg_killed_by_a_signal_is_reported_as_a_crash() -> None:
    from vidvpr.media.ffmpeg import process_failure

    error = process_failure("measuring room/yaw000", -11, "")
    assert isinstance(error, ProcessFailed) and "ffmpeg crashed (SIGSEGV)" in str(error)

"""Every codec of the grid: quantiser ranges and names, the layout, each quantiser read back from its
stream, JPEG quality as Pillow and libjpeg count it, VMAF sampling, per-cell speed, missing encoders."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.test_encode import FRAMES, frame_times, views  # noqa: F401  (a module fixture)
from tests.test_ffmpeg import fake_ffmpeg
from vidvpr.cli import main
from vidvpr.core.errors import BadInput, ProcessFailed, ToolMissing
from vidvpr.encoding.codecs import CODECS
from vidvpr.encoding.grid import encode_grid
from vidvpr.encoding.jpeg import encode_jpeg
from vidvpr.encoding.plan import (
    EncodeConfig,
    cell_paths,
    parse_codecs,
    parse_preset_spec,
    parse_qp_options,
    parse_resolutions,
    plan_grid,
    quantiser_values,
    validate_config,
)
from vidvpr.encoding.quality import VmafSampling, vmaf_sampling
from vidvpr.encoding.speed import split_thread_cpu, speed
from vidvpr.encoding.table import TABLE_COLUMNS
from vidvpr.media.codecs import jpeg_quant_tables, q_to_qindex
from vidvpr.media.ffmpeg import find_ffmpeg
from vidvpr.media.headers import av1_vp9_frames, jpeg_packet_tables, jpeg_quant_tables_of, vvc_slices
from vidvpr.media.view_video import ViewVideo

ALL = ("libx264", "libx265", "libsvtav1", "libvpx-vp9", "libvvenc", "jpeg", "lossless")
FAST = (("libx264", "ultrafast"), ("libx265", "ultrafast"), ("libsvtav1", "12"), ("libvpx-vp9", "realtime-8"),
        ("libvvenc", "faster"), ("lossless", "ultrafast"))
QPS, QUALITIES = (30, 45), (10, 90)


def fast_config(codecs: tuple[str, ...] = ALL, **options) -> EncodeConfig:
    return EncodeConfig(**{"codecs": codecs, "qps": QPS, "codec_qps": (("jpeg", QUALITIES),) if "jpeg" in codecs else (),
                           "codec_presets": tuple(p for p in FAST if p[0] in codecs),
                           "resolutions": parse_resolutions("64x36"), **options})


def fake_source() -> ViewVideo:
    from fractions import Fraction

    return ViewVideo(Path("/data/rec/v.mp4"), "rec", "v", 960, 540, Fraction(30), 300, 1000, "sha256:x", None)


@pytest.fixture(scope="module")
def every_codec(views: list[Path], tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    """One view, 64x36, every codec at two quantiser values (fast presets): 13 cells."""
    out = tmp_path_factory.mktemp("codecs")
    return out, encode_grid(views[:1], out, fast_config())


def sidecar(out: Path, row: dict) -> dict:
    return json.loads((out / row["path"]).with_suffix(".json").read_text())


# --- the registry, options and the plan: pure --------------------------------------------


def test_quantiser_names_and_ranges_per_codec() -> None:
    assert {name: (c.quantiser.name, c.quantiser.low, c.quantiser.high) for name, c in CODECS.items()} == {
        "libx264": ("qp", 0, 51), "libx265": ("qp", 0, 51), "libsvtav1": ("qp", 1, 63),
        "libvpx-vp9": ("qp", 0, 63), "libvvenc": ("qp", 0, 63), "jpeg": ("quality", 1, 100), "lossless": ("qp", 0, 0)}


@pytest.mark.parametrize(("codec", "value", "message"), [
    ("libsvtav1", 0, r"qp must be in \[1, 63\] for libsvtav1, got 0"),
    ("libvpx-vp9", 64, r"qp must be in \[0, 63\] for libvpx-vp9, got 64"),
    ("libvvenc", 70, r"qp must be in \[0, 63\] for libvvenc, got 70"),
    ("jpeg", 0, r"quality must be in \[1, 100\] for jpeg, got 0"),
    ("jpeg", 101, r"quality must be in \[1, 100\] for jpeg, got 101"),
])
def test_a_quantiser_outside_its_codecs_range_is_one_line_bad_input(codec: str, value: int, message: str) -> None:
    with pytest.raises(BadInput, match=f"^{message}$"):
        validate_config(EncodeConfig(codecs=(codec,), qps=(30,), codec_qps=((codec, (value,)),)))


def test_the_grids_qp_applies_to_qp_codecs_and_jpeg_keeps_its_own_qualities() -> None:
    config = EncodeConfig(codecs=("libx264", "libsvtav1", "jpeg", "lossless"), qps=(20, 40),
                          codec_qps=(("libsvtav1", (30, 50)),))
    assert [quantiser_values(config, c) for c in config.codecs] == [(20, 40), (30, 50), (10, 30, 50, 70, 90), (0,)]


def test_options_parse_codec_lists_per_codec_values_and_presets() -> None:
    assert parse_codecs("libx264, jpeg,libx264") == ("libx264", "jpeg")
    assert parse_qp_options(["20..30", "jpeg=10,90"]) == ((20, 25, 30), (("jpeg", (10, 90)),))
    assert parse_preset_spec("fast,libsvtav1=10") == ("fast", (("libsvtav1", "10"),))
    with pytest.raises(BadInput, match="^--codec: unknown codec 'h264'. Use libx264, libx265"):
        parse_codecs("h264")
    with pytest.raises(BadInput, match="^--qp vp8=30: unknown codec 'vp8'"):
        parse_qp_options(["vp8=30"])


@pytest.mark.parametrize(("options", "message"), [
    ({"codecs": ("libx264", "libsvtav1"), "preset": "fast"},
     r"^Unknown preset 'fast' for libsvtav1. Use one of 0, 1, .*, 13 \(per codec: --preset libsvtav1=PRESET\).$"),
    ({"codecs": ("libvvenc",), "flat_qp": True}, "^--flat-qp: libvvenc cannot hold one quantiser on every frame"),
    ({"codecs": ("libx264",), "codec_qps": (("jpeg", (10,)),)}, r"^--qp jpeg=...: jpeg is not in --codec \(libx264\)$"),
    ({"codecs": ()}, "^--codec is empty"),
    ({"vmaf_every": 0}, r"^--vmaf-every must be at least 1 \(every frame\), got 0$"),
])
def test_inconsistent_codec_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        validate_config(EncodeConfig(**options))


def test_x264_keeps_its_layout_and_other_codecs_get_a_folder() -> None:
    out = Path("/enc")
    assert cell_paths(out, "r", "v", "360p", 30)[0] == Path("/enc/r/v/360p/qp30.mp4")
    assert cell_paths(out, "r", "v", "360p", 30, "libsvtav1")[0] == Path("/enc/r/v/360p/libsvtav1/qp30.mp4")
    assert cell_paths(out, "r", "v", "360p", 10, "jpeg") == (Path("/enc/r/v/360p/jpeg/quality10.mp4"),
                                                             Path("/enc/r/v/360p/jpeg/quality10.json"))
    assert cell_paths(out, "r", "v", "360p", 0, "lossless")[0] == Path("/enc/r/v/360p/lossless/qp00.mp4")


def test_a_mixed_grid_plans_codec_by_codec_with_each_codecs_preset() -> None:
    config = EncodeConfig(codecs=("libx264", "jpeg"), qps=(30,), codec_qps=(("jpeg", (10,)),),
                          resolutions=parse_resolutions("360p"))
    cells = plan_grid([fake_source()], config, Path("/o"))
    assert [(c.codec, c.qp, c.preset, c.name) for c in cells] == [
        ("libx264", 30, "medium", "rec/v/360p/qp30"), ("jpeg", 10, None, "rec/v/360p/jpeg/quality10")]
    assert len({c.params_hash for c in cells}) == 2


def test_av1_and_vp9_quantisers_map_to_the_frame_headers_qindex() -> None:
    assert [q_to_qindex(q) for q in (0, 1, 30, 60, 61, 62, 63)] == [0, 4, 120, 240, 244, 249, 255]
    with pytest.raises(ValueError):
        q_to_qindex(64)


def test_libjpeg_tables_scale_the_annex_k_tables_by_quality() -> None:
    luma50, chroma50 = jpeg_quant_tables(50)
    assert luma50[:8] == (16, 11, 10, 16, 24, 40, 51, 61) and chroma50[0] == 17
    assert jpeg_quant_tables(100) == ((1,) * 64, (1,) * 64) and max(jpeg_quant_tables(1)[0]) == 255
    assert jpeg_quant_tables(10)[0][:4] == (80, 55, 50, 80)  # scale 500 %


@pytest.mark.parametrize("quality", [1, 10, 50, 75, 95, 100])
def test_jpeg_quality_means_what_pillow_means(quality: int) -> None:
    rgb = np.random.default_rng(quality).integers(0, 256, (36, 64, 3), dtype=np.uint8)
    ours = jpeg_quant_tables_of(encode_jpeg(rgb, quality))
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    pillow = Image.open(io.BytesIO(buffer.getvalue()))
    assert (ours[0], ours[1]) == jpeg_quant_tables(quality) == (tuple(pillow.quantization[0]),
                                                                 tuple(pillow.quantization[1]))
    assert pillow.layer == Image.open(io.BytesIO(encode_jpeg(rgb, quality))).layer  # 4:2:0 both


def test_frame_header_parsers() -> None:
    av1 = [("show_existing_frame", 0), ("frame_type", 0), ("base_q_idx", 30), ("segmentation_enabled", 0),
           ("delta_q_present", 0), ("show_existing_frame", 1), ("show_existing_frame", 0), ("frame_type", 1),
           ("base_q_idx", 120), ("segmentation_enabled", 1)]
    assert [(f.q, f.intra, f.block_adaptive) for f in av1_vp9_frames(av1)] == [(30, True, False), (120, False, True)]
    vvc = [("nal_unit_type", 16), ("pps_init_qp_minus26", 2), ("pps_cu_qp_delta_enabled_flag", 1),
           ("nal_unit_type", 7), ("sh_qp_delta", -1), ("nal_unit_type", 2), ("sh_qp_delta", 5)]
    assert [(s.q, s.intra, s.block_adaptive) for s in vvc_slices(vvc)] == [(27, True, True), (33, False, True)]
    with pytest.raises(ValueError, match="not a JPEG"):
        jpeg_quant_tables_of(b"\x00\x00")


def test_vmaf_sampling_feeds_each_scored_frame_with_its_neighbours() -> None:
    sampling = VmafSampling(15, 40)
    assert sampling.scored == [0, 15, 30] and sampling.n_subsample == 3
    fed = sampling.fed_frames()
    assert fed == [0, 1, 14, 15, 16, 29, 30, 31] and [fed[i] for i in range(0, len(fed), 3)] == [0, 15, 30]
    assert VmafSampling(1, 5).select_expr is None and VmafSampling(1, 5).scored == [0, 1, 2, 3, 4]
    assert VmafSampling(2, 5).fed_frames() == [0, 1, 2, 3, 4] and VmafSampling(2, 5).scored == [0, 2, 4]
    assert [vmaf_sampling(31, n).every for n in (16, 99, 200, 360, 10_000)] == [1, 9, 20, 31, 31]


def test_cpu_time_splits_into_cells_shared_encode_work_and_measuring() -> None:
    threads = {"enc0:0:libx264": 2.0, "enc1:0:libx264": 1.0, "enc2:0:wrapped_": 0.1, "fc0": 0.6, "dmx0:mp4": 0.2,
               "svt-md0": 0.2, "dec0": 0.5, "dec1": 0.4, "fc1": 0.3, "av:h264:df0": 0.1, "ffmpeg": 0.0}
    split = split_thread_cpu(threads, 2)
    assert split.per_encoder == [2.0, 1.0] and split.shared == pytest.approx(1.0) and split.measure == pytest.approx(1.4)
    assert split.cell_cpu_s(1) == pytest.approx(1.5) and split_thread_cpu({}, 2) is None
    assert split_thread_cpu(threads, 2, process_cpu_s=6.0) is not None
    assert split_thread_cpu(threads, 2, process_cpu_s=20.0) is None  # most CPU unsampled: no speed, not a wrong one
    assert speed(300, 2.0, 30.0) == (150.0, 5.0) and speed(300, None, 30.0) == (None, None)


# --- one grid with every codec -----------------------------------------------------------


def test_every_codec_writes_frame_for_frame_cells_in_its_layout(every_codec, views: list[Path]) -> None:  # noqa: F811
    out, result = every_codec
    assert len(result.rows) == 13 and {row["codec"] for row in result.rows} == set(ALL)
    reference = frame_times(views[0])
    for row in result.rows:
        assert frame_times(out / row["path"]) == reference and row["frames"] == FRAMES
        folder = "" if row["codec"] == "libx264" else f"{row['codec']}/"
        assert row["path"] == f"room/yaw000_pitch+00/64x36/{folder}{row['quantiser']}{row['qp']:02d}.mp4"
    assert set(TABLE_COLUMNS) <= set(result.rows[0])


def test_every_cells_quantiser_is_read_back_from_its_stream(every_codec) -> None:
    out, result = every_codec
    for row in result.rows:
        check = sidecar(out, row)["quantiser_check"]
        assert row["quantiser_verified"] is True and check["verified"] is True, (row["path"], check)
        if row["codec"] in ("libsvtav1", "libvpx-vp9"):
            assert str(q_to_qindex(row["qp"])) in check["found"]["base_q_idx"]
        if row["codec"] == "libvpx-vp9":
            assert list(check["found"]["base_q_idx"]) == [str(q_to_qindex(row["qp"]))]  # min-q = max-q: flat
        if row["codec"] == "libvvenc":
            assert all(row["qp"] - 8 <= int(qp) <= row["qp"] + 12 for qp in check["found"]["slice_qp"])
            assert max(map(int, check["found"]["intra_slice_qp"])) <= row["qp"]


def test_jpeg_cells_carry_pillows_tables_for_their_quality_in_every_frame(every_codec) -> None:
    out, result = every_codec
    for row in (r for r in result.rows if r["codec"] == "jpeg"):
        tables = jpeg_packet_tables(out / row["path"])
        assert len(tables) == FRAMES
        assert all((t[0], t[1]) == jpeg_quant_tables(row["qp"]) for t in tables)
        with av.open(str(out / row["path"])) as container:
            assert container.streams.video[0].codec_context.name == "mjpeg"


def test_rate_falls_and_quality_rises_with_each_codecs_quantiser(every_codec) -> None:
    _, result = every_codec
    for codec in ("libx264", "libx265", "libsvtav1", "libvpx-vp9", "libvvenc", "jpeg"):
        low, high = sorted((r for r in result.rows if r["codec"] == codec), key=lambda r: r["qp"])
        better, worse = (high, low) if codec == "jpeg" else (low, high)
        assert better["kbps"] > worse["kbps"] and better["psnr_y"] > worse["psnr_y"], codec


def test_the_lossless_cell_is_the_scaled_view_exactly(every_codec) -> None:
    out, result = every_codec
    row = next(r for r in result.rows if r["codec"] == "lossless")
    meta = sidecar(out, row)
    assert row["psnr_y"] is None and row["ssim_y"] == 1.0 and meta["quantiser_check"]["found"]["qp"] == 0
    assert set(meta["metrics"]["per_frame"]["psnr_y"]) == {None}


def test_speed_and_measuring_are_recorded_per_cell(every_codec) -> None:
    out, result = every_codec
    for row in result.rows:
        meta = sidecar(out, row)
        cpu_s = meta["encode"]["cpu_s"]  # None when the run was too short to sample (see speed.MIN_COVERAGE)
        assert cpu_s is None or (cpu_s >= 0 and (meta["encode"]["fps"] is None) == (cpu_s == 0))
        assert meta["measure"]["mode"].startswith("a separate" if row["codec"] == "jpeg" else "the encode process")
        if find_ffmpeg().has_vmaf:
            # 16 frames: sampling every 31st would score one, so every frame is scored (at least 10)
            assert meta["metrics"]["vmaf_sampling"]["every"] == 1 and row["vmaf_every"] == 1
            assert sum(v is not None for v in meta["metrics"]["per_frame"]["vmaf"]) == FRAMES


def test_a_rerun_of_the_mixed_grid_skips_every_cell(every_codec, views: list[Path]) -> None:  # noqa: F811
    out, _ = every_codec
    result = encode_grid(views[:1], out, fast_config())
    assert result.encoded == [] and len(result.skipped) == 13


# --- bad input ------------------------------------------------------------------------------


def test_a_codec_missing_from_ffmpeg_exits_3_naming_doctor(views: list[Path], tmp_path: Path) -> None:  # noqa: F811
    fake = fake_ffmpeg(tmp_path / "bin", "libx264")
    result = CliRunner().invoke(main, ["encode", str(views[0]), "--out", str(tmp_path / "out"), "--codec",
                                       "libx264,libsvtav1", "--ffmpeg", str(fake)])
    assert result.exit_code == 3 and not (tmp_path / "out").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no libsvtav1 encoder (--codec libsvtav1)" in lines[0] and "vidvpr doctor" in lines[0]
    with pytest.raises(ToolMissing, match="libvvenc"):
        encode_grid(views[:1], tmp_path / "lib", fast_config(("libvvenc",)), ffmpeg=find_ffmpeg(str(fake)))


@pytest.mark.parametrize(("args", "message"), [
    (["--codec", "libsvtav1", "--qp", "0"], r"qp must be in \[1, 63\] for libsvtav1, got 0"),
    (["--codec", "jpeg", "--qp", "jpeg=0..100:50"], r"quality must be in \[1, 100\] for jpeg, got 0"),
    (["--codec", "libx264", "--preset", "libsvtav1=8"], "libsvtav1 is not in --codec"),
    (["--codec", "libvvenc", "--flat-qp"], "libvvenc cannot hold one quantiser"),
])
def test_cli_codec_errors_are_one_line_exit_2(views: list[Path], tmp_path: Path, args: list[str],  # noqa: F811
                                              message: str) -> None:
    import re

    result = CliRunner().invoke(main, ["encode", str(views[0]), "--out", str(tmp_path / "out"), *args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and re.search(message, lines[0]), result.stderr
    assert not (tmp_path / "out").exists()


def test_a_jpeg_cell_with_the_wrong_tables_fails_and_leaves_nothing(views: list[Path], tmp_path: Path,  # noqa: F811
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from vidvpr.encoding import jpeg

    monkeypatch.setattr(jpeg, "encode_jpeg", lambda rgb, quality: encode_jpeg(rgb, 50))
    with pytest.raises(ProcessFailed, match="do not carry libjpeg's quality-10 tables"):
        encode_grid(views[:1], tmp_path, fast_config(("jpeg",), codec_qps=(("jpeg", (10,)),), vmaf=False))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_flat_qp_pins_every_svtav1_frame_to_one_qindex(views: list[Path], tmp_path: Path) -> None:  # noqa: F811
    result = encode_grid(views[:1], tmp_path, fast_config(("libsvtav1",), qps=(40,), flat_qp=True, vmaf=False))
    check = sidecar(tmp_path, result.rows[0])["quantiser_check"]
    assert check["verified"] and list(check["found"]["base_q_idx"]) == [str(q_to_qindex(40))]
    assert result.rows[0]["flat_qp"] is True and check["cannot_show"] is None

"""Specification of the pure half of `vidvpr encode` (vidvpr.encoding.plan): option parsing and
checks, the grid plan, the ffmpeg argument lists and the x264/x265 QP rules. No video is touched."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import params_hash
from vidvpr.core.sidecars import CellSidecar
from vidvpr.encoding.plan import (
    CODECS,
    ENCODE_OUTPUT_VERSION,
    EncodeConfig,
    EncodeTarget,
    Resolution,
    cell_params,
    cell_paths,
    default_gop,
    describe_config,
    encode_command,
    frame_type_qps,
    parse_codecs,
    parse_preset_spec,
    parse_qp_options,
    parse_qp_spec,
    parse_rate_control,
    parse_resolutions,
    plan_grid,
    source_resolutions,
    validate_config,
)
from vidvpr.media.view_video import ViewVideo


def view(name: str = "yaw000_pitch+00", width: int = 960, height: int = 540, fps: Fraction = Fraction(30),
         recording: str = "rec") -> ViewVideo:
    return ViewVideo(Path(f"/data/{recording}/{name}.mp4"), recording, name, width, height, fps, 300, 1000,
                     "sha256:x", None)


def config(**options) -> EncodeConfig:
    if isinstance(options.get("resolutions"), str):
        options["resolutions"] = parse_resolutions(options["resolutions"])
    if "codec" in options:
        options["codecs"] = (options.pop("codec"),)
    return EncodeConfig(**options)


# ---------------------------------------------------------------- --qp


@pytest.mark.parametrize(("spec", "qps"), [
    ("20..50", (20, 25, 30, 35, 40, 45, 50)),
    ("30..30", (30,)),
    ("20..24", (20,)),
    ("20..30:2", (20, 22, 24, 26, 28, 30)),
    ("20..23:1", (20, 21, 22, 23)),
    (" 20 .. 30 : 10 ", (20, 30)),
    ("-5..5", (-5, 0, 5)),
    ("45, 20,30,20", (20, 30, 45)),
    ("7", (7,)),
])
def test_qp_spec(spec: str, qps: tuple[int, ...]) -> None:
    assert parse_qp_spec(spec) == qps


@pytest.mark.parametrize(("spec", "message"), [
    ("20..50:0", "--qp '20..50:0': step must be positive, got 0"),
    ("20..50:-5", "--qp '20..50:-5': step must be positive, got -5"),
    ("50..20", "--qp '50..20' is an empty range (50 > 20); write it low..high"),
    ("31..30", "--qp '31..30' is an empty range (31 > 30); write it low..high"),
    ("20..x", "--qp '20..x' is not A..B, A..B:STEP or a list like 20,30,45"),
    ("20..50:", "--qp '20..50:' is not A..B, A..B:STEP or a list like 20,30,45"),
    ("20,thirty", "--qp '20,thirty' is not A..B, A..B:STEP or a list like 20,30,45"),
    ("20 30", "--qp '20 30' is not A..B, A..B:STEP or a list like 20,30,45"),
    ("", "--qp is empty; give e.g. 20..50 or 20,30,45"),
    (" , ", "--qp is empty; give e.g. 20..50 or 20,30,45"),
    # an empty item is a value left out, not a choice: '20,,30' was read as 20,30
    ("20,,30", "--qp has an empty item in '20,,30' (two commas in a row, or one at an end)"),
    ("20,", "--qp has an empty item in '20,' (two commas in a row, or one at an end)"),
    (",20", "--qp has an empty item in ',20' (two commas in a row, or one at an end)"),
])
def test_bad_qp_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_qp_spec(spec)
    assert str(info.value) == message


# ---------------------------------------------------------------- --res


def test_resolutions_keep_the_given_order_without_duplicates() -> None:
    assert parse_resolutions("720P, 640x360,360p,720p,640X360") == (
        Resolution("720p", 720), Resolution("640x360", 360, 640), Resolution("360p", 360))


def test_several_explicit_sizes() -> None:
    assert parse_resolutions("640x360,320x180,640x360") == (Resolution("640x360", 360, 640),
                                                             Resolution("320x180", 180, 320))


@pytest.mark.parametrize("spec", ["16x16", "1080p", "480p"])
def test_accepted_resolutions(spec: str) -> None:
    assert [r.label for r in parse_resolutions(spec)] == [spec]


@pytest.mark.parametrize("spec", ["640x8", "8x640", "14x16", "16x14", "641x360", "640x361"])
def test_sizes_must_be_even_and_at_least_16(spec: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_resolutions(f"360p,{spec}")
    assert str(info.value) == f"--res {spec}: width and height must be even and at least 16 (yuv420p)"


def test_an_unknown_resolution_lists_the_named_ones() -> None:
    with pytest.raises(BadInput) as info:
        parse_resolutions("720p,hd")
    assert str(info.value) == "Unknown resolution 'hd'. Use 360p, 480p, 720p, 1080p or WxH."


@pytest.mark.parametrize("spec", ["720p,,360p", "720p,", ",720p"])
def test_an_empty_item_in_a_resolution_list_is_refused_not_skipped(spec: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_resolutions(spec)
    assert str(info.value) == f"--res has an empty item in {spec!r} (two commas in a row, or one at an end)"


@pytest.mark.parametrize("spec", ["", ",", " , "])
def test_an_empty_resolution_list_is_refused(spec: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_resolutions(spec)
    assert str(info.value) == "--res is empty; give e.g. 720p,360p or 640x360 (360p, 480p, 720p, 1080p or WxH)"


@pytest.mark.parametrize(("label", "view_size", "size"), [
    ("480p", (1920, 1080), (854, 480)),   # 853.3 → 854
    ("360p", (1000, 1000), (360, 360)),   # 360 exactly
    ("360p", (1010, 1000), (364, 360)),   # 363.6 → 364
    ("360p", (1006, 1000), (362, 360)),   # 362.2 → 362
    ("480p", (853, 480), (854, 480)),     # an odd width rounds to the even one above
])
def test_a_named_resolution_keeps_the_views_aspect_rounded_to_an_even_width(
        label: str, view_size: tuple[int, int], size: tuple[int, int]) -> None:
    assert parse_resolutions(label)[0].size_for(*view_size) == size


def test_a_very_tall_view_still_gets_a_width_of_2() -> None:
    assert Resolution("tiny", 2).size_for(1, 100) == (2, 2)


def test_an_explicit_size_ignores_the_views_aspect() -> None:
    assert parse_resolutions("640x480")[0].size_for(1920, 1080) == (640, 480)


# ---------------------------------------------------------------- option checks


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_both_ends_of_the_qp_range_are_accepted(codec: str) -> None:
    validate_config(config(codec=codec, qps=(0, 51)))


@pytest.mark.parametrize(("codec", "qp"), [("libx264", 52), ("libx264", -1), ("libx265", 52), ("libx265", -1)])
def test_a_qp_outside_0_to_51_is_refused(codec: str, qp: int) -> None:
    with pytest.raises(BadInput) as info:
        validate_config(config(codec=codec, qps=(30, qp)))
    assert str(info.value) == f"qp must be in [0, 51] for {codec}, got {qp}"


@pytest.mark.parametrize(("options", "message"), [
    ({"codec": "vp9"}, "Unknown codec 'vp9'. Use libx264, libx265, libsvtav1, libvpx-vp9, libvvenc, jpeg, lossless."),
    ({"preset": "quick"}, ("Unknown preset 'quick' for libx264. Use one of ultrafast, superfast, veryfast, faster, fast, medium, "
                           "slow, slower, veryslow, placebo.")),
    ({"qps": ()}, "--qp is empty; give e.g. 20..50 or 20,30,45"),
    ({"gop": 0}, "--gop must be at least 1 frame, got 0"),
    ({"jobs": 0}, "--jobs must be at least 1, got 0"),
    ({"resolutions": ()}, "--res is empty"),
])
def test_nonsense_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(BadInput) as info:
        validate_config(config(**options))
    assert str(info.value) == message


def test_the_smallest_gop_and_jobs_are_1() -> None:
    validate_config(config(gop=1, jobs=1, preset="veryslow", codec="libx265"))


# ---------------------------------------------------------------- cells


def test_cell_paths_are_out_recording_view_resolution_qp() -> None:
    assert cell_paths(Path("/out"), "walk", "yaw090_pitch+00", "640x360", 5) == (
        Path("/out/walk/yaw090_pitch+00/640x360/qp05.mp4"), Path("/out/walk/yaw090_pitch+00/640x360/qp05.json"))


@pytest.mark.parametrize(("fps", "gop"), [
    (Fraction(30), 60), (Fraction(30000, 1001), 60), (Fraction(49, 4), 25), (Fraction(1, 4), 1), (Fraction(1, 10), 1),
    (Fraction(0), 60),  # no frame rate in the container: 30 fps assumed
])
def test_the_default_gop_is_two_seconds_of_frames_rounded(fps: Fraction, gop: int) -> None:
    assert default_gop(fps) == gop


def test_cell_params_are_everything_that_makes_the_cell() -> None:
    params = cell_params(config(codec="libx265", preset="slow", flat_qp=True), 640, 360, 35, 48)
    assert params == {
        "schema": CellSidecar.SCHEMA, "version": ENCODE_OUTPUT_VERSION, "codec": "libx265", "preset": "slow",
        "quantiser": "qp", "qp": 35, "flat_qp": True, "gop": 48, "width": 640, "height": 360,
        "filter": "scale=640:360:flags=bicubic,format=yuv420p", "pix_fmt": "yuv420p", "fps_mode": "passthrough",
        "rate_control": "constant QP, 0 .. 51"}


def test_default_resolutions_are_those_not_above_the_view() -> None:
    assert source_resolutions(view(width=1280, height=720), config()) == [
        ("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)]


def test_a_default_resolution_too_wide_for_the_view_is_left_out() -> None:
    # 853×480: 480p is 854 wide (even), one pixel wider than the view
    assert source_resolutions(view(width=853, height=480), config()) == [("360p", 640, 360)]


def test_a_view_below_every_default_resolution_asks_for_res() -> None:
    with pytest.raises(BadInput) as info:
        source_resolutions(view(width=630, height=354), config())
    assert str(info.value) == ("/data/rec/yaw000_pitch+00.mp4: 630x354 is smaller than every default resolution "
                               "(1080p,720p,480p,360p); pass --res WxH")


def test_the_views_own_size_is_not_an_upscale() -> None:
    assert source_resolutions(view(), config(resolutions="960x540,480p")) == [("960x540", 960, 540),
                                                                             ("480p", 854, 480)]


@pytest.mark.parametrize("res", ["962x540", "960x542", "720p"])
def test_an_upscale_in_either_dimension_is_refused(res: str) -> None:
    with pytest.raises(BadInput, match=rf"^--res {res} \(\d+x\d+\) is larger than /data/rec/yaw000_pitch\+00\.mp4 "
                                       r"\(960x540\); pass --allow-upscale to upscale$"):
        source_resolutions(view(), config(resolutions=res))


def test_an_upscale_is_planned_when_allowed() -> None:
    assert source_resolutions(view(), config(resolutions="962x540,720p", allow_upscale=True)) == [
        ("962x540", 962, 540), ("720p", 1280, 720)]


def test_the_grid_is_view_by_view_resolution_by_resolution_qp_by_qp() -> None:
    sources = [view("b"), view("a", fps=Fraction(25))]
    cells = plan_grid(sources, config(qps=(20, 35), resolutions="480p,320x180"), Path("/out"))
    assert [(c.source.view, c.resolution, c.width, c.height, c.qp, c.gop) for c in cells] == [
        ("b", "480p", 854, 480, 20, 60), ("b", "480p", 854, 480, 35, 60),
        ("b", "320x180", 320, 180, 20, 60), ("b", "320x180", 320, 180, 35, 60),
        ("a", "480p", 854, 480, 20, 50), ("a", "480p", 854, 480, 35, 50),
        ("a", "320x180", 320, 180, 20, 50), ("a", "320x180", 320, 180, 35, 50)]
    assert (cells[5].video, cells[5].sidecar) == (Path("/out/rec/a/480p/qp35.mp4"), Path("/out/rec/a/480p/qp35.json"))
    assert cells[5].name == "rec/a/480p/qp35"


def test_a_cell_carries_its_params_and_their_hash() -> None:
    cell = plan_grid([view()], config(qps=(7,), resolutions="320x180", gop=12), Path("/out"))[0]
    assert cell.params == cell_params(config(qps=(7,)), 320, 180, 7, 12)
    assert cell.params_hash == params_hash(cell.params) and cell.name == "rec/yaw000_pitch+00/320x180/qp07"


def test_the_gop_option_wins_over_the_frame_rate() -> None:
    cells = plan_grid([view(fps=Fraction(25))], config(gop=12, qps=(20,), resolutions="360p"), Path("/out"))
    assert [c.gop for c in cells] == [12]


def test_the_plan_checks_the_options_first() -> None:
    with pytest.raises(BadInput, match="Unknown codec"):
        plan_grid([view()], config(codec="vp9"), Path("/out"))


def test_two_inputs_with_the_same_recording_and_view_collide() -> None:
    sources = [view("b"), view("a"), view("b", recording="other"), view("b"), view("a")]
    with pytest.raises(BadInput) as info:
        plan_grid(sources, config(qps=(30,)), Path("/out"))
    assert str(info.value) == "two inputs are both 'rec/a' (recording/view); their cells would collide"


def test_the_same_view_name_in_two_recordings_is_two_views() -> None:
    cells = plan_grid([view("a"), view("a", recording="other")], config(qps=(30,), resolutions="360p"), Path("/o"))
    assert [c.video for c in cells] == [Path("/o/rec/a/360p/qp30.mp4"), Path("/o/other/a/360p/qp30.mp4")]


# ---------------------------------------------------------------- ffmpeg argv


def test_x264_arguments() -> None:
    assert CODECS["libx264"].args(30, "slow", 48, False, 3) == [
        "-c:v", "libx264", "-preset", "slow", "-qp", "30", "-g", "48", "-keyint_min", "48", "-sc_threshold", "0",
        "-threads", "3"]
    assert CODECS["libx264"].args(30, "slow", 48, True, 3)[-2:] == ["-x264-params", "ipratio=1.0:pbratio=1.0"]


def test_x265_arguments() -> None:
    assert CODECS["libx265"].args(30, "slow", 48, False, 3) == [
        "-c:v", "libx265", "-preset", "slow", "-x265-params",
        "qp=30:keyint=48:min-keyint=48:scenecut=0:open-gop=0:pools=3:log-level=error"]
    assert CODECS["libx265"].args(30, "slow", 48, True, 3)[-1] == (
        "qp=30:keyint=48:min-keyint=48:scenecut=0:open-gop=0:pools=3:log-level=error:ipratio=1.0:pbratio=1.0")


def test_each_codec_has_its_quantiser_range() -> None:
    assert [(c.name, c.quantiser.name, c.qp_min, c.qp_max) for c in CODECS.values()] == [
        ("libx264", "qp", 0, 51), ("libx265", "qp", 0, 51), ("libsvtav1", "qp", 1, 63), ("libvpx-vp9", "qp", 0, 63),
        ("libvvenc", "qp", 0, 63), ("jpeg", "quality", 1, 100), ("lossless", "qp", 0, 0)]


def test_encode_command_for_one_target() -> None:
    argv = encode_command("/usr/bin/ffmpeg", Path("/v.mp4"), [EncodeTarget(64, 36, 30, Path("/o/qp30.mp4"))],
                          config(), gop=10, threads=2)
    assert argv == [
        "/usr/bin/ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y",
        "-threads", "1", "-i", "/v.mp4", "-filter_complex", "[0:v]split=1[s0];[s0]scale=64:36:flags=bicubic,format=yuv420p,split=1[e0]",
        "-map", "[e0]", "-c:v", "libx264", "-preset", "medium", "-qp", "30", "-g", "10", "-keyint_min", "10",
        "-sc_threshold", "0", "-threads", "2", "-fps_mode", "passthrough", "-enc_time_base", "filter",
        "-map_metadata", "-1", "-map_chapters", "-1", "-f", "mp4", "/o/qp30.mp4"]


def test_encode_command_scales_once_per_size_in_order_of_first_use() -> None:
    targets = [EncodeTarget(64, 36, 20, Path("/o/a.mp4")), EncodeTarget(32, 18, 20, Path("/o/b.mp4")),
               EncodeTarget(64, 36, 40, Path("/o/c.mp4"))]
    argv = encode_command("ffmpeg", Path("/v.mp4"), targets, config(codec="libx265", flat_qp=True), gop=8, threads=1)
    assert argv[argv.index("-filter_complex") + 1] == (
        "[0:v]split=2[s0][s1];"
        "[s0]scale=64:36:flags=bicubic,format=yuv420p,split=2[e0][e2];"
        "[s1]scale=32:18:flags=bicubic,format=yuv420p,split=1[e1]")
    maps = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-map"]
    params = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-x265-params"]
    assert maps == ["[e0]", "[e1]", "[e2]"] and [p.split(":")[0] for p in params] == ["qp=20", "qp=20", "qp=40"]
    assert [a for a in argv if a.endswith(".mp4")] == ["/v.mp4", "/o/a.mp4", "/o/b.mp4", "/o/c.mp4"]
    assert all(p.endswith(":ipratio=1.0:pbratio=1.0") for p in params)


def test_encode_command_makes_paths_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = encode_command("ffmpeg", Path("in.mp4"), [EncodeTarget(64, 36, 30, Path("out/qp30.mp4"))], config(),
                          gop=10, threads=1)
    here = tmp_path.resolve()
    assert argv[argv.index("-i") + 1] == str(here / "in.mp4") and argv[-1] == str(here / "out" / "qp30.mp4")


def test_encode_command_needs_a_target() -> None:
    with pytest.raises(ValueError, match="^encode_command needs at least one target$"):
        encode_command("ffmpeg", Path("/v.mp4"), [], config(), gop=10, threads=1)


# ---------------------------------------------------------------- rate control


def test_rate_control_from_x264_settings() -> None:
    settings = "x264 - core 165 - options: chroma_qp_offset=-2 rc=cqp mbtree=0 qp=30 ip_ratio=1.40 pb_ratio=1.30 aq=0"
    assert parse_rate_control(settings) == {"qp": 30.0, "ipratio": 1.4, "pbratio": 1.3}


def test_rate_control_from_x265_settings() -> None:
    settings = "x265 (build 217) - options: cbqpoffs=0 rc=cqp qp=35 ipratio=1.00 pbratio=1.10 qpmax=69 qpmin=0"
    assert parse_rate_control(settings) == {"qp": 35.0, "ipratio": 1.0, "pbratio": 1.1}


def test_rate_control_skips_longer_names_ending_in_qp() -> None:
    assert parse_rate_control("aq-qp=7 crqp=9 qp=22") == {"qp": 22.0}


@pytest.mark.parametrize("settings", [None, "", "rc=crf crf=23.0"])
def test_rate_control_absent(settings: str | None) -> None:
    assert parse_rate_control(settings) == {}


def test_frame_type_qps_with_x264s_default_ratios() -> None:
    # I: 30 − 6·log2 1.4 + 0.5 = 27.6 → 27; B: 30 + 6·log2 1.3 + 0.5 = 32.8 → 32; reference B: (32 + 30) // 2
    assert frame_type_qps(30, 1.4, 1.3) == {"I": 27, "P": 30, "B": 32, "B_ref": 31}


def test_frame_type_qps_round_half_a_step() -> None:
    # ipratio 2: I = 30 − 6 + 0.5 = 24.5 → 24; pbratio 1.41: B = 30 + 2.97 + 0.5 = 33.47 → 33, reference (63) // 2
    qps = frame_type_qps(30, 2.0, 1.41)
    assert qps == {"I": 24, "P": 30, "B": 33, "B_ref": 31} and all(type(v) is int for v in qps.values())


def test_frame_type_qps_are_clipped_to_the_codecs_range() -> None:
    assert frame_type_qps(1, 1.4, 1.3)["I"] == 0  # 1 − 2.9 + 0.5 = −1.4
    assert frame_type_qps(51, 1.4, 1.3)["B"] == 51  # 53.8
    assert frame_type_qps(40, 1.4, 1.3, qp_max=41) == {"I": 37, "P": 40, "B": 41, "B_ref": 40}


def test_flat_ratios_give_every_frame_type_the_same_qp() -> None:
    assert frame_type_qps(30, 1.0, 1.0) == {"I": 30, "P": 30, "B": 30, "B_ref": 30}


# ---------------------------------------------------------------- describing the config


def test_the_default_config_described() -> None:
    assert describe_config(EncodeConfig()) == {
        "qps": (20, 25, 30, 35, 40, 45, 50), "resolutions": None, "codecs": ("libx264",), "codec_qps": {},
        "preset": None, "codec_presets": {}, "gop": None, "flat_qp": False, "jobs": 1, "vmaf": True,
        "vmaf_every": 31, "allow_upscale": False, "force": False}


def test_resolutions_are_described_by_their_labels() -> None:
    assert describe_config(config(resolutions="720p,640x360"))["resolutions"] == ["720p", "640x360"]


# ---------------------------------------------------------------- --codec, --preset


@pytest.mark.parametrize("spec", ["libx264,,libx265", "libx264,", ",libx264"])
def test_an_empty_item_in_a_codec_list_is_refused_not_skipped(spec: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_codecs(spec)
    assert str(info.value) == f"--codec has an empty item in {spec!r} (two commas in a row, or one at an end)"


def test_a_per_codec_preset_with_nothing_after_the_equals_sign_is_refused() -> None:
    # it was taken as no preset at all: the codec's default ran without a word
    with pytest.raises(BadInput) as info:
        parse_preset_spec("fast,libx264=")
    assert str(info.value) == "--preset libx264=: no preset after '='; give e.g. libx264=PRESET"


def test_an_empty_item_in_a_preset_list_is_refused() -> None:
    with pytest.raises(BadInput, match=r"^--preset has an empty item in 'fast,,libsvtav1=8'"):
        parse_preset_spec("fast,,libsvtav1=8")


@pytest.mark.parametrize(("values", "message"), [
    # the second replaced the first without a word: '--qp 20 --qp 30' encoded QP 30 only
    (["20", "30"], "--qp 20 and --qp 30: give the grid's values once, as one list (e.g. --qp 20,30)"),
    (["jpeg=10", "jpeg=90"], "--qp jpeg=10 and --qp jpeg=90: give jpeg's values once, as one list "
                             "(e.g. --qp jpeg=20,30)"),
])
def test_the_same_quantiser_values_given_twice_are_refused(values: list[str], message: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_qp_options(values)
    assert str(info.value) == message


def test_the_grids_values_and_each_codecs_own_may_be_given_side_by_side() -> None:
    assert parse_qp_options(["20..30", "jpeg=10,90", "libsvtav1=40"]) == (
        (20, 25, 30), (("jpeg", (10, 90)), ("libsvtav1", (40,))))


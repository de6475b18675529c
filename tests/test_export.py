"""Specification of `vidvpr export`: VPR-datasets-downloader names and layout, from views or encode cells."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tests.test_manifest import MUNICH, make_dataset, sliced_views  # noqa: F401  (a session fixture)
from vidvpr.cli import main
from vidvpr.core.errors import BadInput, OutputError
from vidvpr.dataset.export import ExportConfig, export_vpr
from vidvpr.dataset.vpr_names import VprName, format_vpr_filename, parse_vpr_filename, row_filename
from vidvpr.encoding.grid import encode_grid
from vidvpr.encoding.plan import EncodeConfig, cell_paths, parse_resolutions
from vidvpr.dataset.definition import load_definition
from vidvpr.dataset.manifest import build_manifest, load_manifest


CELL_RES, CELL_QP = "64x36", 0  # the views' own size at QP 0: lossless, so cell frames equal the views'


def cell_path(enc: Path, recording: str, view: str, res: str = CELL_RES, qp: int = CELL_QP) -> Path:
    return cell_paths(enc, recording, view, res, qp)[0]


def encode_cells(manifest_dir: Path, enc: Path, **options) -> Path:
    """Real encode cells of every view of the manifest's dataset (vidvpr encode at 64x36, QP 0)."""
    views = sorted((manifest_dir.parent / "views").glob("*/*.mp4"))
    config = EncodeConfig(qps=(CELL_QP,), resolutions=parse_resolutions(CELL_RES), vmaf=False, preset="ultrafast")
    encode_grid(views, enc, replace(config, **options))
    return enc


@pytest.fixture
def manifest_dir(tmp_path: Path, sliced_views: Path) -> Path:  # noqa: F811
    """A built manifest of the tiny dataset (local metric frame), every frame sampled, radius 2.5 m."""
    definition = make_dataset(tmp_path / "ds", sliced_views)
    build_manifest(load_definition(definition), tmp_path / "ds" / "manifest")
    return tmp_path / "ds" / "manifest"


def images(out: Path, folder: str) -> list[str]:
    return sorted(path.name for path in (out / "images" / "test" / folder).glob("*.jpg"))


def decode_bgr(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(container.streams.video[0])]


# ---------------------------------------------------------------- names


def test_name_matches_the_downloader_format():
    # as VPR-datasets-downloader's get_dst_image_name writes San Francisco (UTM 10S, west and north)
    name = VprName(543256.96, 4178906.2, 10, "S", 37.75344, -122.44727, pano_id="abc_12-x", heading_deg=45, pitch_deg=0)
    assert format_vpr_filename(name) == "@0543256.96@4178906.20@10@S@037.75344@-122.44727@abc_12-x@@045@000@@@@@.jpg"
    assert parse_vpr_filename("/data/sf/images/test/queries/" + format_vpr_filename(name)) == name


def test_local_frames_leave_zone_and_lat_lon_empty_and_keep_negative_positions():
    name = VprName(-12.345, 7.0, pano_id="rec~yaw000_pitch+00~000042", heading_deg=359, pitch_deg=-10)
    text = format_vpr_filename(name)
    assert text == "@-000012.35@0000007.00@@@@@rec~yaw000_pitch+00~000042@@359@-10@@@@@.jpg"
    parsed = parse_vpr_filename(text)
    assert (parsed.easting_m, parsed.northing_m, parsed.utm_zone_number, parsed.lat_deg) == (-12.35, 7.0, None, None)
    assert parsed.row_id == "rec/yaw000_pitch+00/000042"
    assert [float(v) for v in text.split("@")[1:3]] == [-12.35, 7.0]  # how benchmark code reads positions


@pytest.mark.parametrize("name", ["@1@2@.jpg", "0000001.00@0000002.00@@@@@x@@@@@@@@@.jpg", "x.jpg",
                                  "@abc@0000002.00@@@@@x@@@@@@@@@.jpg"])
def test_malformed_names_are_rejected(name):
    with pytest.raises(ValueError):
        parse_vpr_filename(name)


def test_fields_with_separators_are_refused():
    with pytest.raises(ValueError, match="'@'"):
        format_vpr_filename(VprName(1.0, 2.0, pano_id="a@b"))
    with pytest.raises(ValueError, match="path separator"):
        format_vpr_filename(VprName(1.0, 2.0, note="a/b"))


def test_cell_path_convention():
    assert cell_paths(Path("ENC"), "walk1", "yaw090_pitch+00", "360p", 7) == (
        Path("ENC/walk1/yaw090_pitch+00/360p/qp07.mp4"), Path("ENC/walk1/yaw090_pitch+00/360p/qp07.json"))


# ---------------------------------------------------------------- export


def test_export_names_round_trip_to_manifest_positions(tmp_path, manifest_dir):
    result = export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig())
    manifest = load_manifest(manifest_dir)
    assert (result.database, result.queries, result.skipped) == (len(manifest.database), len(manifest.queries), False)
    for folder, rows in (("database", manifest.database), ("queries", manifest.queries)):
        names = images(tmp_path / "vpr", folder)
        assert names == sorted(row_filename(row) for row in rows)
        by_id = {row.id: row for row in rows}
        for name in names:
            parsed = parse_vpr_filename(name)
            row = by_id[parsed.row_id]
            assert parsed.easting_m == pytest.approx(row.easting_m, abs=0.005)
            assert parsed.northing_m == pytest.approx(row.northing_m, abs=0.005)
            assert parsed.heading_deg == round(row.heading_deg) % 360 and parsed.pitch_deg == 0
            assert parsed.utm_zone_number is None and parsed.lat_deg is None
    meta = json.loads((tmp_path / "vpr" / "export.json").read_text())
    assert meta["source"]["kind"] == "reference" and meta["counts"]["database"] == result.database
    assert all(video["hash"].startswith("sha256:") for video in meta["videos"])


def test_export_images_are_the_manifest_frames(tmp_path, manifest_dir):
    export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig())
    manifest = load_manifest(manifest_dir)
    row = next(r for r in manifest.queries if r.frame == 5 and r.view == "yaw090_pitch+00")
    frames = decode_bgr(manifest.video_path(row))
    jpeg = cv2.imread(str(tmp_path / "vpr" / "images" / "test" / "queries" / row_filename(row)))
    errors = [float(np.mean((jpeg.astype(float) - frame) ** 2)) for frame in frames]
    assert int(np.argmin(errors)) == 5 and errors[5] < 100.0 < min(errors[:5] + errors[6:])  # JPEG q95 of frame 5


def test_export_from_an_encode_cell(tmp_path, manifest_dir):
    enc = encode_cells(manifest_dir, tmp_path / "enc")
    config = ExportConfig(enc_dir=enc, res=CELL_RES, qp=CELL_QP)
    reference = export_vpr(manifest_dir, tmp_path / "ref", ExportConfig())
    result = export_vpr(manifest_dir, tmp_path / "cell", config)
    assert result.source == "encode cell 64x36 qp00" and result.database == reference.database
    for folder in ("database", "queries"):
        names = images(tmp_path / "cell", folder)
        assert names == images(tmp_path / "ref", folder)
        for name in names:  # the lossless cell holds the same frames, so frame i maps to the same image
            ref_bytes = (tmp_path / "ref" / "images" / "test" / folder / name).read_bytes()
            assert (tmp_path / "cell" / "images" / "test" / folder / name).read_bytes() == ref_bytes
    meta = json.loads((tmp_path / "cell" / "export.json").read_text())
    assert meta["source"] == {"kind": "encode_cell", "res": CELL_RES, "qp": CELL_QP, "enc_dir": str(enc.resolve())}
    assert all("/64x36/qp00.mp4" in video["path"] for video in meta["videos"])
    cell_path(enc, "qwalk", "yaw090_pitch+00").unlink()
    with pytest.raises(BadInput, match="encode cell not found"):
        export_vpr(manifest_dir, tmp_path / "cell2", config)


def test_a_cell_encoded_from_an_earlier_slicing_is_refused(tmp_path, manifest_dir):
    """After re-slicing with other settings and rebuilding the manifest, old cells no longer match."""
    from vidvpr.slicing.config import SliceConfig
    from vidvpr.slicing.slicer import slice_video
    from tests.media import make_equirect_video

    enc = encode_cells(manifest_dir, tmp_path / "enc")
    views = manifest_dir.parent / "views"
    for name in ("dbwalk", "qwalk"):  # same frame count and size, other view settings
        video = make_equirect_video(tmp_path / f"{name}.mp4", frames=12)
        slice_video(video, views, SliceConfig(yaws_deg=(0.0, 90.0), size=(64, 36), interp="bicubic"))
    build_manifest(load_definition(manifest_dir.parent / "def.toml"), manifest_dir)
    with pytest.raises(BadInput, match="encoded from another version of view"):
        export_vpr(manifest_dir, tmp_path / "out", ExportConfig(enc_dir=enc, res=CELL_RES, qp=CELL_QP))
    assert not (tmp_path / "out" / "images").exists()


def test_a_damaged_cell_is_refused(tmp_path, manifest_dir):
    enc = encode_cells(manifest_dir, tmp_path / "enc")
    with open(cell_path(enc, "dbwalk", "yaw000_pitch+00"), "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BadInput, match="changed since it was encoded"):
        export_vpr(manifest_dir, tmp_path / "out", ExportConfig(enc_dir=enc, res=CELL_RES, qp=CELL_QP))


@pytest.mark.parametrize("config, message", [
    (ExportConfig(res="360p", qp=30), "missing --enc"),
    (ExportConfig(enc_dir=Path("enc"), qp=30), "missing --res"),
    (ExportConfig(enc_dir=Path("enc"), res="360p", qp=60), "--qp must be in"),
    (ExportConfig(enc_dir=Path("enc"), res="../..", qp=30), "--res"),
    (ExportConfig(jpeg_quality=0), "--quality"),
])
def test_bad_export_options(tmp_path, manifest_dir, config, message):
    with pytest.raises(BadInput, match=message):
        export_vpr(manifest_dir, tmp_path / "out", config)


def test_queries_without_positives_are_left_out_unless_asked(tmp_path, sliced_views):  # noqa: F811
    far = "t,x,y\n0,100,100\n0.2,101,100\n1,108,100\n"
    definition = make_dataset(tmp_path / "ds", sliced_views, query_traj=far, radius=138.5)
    build_manifest(load_definition(definition), tmp_path / "m")
    manifest = load_manifest(tmp_path / "m")
    matched = len(manifest.matched_queries)
    assert 0 < matched < len(manifest.queries)
    result = export_vpr(tmp_path / "m", tmp_path / "out", ExportConfig())
    assert result.queries == matched == len(images(tmp_path / "out", "queries"))
    assert result.queries_without_positives_skipped == len(manifest.queries) - matched
    result = export_vpr(tmp_path / "m", tmp_path / "all", ExportConfig(include_unmatched=True))
    assert result.queries == len(manifest.queries) == len(images(tmp_path / "all", "queries"))


def test_geographic_export_names_carry_zone_and_lat_lon(tmp_path, sliced_views):  # noqa: F811
    lat, lon = MUNICH
    db = f"t,lat,lon\n0,{lat},{lon}\n0.4,{lat + 0.0004},{lon}\n"
    query = f"t,lat,lon\n0,{lat + 0.0001},{lon}\n0.4,{lat + 0.0003},{lon}\n"
    definition = make_dataset(tmp_path / "ds", sliced_views, db_traj=db, query_traj=query, database="4f", query="6f")
    build_manifest(load_definition(definition), tmp_path / "m")
    export_vpr(tmp_path / "m", tmp_path / "out", ExportConfig())
    rows = {row.id: row for row in load_manifest(tmp_path / "m").database}
    names = images(tmp_path / "out", "database")
    assert len(names) == len(rows) == 6
    for name in names:
        parsed, row = parse_vpr_filename(name), rows[parse_vpr_filename(name).row_id]
        assert (parsed.utm_zone_number, parsed.utm_zone_letter) == (32, "U")
        assert parsed.lat_deg == pytest.approx(row.lat_deg, abs=5e-6) and parsed.lon_deg == pytest.approx(row.lon_deg, abs=5e-6)
        assert parsed.easting_m == pytest.approx(row.easting_m, abs=0.005)


def gpx_walk(lat_deg: float, lon_deg: float, step_deg: float = 0.0001) -> str:
    """A GPX track of three points a second apart, walking due north from (lat, lon)."""
    points = "".join(f'<trkpt lat="{lat_deg + step_deg * i:.7f}" lon="{lon_deg}"><time>2024-05-01T10:00:0{i}Z</time>'
                     "</trkpt>" for i in range(3))
    return ('<?xml version="1.0"?><gpx version="1.1" creator="vidvpr tests" '
            f'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>{points}</trkseg></trk></gpx>')


def test_a_walk_due_north_near_a_central_meridian_is_exported(tmp_path, sliced_views):  # noqa: F811
    # issue 15.1: zone 33T's grid north is 0.00007° west of true north at 15.00001°E, 48°N, so the heading
    # of travel is 359.99993°, which rounded to 3 places was written as 360.0 and refused by every reader
    definition = make_dataset(tmp_path / "ds", sliced_views, db_traj=gpx_walk(48.0, 15.00001),
                              query_traj=gpx_walk(48.00005, 15.00001), radius=25,
                              query_trajectory='"traj/qwalk.gpx"')
    (tmp_path / "ds" / "traj" / "dbwalk.csv").rename(tmp_path / "ds" / "traj" / "dbwalk.gpx")
    (tmp_path / "ds" / "traj" / "qwalk.csv").rename(tmp_path / "ds" / "traj" / "qwalk.gpx")
    definition.write_text(definition.read_text().replace('"traj/dbwalk.csv"', '"traj/dbwalk.gpx"'))
    build_manifest(load_definition(definition), tmp_path / "m")
    manifest = load_manifest(tmp_path / "m")
    north = [row for row in manifest.database + manifest.queries if row.view == "yaw000_pitch+00"]
    assert north and {row.camera_heading_deg for row in north} == {0.0} and {row.heading_deg for row in north} == {0.0}
    assert {row.utm_zone_number for row in north} == {33}
    result = export_vpr(tmp_path / "m", tmp_path / "out", ExportConfig())
    assert result.database == len(manifest.database)


def test_rerun_skips_and_other_exports_need_force(tmp_path, manifest_dir):
    out = tmp_path / "vpr"
    export_vpr(manifest_dir, out, ExportConfig())
    assert export_vpr(manifest_dir, out, ExportConfig()).skipped
    with pytest.raises(OutputError, match="--force"):
        export_vpr(manifest_dir, out, ExportConfig(jpeg_quality=80))
    before = (out / "export.json").read_text()
    result = export_vpr(manifest_dir, out, ExportConfig(jpeg_quality=80, force=True))
    assert not result.skipped and (out / "export.json").read_text() != before
    assert json.loads((out / "export.json").read_text())["jpeg_quality"] == 80
    assert not [p for p in out.iterdir() if ".partial" in p.name]


def test_rerun_keys_on_the_manifest_data_and_cell_videos(tmp_path, manifest_dir):
    build_manifest(load_definition(manifest_dir.parent / "def.toml"), manifest_dir, force=True)  # new manifest.json
    assert export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig()).skipped is False
    build_manifest(load_definition(manifest_dir.parent / "def.toml"), manifest_dir, force=True)
    assert export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig()).skipped  # same rows, same images
    enc = encode_cells(manifest_dir, tmp_path / "enc")
    config = ExportConfig(enc_dir=enc, res=CELL_RES, qp=CELL_QP)
    assert not export_vpr(manifest_dir, tmp_path / "cell", config).skipped
    assert export_vpr(manifest_dir, tmp_path / "cell", config).skipped
    encode_cells(manifest_dir, enc, preset="veryslow", force=True)  # re-encoded cells: other bytes
    with pytest.raises(OutputError, match="other parameters or inputs"):
        export_vpr(manifest_dir, tmp_path / "cell", config)


def test_rerun_redoes_a_damaged_export(tmp_path, manifest_dir):
    export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig())
    victim = next((tmp_path / "vpr" / "images" / "test" / "queries").glob("*.jpg"))
    victim.unlink()
    result = export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig())
    assert not result.skipped and victim.exists()


def test_force_over_images_that_cannot_be_removed_is_an_output_error(tmp_path, manifest_dir, monkeypatch):
    import errno
    import os

    from vidvpr.core import atomic

    export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig())
    real_rename = os.rename

    def refuse_moving_old_images(src, dst):
        if Path(src) == tmp_path / "vpr" / "images" / "test":
            raise PermissionError(errno.EACCES, "Permission denied", str(src))
        return real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", refuse_moving_old_images)
    with pytest.raises(OutputError, match="images/test: cannot write"):
        export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig(force=True))
    for folder in (tmp_path / "vpr", tmp_path / "vpr" / "images"):
        assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


def test_views_option_exports_a_subset_with_positives_among_the_kept_rows(tmp_path, manifest_dir):
    manifest = load_manifest(manifest_dir)
    result = export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig(views=("yaw090_pitch+00",)))
    database = [row for row in manifest.database if row.view == "yaw090_pitch+00"]
    kept = {i for i, row in enumerate(manifest.database) if row.view == "yaw090_pitch+00"}
    matched = [row for row, hits in zip(manifest.queries, manifest.positives)
               if row.view == "yaw090_pitch+00" and kept & set(hits.tolist())]
    assert result.database == len(database) == len(images(tmp_path / "vpr", "database")) == 12
    assert images(tmp_path / "vpr", "queries") == sorted(row_filename(row) for row in matched)
    assert json.loads((tmp_path / "vpr" / "export.json").read_text())["views"] == ["yaw090_pitch+00"]
    with pytest.raises(BadInput, match="no view 'yaw180' in the manifest; it has yaw000_pitch"):
        export_vpr(manifest_dir, tmp_path / "x", ExportConfig(views=("yaw180",)))


def test_export_records_the_positive_radius_to_evaluate_with(tmp_path, manifest_dir):
    result = export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig())
    meta = json.loads((tmp_path / "vpr" / "export.json").read_text())
    assert result.radius_m == meta["positives"]["radius_m"] == 2.5 and meta["positives"]["max_heading_diff_deg"] is None


def test_a_killed_export_leaves_a_partial_folder_the_next_run_removes(tmp_path, manifest_dir):
    from vidvpr.core.atomic import host_tag

    stale = tmp_path / "vpr" / "images" / f".test.partial-{host_tag()}-999999999"  # no such process
    (stale / "database").mkdir(parents=True)
    export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig())
    assert sorted(p.name for p in (tmp_path / "vpr").iterdir()) == ["export.json", "images"]
    assert sorted(p.name for p in (tmp_path / "vpr" / "images").iterdir()) == ["test"]


def test_missing_reference_video_is_bad_input_and_leaves_nothing(tmp_path, manifest_dir):
    manifest = load_manifest(manifest_dir)
    manifest.video_path(manifest.queries[0]).unlink()
    with pytest.raises(BadInput, match="view video not found"):
        export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig())
    assert not (tmp_path / "vpr" / "images").exists()


@pytest.mark.parametrize("record", [None, "{not json"], ids=["no record", "damaged record"])
def test_images_no_export_recorded_are_kept_unless_forced(tmp_path, manifest_dir, record):
    """A folder holding images/test without a readable export.json (a downloaded benchmark) is not replaced."""
    theirs = tmp_path / "vpr" / "images" / "test" / "database" / "@0000001.00@0000002.00@@@@@x@@@@@@@@@.jpg"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"someone's image")
    if record is not None:
        (tmp_path / "vpr" / "export.json").write_text(record)
    result = CliRunner().invoke(main, ["export", str(manifest_dir), "--out", str(tmp_path / "vpr"), "--quiet"])
    why = "export.json missing" if record is None else "not valid JSON"
    assert result.exit_code == 4 and f"holds files that no vidvpr export recorded ({why}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and theirs.read_bytes() == b"someone's image"
    assert not export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig(force=True)).skipped
    assert not theirs.exists() and len(images(tmp_path / "vpr", "database")) == 24


def test_an_interrupted_first_export_leaves_no_empty_folders(tmp_path, manifest_dir, monkeypatch):
    from vidvpr.dataset import export

    def one_frame_then_ctrl_c(path, frames):
        yield next(iter(decode_selected_real(path, frames)))
        raise KeyboardInterrupt

    decode_selected_real = export.decode_selected
    monkeypatch.setattr(export, "decode_selected", one_frame_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        export_vpr(manifest_dir, tmp_path / "new" / "vpr", ExportConfig())
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("inside", [".", "vpr"])
def test_an_export_into_the_manifest_folder_is_refused_and_leaves_it_a_manifest(tmp_path, manifest_dir, inside):
    result = CliRunner().invoke(main, ["export", str(manifest_dir), "--out", str(manifest_dir / inside)])
    assert result.exit_code == 2 and result.stderr.startswith(
        f"vidvpr: error: --out {manifest_dir / inside}: is the manifest folder {manifest_dir} or inside it;")
    assert sorted(p.name for p in manifest_dir.iterdir()) == [
        "database.csv", "manifest.json", "positives.json", "query.csv"]
    assert build_manifest(load_definition(manifest_dir.parent / "def.toml"), manifest_dir).skipped


def test_cli_export(tmp_path, manifest_dir):
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(manifest_dir), "--out", str(tmp_path / "vpr"), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["database"] == len(images(tmp_path / "vpr", "database")) == 24
    assert summary["queries"] == len(images(tmp_path / "vpr", "queries")) == 14
    result = runner.invoke(main, ["export", str(manifest_dir), "--out", str(tmp_path / "vpr")])
    assert result.exit_code == 0 and "already done, skipped" in result.stderr
    assert "--positive_dist_threshold 2.5" in result.stderr
    result = runner.invoke(main, ["export", str(manifest_dir), "--out", str(tmp_path / "v"), "--views",
                                  "yaw000_pitch+00", "--json", "--quiet"])
    assert result.exit_code == 0 and json.loads(result.stdout)["database"] == 12
    result = runner.invoke(main, ["export", str(manifest_dir), "--out", str(tmp_path / "w"), "--views",
                                  "yaw000_pitch+00,,yaw090_pitch+00"])  # a typo, not "every view"
    assert result.exit_code == 2 and "--views has an empty item" in result.stderr
    assert not (tmp_path / "w").exists()
    result = runner.invoke(main, ["export", str(manifest_dir), "--out", str(tmp_path / "x"), "--res", "360p"])
    assert result.exit_code == 2 and "missing --enc, --qp" in result.stderr


def test_export_from_a_jpeg_cell_with_codec(tmp_path, manifest_dir):
    enc = encode_cells(manifest_dir, tmp_path / "enc", codecs=("jpeg",), codec_qps=(("jpeg", (50,)),))
    result = export_vpr(manifest_dir, tmp_path / "cell", ExportConfig(enc_dir=enc, res=CELL_RES, qp=50, codec="jpeg"))
    assert result.source == "encode cell jpeg 64x36 quality50" and result.database > 0
    meta = json.loads((tmp_path / "cell" / "export.json").read_text())
    assert meta["source"]["codec"] == "jpeg" and all("/64x36/jpeg/quality50.mp4" in v["path"] for v in meta["videos"])
    with pytest.raises(BadInput, match="encode cell not found for .* \\(libx264, res 64x36, qp 50\\)"):
        export_vpr(manifest_dir, tmp_path / "x264", ExportConfig(enc_dir=enc, res=CELL_RES, qp=50))
    with pytest.raises(BadInput, match=r"^--qp must be in \[1, 100\] \(jpeg quality\), got 0$"):
        export_vpr(manifest_dir, tmp_path / "bad", ExportConfig(enc_dir=enc, res=CELL_RES, qp=0, codec="jpeg"))


def test_a_train_split_is_written_under_images_train_with_its_own_record(tmp_path, manifest_dir):
    result = export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig(split="train"))
    train = tmp_path / "vpr" / "images" / "train"
    assert result.split == "train"
    assert len(list((train / "database").glob("*.jpg"))) == result.database == 24
    assert len(list((train / "queries").glob("*.jpg"))) == result.queries == 14
    record = json.loads((tmp_path / "vpr" / "export-train.json").read_text())
    assert record["layout"] == {"database": "images/train/database", "query": "images/train/queries"}
    assert not (tmp_path / "vpr" / "images" / "test").exists() and not (tmp_path / "vpr" / "export.json").exists()


def test_two_splits_share_one_folder_and_each_rerun_skips(tmp_path, manifest_dir):
    export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig(split="train"))
    export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig())  # was refused: images/ held another export
    assert sorted(p.name for p in (tmp_path / "vpr" / "images").iterdir()) == ["test", "train"]
    assert export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig(split="train")).skipped
    assert export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig()).skipped


def test_the_default_split_keeps_the_parameters_hash_of_earlier_exports(tmp_path, manifest_dir):
    """Exports made before --split existed are still recognised as done (the hash leaves a default split out)."""
    export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig())
    assert "split" not in json.loads((tmp_path / "vpr" / "export.json").read_text())["params"]
    export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig(split="val"))
    assert json.loads((tmp_path / "vpr" / "export-val.json").read_text())["params"]["split"] == "val"


def test_an_unknown_split_is_bad_input(tmp_path, manifest_dir):
    with pytest.raises(BadInput, match="--split must be one of train, val, test, got 'training'"):
        export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig(split="training"))
    result = CliRunner().invoke(main, ["export", str(manifest_dir), "--out", str(tmp_path / "vpr"), "--split", "x"])
    assert result.exit_code == 2 and "'x' is not one of 'train', 'val', 'test'" in result.stderr


def test_the_progress_is_told_how_many_images_come_before_the_first(tmp_path, manifest_dir):
    """The export's bar showed a count without a total, so no ETA."""
    told, written = [], []
    export_vpr(manifest_dir, tmp_path / "vpr", ExportConfig(), on_image=lambda n: written.append((n, list(told))),
               on_start=told.append)
    assert told == [24 + 14] and written[0] == (1, [38]) and len(written) == 38

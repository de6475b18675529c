"""Imported footage as datasets: the three kinds of ground truth (named GPS/UTM positions,
trajectories, frame index) reach manifests whose positives are checked by hand; the
VPR-datasets-downloader round trip; every later stage reads imported views; real Nordland frames."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.media import perspective_test_frame, write_png
from tests.test_manifest import make_dataset, sliced_views  # noqa: F401  (a session fixture)
from vidvpr.core.errors import BadInput
from vidvpr.dataset.definition import definition_from_options, load_definition, with_overrides
from vidvpr.dataset.export import ExportConfig, export_vpr
from vidvpr.dataset.manifest import Manifest, build_manifest, load_manifest
from vidvpr.dataset.vpr_names import VprName, format_vpr_filename, parse_vpr_filename
from vidvpr.ingest import ImportConfig, IndexPositions, import_footage

SIZE = (64, 48)


def positives_by_id(manifest: Manifest) -> dict[str, set[str]]:
    return {query.id: {manifest.database[i].id for i in hits} for query, hits in zip(manifest.queries, manifest.positives)}


def image_sequence(folder: Path, count: int, seed: int) -> Path:
    for i in range(count):
        write_png(folder / f"frame{i:03d}.png", perspective_test_frame(*SIZE, i, seed))
    return folder


def all_frames_manifest(root: Path, database: str, query: str, radius_m: float, out: Path) -> Manifest:
    definition = definition_from_options(root, [f"{database}={root / 'trajectories' / f'{database}.csv'}"],
                                         [f"{query}={root / 'trajectories' / f'{query}.csv'}"],
                                         views_dir=root / "views")
    definition = with_overrides(definition, radius_m=radius_m, database_sampling="all", query_sampling="all")
    build_manifest(definition, out)
    return load_manifest(out)


# ---------------------------------------------------------------- frame index


def test_frame_index_positions_make_neighbouring_frames_the_positives(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for name, seed in (("summer", 1), ("winter", 2)):
        import_footage([image_sequence(tmp_path / name, 6, seed)], root / "views",
                       ImportConfig(hfov_deg=50.0, positions=IndexPositions(spacing_m=2.0)))
    assert (root / "trajectories" / "summer.csv").read_text().splitlines()[1:4] == ["t,x,y", "0.0,0.0,0.0",
                                                                                    "1.0,2.0,0.0"]
    manifest = all_frames_manifest(root, "summer", "winter", 2.0, root / "manifest")
    expected = {f"winter/camera/{i:06d}": {f"summer/camera/{j:06d}" for j in (i - 1, i, i + 1) if 0 <= j < 6}
                for i in range(6)}
    assert positives_by_id(manifest) == expected


# ---------------------------------------------------------------- trajectories


def test_a_gps_trajectory_of_imported_footage_gives_positives_by_distance(tmp_path: Path) -> None:
    """Frames 1 s apart along a meridian, 0.0001° (11.1 m) per frame; queries halfway, 0.0002° per frame."""
    root = tmp_path / "ds"
    import_footage([image_sequence(tmp_path / "map", 5, 1)], root / "views", ImportConfig(hfov_deg=50.0))
    import_footage([image_sequence(tmp_path / "probe", 3, 2)], root / "views", ImportConfig(hfov_deg=50.0))
    (root / "trajectories").mkdir()
    (root / "trajectories" / "map.csv").write_text("t,lat,lon\n0,48.1,11.5\n4,48.1004,11.5\n")
    (root / "trajectories" / "probe.csv").write_text("t,lat,lon\n0,48.10005,11.5\n2,48.10045,11.5\n")
    manifest = all_frames_manifest(root, "map", "probe", 15.0, root / "manifest")
    db = "map/camera/{:06d}".format
    assert positives_by_id(manifest) == {"probe/camera/000000": {db(0), db(1)}, "probe/camera/000001": {db(2), db(3)},
                                         "probe/camera/000002": {db(4)}}
    assert manifest.queries[0].utm_zone_number == 32 and manifest.queries[0].lat_deg == pytest.approx(48.10005)


# ---------------------------------------------------------------- VPR-datasets-downloader folders


def vpr_folder(base: Path, database_m: list[float], query_m: list[float], zone: int | None = 32) -> Path:
    """images/test/{database,queries} with names at easting 500000 + x (UTM zone 32U), northing 5300000."""
    for split, positions in (("database", database_m), ("queries", query_m)):
        for i, x in enumerate(positions):
            name = VprName(500000.0 + x, 5300000.0, zone, "U" if zone else None, pano_id=f"{split}{i}",
                           heading_deg=90)
            write_png(base / "images" / "test" / split / format_vpr_filename(name).replace(".jpg", ".png"),
                      perspective_test_frame(*SIZE, i, seed=len(split)))
    return base


def test_a_vpr_folder_becomes_two_recordings_a_definition_and_positives_by_distance(tmp_path: Path) -> None:
    source = vpr_folder(tmp_path / "tiny", [0, 10, 20, 30, 100], [4, 26, 70])
    root = tmp_path / "data"
    summary = import_footage([source], root / "views", ImportConfig(hfov_deg=60.0))
    assert [view.recording for view in summary.views] == ["tiny-database", "tiny-queries"]
    definition = load_definition(summary.definition)
    assert Path(summary.definition) == root / "tiny.toml" and definition.spec.positives.radius_m == 25.0
    build_manifest(definition, root / "manifest")
    manifest = load_manifest(root / "manifest")
    pano = {row.id: parse_vpr_filename(json.loads(Path(root / "views" / row.recording / "camera.json").read_text())
                                       ["source"]["images"][row.source_frame]).pano_id
            for row in manifest.database + manifest.queries}
    found = {pano[query]: {pano[db] for db in hits} for query, hits in positives_by_id(manifest).items()}
    assert found == {"queries0": {"database0", "database1", "database2"},
                     "queries1": {"database1", "database2", "database3"}, "queries2": set()}
    assert manifest.database[0].heading_deg == 90.0


def test_a_vpr_folder_missing_its_queries_says_so(tmp_path: Path) -> None:
    """It was taken for an image folder: "tiny: no images (*.jpg, *.jpeg or *.png) in this folder"."""
    source = vpr_folder(tmp_path / "tiny", [0, 10], [4, 8])
    shutil.rmtree(source / "images" / "test" / "queries")
    with pytest.raises(BadInput, match=r"images/test: has database/ but no queries/; a VPR-datasets-downloader split "
                                       r"holds database/ and queries/"):
        import_footage([source], tmp_path / "data" / "views", ImportConfig(hfov_deg=60.0))
    assert not (tmp_path / "data").exists()


def test_a_vpr_folder_without_the_split_asked_for_names_those_it_has(tmp_path: Path) -> None:
    source = vpr_folder(tmp_path / "tiny", [0, 10], [4, 8])
    with pytest.raises(BadInput, match=r"tiny/images: no train/ folder \(--split train\); it holds test"):
        import_footage([source], tmp_path / "data" / "views", ImportConfig(hfov_deg=60.0, vpr_split="train"))


def test_a_vpr_split_of_one_image_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """Its trajectory had one sample, which `vidvpr manifest` then refused (it needs two)."""
    source = vpr_folder(tmp_path / "tiny", [0, 10], [4])
    with pytest.raises(BadInput, match=r"queries: 1 image; each split of a VPR folder needs at least 2"):
        import_footage([source], tmp_path / "data" / "views", ImportConfig(hfov_deg=60.0))
    assert not (tmp_path / "data").exists()


def test_a_definition_of_other_data_is_refused_before_any_view_is_written(tmp_path: Path) -> None:
    """The definition was compared only after both recordings had been imported anew."""
    from vidvpr.core.errors import OutputError

    source = vpr_folder(tmp_path / "tiny", [0, 10, 20], [4, 14])
    summary = import_footage([source], tmp_path / "data" / "views", ImportConfig(hfov_deg=60.0))
    edited = Path(summary.definition).read_text().replace("radius_m = 25", "radius_m = 7")
    Path(summary.definition).write_text(edited)
    shutil.rmtree(tmp_path / "data" / "views")
    with pytest.raises(OutputError, match=r"tiny\.toml: already holds another dataset definition"):
        import_footage([source], tmp_path / "data" / "views", ImportConfig(hfov_deg=60.0))
    assert not (tmp_path / "data" / "views").exists()


def test_a_vpr_folder_imported_again_from_another_folder_is_done_not_other_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trajectories' and the definition's comments name the source as it was typed, so the same
    import run from the dataset's own folder ('tiny' for 'work/tiny') was refused with exit 4."""
    source = vpr_folder(tmp_path / "work" / "tiny", [0, 10, 20], [4, 14])
    monkeypatch.chdir(tmp_path)
    import_footage([Path("work") / "tiny"], Path("work") / "views", ImportConfig(hfov_deg=60.0))
    written = {path: path.read_bytes() for path in (tmp_path / "work").rglob("*") if path.is_file()}
    monkeypatch.chdir(tmp_path / "work")
    summary = import_footage(["tiny"], "views", ImportConfig(hfov_deg=60.0))
    assert all(view.skipped for view in summary.views)
    assert {path: path.read_bytes() for path in (tmp_path / "work").rglob("*") if path.is_file()} == written
    assert source.exists()


def test_the_vpr_export_import_round_trip_gives_the_same_positives(tmp_path: Path, sliced_views: Path) -> None:  # noqa: F811
    definition = make_dataset(tmp_path / "ds", sliced_views, radius=2.5)
    build_manifest(load_definition(definition), tmp_path / "ds" / "manifest")
    original = load_manifest(tmp_path / "ds" / "manifest")
    export_vpr(tmp_path / "ds" / "manifest", tmp_path / "export", ExportConfig())
    summary = import_footage([tmp_path / "export"], tmp_path / "again" / "views", ImportConfig(hfov_deg=90.0))
    assert summary.radius_from.endswith("export.json")
    build_manifest(load_definition(summary.definition), tmp_path / "again" / "manifest")
    again = load_manifest(tmp_path / "again" / "manifest")
    images = {view.recording: json.loads(Path(view.sidecar).read_text())["source"]["images"] for view in summary.views}
    old_id = {row.id: parse_vpr_filename(images[row.recording][row.source_frame]).row_id
              for row in again.database + again.queries}
    exported = {query: hits for query, hits in positives_by_id(original).items() if hits}
    assert {old_id[q]: {old_id[d] for d in hits} for q, hits in positives_by_id(again).items()} == exported


def test_a_train_split_is_imported_with_the_radius_of_its_own_export_record(tmp_path: Path,
                                                                          sliced_views: Path) -> None:  # noqa: F811
    definition = make_dataset(tmp_path / "ds", sliced_views, radius=2.5)
    build_manifest(load_definition(definition), tmp_path / "ds" / "manifest")
    export_vpr(tmp_path / "ds" / "manifest", tmp_path / "export", ExportConfig(split="train"))
    summary = import_footage([tmp_path / "export"], tmp_path / "again" / "views",
                             ImportConfig(hfov_deg=90.0, vpr_split="train"))
    assert summary.radius_from.endswith("export-train.json")
    assert "radius_m = 2.5" in Path(summary.definition).read_text()


@pytest.mark.parametrize("damage", [
    "[1, 2]",  # a JSON list where the record's object belongs
    '{"schema": "vidvpr.export/2"',  # cut short
    "NOT_A_RADIUS",  # a valid record whose radius is not a positive number
])
def test_a_damaged_export_record_in_a_vpr_folder_is_refused_not_replaced_by_25_m(tmp_path: Path, sliced_views: Path,
                                                                                 damage: str) -> None:  # noqa: F811
    """The export.json beside a VPR folder sets the positives' radius; a damaged one silently gave 25 m."""
    definition = make_dataset(tmp_path / "ds", sliced_views, radius=2.5)
    build_manifest(load_definition(definition), tmp_path / "ds" / "manifest")
    export_vpr(tmp_path / "ds" / "manifest", tmp_path / "export", ExportConfig())
    record = tmp_path / "export" / "export.json"
    if damage == "NOT_A_RADIUS":
        data = json.loads(record.read_text())
        data["positives"]["radius_m"] = -2.5
        damage = json.dumps(data)
    record.write_text(damage)
    with pytest.raises(BadInput, match=r"export\.json: .*remove it to use the VPR benchmarks' 25 m"):
        import_footage([tmp_path / "export"], tmp_path / "again" / "views", ImportConfig(hfov_deg=90.0))
    assert not (tmp_path / "again").exists()


# ---------------------------------------------------------------- later stages read imported views


@pytest.fixture(scope="module")
def imported_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two imported image sequences with frame-index positions, a manifest and 64x48 cells at QP 40."""
    from vidvpr.encoding.grid import encode_grid
    from vidvpr.encoding.plan import EncodeConfig, parse_resolutions

    base = tmp_path_factory.mktemp("imported")
    for name, seed in (("summer", 1), ("winter", 1)):
        import_footage([image_sequence(base / name, 8, seed)], base / "ds" / "views",
                       ImportConfig(hfov_deg=50.0, positions=IndexPositions()))
    all_frames_manifest(base / "ds", "summer", "winter", 1.0, base / "ds" / "manifest")
    encode_grid(sorted((base / "ds" / "views").glob("*/*.mp4")), base / "ds" / "enc",
                EncodeConfig(qps=(40,), resolutions=parse_resolutions("64x48"), vmaf=False, preset="ultrafast"))
    return base / "ds"


def test_encode_records_the_imported_view_it_was_made_from(imported_dataset: Path) -> None:
    from vidvpr.core.sidecars import CellSidecar

    cell = CellSidecar.load(imported_dataset / "enc" / "summer" / "camera" / "64x48" / "qp40.json")
    assert cell.input.slice_sidecar.endswith("summer/camera.json") and cell.timestamps.equal_to_input


@pytest.mark.slow
def test_eval_finds_the_same_frames_of_identical_sequences(imported_dataset: Path, tmp_path: Path) -> None:
    from vidvpr.evaluate.grid import EvalConfig, evaluate_grid

    evaluate_grid(imported_dataset / "manifest", tmp_path / "eval", EvalConfig(enc_dir=imported_dataset / "enc",
                                                                                batch_size=8))
    rows = {row["cell"]: row for row in json.loads((tmp_path / "eval" / "results.json").read_text())["rows"]}
    assert rows["reference"]["recall"]["1"] == 1.0  # the query recording holds the database's very images
    assert "64x48/qp40" in rows


def test_export_writes_imported_frames_in_the_vpr_layout(imported_dataset: Path, tmp_path: Path) -> None:
    result = export_vpr(imported_dataset / "manifest", tmp_path / "vpr", ExportConfig())
    assert (result.database, result.queries) == (8, 8)
    names = sorted(p.name for p in (tmp_path / "vpr" / "images" / "test" / "queries").iterdir())
    assert parse_vpr_filename(names[0]).row_id == "winter/camera/000000"


@pytest.mark.slow
def test_distill_trains_on_imported_views(imported_dataset: Path, tmp_path: Path) -> None:
    from vidvpr.distill.config import DistillConfig
    from vidvpr.distill.train import distill
    from vidvpr.models import load_model
    from vidvpr.models.initialise import initialise_netvlad

    model = load_model("netvlad-efficientnet-lite0", stage=3, num_clusters=8)
    teacher = tmp_path / "teacher.pt"
    initialise_netvlad(model, [torch.randn(4, 3, 48, 64, generator=torch.Generator().manual_seed(0))], teacher)
    config = DistillConfig(train=imported_dataset / "manifest", lq=("64x48/qp40",),
                           teacher=f"netvlad-efficientnet-lite0:{teacher}", negatives=1, positive_radius_m=1.5,
                           negative_radius_m=2.0,
                           batch_size=4, mine_every=3)
    result = distill(tmp_path / "run", replace(config, epochs=1))
    assert result.steps >= 1 and Path(result.student).is_file()


# ---------------------------------------------------------------- real frames


@pytest.mark.shared_data
def test_nordland_seasons_import_with_frame_index_ground_truth(shared_data: Path, tmp_path: Path) -> None:
    nordland = shared_data / "nordland-half1"
    if not (nordland / "summer").is_dir():
        pytest.skip(f"Nordland frames not found at {nordland}")
    root = tmp_path / "nordland"
    for season in ("summer", "winter"):
        shutil.copytree(nordland / season, tmp_path / season, ignore=lambda _, names: sorted(names)[60:])
        summary = import_footage([tmp_path / season], root / "views", ImportConfig(hfov_deg=60.0,
                                                                                   positions=IndexPositions()))
        assert summary.views[0].frames == 60
    manifest = all_frames_manifest(root, "summer", "winter", 1.0, root / "manifest")
    assert [len(hits) for hits in manifest.positives[:3]] == [2, 3, 3]
    sidecar = json.loads((root / "views" / "winter" / "camera.json").read_text())
    assert sidecar["source"]["images"][:2] == ["images-00010.png", "images-00020.png"]
    assert (sidecar["geometry"]["width"], sidecar["geometry"]["height"]) == (64, 32)

"""Scale on paper: rates read back from sidecars, and the projection's arithmetic (known answers)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.media import make_equirect_video
from vidvpr.core.records import FileRecord
from vidvpr.core.sidecars import CellSidecar, SliceSidecar
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.encoding.grid import encode_grid
from vidvpr.encoding.plan import EncodeConfig, parse_resolutions
from vidvpr.run.rates import Rates, bytes_per_px, fit_slice, read_rates
from vidvpr.run.scale import Machine, Workload, project, total
from vidvpr.slicing.config import SliceConfig
from vidvpr.slicing.slicer import slice_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import scale_estimate  # noqa: E402


def test_the_slice_fit_recovers_source_and_view_costs() -> None:
    a, b = 0.02, 0.05  # core-s per source Mpx, per view Mpx
    observations = [(s, v, a * s + b * v) for s, v in ((100.0, 40.0), (100.0, 160.0), (50.0, 10.0))]
    assert np.allclose(fit_slice(observations), (a, b))
    assert fit_slice([(100.0, 40.0, 8.0)]) == (0.0, 0.2)  # one run: all of it per view megapixel


def test_bytes_per_pixel_is_log_linear_between_measured_qps_and_clamped_outside() -> None:
    by_qp = {20: 0.4, 30: 0.1}
    assert bytes_per_px(by_qp, 25) == pytest.approx(0.2)  # geometric mean
    assert bytes_per_px(by_qp, 10) == 0.4 and bytes_per_px(by_qp, 51) == 0.1


def test_the_projection_of_one_hour_by_hand() -> None:
    rates = Rates(slice_source_s_per_mpx=0.001, slice_view_s_per_mpx=0.002, view_bytes_per_px=0.5,
                  encode_s_per_mpx={"libx264": 0.01}, cell_bytes_per_px={"libx264": {30: 0.05}},
                  describe_s_per_mpx=0.1, descriptor_dim=100)
    work = Workload(hours=1, width=2000, height=1000, fps=10, views=2, view_size=(1000, 500),
                    cells=((500, 250, 30), (250, 125, 30)), file_minutes=30, sampled_fps=1)
    stages = {s.stage: s for s in project(work, rates, Machine(workers=2, cores=4, search_gflops_per_core=1.0))}
    frames = 36_000
    slice_s = frames * (0.001 * 2.0 + 0.002 * 2 * 0.5)  # 2 Mpx source, 2 views of 0.5 Mpx
    assert stages["slice"].core_hours == pytest.approx(slice_s / 3600)
    assert stages["slice"].units == 2 and stages["slice"].wall_hours == pytest.approx(slice_s / 3600 / 8)
    assert stages["slice"].storage_bytes == pytest.approx(frames * 2 * 500_000 * 0.5)
    assert stages["source video (stored)"].storage_bytes == pytest.approx(3600 * 100e6 / 8)
    cell_mpx = (125_000 + 31_250) / 1e6
    assert stages["encode + measure"].core_hours == pytest.approx(frames * 2 * cell_mpx * 0.01 / 3600)
    sampled = 3600 * 2  # 1 frame/s of each of 2 views
    described = sampled * (0.5 + cell_mpx)
    assert stages["descriptors"].core_hours == pytest.approx(described * 0.1 / 3600)
    assert stages["descriptors"].storage_bytes == pytest.approx(sampled * 3 * 100 * 2)
    search_cell_s = 3600 * 3600 * 100 * 2 / 1e9  # 3,600 queries x 3,600 database x 100-D, 2 flops each
    assert stages["search (exact L2)"].core_hours == pytest.approx(3 * search_cell_s / 3600)
    assert stages["search (exact L2)"].wall_hours == pytest.approx(2 * search_cell_s / 3600 / 4)  # 3 cells, 2 workers
    assert total(list(stages.values())).core_hours == pytest.approx(sum(s.core_hours for s in stages.values()))


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny slice and encode run, and one descriptor cache entry, with known timings written in."""
    root = tmp_path_factory.mktemp("measured")
    source = make_equirect_video(root / "walk.mp4", frames=12)
    views = slice_video(source, root / "views", SliceConfig(yaws_deg=(0.0, 90.0), size=(128, 72)))
    for view in views:  # a known wall time for the run
        car = SliceSidecar.load(Path(view.sidecar))
        car.model_copy(update={"elapsed_s": 2.0}).save(Path(view.sidecar))
    encode_grid([Path(v.path) for v in views], root / "enc",
                EncodeConfig(qps=(30, 40), resolutions=parse_resolutions("64x36"), vmaf=False, preset="ultrafast"))
    video = Path(views[0].path)
    DescriptorCache(root / "desc").put(np.zeros((3, 8), np.float32), "m", "fp", FileRecord.of(video), [0, 1, 2],
                                       (100, 50), {}, 1.5)
    return root


def test_rates_are_read_from_the_sidecars_of_earlier_runs(measured: Path) -> None:
    rates = read_rates([measured], cores=2)
    view_mpx = 2 * 12 * 128 * 72 / 1e6
    assert rates.slice_source_s_per_mpx == 0 and rates.slice_view_s_per_mpx == pytest.approx(2.0 * 2 / view_mpx)
    cells = [CellSidecar.load(p) for p in (measured / "enc").rglob("qp*.json")]
    assert len(cells) == 4
    cpu = sum(c.encode.process_cpu_s / c.encode.cells_in_process for c in cells)
    assert rates.encode_s_per_mpx["libx264"] == pytest.approx(cpu / (4 * 12 * 64 * 36 / 1e6))
    assert set(rates.cell_bytes_per_px["libx264"]) == {30, 40}
    assert rates.cell_bytes_per_px["libx264"][30] > rates.cell_bytes_per_px["libx264"][40]
    assert rates.describe_s_per_mpx == pytest.approx(1.5 * 2 / (3 * 100 * 50 / 1e6)) and rates.descriptor_dim == 8


def test_qps_outside_the_measured_ones_are_named_with_the_rate_taken_for_them(measured: Path,
                                                                             capsys: pytest.CaptureFixture) -> None:
    # the small demo measures QP 25 and 45; projecting --qp 20..50 took QP 25's bytes for QP 20 and QP 45's for 50
    # (fewer and more bytes than they make) and said nothing
    argv = ["--measured", str(measured), "--measured-cores", "2", "--hours", "1", "--res", "64x36", "--qp", "20..50",
            "--search-gflops", "20"]
    assert scale_estimate.main(argv) == 0
    assert ("; QP 20, 25, 45, 50 outside the measured 30..40: storage at the nearest measured QP's bytes/pixel "
            "(encode more QPs to measure them)") in capsys.readouterr().out


def test_the_tool_prints_the_projection_and_what_it_rests_on(measured: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["--measured", str(measured), "--measured-cores", "2", "--hours", "500", "--res", "64x36", "--qp", "30,35",
            "--search-gflops", "20", "--workers", "4", "--cores", "8"]
    assert scale_estimate.main(argv) == 0
    out = capsys.readouterr().out
    assert "500 h of 5760x2880 at 30 fps, 4 views of 1824x1024, 2 cells; 4 workers x 8 cores" in out
    assert "qp30" in out and "assumed: sources 100 Mbit/s" in out
    assert "outside the measured" not in out  # 30 measured, 35 between the measured 30 and 40
    assert scale_estimate.main([*argv, "--json"]) == 0
    stages = json.loads(capsys.readouterr().out)["stages"]
    assert [s["stage"] for s in stages] == ["source video (stored)", "slice", "encode + measure", "descriptors",
                                            "search (exact L2)", "total"]


def test_the_tool_refuses_what_was_not_measured_in_one_line(measured: Path, capsys: pytest.CaptureFixture) -> None:
    assert scale_estimate.main(["--measured", str(measured / "views"), "--hours", "1"]) == 2
    assert capsys.readouterr().err == ("scale_estimate: error: no descriptor sidecars under --measured; run vidvpr "
                                       "eval (or describe frames) first\n")
    argv = ["--measured", str(measured), "--hours", "1", "--codec", "libx265", "--search-gflops", "1"]
    assert scale_estimate.main(argv) == 2
    assert "no measured libx265 cells under --measured (found: libx264)" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, message", [
    ("--hours", "-5", "--hours must be positive, got -5"),
    ("--workers", "0", "--workers must be positive, got 0"),
    ("--query-fraction", "1", "--query-fraction must be below 1 (the rest is the database), got 1"),
])
def test_nonsense_numbers_are_one_line(measured: Path, capsys: pytest.CaptureFixture, option: str, value: str,
                                       message: str) -> None:
    argv = ["--measured", str(measured), "--hours", "1", "--search-gflops", "1", option, value]
    assert scale_estimate.main(argv) == 2
    assert capsys.readouterr().err == f"scale_estimate: error: {message}\n"

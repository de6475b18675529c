"""Specification of `vidvpr report`: one self-contained, escaped HTML file from synthetic eval
folders and a real tiny manifest; rendered in headless Chromium when it is installed."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.test_manifest import make_dataset, sliced_views  # noqa: F401  (a session fixture)
from tests.test_study import RATES, RECALLS, curve_rows, write_eval
from vidvpr.cli import main
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import sha256_file
from vidvpr.dataset.definition import load_definition
from vidvpr.dataset.manifest import build_manifest
from vidvpr.dataset.records import DATA_FILES
from vidvpr.report.build import SECTIONS, ReportConfig, build_report
from vidvpr.report.html import esc, table
from vidvpr.study.stage import StudyConfig, run_study

CHROMIUM = Path("/usr/bin/chromium")
MAGENTA = (255, 0, 255)
EVIL = r'<script>alert("x")</script>&$\frac{$'  # HTML and matplotlib mathtext


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory, sliced_views: Path) -> Path:  # noqa: F811
    root = tmp_path_factory.mktemp("report-ds")
    build_manifest(load_definition(make_dataset(root / "ds", sliced_views)), root / "ds" / "manifest")
    return root / "ds" / "manifest"


def manifest_files(folder: Path) -> dict[str, str]:
    return {name: sha256_file(folder / name) for name in DATA_FILES}


def solid_png(path: Path, size: tuple[int, int] = (300, 80)) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size[1], size[0], 3), MAGENTA[::-1], np.uint8))
    return path


@pytest.fixture
def evals(tmp_path: Path, manifest: Path) -> list[Path]:
    """teacher (x264, x265) and a student whose label needs escaping; a strip of the worst cell."""
    files = manifest_files(manifest)
    teacher = curve_rows("teacher", "libx264", RATES, RECALLS) + curve_rows(
        "teacher", "libx265", [0.8 * r for r in RATES], RECALLS)
    folders = [write_eval(tmp_path / "eval-a", teacher, files),
               write_eval(tmp_path / "eval-b", curve_rows(EVIL, "libx264", [0.5 * r for r in RATES], RECALLS), files)]
    for folder in folders:  # the manifest the evaluations ran on
        text = (folder / "results.json").read_text().replace('"/data/manifest"', f'"{manifest}"')
        (folder / "results.json").write_text(text)
    solid_png(folders[0] / "strips" / "teacher" / "64x32_qp50.png")
    return folders


def test_report_from_a_study_is_one_self_contained_escaped_file(evals: list[Path], tmp_path: Path) -> None:
    run_study(evals, tmp_path / "study", StudyConfig(budgets_kbps=(500.0,)))
    out = tmp_path / "site" / "report.html"
    result = build_report(out, ReportConfig(study_dir=tmp_path / "study"))
    text = out.read_text(encoding="utf-8")
    assert result.bytes == len(text.encode()) and [a for a, _, _ in SECTIONS] == result.sections
    for anchor, title, _ in SECTIONS:
        assert f'<section id="{anchor}"><h2>{esc(title)}</h2>' in text
    # self-contained: every src is a data URI, links only point inside, no script, a policy forbidding fetches
    assert re.findall(r'\b(?:src|href)="(?!data:|#)', text) == []
    assert "<script" not in text.lower() and "default-src 'none'; img-src data:" in text
    assert esc(EVIL) in text and EVIL not in text
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) >= 5 and all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data in images)
    assert "libx265 needs 20.0% fewer bits than libx264 for the same recall@1" in text
    assert "bjontegaard.bd_rate" in text and "pchip" in text
    assert "queries without positives excluded (vidvpr eval --unmatched-queries exclude)" in text
    assert "<th class=num>overlap</th>" in text and "100% of the curves&#x27; union" in text
    assert "BD-recall: bjontegaard warned: Insufficient curve overlap: &#x27;60.00&#x27;" in text  # student: 100–800
    assert "You can silence" not in text  # of 50–1600 kbps
    assert "Trajectories of tiny" not in text  # the map is an image; its title is drawn, not written
    assert "dbwalk" in text and "qwalk" in text  # recordings table of the real manifest
    assert "teacher on 64x32/qp50" in text  # the strip of the worst-hit cell
    assert "best cell" in text.lower() and "libx265/64x32/qp40" in text
    assert str(evals[0] / "results.json") in text and sha256_file(evals[0] / "results.json")[:20] in text


def test_report_without_a_study_computes_it_and_notes_what_is_missing(evals: list[Path], tmp_path: Path) -> None:
    for folder in evals:
        text = (folder / "results.json").read_text()
        (folder / "results.json").write_text(re.sub(r'"path": "[^"]*manifest"', '"path": "/gone/manifest"', text))
    result = build_report(tmp_path / "r.html", ReportConfig(eval_dirs=tuple(evals)))
    assert any("computed for this report" in note for note in result.notes)
    assert any("/gone/manifest was not found" in note for note in result.notes)
    assert any("/data/enc was not found" in note for note in result.notes)
    assert "The manifest was not available" in (tmp_path / "r.html").read_text()


def test_encode_folder_table_names_each_speed_by_what_it_measures(evals: list[Path], tmp_path: Path) -> None:
    # the table had "encode fps" (frames / wall s) beside "encode_fps" (frames / CPU s): two fps, told apart by _
    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "encodes.csv").write_text(
        "recording,view,resolution,width,height,qp,codec,frames,kbps,psnr_y,ssim_y,vmaf,encode_s,encode_cpu_s,"
        "encode_fps,path\n"
        "a,v,64x32,64,32,30,libx264,100,12.5,38.1,0.95,,0.5,0.475,210.5,a/v/64x32/qp30.mp4\n")
    build_report(tmp_path / "r.html", ReportConfig(eval_dirs=tuple(evals), enc_dirs=(enc,)))
    page = (tmp_path / "r.html").read_text()
    grid = page[page.index('id="grid"'):].split("</section>")[0]
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", grid)
    assert headers[-3:] == ["wall frames/s", "encoder CPU-s", "frames/CPU-s"]
    assert "<td class=num>200.0</td><td class=num>0.475</td><td class=num>210.5</td>" in grid  # 100 frames / 0.5 s
    caption = html.unescape(grid[:grid.index("<table")])
    for header, meaning in [("wall frames/s", "frames / encode_s"), ("frames/CPU-s", "frames / encoder CPU-s"),
                            ("encoder CPU-s", "CPU seconds of the cell's encoder thread")]:
        assert f"{header} = {meaning}" in caption


def test_bad_inputs_are_one_line(evals: list[Path], tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a study folder"):
        build_report(tmp_path / "r.html", ReportConfig(study_dir=tmp_path))
    with pytest.raises(BadInput, match="give a study folder"):
        build_report(tmp_path / "r.html", ReportConfig())
    with pytest.raises(BadInput, match="not an encode folder"):
        build_report(tmp_path / "r.html", ReportConfig(eval_dirs=tuple(evals), enc_dirs=(tmp_path,)))
    with pytest.raises(BadInput, match="is a folder"):
        build_report(tmp_path, ReportConfig(eval_dirs=tuple(evals)))
    run_study(evals, tmp_path / "study", StudyConfig())
    shutil.copy(evals[1] / "results.json", tmp_path / "copy.json")
    (evals[1] / "results.json").write_text((tmp_path / "copy.json").read_text().replace('"elapsed_s": 1.0', '"elapsed_s": 2.0'))
    result = CliRunner().invoke(main, ["report", str(tmp_path / "study"), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "changed since the study was made" in result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "r.html").exists()


def test_an_eval_folder_given_as_the_study_says_which_commands_take_it(evals: list[Path], tmp_path: Path) -> None:
    # issue 15: `vidvpr report EVALDIR` suggested `vidvpr study --out EVALDIR`, which study then refuses
    result = CliRunner().invoke(main, ["report", str(evals[0]), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert (f"{evals[0]}: an eval folder, not a study folder: report on it with vidvpr report --eval {evals[0]} "
            f"--out REPORT.html, or make its study first with vidvpr study {evals[0]} --out STUDY") in result.output
    suggested = CliRunner().invoke(main, ["report", "--eval", str(evals[0]), "--out", str(tmp_path / "r.html"),
                                          "--quiet"])
    assert suggested.exit_code == 0, suggested.output


def test_a_folder_holding_a_study_and_its_evals_names_them(evals: list[Path], tmp_path: Path) -> None:
    # a demo's folder (`vidvpr report demo-out`): the advice was "vidvpr study EVAL... --out demo-out makes one", a
    # study written into the dataset's own folder; the folder also holds `vidvpr demo study`'s study.json (not one)
    demo = tmp_path / "demo-out"
    run_study(evals, demo / "bitrate-study", StudyConfig())
    (demo / "study").mkdir()
    (demo / "study" / "study.json").write_text('{"schema": "vidvpr.demo-study/1"}')
    shutil.copytree(evals[0], demo / "eval")
    result = CliRunner().invoke(main, ["report", str(demo), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert f"{demo}: not a study folder (no study.json); did you mean {demo / 'bitrate-study'}?" in result.output
    result = CliRunner().invoke(main, ["study", str(demo), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert f"{demo}: no results.json; not a finished vidvpr eval folder; did you mean {demo / 'eval'}?" in result.output


def test_recalls_of_a_model_fitted_on_the_evaluated_database_are_labelled(evals: list[Path], tmp_path: Path) -> None:
    # vidvpr eval fits NetVLAD (and --pca-dim's whitening) of a model given without weights on the very database
    # it then searches; the report showed those recalls like any other model's
    for folder, weights, whitening in ((evals[0], "", True), (evals[1], "/runs/student.pt", False)):
        data = json.loads((folder / "results.json").read_text())
        data["models"][0].update(weights=weights, whitening=whitening)
        (folder / "results.json").write_text(json.dumps(data))
    out = tmp_path / "report.html"
    build_report(out, ReportConfig(eval_dirs=tuple(evals)))
    text = out.read_text()
    assert text.count("Fitted on this dataset") == 1
    assert ("Fitted on this dataset: the NetVLAD clusters and PCA-whitening of teacher were fitted on the database "
            "frames these recalls search") in text
    recall_section = text[text.index('<section id="recall">'):text.index('<section id="bjontegaard">')]
    assert recall_section.index("Fitted on this dataset") > recall_section.index("<h3>teacher</h3>")


def test_table_escapes_cells_and_headers() -> None:
    html = table(["<b>"], [["<i>&"]], caption="a<b")
    assert "&lt;b&gt;" in html and "&lt;i&gt;&amp;" in html and "a&lt;b" in html and "<i>" not in html


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no headless browser (/usr/bin/chromium)")
@pytest.mark.parametrize("width", [390, 1200])
def test_report_renders_in_headless_chromium_without_network(evals: list[Path], tmp_path: Path, width: int) -> None:
    import cv2

    out = tmp_path / "report.html"
    build_report(out, ReportConfig(eval_dirs=tuple(evals)))
    shot = tmp_path / "shot.png"
    argv = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",  # any network fetch would fail
            f"--window-size={width},12000", f"--screenshot={shot}", out.as_uri()]
    subprocess.run(argv, capture_output=True, timeout=120, check=True, cwd=tmp_path)
    image = cv2.imread(str(shot))[..., ::-1]
    magenta = np.all(np.abs(image.astype(int) - MAGENTA) < 8, axis=-1).sum()
    assert magenta > 0.5 * 300 * 80 * min(1.0, (width - 40) / 300) ** 2  # the embedded strip was drawn
    assert (image < 200).any(axis=-1).mean() > 0.02  # text and figures, not a blank page
    if width < 1000:
        return
    dom = subprocess.run([*argv[:-2], "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True, cwd=tmp_path).stdout
    assert dom.count("<section") == len(SECTIONS) and "<script" not in dom.lower()


A4_PRINT_WIDTH_PX = 688  # 210 mm less the print stylesheet's 2 x 14 mm margins, at CSS's 96 px per inch


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no headless browser (/usr/bin/chromium)")
def test_every_table_fits_an_a4_page_when_printed(evals: list[Path], tmp_path: Path) -> None:
    # printed, the Bjøntegaard table lost its last six columns (overlap, points, BD-recall, over kbps, overlap,
    # note) and the recall tables their recall@5...: a print shows no scroll bar, it cuts what overflows the page
    run_study(evals, tmp_path / "study", StudyConfig(budgets_kbps=(500.0,)))
    out = tmp_path / "report.html"
    build_report(out, ReportConfig(study_dir=tmp_path / "study"))
    text = out.read_text()
    assert text.count("@media print {") == 1
    measure = ("<script>document.title = [...document.querySelectorAll('div.scroll')]"
               ".map(d => d.scrollWidth - d.clientWidth).join(',')</script>")
    printed = tmp_path / "printed.html"  # the print stylesheet applied on a screen of the printed page's width
    csp = re.search(r"<meta http-equiv=Content-Security-Policy [^>]*>", text).group(0)  # it forbids scripts
    printed.write_text(text.replace(csp, "").replace("@media print {", "@media all {")
                       .replace("</body>", measure + "</body>"))
    argv = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            f"--window-size={A4_PRINT_WIDTH_PX},3000", "--dump-dom", printed.as_uri()]
    dom = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True, cwd=tmp_path).stdout
    overflows = [int(px) for px in re.search(r"<title>([-0-9,]*)</title>", dom).group(1).split(",")]
    assert len(overflows) >= 5 and "Bjøntegaard" in dom  # the tables were measured
    assert max(overflows) <= 0, overflows

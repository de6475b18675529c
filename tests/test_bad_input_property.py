"""No traceback for any input: every reader of a user-supplied or previously written file returns
a result or raises a one-line BadInput that names the file (property tests with Hypothesis).

Inputs are random bytes and text (invalid UTF-8, BOMs, NUL bytes, huge numbers, NaN/Infinity,
deep nesting, very long lines) and mutations of valid files: line edits, cell and token swaps,
truncation and byte flips, and for JSON and TOML edits of the parsed tree (keys dropped or added,
a value replaced by another type, nested, NaN) written back out. The valid files are written by
hand (trajectories) or by the real pipeline once per session (sidecars, manifests, exports,
encode cells and tables, a demo). Each reader's test checks only that property; the plain
regression tests at the end pin the inputs that once broke it.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import itertools
import json
import math
import re
import shutil
import tomllib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.test_manifest import make_dataset, rerecord_outputs, sliced_views  # noqa: F401  (a session fixture)
from tests.record_strategies import record_kinds, records
from tests.test_study import RATES, RECALLS, curve_rows, write_eval
from vidvpr.cli import main
from vidvpr.core.camera_records import CalibrationFile
from vidvpr.core.errors import BadInput
from vidvpr.core.records import FileRecord
from vidvpr.core.sidecars import CellSidecar, EquirectSidecar, SliceSidecar
from vidvpr.dataset import definition as dataset_definition
from vidvpr.dataset.export import ExportConfig, ExportRecord, export_vpr
from vidvpr.dataset.manifest import build_manifest, load_manifest
from vidvpr.dataset.records import ManifestRecord, PositivesFile
from vidvpr.dataset.rows import read_rows
from vidvpr.dataset.vpr_names import VprName, format_vpr_filename, parse_vpr_filename
from vidvpr.demo import definition as demo_definition
from vidvpr.demo.make import DemoConfig, DemoRecord, make_demo
from vidvpr.demo.study import StudentEntry, StudyRecord
from vidvpr.distill.config import StudentRecord
from vidvpr.distill.degrade import parse_low_quality
from vidvpr.distill.frames import FramesRecord, FrameStore
from vidvpr.encoding.grid import encode_grid
from vidvpr.encoding.plan import EncodeConfig, parse_resolutions
from vidvpr.encoding.table import EncodeTable
from vidvpr.evaluate.results import EvalResults
from vidvpr.media.ffmpeg import DESCRIPTIONS_DIR, FfmpegDescription
from vidvpr.core.provenance import cache_dir
from vidvpr.core.records import FileRecord
from vidvpr.models.graphs import GraphRecord
from vidvpr.geo.readers import read_trajectory
from vidvpr.ingest import ImportConfig, import_footage
from vidvpr.ingest.camera import camera_from_options, undistortion
from vidvpr.ingest.images import name_time_s, read_rgb, scan_image
from vidvpr.ingest.positions import DefinedRecording, definition_text, trajectory_text
from vidvpr.media.insv import read_calibration_file, read_trailer
from vidvpr.media.insv.reader import cut_short_mp4
from vidvpr.media.insv.info import InsvInfo, encode_info
from vidvpr.media.insv.telemetry import GpsFix, encode_exposure, encode_frame_times, encode_gps, encode_imu
from vidvpr.media.insv.trailer import EXPOSURE, FRAME_TIMES, GPS, GYRO, INFO, build_trailer
from vidvpr.slicing.config import SliceConfig
from vidvpr.slicing.slicer import slice_video
from vidvpr.study.inputs import load_evals
from vidvpr.study.stage import StudyConfig, compute_study

REPO = Path(__file__).resolve().parents[1]
PROPERTY = settings(deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
USER_ERROR_CODES = {0, 2, 3, 4, 5}  # 1 is "internal error" in this CLI


def prop(examples: int) -> settings:
    """The settings of these tests with `examples` examples (sized to keep the file within ~60 s)."""
    return settings(PROPERTY, max_examples=examples)


# ---------------------------------------------------------------- the property


def assert_result_or_one_line_bad_input(call: Callable[[], Any], path: Path | str) -> Any:
    """`call()`'s result, or None when it raised a BadInput of one line naming `path` and a problem.

    Any other exception fails the test (Hypothesis shows the input); so does a numpy overflow or
    invalid-value warning, which means a value went unchecked into the arithmetic.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            return call()
    except BadInput as exc:
        message = str(exc)
        assert message.splitlines() == [message], f"BadInput is not one line: {message!r}"
        assert str(path) in message, f"BadInput does not name {path}: {message!r}"
        assert message.replace(str(path), "").strip(" :"), f"BadInput names no problem: {message!r}"
        return None


def assert_user_error_exit(result: Any) -> None:
    """A CLI run ended with a user-facing code and at most one error line on stderr."""
    lines = result.stderr.splitlines()
    errors = [line for line in lines if not line.startswith("vidvpr: WARNING")]
    assert result.exit_code in USER_ERROR_CODES, f"exit {result.exit_code}: {result.stderr!r}"
    assert len(errors) <= 1 and all(line.startswith("vidvpr: error:") for line in errors), result.stderr
    assert (result.exit_code == 0) == (not errors), result.stderr


# ---------------------------------------------------------------- strategies: random input

EXTREME_NUMBERS = (
    "1e308", "-1e308", "1.7976931348623157e+308", "-1.7976931348623157e+308", "1e200", "-1e200", "1e154", "1e-300",
    "5e-324", "0", "-0", "0.0", "1", "-1", "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999", "9" * 400,
    "9" * 5000, "18446744073709551617", "4294967296", "360", "1e5", ".5", "5.", "0x10", "1_000", "\u0663",
)
DANGEROUS_STRINGS = (
    "", " ", "\x00", "x\x00y", "\ufeff", "\u3000", "\u2028", "\r", "\n", "a\nb", "\t", '"', "'", ",", "#", "@",
    "/", "\\", "..", "../../..", "/etc", "~", "a" * 1000, "<", "&", "&amp;", "]]>", "<![CDATA[", "${HOME}", "%s%n",
    "\ufffd", "true", "false", "null", "None", "[]", "{}", "[1,2]", '{"a":1}', "all", "5f", "0f", "1" + "0" * 400 + "f",
    "2024-13-45T99:99:99Z", "0000-00-00T00:00:00Z", "9999-12-31T23:59:59+14:00", "2024-05-01T10:00:00+25:00",
    "0001-01-01T00:00:00-23:59", "1970-01-01", "+25", "99Z", "dbwalk", "yaw000_pitch+00", "database", "query",
    "views/dbwalk/yaw000_pitch+00.mp4", "vidvpr.slice/1", "vidvpr.slice/2",
)
extreme_number = st.sampled_from(EXTREME_NUMBERS)
dangerous_string = st.sampled_from(DANGEROUS_STRINGS)
special_token = st.one_of(extreme_number, dangerous_string)
token = st.one_of(extreme_number, dangerous_string, st.integers().map(str), st.floats().map(repr), st.text(max_size=12))
number_text = st.one_of(extreme_number, extreme_number, st.floats().map(repr), st.integers(-10**6, 10**6).map(str),
                        st.floats(-1e3, 1e3).map(repr))
WHOLE_FILES = (
    b"", b"\xef\xbb\xbf", b"\xff\xfe\x00\x00", b"\xfe\xff", b"\x00" * 16, b"\xff" * 8, b"\xc3\x28", b"\xed\xa0\x80",
    b"[" * 100_000, b"{" * 100_000, b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'{"schema":' + b"[" * 990 + b"]" * 990 + b"}", b"a = " + b"[" * 5000 + b"]" * 5000,
    b"a = " + b"{b = " * 3000 + b"1" + b"}" * 3000, b"x" * 300_000,
    b"9" * 100_000, b"NaN", b"Infinity", b"null", b"[]", b"{}", b'"text"', b"1e999", b"<", b"<?xml?>",
    b"<gpx>" * 1000, b"\n" * 10_000, b"t,x,y\n" + b"0,0,0\n" * 2, b"t,x,y\n0,0,0\n1,1e308,1e308\n",
    b"timestamp\n", b"0 0 0 0 0 0 0 0\n1 0 0 0 0 0 0 0\n",
)
random_bytes = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(lambda text: text.encode("utf-8")),
    st.sampled_from(WHOLE_FILES),
    st.lists(token, max_size=40).map(lambda parts: ",".join(parts).encode("utf-8", "surrogatepass")),
)


# ---------------------------------------------------------------- strategies: text mutations

TOKEN_PATTERN = re.compile(r'[^,\s<>"=\[\]{}:]+')


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> bytes:
    """`text` after 1-6 line, token or byte edits (delete/duplicate/swap lines, replace a token,
    insert a special string, CRLF/CR line ends, BOM, truncation, byte flips)."""
    lines = text.splitlines(keepends=True) or [""]
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(("delete", "duplicate", "swap", "token", "token", "token", "insert", "line")))
        i = draw(st.integers(0, len(lines) - 1))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "token":
            matches = list(TOKEN_PATTERN.finditer(lines[i]))
            if matches:
                m = draw(st.sampled_from(matches))
                lines[i] = lines[i][:m.start()] + draw(token) + lines[i][m.end():]
        elif op == "insert":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(token) + lines[i][at:]
        else:
            lines.insert(i, draw(st.lists(token, max_size=8).map(",".join)) + "\n")
    data = _encode("".join(lines))
    ending = draw(st.sampled_from((None, None, b"\r\n", b"\r")))
    if ending:
        data = data.replace(b"\n", ending)
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            op = draw(st.sampled_from(("truncate", "flip", "bom")))
            if op == "truncate":
                data = data[:draw(st.integers(0, len(data)))]
            elif op == "flip" and data:
                at = draw(st.integers(0, len(data) - 1))
                data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
            else:
                data = b"\xef\xbb\xbf" + data
    return data


# ---------------------------------------------------------------- strategies: tree mutations

DEEP, HUGE = "\x00deep\x00", "\x00huge\x00"  # a deeply nested list, a 5000-digit number: put in by the dumpers
json_numbers = st.one_of(
    st.integers(), st.integers(min_value=2**63 - 2, max_value=10**400), st.integers(-(10**400), -(2**63) - 1),
    st.floats(), st.sampled_from((0.0, -0.0, 1e308, -1e308, 1.7976931348623157e308, 1e200, 5e-324, 1e-320)),
    st.just(HUGE),
)
scalars = st.one_of(st.none(), st.booleans(), json_numbers, special_token, st.text(max_size=12), st.just(DEEP))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.one_of(special_token, st.text(max_size=8)),
                                                                      children, max_size=4),
    max_leaves=8,
)


def _slots(tree: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in `tree`, parents before children."""
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else []
        for key in keys:
            found.append((node, key))
            stack.append(node[key])
    return found


def _another_type(value: Any) -> list[Any]:
    """The same value as other JSON types: a string, a number, wrapped, a float spelled out."""
    swaps: list[Any] = [[value], {"value": value}, None, str(value), json.dumps(value, default=str)]
    if isinstance(value, bool):
        swaps += [int(value), float(value)]
    elif isinstance(value, int):
        swaps += [-value, value * 10**30, bool(value), value + 0.5 if abs(value) < 2**1000 else str(value)]
    elif isinstance(value, float):
        swaps += [int(value) if math.isfinite(value) else 0, math.nan, math.inf, -value, value * 1e300]
    elif isinstance(value, str):
        swaps += [value * 50, value + "\n", value + "\x00", value + "\u2028", "", value.upper(), value[:-1], len(value),
                  "/" + value, "../" + value]
        if re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
            swaps.append(float(value))
    elif isinstance(value, list):
        swaps += [value[:-1], value + value[-1:], value[::-1], {}, []]
    elif isinstance(value, dict):
        swaps += [list(value.values()), list(value), {}, []]
    return swaps


@st.composite
def mutated_tree(draw: st.DrawFn, tree: Any) -> Any:
    """`tree` after 1-3 structural edits: drop a key or item, add an unknown key, duplicate an item,
    replace a value by another JSON type (or a random value), nest it."""
    box = {"root": copy.deepcopy(tree)}
    for _ in range(draw(st.integers(1, 3))):
        node, key = draw(st.sampled_from(_slots(box)))
        op = draw(st.sampled_from(("drop", "add", "duplicate", "swap_type", "swap_type", "random")))
        if op == "drop" and node is not box:
            del node[key]
        elif op == "add":  # to the container itself, or beside a leaf
            target = node[key] if isinstance(node[key], (dict, list)) or node is box else node
            if isinstance(target, dict):
                target[draw(st.one_of(special_token, st.text(max_size=8)))] = draw(json_values)
            elif isinstance(target, list):
                target.insert(draw(st.integers(0, len(target))), draw(json_values))
            else:
                node[key] = draw(json_values)
        elif op == "duplicate" and isinstance(node, list):
            node.insert(key, copy.deepcopy(node[key]))
        elif op == "swap_type":
            node[key] = draw(st.sampled_from(_another_type(node[key])))
        else:
            node[key] = draw(json_values)
    return box["root"]


def deep_text(text: str, depth: int = 5000) -> str:
    return text.replace(json.dumps(DEEP), "[" * depth + "]" * depth).replace(json.dumps(HUGE), "9" * 5000)


def dump_json(tree: Any) -> bytes:
    """JSON text of a mutated tree (NaN and infinities as JS constants, DEEP as deep nesting)."""
    return _encode(deep_text(json.dumps(tree, allow_nan=True, default=str)))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value("null" if v is None else v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None) + "}"
    return json.dumps(str(value))


def dump_toml(tree: Any) -> bytes:
    """TOML of a mutated tree, every table inline (None left out; a non-table root under key 'value')."""
    table = tree if isinstance(tree, dict) else {"value": tree}
    lines = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    return _encode(deep_text("\n".join(lines) + "\n", 600))


def json_file(tree: Any) -> st.SearchStrategy[bytes]:
    """Random bytes, mutated trees, and byte-level mutations of mutated trees."""
    text = json.dumps(tree, indent=1)
    return st.one_of(
        random_bytes,
        mutated_tree(tree).map(dump_json),
        mutated_tree(tree).map(dump_json).flatmap(lambda data: mutated_text(data.decode("utf-8", "replace"))),
        mutated_text(text),
    )


def toml_file(text: str) -> st.SearchStrategy[bytes]:
    tree = tomllib.loads(text)
    return st.one_of(random_bytes, mutated_tree(tree).map(dump_toml), mutated_text(text))


# ---------------------------------------------------------------- valid examples

CSV_XY = "t,x,y,z,heading\n0,0,0,0,10\n0.5,1,0.5,0,20\n1.0,2,1,0.1,30\n"
CSV_LATLON = "t,lat,lon,alt,heading\n0,48.137,11.575,520,0\n1,48.1371,11.5751,520,10\n2,48.1372,11.5752,521,20\n"
TUM = ("# timestamp tx ty tz qx qy qz qw\n0.0 0 0 0 0 0 0 1\n0.5 0.1 0 0.2 0 0 0.0998 0.995\n"
       "1.0 0.2 0 0.4 0 0 0.1987 0.980\n")
GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="vidvpr tests" xmlns="http://www.topografix.com/GPX/1/1">
<trk><name>walk</name><trkseg>
<trkpt lat="48.137" lon="11.575"><ele>520</ele><time>2024-05-01T10:00:00Z</time></trkpt>
<trkpt lat="48.1371" lon="11.5751"><ele>520.5</ele><time>2024-05-01T10:00:01.5Z</time></trkpt>
<trkpt lat="48.1372" lon="11.5752"><ele>521</ele><time>2024-05-01T10:00:03+00:00</time></trkpt>
</trkseg></trk></gpx>
"""
KEYFRAMES = {"fps": 30.0, "scale": 0.85, "axes": "xz", "keyframes": [
    {"frame": 0, "trans": [0, 0, 0], "rot": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
    {"frame": 15, "trans": [0.1, 0, 1.2], "rot": [0, 0, 0, 1]},
    {"frame": 30, "trans": [0.2, 0.1, 2.4], "rot": [0, 0.0998, 0, 0.995]},
]}
DATASET_TOML = """
[dataset]
name = "tiny"
root = "."
views_dir = "views"
utm_zone = 32
strict = false
shared_local_frame = true

[sampling]
database = "2f"
query = "0.5s"

[positives]
radius_m = 2.5
max_heading_diff_deg = 45.0

[[recordings]]
name = "dbwalk"
split = "database"
trajectory = "traj/dbwalk.csv"
views = ["yaw000_pitch+00", "yaw090_pitch+00"]

[[recordings]]
name = "qwalk"
split = "query"
views_dir = "other_views"

[recordings.trajectory]
path = "traj/qwalk.json"
format = "keyframes-json"
time_offset_s = 0.1
axes = "xz"
fps = 30.0
scale = 0.5
"""
CALIBRATION_YAML = """%YAML:1.0
---
image_width: 32
image_height: 24
camera_matrix: !!opencv-matrix
   rows: 3
   cols: 3
   dt: d
   data: [ 30., 0., 15.5, 0., 30., 11.5, 0., 0., 1. ]
distortion_coefficients: !!opencv-matrix
   rows: 1
   cols: 5
   dt: d
   data: [ -0.2, 0.05, 0.001, -0.001, 0. ]
"""
CALIBRATION_JSON_TEXT = json.dumps({"camera_matrix": [[30.0, 0, 15.5], [0, 30.0, 11.5], [0, 0, 1]],
                                    "distortion": [-0.2, 0.05, 0.001, -0.001, 0.0], "image_width": 32,
                                    "image_height": 24})
DEMO_TOML = (REPO / "manifests" / "demo.toml").read_text()
ONE_R_CALIBRATION = ("2_1480.69_1517.57_1520.13_-0.186949_0.0336344_-179.227_1479.61_4553.12_1526.43_0.82149_"
                     "0.0305849_0.894074_6080_3040_3105")
TINY_DEMO = {"route": {"length_m": 40.0, "aspect": 1.0},
             "places": {"count": 4, "shared_designs": 0, "places_sharing": 0},
             "traversals": [{"name": "db", "role": "database", "fps": 0.1}, {"name": "q", "role": "query", "fps": 0.1}],
             "sizes": {"tiny": [32, 16]}}


# ---------------------------------------------------------------- strategies: files made from their grammar
# (every value from the extremes: valid layout, numbers that overflow, times that do not exist)


@st.composite
def generated_csv(draw: st.DrawFn, required: tuple[str, ...], optional: tuple[str, ...],
                  cells: dict[str, st.SearchStrategy[str]]) -> bytes:
    names = list(required) + draw(st.lists(st.sampled_from(optional), unique=True, max_size=len(optional)))
    names = draw(st.permutations(names))
    rows = draw(st.lists(st.tuples(*(cells.get(name, number_text) for name in names)), min_size=1, max_size=4))
    return _encode("\n".join([",".join(names)] + [",".join(row) for row in rows]) + "\n")


tum_rows = st.lists(st.lists(number_text, min_size=8, max_size=8).map(" ".join), min_size=1, max_size=4)
generated_tum = tum_rows.map(lambda rows: _encode("# timestamp tx ty tz qx qy qz qw\n" + "\n".join(rows) + "\n"))
latitude = st.one_of(st.floats(-80, 84).map(repr), number_text)
longitude = st.one_of(st.floats(-180, 180).map(repr), number_text)
utc_offset = st.integers(-26 * 60, 26 * 60).map(  # ±24 h and beyond
    lambda minutes: f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}")
gpx_time = st.one_of(
    st.tuples(st.datetimes(), st.sampled_from(("Z", ""))).map(lambda pair: pair[0].isoformat() + pair[1]),
    st.tuples(st.datetimes(), utc_offset).map(lambda pair: pair[0].isoformat() + pair[1]),
    dangerous_string,
)


@st.composite
def generated_gpx(draw: st.DrawFn) -> bytes:
    points = []
    for lat, lon, ele, time in draw(st.lists(st.tuples(latitude, longitude, st.none() | number_text,
                                                       st.none() | gpx_time), min_size=1, max_size=4)):
        inner = ("" if ele is None else f"<ele>{ele}</ele>") + ("" if time is None else f"<time>{time}</time>")
        points.append(f'<trkpt lat="{lat}" lon="{lon}">{inner}</trkpt>')
    return _encode(GPX.split("<trkpt")[0] + "\n".join(points) + "\n</trkseg></trk></gpx>\n")


pose_number = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**6, 10**6),
                        st.floats(-10, 10), st.sampled_from((1e308, -1e308, 1e200, -1e200, 1e-300, 5e-324, 0.0, -0.0)))
keyframe = st.fixed_dictionaries(
    {"frame": pose_number, "trans": st.lists(pose_number, min_size=3, max_size=3)},
    optional={"rot": st.lists(pose_number, min_size=4, max_size=4)
              | st.lists(st.lists(pose_number, min_size=3, max_size=3), min_size=3, max_size=3)})
generated_keyframes = st.fixed_dictionaries(
    {"keyframes": st.lists(keyframe, max_size=4)},
    optional={"fps": pose_number, "scale": pose_number, "axes": st.sampled_from(("xy", "xz")) | dangerous_string},
).map(dump_json)
GENERATED = {
    "csv-xy": generated_csv(("t", "x", "y"), ("z", "heading"), {}),
    "csv-latlon": generated_csv(("t", "lat", "lon"), ("alt", "heading"), {"lat": latitude, "lon": longitude}),
    "tum": generated_tum,
    "gpx": generated_gpx(),
    "keyframes-json": generated_keyframes,
}


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory, sliced_views: Path) -> dict[str, Any]:  # noqa: F811
    """One real run of every stage on tiny media: the files the record readers read back."""
    base = tmp_path_factory.mktemp("bad-input")
    definition = make_dataset(base / "ds", sliced_views)
    manifest = base / "ds" / "manifest"
    build_manifest(dataset_definition.load_definition(definition), manifest)
    export_vpr(manifest, base / "export", ExportConfig())
    view = base / "ds" / "views" / "dbwalk" / "yaw000_pitch+00.mp4"
    encode_grid([view], base / "enc", EncodeConfig(qps=(30,), resolutions=parse_resolutions("64x36"), vmaf=False,
                                                   preset="ultrafast"))
    tiny = demo_definition.definition_from_data(TINY_DEMO, "tiny demo")
    make_demo(base / "demo", DemoConfig(definition=tiny, size="tiny"))
    imported = import_sample(base / "import-source", base / "ds-imported" / "views")
    make_demo(base / "fisheye", DemoConfig(definition=tiny, size="tiny", camera="dual-fisheye"))
    insv = base / "fisheye" / "db" / "db.insv"
    slice_video(insv, base / "pano", SliceConfig(equirect=True))
    assert CliRunner().invoke(main, ["probe", str(insv), "--calibration-out", str(base / "calibration.json")]).exit_code == 0
    cell_video = base / "enc" / "dbwalk" / "yaw000_pitch+00" / "64x36" / "qp30.mp4"
    FrameStore(base / "frames").frames_of(cell_video, FileRecord.of(cell_video), [0, 2, 3])
    graph = base / "graphs" / "64x36.onnx"  # the record of an exported graph (its content does not matter here)
    graph.parent.mkdir()
    graph.write_bytes(b"onnx")
    GraphRecord(model="netvlad-efficientnet-lite0", fingerprint="0123456789abcdef", head="descriptors",
                outputs=["descriptors"], input_size=[64, 36], opset=17, exporter="torch.onnx.export (TorchScript)",
                graph=FileRecord.of(graph, graph.parent), versions={"torch": "2"}, elapsed_s=1.0,
                ).save(graph.with_suffix(".json"))
    records = {"slice": view.with_suffix(".json"), "imported": imported,
               "cell": base / "enc" / "dbwalk" / "yaw000_pitch+00" / "64x36" / "qp30.json",
               "manifest": manifest / "manifest.json", "positives": manifest / "positives.json",
               "table": base / "enc" / "encodes.json", "export": base / "export" / "export.json",
               "demo": base / "demo" / "demo.json", "equirect": base / "pano" / "db.json",
               "calibration": base / "calibration.json",
               "results": write_eval(base / "eval", curve_rows("teacher", "libx264", RATES[:3], RECALLS[:3])
                                     + curve_rows("teacher", "libx265", RATES[1:4], RECALLS[:3])) / "results.json",
               "frames": next((base / "frames").glob("*.json")),
               "ffmpeg": next((cache_dir() / DESCRIPTIONS_DIR).glob("*.json")), "graph": graph.with_suffix(".json"),
               "student": _student_sidecar(base / "student.json", view),
               "study": _study_record(base / "study.json", base / "student.json")}
    return {"base": base, "definition": definition, "root": base / "ds", "manifest": manifest, "records": records,
            "insv": insv, "cell_video": cell_video}


def import_sample(source: Path, views: Path) -> Path:
    """An imported view whose sidecar fills every record: odd-sized images timed by their names, a
    calibration file, undistortion. Returns the sidecar."""
    from tests.media import perspective_test_frame, write_png

    for index, stamp in enumerate((1700000000.0, 1700000000.25, 1700000001.0)):
        write_png(source / f"cam_{stamp:.2f}.png", perspective_test_frame(33, 24, index))
    (source.parent / "cal.json").write_text(CALIBRATION_JSON_TEXT.replace('"image_width": 32', '"image_width": 33'))
    summary = import_footage([source], views, ImportConfig(calibration=source.parent / "cal.json", undistort=True,
                                                           recording="cam"))
    return Path(summary.views[0].sidecar)


def _student_sidecar(path: Path, video: Path) -> Path:
    """A `vidvpr distill` student.json of the shape training writes (`vidvpr demo study` reads it back);
    written here rather than by a training run, which would cost the session a model and a minute."""
    from vidvpr.core.records import FileRecord

    StudentRecord(
        model="netvlad-efficientnet-lite0", checkpoint=FileRecord.of(video), losses=["ickd", "mse", "triplet"],
        teacher={"name": "netvlad-efficientnet-lite0", "weights": "", "fingerprint": "sha256:0"},
        weights={"lambda_ickd": 0.02, "lambda_mse": 4000.0, "margin": 0.1}, distilled_images="all",
        triplet_radii_m={"positive": 2.0, "negative": 5.0, "reference": 5.0},
        data={"kind": "vidvpr-dataset", "places": 12, "images": {"dbwalk/yaw000_pitch+00": "sha256:1"}, "lq": []},
        degradation=["64x36/qp30", "lowlight:-3"], seed=0, config={"lr": 0.0001, "train": "manifest"}, steps=3,
        epochs=1, pairs=12, queries=12, final_losses={"loss": 0.5}, teacher_forwards={"targets": 12, "epochs": [0]},
        versions={"vidvpr": "0"}, command=["vidvpr", "distill"], elapsed_s=1.0,
        videos={"reference/dbwalk/yaw000_pitch+00": FileRecord.of(video).hash}, max_steps=3, steps_per_epoch=4,
    ).save(path)
    return path


def _study_record(path: Path, student: Path) -> Path:
    """A `vidvpr demo study` study.json of the shape the study writes (one student, both worlds' cells)."""
    from vidvpr.core.records import FileRecord

    entry = StudentEntry(model="netvlad-efficientnet-lite0:models/distilled.pt", loss=["ickd", "mse", "triplet"],
                         steps=3, steps_per_epoch=4, lq=["64x36/qp30"], seed=0,
                         sidecar=FileRecord.of(student, path.parent),
                         checkpoint=FileRecord.of(student, path.parent),
                         trained_videos=StudentRecord.load(student).videos)
    StudyRecord(train_cell="64x36/qp30", eval_cells=["64x36/qp30"], night_cells=["reference"],
                config={"train_qp": 30, "night_lq": ["lowlight:-3"]}, max_steps=3,
                worlds={"train": {"seed": 11}, "heldout": {"seed": 23, "videos": {"night/night.mp4": "sha256:2"}}},
                teacher={"name": "netvlad-efficientnet-lite0", "fingerprint": "0"}, students={"distilled": entry},
                heldout_videos_trained_on=[], recall_at_1={"heldout": {"teacher": {"64x36/qp30": 0.5}}},
                results={"heldout": "study/eval-heldout/results.csv"}, plot="study/worlds.png",
                stages_s={"train distilled": 1.0}, versions={"vidvpr": "0"}, command=["vidvpr", "demo", "study"],
                ).save(path)
    return path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the examples are written (one file name per test, overwritten by each example)."""
    return tmp_path_factory.mktemp("bad-input-examples")


def write(folder: Path, name: str, data: bytes) -> Path:
    """Write `folder/name` afresh (replacing a file is much slower than making one on some file systems)."""
    path = folder / name
    path.unlink(missing_ok=True)
    path.write_bytes(data)
    return path


def damage_file(folder: Path, name: str, content: bytes | None) -> None:
    """Apply a drawn damage: remove `folder/name` (None) or write `content` in its place."""
    if content is None:
        (folder / name).unlink()
    else:
        write(folder, name, content)


# ---------------------------------------------------------------- trajectories


reader_options = st.fixed_dictionaries({}, optional={  # read_trajectory's keywords for tum and keyframes-json
    "axes": st.sampled_from(("xy", "xz")), "fps": st.floats(0.1, 120), "scale": st.floats(0.01, 100)})


def trajectory_case(fmt: str, valid: str, examples: int) -> Callable[..., None]:
    """A property test: any file read as `fmt` is a trajectory or a one-line BadInput."""

    @prop(examples)
    @given(data=st.one_of(random_bytes, mutated_text(valid), GENERATED[fmt]), options=reader_options)
    def test(scratch: Path, data: bytes, options: dict[str, Any]) -> None:
        if fmt not in ("tum", "keyframes-json"):
            options = {}
        path = write(scratch, f"traj-{fmt}.txt", data)
        assert_result_or_one_line_bad_input(lambda: read_trajectory(path, fmt, **options), path)

    return test


test_any_csv_xy_trajectory_is_read_or_refused_in_one_line = trajectory_case("csv-xy", CSV_XY, 250)
test_any_csv_latlon_trajectory_is_read_or_refused_in_one_line = trajectory_case("csv-latlon", CSV_LATLON, 250)
test_any_tum_trajectory_is_read_or_refused_in_one_line = trajectory_case("tum", TUM, 250)
test_any_gpx_trajectory_is_read_or_refused_in_one_line = trajectory_case("gpx", GPX, 250)


@prop(300)
@given(data=st.one_of(json_file(KEYFRAMES), GENERATED["keyframes-json"]), options=reader_options)
def test_any_keyframes_json_trajectory_is_read_or_refused_in_one_line(scratch: Path, data: bytes,
                                                                       options: dict[str, Any]) -> None:
    path = write(scratch, "keyframes.json", data)
    assert_result_or_one_line_bad_input(lambda: read_trajectory(path, "keyframes-json", **options), path)


@prop(250)
@given(data=st.one_of(random_bytes, *GENERATED.values(), *(mutated_text(text) for text in (CSV_XY, CSV_LATLON, TUM, GPX,
                                                                                         json.dumps(KEYFRAMES)))),
       suffix=st.sampled_from(("", ".csv", ".txt", ".gpx", ".json", ".tum", ".GPX", ".xml")))
def test_any_file_in_auto_format_is_read_or_refused_in_one_line(scratch: Path, data: bytes, suffix: str) -> None:
    path = write(scratch, f"auto{suffix}", data)
    assert_result_or_one_line_bad_input(lambda: read_trajectory(path, "auto"), path)


# ---------------------------------------------------------------- definitions


@prop(250)
@given(data=toml_file(DATASET_TOML))
def test_any_dataset_definition_is_loaded_or_refused_in_one_line(scratch: Path, data: bytes) -> None:
    path = write(scratch, "def.toml", data)
    assert_result_or_one_line_bad_input(lambda: dataset_definition.load_definition(path), path)


override_value = st.one_of(st.none(), token, st.integers(), st.floats(), st.booleans(),
                           st.integers(min_value=10**20, max_value=10**400))


@pytest.fixture(scope="module")
def loaded_definition(scratch: Path) -> dataset_definition.DatasetDefinition:
    return dataset_definition.load_definition(write(scratch, "def-overrides.toml", DATASET_TOML.encode()))


@prop(200)
@given(overrides=st.fixed_dictionaries({key: override_value for key in dataset_definition.OVERRIDE_SECTIONS}))
def test_any_override_values_are_applied_or_refused_in_one_line(loaded_definition: Any,
                                                                overrides: dict[str, Any]) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            dataset_definition.with_overrides(loaded_definition, **overrides)
    except BadInput as exc:  # names the option it came from, or the file
        message = str(exc)
        assert message.splitlines() == [message], message
        options = tuple(dataset_definition.OVERRIDE_OPTIONS.values())
        assert loaded_definition.source in message or message.startswith(options), message


@prop(250)
@given(data=toml_file(DEMO_TOML))
def test_any_demo_definition_is_loaded_or_refused_in_one_line(scratch: Path, data: bytes) -> None:
    path = write(scratch, "demo.toml", data)
    assert_result_or_one_line_bad_input(lambda: demo_definition.load_definition(path), path)


# ---------------------------------------------------------------- records

RECORDS = {"slice": SliceSidecar, "imported": SliceSidecar, "cell": CellSidecar, "manifest": ManifestRecord,
           "positives": PositivesFile, "table": EncodeTable, "export": ExportRecord, "demo": DemoRecord,
           "equirect": EquirectSidecar, "calibration": CalibrationFile, "results": EvalResults,
           "frames": FramesRecord,
           "ffmpeg": FfmpegDescription, "graph": GraphRecord, "student": StudentRecord, "study": StudyRecord}
RECORD_KINDS = record_kinds()


@pytest.mark.parametrize("kind", list(RECORDS))
def test_any_record_json_is_loaded_or_refused_in_one_line(kind: str, pipeline: dict[str, Any], scratch: Path) -> None:
    source = pipeline["records"][kind]
    tree = json.loads(source.read_text())
    RECORDS[kind].load(source)  # the valid file is valid

    @prop(100)
    @given(data=json_file(tree))
    def check(data: bytes) -> None:
        path = write(scratch, f"{kind}.json", data)
        assert_result_or_one_line_bad_input(lambda: RECORDS[kind].load(path), path)

    check()


@pytest.mark.parametrize("kind", RECORD_KINDS, ids=lambda kind: f"{kind.__module__.removeprefix('vidvpr.')}.{kind.__name__}")
def test_any_damaged_record_of_every_kind_is_loaded_or_refused_in_one_line(kind: type, scratch: Path) -> None:
    """Every record kind, those the pipeline above does not write too: any valid instance (drawn from
    the model, tests/record_strategies.py), its JSON damaged as above."""
    name = f"drawn-{kind.__module__}.{kind.__name__}.json"

    @prop(60)
    @given(data=records(kind).flatmap(lambda record: json_file(record.to_json())))
    def check(data: bytes) -> None:
        path = write(scratch, name, data)
        assert_result_or_one_line_bad_input(lambda: kind.load(path), path)

    check()


# ---------------------------------------------------------------- the study's reader of results.json


def test_any_results_json_is_studied_or_refused_in_one_line(pipeline: dict[str, Any]) -> None:
    """What `vidvpr study` does with an eval folder (read, check, curves, deltas, fronts) on any damage."""
    source = pipeline["records"]["results"]
    folder = pipeline["base"] / "eval-damaged"
    folder.mkdir(exist_ok=True)
    tree = json.loads(source.read_text())
    compute_study(load_evals([source.parent]), StudyConfig())  # the valid file is studied

    @prop(150)
    @given(data=json_file(tree), recall_at=st.sampled_from(((1,), (5,), (1, 5))))
    def check(data: bytes, recall_at: tuple[int, ...]) -> None:
        write(folder, "results.json", data)
        assert_result_or_one_line_bad_input(lambda: compute_study(load_evals([folder]), StudyConfig(recall_at=recall_at)),
                                            folder)

    check()


def one_key_dropped(tree: Any) -> Iterator[tuple[str, Any]]:
    """Yield (what was done, `tree`) with one key of one object removed, in turn (edited in place and
    restored: use it before the next)."""
    for node, key in _slots({"root": tree}):
        if isinstance(node, dict) and key != "root":
            value = node.pop(key)
            yield f"key {key!r} dropped", tree
            node[key] = value


def test_every_key_of_a_results_json_dropped_is_studied_or_refused_in_one_line(pipeline: dict[str, Any]) -> None:
    # found this way: a row without recall["1"] was KeyError: 1 in study/curves.py (issue 15.7)
    folder = pipeline["base"] / "eval-keys"
    folder.mkdir(exist_ok=True)
    for edit, tree in one_key_dropped(json.loads(pipeline["records"]["results"].read_text())):
        write(folder, "results.json", json.dumps(tree).encode())
        with noted(f"input: results.json with {edit}"):
            assert_result_or_one_line_bad_input(lambda: compute_study(load_evals([folder]), StudyConfig()), folder)


def test_study_command_on_a_damaged_results_json_exits_with_a_user_error_code(pipeline: dict[str, Any]) -> None:
    folder = pipeline["base"] / "eval-cli"
    folder.mkdir(exist_ok=True)
    tree = json.loads(pipeline["records"]["results"].read_text())
    runs = itertools.count()

    @prop(40)
    @given(data=json_file(tree))
    def check(data: bytes) -> None:
        write(folder, "results.json", data)
        out = pipeline["base"] / f"cli-study-{next(runs)}"
        try:
            assert_user_error_exit(cli_run("study", str(folder), "--out", str(out), "--quiet"))
        finally:
            shutil.rmtree(out, ignore_errors=True)

    check()



ENCODE_FILES = ("encodes.csv", "encodes.json")


def test_any_damaged_encode_folder_is_reported_or_refused_in_one_line(pipeline: dict[str, Any]) -> None:
    """What `vidvpr report --enc` does with an encode folder (its encodes.csv rows with any columns,
    encodes.json when there): the grid and provenance sections, or a one-line BadInput naming the file."""
    from vidvpr.report.inputs import gather, read_encode_folder
    from vidvpr.report.results import provenance
    from vidvpr.report.sections import grid

    folder = pipeline["base"] / "enc-damaged"
    shutil.copytree(pipeline["base"] / "enc", folder)
    originals = {name: (folder / name).read_bytes() for name in ENCODE_FILES}
    inputs = gather(None, [pipeline["records"]["results"].parent], None, [folder])
    grid(inputs), provenance(inputs)  # the valid folder is reported

    def report() -> None:
        inputs.encodes = [read_encode_folder(folder)]
        grid(inputs), provenance(inputs)

    @prop(150)
    @given(damage=st.one_of(st.tuples(st.just("encodes.csv"), st.none() | csv_file(originals["encodes.csv"].decode())),
                            st.tuples(st.just("encodes.json"),
                                      st.none() | json_file(json.loads(originals["encodes.json"])))))
    def check(damage: tuple[str, bytes | None]) -> None:
        name, content = damage
        try:
            damage_file(folder, name, content)
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                try:
                    report()
                except BadInput as exc:
                    message = str(exc)
                    assert message.splitlines() == [message] and (str(folder / name) in message
                                                                  or str(folder) in message), message
        finally:
            for original, data in originals.items():
                write(folder, original, data)

    check()
    for edit, tree in one_value_replaced(json.loads(originals["encodes.json"])):
        write(folder, "encodes.json", json.dumps(tree).encode())
        with noted(f"input: encodes.json with {edit}"):
            assert_result_or_one_line_bad_input(report, folder / "encodes.json")
    write(folder, "encodes.json", originals["encodes.json"])
    header, *rows = list(csv.reader(io.StringIO(originals["encodes.csv"].decode())))
    for column, value in itertools.product(range(len(header)), HOSTILE_CELLS):
        changed = [[value if i == column else cell for i, cell in enumerate(rows[0])], *rows[1:]]
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([header, *changed])
        write(folder, "encodes.csv", text.getvalue().encode())
        with noted(f"input: encodes.csv with {header[column]} = {value!r}"):
            assert_result_or_one_line_bad_input(report, folder / "encodes.csv")


HOSTILE_CELLS = ("", " ", "\u00b2", "\u0663", "nan", "inf", "-inf", "1e999", "-0", "0", "9" * 400, "a\nb", '"', "x\x00y")


# ---------------------------------------------------------------- manifests


def csv_file(text: str) -> st.SearchStrategy[bytes]:
    return st.one_of(random_bytes, mutated_text(text))


@pytest.mark.parametrize("split", ["database", "query"])
def test_any_manifest_csv_is_read_or_refused_in_one_line(split: str, pipeline: dict[str, Any], scratch: Path) -> None:
    text = (pipeline["manifest"] / f"{split}.csv").read_text()
    root = pipeline["root"]

    @prop(150)
    @given(data=csv_file(text))
    def check(data: bytes) -> None:
        path = write(scratch, f"{split}.csv", data)
        assert_result_or_one_line_bad_input(lambda: read_rows(path, split, root), path)

    check()


MANIFEST_FILES = ("manifest.json", "positives.json", "database.csv", "query.csv")


def damaged_file(folder: Path) -> st.SearchStrategy[tuple[str, bytes | None]]:
    """(file name, new content or None to delete it) of one of a manifest folder's files."""
    cases = []
    for name in MANIFEST_FILES:
        text = (folder / name).read_text()
        content = json_file(json.loads(text)) if name.endswith(".json") else csv_file(text)
        cases.append(st.tuples(st.just(name), st.one_of(st.none(), content)))
    return st.one_of(*cases)


def test_any_damaged_manifest_folder_is_loaded_or_refused_in_one_line(pipeline: dict[str, Any]) -> None:
    folder = pipeline["manifest"]
    originals = {name: (folder / name).read_bytes() for name in MANIFEST_FILES}

    @prop(150)
    @given(damage=damaged_file(folder), rerecorded=st.booleans())
    def check(damage: tuple[str, bytes | None], rerecorded: bool) -> None:
        name, content = damage
        try:
            damage_file(folder, name, content)
            if content is not None and rerecorded and name != "manifest.json":  # past the size and hash check
                rerecord_outputs(folder)  # to the file's reader
            assert_result_or_one_line_bad_input(lambda: load_manifest(folder), folder)
        finally:
            for original, data in originals.items():
                write(folder, original, data)

    check()
    load_manifest(folder)


# ---------------------------------------------------------------- Insta360 files (.insv)
# Every reader of a camera file (trailer, GPS trajectory, calibration) over random bytes, trailers
# made from their grammar with extreme values, and byte-level damage to a real trailer's end.

INSV_READERS: dict[str, Callable[[Path], Any]] = {
    "trailer": read_trailer, "trajectory": lambda path: read_trajectory(path, "insv"),
    "calibration": read_calibration_file}
u32_extremes = st.sampled_from((0, 1, 5, 6, 71, 72, 73, 2**16, 2**31 - 1, 2**31, 2**32 - 1))
wild_floats = st.one_of(st.floats(), st.sampled_from((0.0, -0.0, 90.0, -90.0, 180.0, 84.1, -80.1, 1e308)))


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes, tail: int = 4096) -> bytes:
    """`data` after 1-4 edits within its last `tail` bytes (where a trailer is): byte flips, a u32
    set to an extreme, a slice cut out, duplicated or inserted, the file cut short."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not out:
            break
        at = draw(st.integers(max(0, len(out) - tail), len(out) - 1))
        op = draw(st.sampled_from(("flip", "u32", "cut", "duplicate", "insert", "truncate")))
        if op == "flip":
            out[at] ^= draw(st.integers(1, 255))
        elif op == "u32":
            out[at:at + 4] = draw(u32_extremes).to_bytes(4, "little")
        elif op == "cut":
            del out[at:at + draw(st.integers(1, 64))]
        elif op == "duplicate":
            out[at:at] = out[at:at + draw(st.integers(1, 64))]
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del out[at:]
    return bytes(out)


gps_fixes = st.lists(st.builds(GpsFix, st.floats(0, 1e11), st.sampled_from("AV?\x00"), wild_floats, wild_floats,
                               wild_floats, wild_floats, wild_floats), max_size=6)
infos = st.builds(InsvInfo, camera_type=st.one_of(st.none(), st.text(max_size=12)),
                  calibration_text=st.one_of(st.none(), st.just(ONE_R_CALIBRATION), mutated_text(ONE_R_CALIBRATION).map(
                      lambda data: data.decode("utf-8", "replace")), st.text(max_size=30)),
                  first_frame_timestamp_us=st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)),
                  first_gps_timestamp_ms=st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)),
                  gyro_record_bytes=st.one_of(st.none(), st.sampled_from((0, 1, 20, 56, 57))),
                  is_raw_gyro=st.one_of(st.none(), st.booleans()))
series_times = st.lists(st.floats(0, 1e9), max_size=8).map(np.array)
trailer_records = st.lists(st.one_of(
    infos.map(lambda info: (INFO, encode_info(info))),
    gps_fixes.map(lambda fixes: (GPS, encode_gps(fixes))),
    series_times.map(lambda t: (GYRO, encode_imu(t, np.full((len(t), 6), 0.5)))),
    series_times.map(lambda t: (EXPOSURE, encode_exposure(t, np.full(len(t), 0.01)))),
    series_times.map(lambda t: (FRAME_TIMES, encode_frame_times(t))),
    st.tuples(st.sampled_from((GYRO, GPS, EXPOSURE, INFO, 0x200, 0x1F01)), st.binary(max_size=120)),
), max_size=6)


@st.composite
def generated_trailer_file(draw: st.DrawFn) -> bytes:
    """Bytes before a trailer made from its grammar (any records, versions, with or without an index)."""
    trailer = build_trailer(draw(trailer_records), version=draw(st.sampled_from((3, 3, 3, 0, 2, 4, 2**32 - 1))),
                            with_index=draw(st.booleans()))
    return draw(st.binary(max_size=64)) + trailer


@pytest.mark.parametrize("reader", list(INSV_READERS))
def test_any_insta360_file_is_read_or_refused_in_one_line(reader: str, pipeline: dict[str, Any], scratch: Path) -> None:
    valid = pipeline["insv"].read_bytes()
    INSV_READERS["trailer"](pipeline["insv"])  # the valid file is valid

    @prop(150)
    @given(data=st.one_of(random_bytes, generated_trailer_file(), mutated_bytes(valid),
                          generated_trailer_file().flatmap(mutated_bytes)))
    def check(data: bytes) -> None:
        path = write(scratch, f"{reader}.insv", data)
        assert_result_or_one_line_bad_input(lambda: INSV_READERS[reader](path), path)

    check()


@prop(150)
@given(records=trailer_records.map(lambda pairs: [(i, d) for i, d in pairs if i != INFO]), prefix=st.binary(max_size=32),
       info=infos.filter(lambda info: info.camera_type is None or info.camera_type.isprintable()),
       with_index=st.booleans())
def test_any_trailer_the_writer_makes_is_read_back(scratch: Path, records: list[tuple[int, bytes]], prefix: bytes,
                                                  info: InsvInfo, with_index: bool) -> None:
    """Round trip: the records (and INFO's fields) `build_trailer` wrote are the records read back;
    a calibration string or telemetry it cannot decode is refused in one line, never misread."""
    written = [(INFO, encode_info(info.model_copy(update={"calibration_text": None})))] + records
    path = write(scratch, "written.insv", prefix + build_trailer(written, with_index=with_index))
    trailer = assert_result_or_one_line_bad_input(lambda: read_trailer(path), path)
    if trailer is not None:
        assert [(record.record_id, record.data) for record in trailer.layout.records] == written
        assert trailer.info is not None and trailer.info.camera_type == info.camera_type


mp4_boxes = st.lists(st.tuples(st.sampled_from((b"ftyp", b"moov", b"mdat", b"free", b"uuid", b"DVPR", b"\0\0\0\0")),
                               st.one_of(u32_extremes, st.integers(0, 300)), st.binary(max_size=40)), max_size=6)


@prop(150)
@given(boxes=mp4_boxes, largesize=st.one_of(st.none(), st.integers(0, 2**64 - 1)), tail=st.binary(max_size=80))
def test_where_any_file_of_mp4_boxes_was_cut_is_said_or_nothing(scratch: Path, boxes: list, largesize: int | None,
                                                                 tail: bytes) -> None:
    """The box walk that says where a recording was cut: any box sizes (0: to the end, 1: a u64
    size follows, past the end), any types after an 'ftyp', never an exception."""
    data = b"".join(size.to_bytes(4, "big") + kind + (largesize.to_bytes(8, "big") if size == 1 and largesize
                                                       is not None else b"") + payload
                    for kind, size, payload in [(b"ftyp", 16, bytes(8)), *boxes]) + tail
    path = write(scratch, "boxes.insv", data)
    cut = cut_short_mp4(path)
    assert cut is None or (cut.text and cut.inside_video in (True, False))
    assert_result_or_one_line_bad_input(lambda: read_trailer(path), path)


def test_probe_and_slice_of_damaged_insta360_files_exit_with_a_user_error_code(pipeline: dict[str, Any],
                                                                               scratch: Path) -> None:
    valid = pipeline["insv"].read_bytes()

    @prop(25)
    @given(data=st.one_of(mutated_bytes(valid), generated_trailer_file().map(lambda t: valid[:-256] + t)))
    def check(data: bytes) -> None:
        path = write(scratch, "cli.insv", data)
        assert_user_error_exit(cli_run("probe", str(path)))
        assert_user_error_exit(cli_run("slice", str(path), "--out", str(scratch / "cli-views"), "--quiet", "--force"))

    check()


# ---------------------------------------------------------------- decoded training frames (vidvpr distill)


@st.composite
def damaged_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` truncated, with bytes flipped, or with a tail appended."""
    op = draw(st.sampled_from(("truncate", "flip", "append")))
    if op == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    if op == "append":
        return data + draw(st.binary(min_size=1, max_size=64))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    return data


def test_any_damaged_frames_entry_is_served_intact_or_decoded_again(pipeline: dict[str, Any]) -> None:
    video, frames = pipeline["cell_video"], [0, 2, 3]
    record = FileRecord.of(video)
    store = FrameStore(pipeline["base"] / "frames-damaged")
    expected = np.array(store.frames_of(video, record, frames))
    array_path, sidecar_path = store.paths(record.hash, frames)
    originals = {array_path: array_path.read_bytes(), sidecar_path: sidecar_path.read_bytes()}

    @prop(80)
    @given(damage=st.one_of(st.tuples(st.just(array_path), st.none() | damaged_bytes(originals[array_path])),
                            st.tuples(st.just(sidecar_path), st.none() | json_file(json.loads(originals[sidecar_path])))))
    def check(damage: tuple[Path, bytes | None]) -> None:
        path, content = damage
        try:
            if content is None:
                path.unlink()
            else:
                write(path.parent, path.name, content)
            served = store.open(record, frames)
            assert served is None or np.array_equal(served, expected)
            assert np.array_equal(store.frames_of(video, record, frames), expected)  # decoded again when damaged
        finally:
            for original, data in originals.items():
                write(original.parent, original.name, data)

    check()



def test_any_damaged_descriptor_cache_entry_is_served_intact_or_not_at_all(pipeline: dict[str, Any]) -> None:
    """eval's descriptor cache (CACHE/<key>/<hash>.npy and its sidecar): a damaged entry is never
    served; eval then computes the descriptors again."""
    from vidvpr.descriptors.cache import DescriptorCache

    cache = DescriptorCache(pipeline["base"] / "descriptors-damaged")
    video, frames, size = FileRecord.of(pipeline["cell_video"]), [0, 2, 3], (64, 36)
    expected = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float16)
    array_path = cache.put(expected, "m", "fp", video, frames, size, {"vidvpr": "0"}, 0.5)
    sidecar_path = array_path.with_suffix(".json")
    originals = {array_path: array_path.read_bytes(), sidecar_path: sidecar_path.read_bytes()}
    assert np.array_equal(cache.open("fp", video.hash, frames, size), expected)

    @prop(80)
    @given(damage=st.one_of(st.tuples(st.just(array_path), st.none() | damaged_bytes(originals[array_path])),
                            st.tuples(st.just(sidecar_path), st.none() | json_file(json.loads(originals[sidecar_path])))))
    def check(damage: tuple[Path, bytes | None]) -> None:
        path, content = damage
        assume(content != originals[path])
        try:
            if content is None:
                path.unlink()
            else:
                write(path.parent, path.name, content)
            served = cache.open("fp", video.hash, frames, size)
            assert served is None or (path == sidecar_path and np.array_equal(served, expected))
        finally:
            for original, data in originals.items():
                write(original.parent, original.name, data)

    check()



def _training_parts() -> tuple[Any, Any, Any]:
    import torch

    student = torch.nn.Linear(3, 2)
    return student, torch.optim.Adam(student.parameters()), torch.amp.GradScaler("cuda", enabled=False)


def _state_slots(state: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """The entries of a saved training state and of its tables one level down (rng, mined, scaler...)."""
    return [(state, key) for key in state] + [(state[key], inner) for key in state if isinstance(state[key], dict)
                                              for inner in state[key]]


def test_any_damaged_training_state_is_resumed_or_refused_in_one_line(scratch: Path) -> None:
    """distill --resume on train_state.pt: any entry replaced (by another type, an extreme number,
    a tensor of another shape or type), or the file's bytes damaged."""
    import random

    import torch

    from vidvpr.distill.mining import Triplet
    from vidvpr.distill.state import Progress, load_state, save_state
    from vidvpr.models.checkpoints import load_checkpoint

    source = scratch / "train_state-valid.pt"
    progress = Progress(7, [{"step": 1.0, "loss": 0.5}], {3: Triplet(4, (5, 6))}, {"targets": 3, "epochs": [0]},
                        {"threads": 1})
    save_state(source, {"lr": 1e-4}, *_training_parts(), progress)
    valid = load_checkpoint(source)
    slots = [f"{type(node).__name__}:{key}" for node, key in _state_slots(valid)]
    hostile = st.one_of(st.sampled_from((None, "", "[]", "{}", "nan", -1, 2**70, 1e308, math.nan, [], {}, [[1]], {"a": 1})),
                        st.sampled_from(((), (0,), (2, 2), (1, 3))).flatmap(lambda shape: st.sampled_from(
                            (torch.float32, torch.int64, torch.uint8, torch.bool)).map(
                                lambda dtype: torch.zeros(shape, dtype=dtype))))
    python_rng, numpy_rng, torch_rng = random.getstate(), np.random.get_state(), torch.get_rng_state()

    @prop(150)
    @given(damage=st.one_of(st.tuples(st.sampled_from(range(len(slots))), hostile),
                            damaged_bytes(source.read_bytes()).map(lambda data: (None, data))))
    def check(damage: tuple[int | None, Any]) -> None:
        at, value = damage
        path = scratch / "train_state.pt"
        if at is None:
            write(scratch, path.name, value)
        else:
            state = load_checkpoint(source)
            node, key = _state_slots(state)[at]
            node[key] = value
            path.unlink(missing_ok=True)
            torch.save(state, path)
        try:
            assert_result_or_one_line_bad_input(lambda: load_state(path, {"lr": 1e-4}, *_training_parts()), path)
        finally:  # a resumed state sets the global generators
            random.setstate(python_rng), np.random.set_state(numpy_rng), torch.set_rng_state(torch_rng)

    check()



checkpoint_keys = st.one_of(st.sampled_from(("weight", "bias", "module.weight", "_orig_mod.bias", "state_dict")),
                            dangerous_string, st.text(max_size=8))


def test_any_damaged_model_checkpoint_is_loaded_or_refused_in_one_line(scratch: Path) -> None:
    """A model checkpoint (vidvpr's student.pt, or any .pth given as --model NAME:FILE) read into its
    model: any key renamed, dropped or added, any weight replaced, or the file's bytes damaged."""
    import torch

    from vidvpr.models.checkpoints import load_checkpoint, load_state, save_checkpoint, state_dict_of

    model = torch.nn.Linear(3, 2)
    source = save_checkpoint(scratch / "checkpoint-valid.pt", "linear", {"features": 3}, model.state_dict(),
                             {"recalls": {1: 0.25}})
    tensors = st.sampled_from(((2, 3), (2,), (3, 2), (), (0,))).flatmap(lambda shape: st.sampled_from(
        (torch.float32, torch.float16, torch.int64, torch.bool)).map(lambda dtype: torch.zeros(shape, dtype=dtype)))
    edits = st.lists(st.tuples(st.sampled_from(("rename", "drop", "add", "replace", "top")), checkpoint_keys,
                               st.one_of(tensors, st.sampled_from((None, 1, "x", [], {}, {"a": torch.zeros(1)})))),
                     min_size=1, max_size=3)

    @prop(150)
    @given(damage=st.one_of(edits, damaged_bytes(source.read_bytes())))
    def check(damage: list[tuple[str, str, Any]] | bytes) -> None:
        path = scratch / "checkpoint.pt"
        if isinstance(damage, bytes):
            write(scratch, path.name, damage)
        else:
            checkpoint = load_checkpoint(source)
            weights = checkpoint["state_dict"]
            for op, key, value in damage:
                names = list(weights)
                if op == "rename" and names:
                    weights[key] = weights.pop(names[len(key) % len(names)])
                elif op == "drop" and names:
                    del weights[names[len(key) % len(names)]]
                elif op == "add":
                    weights[key] = value
                elif op == "replace" and names:
                    weights[names[len(key) % len(names)]] = value
                else:
                    checkpoint[key] = value
            path.unlink(missing_ok=True)
            torch.save(checkpoint, path)

        def read() -> None:
            load_state(torch.nn.Linear(3, 2), state_dict_of(load_checkpoint(path), str(path)), str(path))

        assert_result_or_one_line_bad_input(read, path)

    check()



RATE_KINDS = ("SliceSidecar", "CellSidecar", "DescriptorRecord")


def test_any_sidecars_under_the_measured_folders_give_rates_or_a_one_line_refusal(pipeline: dict[str, Any],
                                                                                 scratch: Path) -> None:
    """tools/scale_estimate.py --measured: rates read from whatever JSON is under the folders (any
    bytes, damaged sidecars, and any valid slice, cell or descriptor sidecar a writer could write)."""
    from vidvpr.run.rates import read_rates

    folder = scratch / "measured"
    folder.mkdir(exist_ok=True)
    trees = [json.loads(pipeline["records"][kind].read_text()) for kind in ("slice", "cell")]
    kinds = [kind for kind in RECORD_KINDS if kind.__name__ in RATE_KINDS]

    @prop(100)
    @given(files=st.lists(st.one_of(random_bytes, *(json_file(tree) for tree in trees),
                                    *(records(kind).map(lambda record: _encode(json.dumps(record.to_json())))
                                      for kind in kinds)), min_size=1, max_size=3))
    def check(files: list[bytes]) -> None:
        for old in folder.glob("*.json"):
            old.unlink()
        for index, data in enumerate(files):
            write(folder, f"{index}.json", data)
        assert_result_or_one_line_bad_input(lambda: read_rates([folder], cores=2), folder)

    check()


# ---------------------------------------------------------------- every value replaced, one at a time
# Random mutations rarely hit one given key with one given value; these sweeps try each hostile
# value in each place of each kind of file once (a few thousand loads, a few seconds).

HOSTILE_VALUES = (None, "", "a\nb", "x\x00y", "\u2028", "/etc", "../..", "~", -1, 0, 0.5, 1e308, -1e308, 2**64,
                  True, "nan", [], {}, [[]], {"a\nb": 1})


def one_value_replaced(tree: Any, values: tuple[Any, ...] = HOSTILE_VALUES) -> Iterator[tuple[str, Any]]:
    """Yield (what was done, `tree`) with one value replaced by one of `values`, or a key 'a\\nb' added
    to one table, in turn (the same object, edited in place and restored: use it before the next)."""
    box = {"root": tree}
    for node, key in _slots(box):
        old = node[key]
        for value in values:
            node[key] = value
            yield f"{key!r} (was {str(old)[:40]!r}) replaced by {value!r}", box["root"]
        node[key] = old
        if isinstance(old, dict):
            old["a\nb"] = 1
            yield f"key 'a\\nb' added to {key!r}", box["root"]
            del old["a\nb"]


@contextlib.contextmanager
def noted(text: str) -> Iterator[None]:
    """Add `text` to any exception raised in the block (pytest shows it under the traceback)."""
    try:
        yield
    except BaseException as exc:
        exc.add_note(text)
        raise


@pytest.mark.parametrize("text, loader", [(DATASET_TOML, dataset_definition.load_definition),
                                          (DEMO_TOML, demo_definition.load_definition)], ids=["dataset", "demo"])
def test_every_value_of_a_definition_replaced_is_loaded_or_refused_in_one_line(text: str, loader: Callable[..., Any],
                                                                                scratch: Path) -> None:
    for edit, tree in one_value_replaced(tomllib.loads(text)):
        path = write(scratch, "sweep.toml", dump_toml(tree))
        with noted(f"input: the definition with {edit}"):
            assert_result_or_one_line_bad_input(lambda path=path: loader(path), path)


@pytest.mark.parametrize("kind", list(RECORDS))
def test_every_value_of_a_record_replaced_is_loaded_or_refused_in_one_line(kind: str, pipeline: dict[str, Any]) -> None:
    source = pipeline["records"][kind]
    for edit, tree in one_value_replaced(json.loads(source.read_text()), HOSTILE_VALUES[::2]):
        with noted(f"input: {source.name} with {edit}"):
            assert_result_or_one_line_bad_input(lambda tree=tree: RECORDS[kind].from_data(tree, str(source)), source)


# ---------------------------------------------------------------- what the student sees (--lq)

lq_item = st.one_of(
    st.text(max_size=16),
    st.tuples(st.sampled_from(("lowlight", "noise", "blur", "jpeg", "resize", "LowLight", " blur", "lowlight ")),
              st.one_of(token, st.floats().map(repr), st.from_regex(r"[+-]?[0-9]{0,3}(\.[0-9]{0,4})?(p|x[0-9]{1,3})?",
                                                                    fullmatch=True))).map(lambda pair: ":".join(pair)),
    st.tuples(st.sampled_from(("", "libx265/", "a/b/")), token, token).map(lambda t: f"{t[0]}{t[1]}/qp{t[2]}"),
)


@prop(400)
@given(items=st.lists(lq_item, max_size=4))
def test_any_lq_items_are_parsed_or_refused_in_one_line_and_parsed_ones_degrade_any_image(items: list[str]) -> None:
    import numpy as np

    try:
        low_quality = parse_low_quality(items)
    except BadInput as exc:
        message = str(exc)
        assert message.splitlines() == [message] and message, f"BadInput is not one line: {message!r}"
        return
    for shape in ((1, 1, 3), (9, 16, 3)):
        image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        out = low_quality.degrade(image)
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


# ---------------------------------------------------------------- VPR image names

NAME_FIELDS = 15
field_text = st.one_of(token, st.from_regex(r"-?[0-9]{0,8}(\.[0-9]{0,6})?", fullmatch=True))


@prop(300)
@given(name=st.one_of(
    st.text(max_size=60),
    st.lists(field_text, min_size=0, max_size=NAME_FIELDS + 3).map(lambda fields: "@" + "@".join(fields)),
    st.lists(field_text, min_size=NAME_FIELDS, max_size=NAME_FIELDS).map(lambda fields: "@" + "@".join(fields)),
    st.tuples(st.sampled_from(("", "dir/", "/a/b/", "./", "C:\\x\\")),
              st.lists(field_text, min_size=NAME_FIELDS, max_size=NAME_FIELDS)).map(
        lambda pair: pair[0] + "@" + "@".join(pair[1])),
))
def test_parse_vpr_filename_raises_only_value_error(name: str) -> None:
    try:
        parse_vpr_filename(name)
    except ValueError:
        pass


free_text = st.text(max_size=10).filter(lambda text: not set(text) & {"@", "/", "\\"})
vpr_names = st.builds(
    VprName,
    easting_m=st.floats(allow_nan=True, allow_infinity=True), northing_m=st.floats(-1e9, 1e9),
    utm_zone_number=st.none() | st.integers(-100, 10**6), utm_zone_letter=st.none() | free_text.filter(bool),
    lat_deg=st.none() | st.floats(allow_nan=True, allow_infinity=True), lon_deg=st.none() | st.floats(-1e6, 1e6),
    pano_id=free_text, tile_num=free_text, heading_deg=st.none() | st.integers(-1000, 10**6),
    pitch_deg=st.none() | st.integers(-1000, 1000), roll=free_text, height=free_text, timestamp=free_text,
    note=free_text, extension=free_text,
)


@prop(300)
@given(name=vpr_names)
def test_vpr_filename_format_then_parse_round_trips(name: VprName) -> None:
    try:
        text = format_vpr_filename(name)
    except ValueError:  # a value no name can hold
        return
    parsed = parse_vpr_filename(text)
    expected = replace(name, easting_m=round(name.easting_m, 2), northing_m=round(name.northing_m, 2),
                       lat_deg=None if name.lat_deg is None else round(name.lat_deg, 5),
                       lon_deg=None if name.lon_deg is None else round(name.lon_deg, 5))
    assert parsed == expected
    assert format_vpr_filename(parsed) == text


# ---------------------------------------------------------------- vidvpr import: calibrations, images, names


def calibrated(path: Path) -> Any:
    """The camera of 32x24 frames from a calibration file, undistortion tables when it is distorted."""
    camera = camera_from_options(None, None, path, 32, 24)
    return undistortion(camera) if camera.distorted else camera


@prop(300)
@given(data=st.one_of(random_bytes, mutated_text(CALIBRATION_YAML)))
def test_any_calibration_yaml_is_read_or_refused_in_one_line(scratch: Path, data: bytes) -> None:
    path = write(scratch, "calibration.yaml", data)
    assert_result_or_one_line_bad_input(lambda: calibrated(path), path)


@prop(300)
@given(data=json_file(json.loads(CALIBRATION_JSON_TEXT)))
def test_any_calibration_json_is_read_or_refused_in_one_line(scratch: Path, data: bytes) -> None:
    path = write(scratch, "calibration.json", data)
    assert_result_or_one_line_bad_input(lambda: calibrated(path), path)


def test_any_export_record_beside_a_vpr_folder_gives_its_radius_or_is_refused_in_one_line(
        pipeline: dict[str, Any], scratch: Path) -> None:
    """The export.json `vidvpr import` reads for a VPR folder's positives: used, or refused naming
    it; never passed over for the benchmarks' 25 m without a word."""
    from vidvpr.ingest.vpr_folder import export_radius, find_vpr_splits

    tree = json.loads(pipeline["records"]["export"].read_text())
    folder = scratch / "vpr-export"
    (folder / "images" / "test" / "database").mkdir(parents=True, exist_ok=True)
    (folder / "images" / "test" / "queries").mkdir(exist_ok=True)
    splits = find_vpr_splits([folder], "test")
    assert splits is not None

    @prop(100)
    @given(data=json_file(tree))
    def check(data: bytes) -> None:
        path = write(folder, "export.json", data)
        found = assert_result_or_one_line_bad_input(lambda: export_radius(splits, folder), path)
        assert found is None or found[2] == str(path)

    check()



@pytest.fixture(scope="module")
def split_exports(pipeline: dict[str, Any]) -> Path:
    """One export folder holding the test, train and val splits of the pipeline's manifest (export.json,
    export-train.json, export-val.json), as `vidvpr export --split` writes them."""
    out = pipeline["base"] / "export-splits"
    for split in ("test", "train", "val"):
        export_vpr(pipeline["manifest"], out, ExportConfig(split=split))
    return out


@pytest.mark.parametrize("split", ["test", "train", "val"])
def test_the_export_record_of_any_split_gives_import_the_radius_it_was_exported_with(
        split: str, pipeline: dict[str, Any], split_exports: Path) -> None:
    """Round trip: export-<split>.json (export.json for test) as `vidvpr export --split` writes it is
    what `vidvpr import` reads for that split's positives, and it carries the manifest's."""
    from vidvpr.ingest.vpr_folder import export_radius, find_vpr_splits

    positives = PositivesFile.load(pipeline["manifest"] / "positives.json")
    splits = find_vpr_splits([split_exports], split)
    assert splits is not None
    radius_m, heading_deg, source = export_radius(splits, split_exports)
    assert (radius_m, heading_deg) == (positives.radius_m, positives.max_heading_diff_deg)
    assert Path(source).name == ("export.json" if split == "test" else f"export-{split}.json")


@pytest.mark.parametrize("split", ["train", "val"])
def test_any_export_split_record_beside_a_vpr_folder_gives_its_radius_or_is_refused_in_one_line(
        split: str, split_exports: Path, scratch: Path) -> None:
    """export-<split>.json damaged any way: used, or refused naming it (as export.json is above)."""
    from vidvpr.ingest.vpr_folder import export_radius, find_vpr_splits

    name = f"export-{split}.json"
    tree = json.loads((split_exports / name).read_text())
    folder = scratch / f"vpr-export-{split}"
    for part in ("database", "queries"):
        (folder / "images" / split / part).mkdir(parents=True, exist_ok=True)
    splits = find_vpr_splits([folder], split)
    assert splits is not None

    @prop(100)
    @given(data=json_file(tree))
    def check(data: bytes) -> None:
        path = write(folder, name, data)
        found = assert_result_or_one_line_bad_input(lambda: export_radius(splits, folder), path)
        assert found is None or found[2] == str(path)

    check()


def _image_bytes(suffix: str) -> bytes:
    import io

    from PIL import Image

    from tests.media import perspective_test_frame

    buffer = io.BytesIO()
    exif = Image.Exif()
    exif.get_ifd(0x8769).update({0x9003: "2024:05:01 10:00:00", 0x9291: "25", 0x9011: "+02:00"})
    exif[0x0112] = 6  # turned a quarter
    Image.fromarray(perspective_test_frame(32, 24, 5)).save(buffer, format="PNG" if suffix == ".png" else "JPEG",
                                                            exif=exif)
    return buffer.getvalue()


@st.composite
def damaged_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with 1-4 byte flips, cuts, insertions or zeroed runs."""
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        op = draw(st.sampled_from(("flip", "cut", "insert", "zero")))
        if op == "flip" and data:
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
        elif op == "cut":
            data = data[:at]
        elif op == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        else:
            data = data[:at] + bytes(draw(st.integers(1, 64))) + data[at + 64:]
    return data


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_any_image_is_read_or_refused_in_one_line(scratch: Path, suffix: str) -> None:
    valid = _image_bytes(suffix)

    @prop(200)
    @given(data=st.one_of(random_bytes, damaged_bytes(valid)))
    def check(data: bytes) -> None:
        path = write(scratch, f"image{suffix}", data)
        assert_result_or_one_line_bad_input(lambda: read_rgb(scan_image(path)), path)

    check()


@prop(500)
@given(stem=st.one_of(st.text(max_size=40), st.from_regex(r"[a-z_]{0,5}[0-9]{1,25}(\.[0-9]{0,20})?", fullmatch=True)),
       epoch_only=st.booleans())
def test_any_file_name_gives_a_time_or_none(stem: str, epoch_only: bool) -> None:
    time_s = name_time_s(stem, epoch_only)
    assert time_s is None or time_s >= 0


finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)


@prop(200)
@given(steps=st.lists(st.floats(1e-3, 1e6), min_size=2, max_size=20), data=st.data())
def test_every_trajectory_import_writes_reads_back_exactly(scratch: Path, steps: list[float], data: Any) -> None:
    times = np.cumsum(steps)
    assume(bool(np.all(np.diff(times) > 0)))
    east, north = (np.array(data.draw(st.lists(finite, min_size=len(steps), max_size=len(steps)))) for _ in "xy")
    heading = data.draw(st.none() | st.lists(st.floats(0, 359.999), min_size=len(steps), max_size=len(steps)))
    heading = None if heading is None else np.array(heading)
    path = write(scratch, "written.csv", trajectory_text(times, east, north, heading, note='a "quoted", split\r\nnote').encode())
    read = read_trajectory(path, "csv-xy")
    assert read.t_s.tolist() == times.tolist() and read.easting_m.tolist() == east.tolist()
    assert read.northing_m.tolist() == north.tolist()
    assert (read.heading_deg is None) == (heading is None)
    if heading is not None:
        assert np.allclose(read.heading_deg, heading % 360)


names = st.from_regex(dataset_definition.NAME_REGEX.rstrip("$") + r"\Z", fullmatch=True)


@prop(200)
@given(name=st.text(max_size=30), views_dir=st.text(min_size=1, max_size=30), database=names, query=names,
       radius=st.floats(1e-6, 1e9), heading=st.none() | st.floats(1e-3, 180))
def test_every_definition_import_writes_is_loaded_unchanged(scratch: Path, name: str, views_dir: str, database: str,
                                                            query: str, radius: float, heading: float | None) -> None:
    assume(database != query)
    recordings = [DefinedRecording(database, "database", f"trajectories/{database}.csv"),
                  DefinedRecording(query, "query", "trajectories/q.csv")]
    text = definition_text(name, views_dir, recordings, radius, heading, note="vidvpr import\nsecond line")
    spec = dataset_definition.load_definition(write(scratch, "written.toml", text.encode())).spec
    assert (spec.dataset.name, spec.dataset.views_dir, spec.positives.radius_m) == (name, views_dir, radius)
    assert spec.positives.max_heading_diff_deg == heading
    assert [(rec.name, rec.split, rec.trajectory.path) for rec in spec.recordings] == \
        [(rec.name, rec.split, rec.trajectory) for rec in recordings]


# ---------------------------------------------------------------- the command line


def cli_run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def test_manifest_command_on_damaged_inputs_exits_with_a_user_error_code(pipeline: dict[str, Any]) -> None:
    root = pipeline["root"]
    inputs = {"def.toml": toml_file((root / "def.toml").read_text()),
              "traj/dbwalk.csv": csv_file((root / "traj" / "dbwalk.csv").read_text()),
              "views/qwalk/yaw000_pitch+00.json": json_file(json.loads(
                  (root / "views" / "qwalk" / "yaw000_pitch+00.json").read_text()))}
    originals = {name: (root / name).read_bytes() for name in inputs}
    runs = itertools.count()

    @prop(60)
    @given(damage=st.one_of(*(st.tuples(st.just(name), content) for name, content in inputs.items())))
    def check(damage: tuple[str, bytes]) -> None:
        name, content = damage
        out = root / f"cli-manifest-{next(runs)}"
        try:
            write(root, name, content)
            assert_user_error_exit(cli_run("manifest", str(root / "def.toml"), "--out", str(out), "--quiet"))
        finally:
            write(root, name, originals[name])
            shutil.rmtree(out, ignore_errors=True)

    check()


def test_export_command_on_a_damaged_manifest_exits_with_a_user_error_code(pipeline: dict[str, Any]) -> None:
    folder = pipeline["root"] / "manifest-cli"
    shutil.copytree(pipeline["manifest"], folder)
    originals = {name: (folder / name).read_bytes() for name in MANIFEST_FILES}
    runs = itertools.count()

    @prop(60)
    @given(damage=damaged_file(folder))
    def check(damage: tuple[str, bytes | None]) -> None:
        name, content = damage
        out = pipeline["base"] / f"cli-export-{next(runs)}"
        try:
            damage_file(folder, name, content)
            assert_user_error_exit(cli_run("export", str(folder), "--out", str(out), "--quiet"))
        finally:
            write(folder, name, originals[name])
            shutil.rmtree(out, ignore_errors=True)

    check()


IMPORT_OPTIONS = {"--hfov": number_text, "--fps": number_text, "--intrinsics": st.lists(number_text, max_size=5).map(",".join),
                  "--positions": st.one_of(token, number_text.map("index:".__add__)), "--undistort-alpha": number_text,
                  "--times": st.sampled_from(("auto", "fps", "name", "exif")), "--even": st.sampled_from(("crop", "pad")),
                  "--recording": token, "--view": token, "--crf": number_text, "--preset": token, "--split": token}


def test_import_command_with_any_options_exits_with_a_user_error_code(pipeline: dict[str, Any]) -> None:
    source = pipeline["base"] / "import-source"
    runs = itertools.count()

    @prop(60)
    @given(options=st.dictionaries(st.sampled_from(sorted(IMPORT_OPTIONS)), st.just(None), max_size=4).flatmap(
        lambda chosen: st.fixed_dictionaries({key: IMPORT_OPTIONS[key] for key in chosen})))
    def check(options: dict[str, str]) -> None:
        out = pipeline["base"] / f"cli-import-{next(runs)}" / "views"
        argv = [item for key, value in options.items() for item in (key, value)]
        if "--hfov" not in options and "--intrinsics" not in options:
            argv += ["--hfov", "60"]
        try:
            assert_user_error_exit(cli_run("import", str(source), "--out", str(out), "--quiet", *argv))
        finally:
            shutil.rmtree(out.parent, ignore_errors=True)

    check()


# ---------------------------------------------------------------- regressions: inputs that once raised


def refused(call: Callable[[], Any], path: Path, match: str) -> str:
    """The one-line BadInput message of `call`, which must name `path` and say `match`."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(BadInput, match=match) as info:
            call()
    message = str(info.value)
    assert message.splitlines() == [message] and str(path) in message
    return message


def test_gpx_time_with_a_utc_offset_of_a_day_or_more_is_refused(tmp_path: Path) -> None:
    # was ValueError from datetime.timestamp() (gpxpy accepts the offset)
    path = write(tmp_path, "walk.gpx", GPX.replace("10:00:03+00:00", "10:00:03+25:00").encode())
    refused(lambda: read_trajectory(path, "gpx"), path, r"track point 3: <time> is out of range")


@pytest.mark.parametrize("name, text, options, match", [
    # were numpy overflow warnings, and infinite positions returned where warnings are not errors
    ("scaled.tum", "0 1e308 0 0 0 0 0 1\n1 -1e308 0 0 0 0 0 1\n", {"scale": 10.0}, "easting too large"),
    ("span.csv", "t,x,y\n-1e308,0,0\n1e308,0,0\n", {}, "times span more than the float range"),
    ("keyframes.json", json.dumps({"fps": 1e-300, "keyframes": [{"frame": 0, "trans": [0, 0, 0]},
                                                                {"frame": 1e300, "trans": [0, 0, 0]}]}), {},
     "times too large"),
    # was a numpy overflow warning; the rotation returned was the identity
    ("quat.tum", "0 0 0 0 1e200 0 0 1\n1 0 0 0 0 0 0 1\n", {}, "line 1: quaternion qx qy qz qw is zero or too large"),
    ("quat.json", json.dumps({"fps": 30, "keyframes": [{"frame": 0, "trans": [0, 0, 0], "rot": [1e200, 0, 0, 1]},
                                                       {"frame": 1, "trans": [0, 0, 0], "rot": [0, 0, 0, 1]}]}), {},
     "keyframe 1: rot quaternion is zero or too large"),
    # found by test_any_keyframes_json_trajectory_...: was "overflow encountered in matmul"
    ("matrix.json", ('{"keyframes":[{"frame":0.0,"trans":[0.0,0.0,0.0],"rot":[[0.0,0.0,0.0],[0.0,0.0,0.0],'
                     '[0.0,0.0,777e154]]}]}'), {"fps": 1.0}, "keyframe 1: rot is not a rotation matrix"),
], ids=["tum-scaled", "csv-time-span", "keyframes-fps", "tum-quaternion", "keyframes-quaternion", "keyframes-matrix"])
def test_trajectory_values_that_overflow_are_refused(tmp_path: Path, name: str, text: str, options: dict[str, Any],
                                                     match: str) -> None:
    path = write(tmp_path, name, text.encode())
    refused(lambda: read_trajectory(path, "auto" if not name.endswith(".csv") else "csv-xy", **options), path, match)


@pytest.mark.parametrize("loader", [dataset_definition.load_definition, demo_definition.load_definition],
                         ids=["dataset", "demo"])
def test_toml_integer_beyond_the_digit_limit_is_refused(tmp_path: Path, loader: Callable[..., Any]) -> None:
    # was ValueError "Exceeds the limit (4300 digits) for integer string conversion" from tomllib
    path = write(tmp_path, "def.toml", f"seed = {'9' * 5000}\n".encode())
    refused(lambda: loader(path), path, "not valid TOML")


def test_dataset_root_with_a_nul_byte_is_refused(tmp_path: Path) -> None:
    # was ValueError "embedded null byte" from Path.resolve
    path = write(tmp_path, "def.toml", DATASET_TOML.replace('root = "."', 'root = "a\\u0000b"').encode())
    refused(lambda: dataset_definition.load_definition(path), path, r"dataset root '.*a\\x00b' cannot be resolved")


def test_sampling_rule_beyond_the_float_range_is_refused(tmp_path: Path) -> None:
    # was OverflowError "cannot convert float infinity to integer" from parse_sampling, in the file and as an option
    rule = "1" + "0" * 400 + "f"
    path = write(tmp_path, "def.toml", DATASET_TOML.replace('database = "2f"', f'database = "{rule}"').encode())
    refused(lambda: dataset_definition.load_definition(path), path, "sampling.database: sampling rule .* out of range")
    definition = dataset_definition.load_definition(write(tmp_path, "ok.toml", DATASET_TOML.encode()))
    with pytest.raises(BadInput, match=r"^--query-sampling: sampling.query: sampling rule .* out of range"):
        dataset_definition.with_overrides(definition, query_sampling=rule)


@pytest.mark.parametrize("text, loader, match", [
    ('"a\\nb" = 1\n' + DATASET_TOML, dataset_definition.load_definition, r"^\S+: a\\nb: unknown key$"),
    ('[sizes]\n"a\\nb" = [32, 16]\n', demo_definition.load_definition, r"sizes\.a\\nb = 32x16"),
    ('[sizes]\n"a\\u2028b" = "x"\n', demo_definition.load_definition, r"sizes\.a\\u2028b: Input should be"),
], ids=["dataset-unknown-key", "demo-size-name", "demo-size-value"])
def test_keys_with_line_breaks_are_escaped_in_the_message(tmp_path: Path, text: str, loader: Callable[..., Any],
                                                          match: str) -> None:
    # were BadInputs of two lines (the key, or a message naming it, printed raw)
    path = write(tmp_path, "def.toml", text.encode())
    refused(lambda: loader(path), path, match)


def test_a_record_with_a_key_holding_a_line_break_is_refused_in_one_line(pipeline: dict[str, Any],
                                                                         tmp_path: Path) -> None:
    data = json.loads(pipeline["records"]["slice"].read_text())
    data["geometry"]["a\nb"] = 1
    path = write(tmp_path, "view.json", json.dumps(data).encode())
    refused(lambda: SliceSidecar.load(path), path, r"geometry\.a\\nb: unknown key")


@pytest.mark.parametrize("position", [{"easting_m": math.inf}, {"northing_m": math.nan}, {"lat_deg": -math.inf}])
def test_vpr_name_of_a_position_that_is_not_finite_is_refused(position: dict[str, float]) -> None:
    # formatted as '0000000inf', a name parse_vpr_filename cannot read back
    with pytest.raises(ValueError, match="not finite"):
        format_vpr_filename(replace(VprName(1.0, 2.0), **position))


@pytest.mark.parametrize("root", ["..\n", "/nonexistent-vidvpr-root"], ids=["line-break", "absolute"])
def test_manifest_with_an_unusable_root_is_refused_in_one_line_naming_the_folder(pipeline: dict[str, Any],
                                                                                  tmp_path: Path, root: str) -> None:
    folder = tmp_path / "manifest"
    shutil.copytree(pipeline["manifest"], folder)
    meta = json.loads((folder / "manifest.json").read_text())
    write(folder, "manifest.json", json.dumps({**meta, "root": root}).encode())
    refused(lambda: load_manifest(folder), folder, "dataset root")


# ---------------------------------------------------------------- sequences and the VPR-Bench measures


def sequence_results(folder: Path) -> Path:
    """A results.json with single-frame and sequence rows, their precision-recall and an extraction cost."""
    from vidvpr.evaluate.results import EvalResults, EvalRow, ExtractionRecord, PrecisionRecallRecord, SequencesRecord

    rows = [EvalRow(model="m", protocol="same", cell=cell, codec=None if qp is None else "libx264",
                    resolution=None if qp is None else "64x36", width=None if qp is None else 64,
                    height=None if qp is None else 36, qp=qp, kbps=None if qp is None else 120.5, psnr_y=None,
                    ssim_y=None, vmaf=None, input_size="cell", queries=10, excluded=2, threshold_m=2.5,
                    recall={1: 0.4, 5: 0.7}, per_view={"front": {1: 0.4, 5: 0.7}}, seq_len=length,
                    predictions=f"predictions/m/same/seq{length}/{cell}.csv", auc_pr=0.31, recall_at_100_precision=0.1,
                    precision_recall=PrecisionRecallRecord(distance=[0.5, 0.9], precision=[1.0, 0.4],
                                                           recall=[0.1, 0.4]))
            for cell, qp in (("reference", None), ("64x36/qp40", 40)) for length in (1, 5)]
    folder.mkdir(parents=True, exist_ok=True)
    EvalResults(manifest={"path": "/m", "name": "s", "files": {}, "radius_m": 2.5, "max_heading_diff_deg": None},
                enc_dir=None, protocol="same", input_size="cell", recall_at=[1, 5], thresholds_m=[2.5],
                index="Flat (exact L2)", models=[{"label": "m", "fingerprint": "f"}], rows=rows, descriptors={},
                forward_images=0, elapsed_s=1.0, versions={}, command=["vidvpr"],
                sequences=SequencesRecord(lengths=[1, 5], velocity=[0.8, 1.25], reverse=False, normalise=True,
                                          normalise_window=10, search="full", notes=[]),
                extraction=[ExtractionRecord(model="m", descriptor_dim=8, descriptor_bytes=32, ms_per_image=3.5,
                                             images=20)]).save(folder / "results.json")
    return folder / "results.json"


def test_any_results_json_with_sequences_is_loaded_or_refused_in_one_line(scratch: Path) -> None:
    from vidvpr.evaluate.results import EvalResults

    source = sequence_results(scratch / "sequence-eval")
    tree = json.loads(source.read_text())
    assert EvalResults.load(source).rows[1].seq_len == 5  # what the writer wrote, the reader reads

    @prop(100)
    @given(data=json_file(tree))
    def check(data: bytes) -> None:
        path = write(scratch, "results.json", data)
        assert_result_or_one_line_bad_input(lambda: EvalResults.load(path), path)

    check()
    for edit, changed in one_value_replaced(tree, HOSTILE_VALUES[::2]):
        with noted(f"input: results.json with {edit}"):
            assert_result_or_one_line_bad_input(lambda changed=changed: EvalResults.from_data(changed, str(source)),
                                                source)


@prop(60)
@given(lengths=st.one_of(token, st.lists(st.integers(-3, 10**6).map(str), min_size=1, max_size=4).map(",".join)),
       velocity=st.one_of(token, st.tuples(number_text, number_text).map("..".join)))
def test_any_sequence_options_are_used_or_refused_in_one_line(scratch: Path, lengths: str, velocity: str) -> None:
    # the options are checked before the manifest is read, so a missing manifest ends every run that gets past them
    result = CliRunner().invoke(main, ["eval", str(scratch / "no-manifest"), "--out", str(scratch / "no-eval"),
                                       "--seq-len", lengths, "--seq-velocity", velocity])
    assert_user_error_exit(result)
    assert result.exit_code == 2


def test_any_study_json_with_sequences_is_loaded_or_refused_in_one_line(scratch: Path) -> None:
    from vidvpr.study.records import StudyRecord
    from vidvpr.study.stage import StudyConfig, run_study

    source = run_study([sequence_results(scratch / "study-eval").parent], scratch / "study",
                       StudyConfig()).json_path
    tree = json.loads(source.read_text())
    assert StudyRecord.load(source).sequences[0].recall == {1: 0.4, 5: 0.4}

    @prop(60)
    @given(data=json_file(tree))
    def check(data: bytes) -> None:
        path = write(scratch, "study.json", data)
        assert_result_or_one_line_bad_input(lambda: StudyRecord.load(path), path)

    check()


def test_a_training_state_whose_format_is_a_tensor_is_refused_in_one_line(scratch: Path) -> None:
    # was a BadInput of two lines: the format's repr, a 2-D tensor, printed in the message
    import torch

    path = scratch / "format-tensor.pt"
    torch.save({"format": torch.zeros((2, 2))}, path)
    from vidvpr.distill.state import load_state

    refused(lambda: load_state(path, {}, *_training_parts()), path, r"not a vidvpr distill training state \(format Tensor\)")


def test_a_checkpoint_key_with_a_line_break_is_named_in_one_line(scratch: Path) -> None:
    # was a BadInput of two lines: "unexpected" listed the file's keys as they are
    import torch

    from vidvpr.models.checkpoints import load_state

    path = scratch / "key-line-break.pt"
    state = {"weight": torch.zeros(2, 3), "bias": torch.zeros(2), "a\nb": torch.zeros(1)}
    refused(lambda: load_state(torch.nn.Linear(3, 2), state, str(path)), path, r"unexpected a\\nb$")


def test_a_training_state_torch_warns_about_is_refused_without_the_warning(scratch: Path) -> None:
    # was a torch UserWarning (two lines on stderr) before the BadInput: param_groups a 2-D tensor
    import torch

    from vidvpr.distill.state import Progress, load_state, save_state
    from vidvpr.models.checkpoints import load_checkpoint

    path = scratch / "param-groups-tensor.pt"
    save_state(path, {}, *_training_parts(), Progress(1, [], {}, {}, {}))
    state = load_checkpoint(path)
    state["optimizer"]["param_groups"] = torch.zeros((1, 3))
    path.unlink()
    torch.save(state, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BadInput, match="damaged training state"):
            load_state(path, {}, *_training_parts())
    assert [str(warning.message) for warning in caught] == []


@pytest.mark.parametrize("item", ["jpeg:" + "9" * 5000, "jpeg:\u00b2", "jpeg:" + "1" * 30],
                         ids=["digit-limit", "superscript", "long"])
def test_lq_integers_beyond_any_range_or_not_decimal_are_refused_in_one_line(item: str) -> None:
    # were ValueErrors from int(): "Exceeds the limit (4300 digits)", and "²" (a digit by str.isdigit)
    with pytest.raises(BadInput, match="must be an integer from") as info:
        parse_low_quality([item])
    assert str(info.value).splitlines() == [str(info.value)]


def test_an_eval_row_longer_than_any_video_is_refused_in_one_line(scratch: Path) -> None:
    # found by test_study_command_on_a_damaged_results_json_...: seq_len 10**30 passed the reader, then
    # matplotlib failed on it as a Python integer numpy cannot hold (exit 1, internal error)
    tree = json.loads(sequence_results(scratch / "long-sequence").read_text())
    tree["rows"][1]["seq_len"] = 10**30
    path = write(scratch, "long-sequence.json", json.dumps(tree).encode())
    refused(lambda: EvalResults.load(path), path, r"rows\.1\.seq_len: Input should be less than or equal to 1000000000")

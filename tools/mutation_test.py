#!/usr/bin/env python3
"""Mutation score of the pure modules, each mutated by mutmut and judged by its own fast tests only.

    .venv/bin/python tools/mutation_test.py                       # all four modules, one after another
    .venv/bin/python tools/mutation_test.py projection plan       # some of them
    .venv/bin/python tools/mutation_test.py trajectory --diffs    # and show each survivor's diff
    .venv/bin/python tools/mutation_test.py --list                # modules, their sources and tests

Each module runs in a throw-away copy of the repository (the package, the tests and manifests folders
and a pyproject.toml written for the run), so nothing here touches the working tree, nor needs a
[tool.mutmut] section, and no `mutants/` folder is left behind (--keep keeps the copy to browse
with `mutmut browse` there). Modules run one at a time; mutmut uses --jobs processes (default 2).

Prints one row per module: mutants, killed, survived (anything not caught: survived, no tests,
suspicious, segfault), timeout, equivalent (survivors listed in EQUIVALENT below, each with its
reason) and the score = (killed + timeout) / (mutants − equivalent). Lists the other survivors.
Exits 1 when a module scores below --min-score (90 %), 2 when mutmut itself fails.

Minutes, not seconds: a tools/ script for people, never run by CI (pytest collects tests/ only).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIN_SCORE = 90.0
MUTMUT = Path(sys.executable).with_name("mutmut")


@dataclass(frozen=True)
class Module:
    sources: tuple[str, ...]  # files mutated, relative to the repository
    tests: tuple[str, ...]  # its own fast test files, the only ones run against its mutants


MODULES = {
    "projection": Module(("vidvpr/geo/projection.py",), ("tests/test_geometry.py", "tests/test_projection_maths.py")),
    "trajectory": Module(("vidvpr/geo/trajectory.py",), ("tests/test_trajectory.py", "tests/test_trajectory_maths.py")),
    "positives": Module(("vidvpr/dataset/positives.py", "vidvpr/dataset/sampling.py"), ("tests/test_positives_maths.py",)),
    "plan": Module(("vidvpr/encoding/plan.py",), ("tests/test_encode_plan_maths.py",)),
}

#: Surviving mutants read one by one and shown unable to change any result: mutmut name -> why.
#: Names are mutmut's (`mutmut show NAME` in a --keep copy prints the diff); they shift when the
#: function they are in is edited, and a stale entry is reported, never silently counted.
_PROJ, _TRAJ, _POS, _SAMP, _PLAN = (f"vidvpr.{m}." for m in (
    "geo.projection", "geo.trajectory", "dataset.positives", "dataset.sampling", "encoding.plan"))
_SORTED_AFTER = "each query's hits are re-sorted by (distance, index), so the candidates' order is irrelevant"
_WINDOW_ONLY = "the easting window only prunes candidates the exact distance test rejects: slower, same result"
_RESHAPE = "numpy reads any negative size as 'infer', like -1"
_UTM_FLOAT = "utm.from_latlon of float64 arrays returns float64 arrays: asarray with or without dtype=float"
EQUIVALENT: dict[str, str] = {
    _PROJ + "x_sample_bilinear__mutmut_2": "image.astype(None) is astype(float64), numpy's default dtype",
    _TRAJ + "x__fill_invalid__mutmut_16": "-2 instead of -1 marks 'no valid sample yet': every negative is replaced",
    _TRAJ + "x__fill_invalid__mutmut_18": "index <= 0: 0 only occurs when sample 0 is valid, and is replaced by 0",
    _TRAJ + "x__fill_invalid__mutmut_19": "index < 1 is index <= 0 for integers (see mutant 18)",
    _TRAJ + "x__frame_name__mutmut_12": "a missing letter defaults to 'XXNXX', which is >= 'N' like 'N'",
    _TRAJ + "x__frame_name__mutmut_13": "a missing letter defaults to 'n', which is >= 'N' like 'N'",
    _TRAJ + "x_heading_from_rotation__mutmut_14": "einsum subscripts in upper case: the same contraction",
    _TRAJ + "x_lat_lon__mutmut_24": "strict=None: utm.to_latlon tests `if strict:`, None is false like False",
    _TRAJ + "x_latlon_to_utm__mutmut_18": "one label too many: labels are only indexed by point indices 0..N-1",
    _TRAJ + "x_latlon_to_utm__mutmut_86": _UTM_FLOAT,
    _TRAJ + "x_latlon_to_utm__mutmut_88": _UTM_FLOAT,
    _TRAJ + "x_latlon_to_utm__mutmut_90": _UTM_FLOAT,
    _TRAJ + "x_latlon_to_utm__mutmut_92": _UTM_FLOAT,
    _TRAJ + "x_quat_to_matrix__mutmut_76": "np.stack of 1-D arrays along axis +1 is along axis -1",
    _POS + "x__points__mutmut_11": _RESHAPE,
    _POS + "x_find_positives__mutmut_33": _RESHAPE,
    _POS + "x_find_positives__mutmut_41": _RESHAPE,
    _POS + "x_find_positives__mutmut_67": "database argsort without kind: " + _SORTED_AFTER,
    _POS + "x_find_positives__mutmut_69": "database argsort without kind: " + _SORTED_AFTER,
    _POS + "x_find_positives__mutmut_72": "database argsort kind 'STABLE': " + _SORTED_AFTER,
    _POS + "x_find_positives__mutmut_77": "query order only groups queries into chunks; each result goes to its index",
    _POS + "x_find_positives__mutmut_79": "query order only groups queries into chunks; each result goes to its index",
    _POS + "x_find_positives__mutmut_80": "queries grouped by northing: each chunk's window spans its own eastings",
    _POS + "x_find_positives__mutmut_82": "query order only groups queries into chunks; each result goes to its index",
    _POS + "x_find_positives__mutmut_88": "chunks of at least 2 queries instead of 1: memory, not results",
    _POS + "x_find_positives__mutmut_97": "overlapping chunks recompute queries with the same result",
    _POS + "x_find_positives__mutmut_101": "lo = None: " + _WINDOW_ONLY,
    _POS + "x_find_positives__mutmut_107": "side='left' removed: it is searchsorted's default",
    _POS + "x_find_positives__mutmut_112": "hi = None: " + _WINDOW_ONLY,
    _POS + "x_find_positives__mutmut_138": "`and` -> `or`: both headings are set together, both None or both arrays",
    _POS + "x_positive_stats__mutmut_3": "np.array of Python ints is already of dtype int",
    _POS + "x_positive_stats__mutmut_5": "np.array of Python ints is already of dtype int",
    _SAMP + "x_parse_sampling__mutmut_24": "the value without a match is never read: `not match` raises first",
    _PLAN + "x_parse_rate_control__mutmut_20": "searching 'XXXX' instead of '': none of the patterns matches either",
}

#: mutmut status -> table column (everything not caught counts as survived)
COLUMN = {"killed": "killed", "timeout": "timeout", "caught by type check": "killed"}


@dataclass
class Outcome:
    name: str
    statuses: dict[str, str]  # mutant -> mutmut status
    seconds: float

    def count(self, column: str) -> int:
        return sum(1 for mutant, status in self.statuses.items()
                   if COLUMN.get(status, "survived") == column and mutant not in EQUIVALENT)

    @property
    def equivalent(self) -> list[str]:
        return sorted(m for m, status in self.statuses.items() if m in EQUIVALENT and COLUMN.get(status) is None)

    @property
    def survivors(self) -> list[str]:
        return sorted(m for m, status in self.statuses.items()
                      if COLUMN.get(status, "survived") == "survived" and m not in EQUIVALENT)

    @property
    def score(self) -> float:
        judged = len(self.statuses) - len(self.equivalent)
        return 100.0 * (self.count("killed") + self.count("timeout")) / judged if judged else 100.0

    def part(self, source: str) -> Outcome:
        """The mutants of one of the module's files (mutmut names start with the dotted module)."""
        prefix = source.removesuffix(".py").replace("/", ".") + ".x"
        return Outcome(f"  {Path(source).name}", {m: s for m, s in self.statuses.items() if m.startswith(prefix)},
                       self.seconds)

    def row(self, seconds: bool = True) -> tuple:
        return (self.name, len(self.statuses), self.count("killed"), self.count("survived"), self.count("timeout"),
                len(self.equivalent), f"{self.score:.1f}", f"{self.seconds:.0f}" if seconds else "")


def pyproject_for(module: Module, tests: tuple[str, ...]) -> str:
    """pyproject.toml of the throw-away copy: the repository's pytest markers and this run's mutmut setup."""
    listed = lambda items: "[" + ", ".join(f'"{item}"' for item in items) + "]"
    return f"""[tool.pytest.ini_options]
markers = ["slow: slow", "shared_data: needs ../shared/data"]

[tool.mutmut]
source_paths = ["vidvpr/"]
only_mutate = {listed(module.sources)}
pytest_add_cli_args_test_selection = {listed(tests)}
pytest_add_cli_args = ["-p", "no:cacheprovider"]
also_copy = ["manifests/"]
use_git_change_detection = false
"""


def prepare_copy(module: Module, tests: tuple[str, ...]) -> Path:
    work = Path(tempfile.mkdtemp(prefix="vidvpr-mutmut-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "vidvpr", work / "vidvpr", ignore=ignore)
    shutil.copytree(REPO / "tests", work / "tests", ignore=ignore)
    shutil.copytree(REPO / "manifests", work / "manifests", ignore=ignore)  # schema.json, read by some tests
    (work / "pyproject.toml").write_text(pyproject_for(module, tests))
    return work


def run_module(name: str, module: Module, tests: tuple[str, ...], jobs: int, keep: bool, diffs: bool) -> Outcome:
    files = [*module.sources, *(arg.split("::")[0] for arg in tests if not arg.startswith("-"))]
    missing = [path for path in files if not (REPO / path).is_file()]
    if missing:
        raise SystemExit(f"{name}: missing {', '.join(missing)}")
    work = prepare_copy(module, tests)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    try:
        run = subprocess.run([str(MUTMUT), "run", "--max-children", str(jobs)], cwd=work, env=env,
                             capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        listing = subprocess.run([str(MUTMUT), "results", "--all", "true"], cwd=work, env=env,
                                 capture_output=True, text=True, check=False)
        statuses = dict(re.findall(r"^\s+(\S+): (.+?)\s*$", listing.stdout, flags=re.MULTILINE))
        if run.returncode or not statuses:
            sys.stderr.write(run.stdout[-4000:] + run.stderr[-4000:] + listing.stderr[-2000:])
            raise SystemExit(2)
        outcome = Outcome(name, statuses, seconds)
        if diffs:
            for mutant in outcome.survivors:
                shown = subprocess.run([str(MUTMUT), "show", mutant], cwd=work, env=env, capture_output=True, text=True,
                                       check=False)
                print(shown.stdout)
        return outcome
    finally:
        if keep:
            print(f"{name}: mutmut's copy kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def print_table(outcomes: list[Outcome]) -> None:
    header = ("module", "mutants", "killed", "survived", "timeout", "equivalent", "score %", "run s")
    rows = []
    for outcome in outcomes:
        rows.append(outcome.row())
        sources = MODULES[outcome.name].sources
        if len(sources) > 1:
            rows += [outcome.part(source).row(seconds=False) for source in sources]
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                        for i, (cell, width) in enumerate(zip(row, widths))))
    for outcome in outcomes:
        for mutant in outcome.survivors:
            print(f"  survived: {mutant} ({outcome.statuses[mutant]})")
        stale = [m for m in EQUIVALENT if m in outcome.statuses and m not in outcome.equivalent]
        for mutant in stale:
            print(f"  listed as equivalent but {outcome.statuses[mutant]}: {mutant} (update EQUIVALENT)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default: 2)")
    parser.add_argument("--min-score", type=float, default=MIN_SCORE, help="fail below this score %% (default: 90)")
    parser.add_argument("--tests", nargs="+", metavar="FILE",
                        help="run these test files or node ids (tests/x.py::test_y) instead of the module's own")
    parser.add_argument("--diffs", action="store_true", help="print each survivor's diff")
    parser.add_argument("--keep", action="store_true", help="keep mutmut's working copy (to `mutmut browse` there)")
    parser.add_argument("--list", action="store_true", help="list the modules, their sources and tests, and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, module in MODULES.items():
            print(f"{name}: {' '.join(module.sources)}  <-  {' '.join(module.tests)}")
        return 0
    unknown = [name for name in args.modules if name not in MODULES]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}; use {', '.join(MODULES)}")
    if not MUTMUT.exists():
        parser.error(f"mutmut not found next to {sys.executable}; pip install mutmut")
    outcomes = []
    for name in args.modules or list(MODULES):
        module = MODULES[name]
        print(f"{name}: mutating {', '.join(module.sources)} ...", file=sys.stderr, flush=True)
        outcomes.append(run_module(name, module, tuple(args.tests or module.tests), args.jobs, args.keep, args.diffs))
    print_table(outcomes)
    failing = [o.name for o in outcomes if o.score < args.min_score]
    if failing:
        print(f"below {args.min_score:g}%: {', '.join(failing)}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())

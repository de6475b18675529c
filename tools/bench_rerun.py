#!/usr/bin/env python3
"""How long each command takes to decide that a finished dataset leaves it nothing to do.

Target (issue 16): under 0.5 s + 1 ms per output for `vidvpr slice`, `encode`, `manifest`,
`export` and `eval` (descriptor cache warm), run as a user runs them: the command line, in a
fresh process. The dataset is one `vidvpr demo run` made:

    vidvpr demo run /tmp/demo-small --size small      # or without --size: the full demo
    python tools/bench_rerun.py /tmp/demo-small --repeat 5
    python tools/bench_rerun.py /tmp/demo-small --code ../main     # the same, with another checkout's code

Each command is run once untimed (it finishes anything left, e.g. the export, which the demo does
not make, and warms the page and hash caches), then `--repeat` times, each of which must report
nothing done (checked from its --json output). Outputs are the files under the command's output
folder. In the same run, the floor every command pays: `python -c pass` and `vidvpr --help`. On
a loaded machine the wall times stretch with the load; CPU time (user + system of the process)
much less, and is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

BUDGET_S = 0.5
BUDGET_PER_OUTPUT_S = 0.001


@dataclass(frozen=True)
class Command:
    name: str
    argv: list[str]
    out: Path | None                   # the folder whose files are its outputs
    idle: Callable[[Any], bool]        # from its --json output: did it decide there was nothing to do?


def vidvpr(*args: str) -> list[str]:
    return [sys.executable, "-m", "vidvpr", *args]


def commands(demo: Path, qps: str) -> list[Command]:
    sources = [str(p) for p in sorted(demo.glob("*/*.mp4")) if p.parent.name not in ("views", "enc", "eval")]
    views = [str(p) for p in sorted((demo / "views").glob("*/*.mp4"))]
    if not sources or not views:
        sys.exit(f"{demo}: not a finished `vidvpr demo run` folder (no source or view videos)")
    size = view_size(Path(views[0]))
    return [
        Command("slice", vidvpr("slice", *sources, "--out", str(demo / "views"), "--json"), demo / "views",
                lambda out: all(view["skipped"] for view in out["outputs"])),
        Command("encode", vidvpr("encode", *views, "--out", str(demo / "enc"), "--qp", qps, "--res", size,
                                 "--preset", "veryfast", "--json"), demo / "enc", lambda out: not out["encoded"]),
        Command("manifest", vidvpr("manifest", str(demo / "dataset.toml"), "--out", str(demo / "manifest"), "--json"),
                demo / "manifest", lambda out: out["skipped"]),
        Command("export", vidvpr("export", str(demo / "manifest"), "--out", str(demo / "export"), "--json"),
                demo / "export", lambda out: out["skipped"]),
        Command("eval", vidvpr("eval", str(demo / "manifest"), "--enc", str(demo / "enc"), "--out", str(demo / "eval"),
                               *demo_eval_options(), "--json"), demo / "eval",  # (code without `skipped` searched again: no forward pass)
                lambda out: out["forward_images"] == 0 and out.get("skipped", True)),
    ]


def demo_eval_options() -> list[str]:
    """The eval options `vidvpr demo run` evaluates with (sequences, strips), so the rerun timed is
    the demo's own and leaves its eval folder as the demo wrote it."""
    from vidvpr.demo.run import DemoRunConfig

    config = DemoRunConfig().eval
    return ["--seq-len", ",".join(map(str, config.seq_lens)), "--save-preds", str(config.save_preds),
            "--batch-size", str(config.batch_size)]


def view_size(video: Path) -> str:
    sidecar = json.loads(video.with_suffix(".json").read_text())
    return f"{sidecar['geometry']['width']}x{sidecar['geometry']['height']}"


def outputs(folder: Path | None) -> int:
    if folder is None:
        return 0
    return sum(1 for path in folder.rglob("*") if path.is_file() and ".partial-" not in path.name)


def run(argv: list[str], code: Path | None = None) -> tuple[float, float, str]:
    """(wall s, CPU s of the process, stdout) of one run; with `code`, vidvpr is imported from that
    checkout (the command runs in it; nothing is written there)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **({"PYTHONDONTWRITEBYTECODE": "1"} if code else {})}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=code)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv[2:])} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo", type=Path, help="a folder `vidvpr demo run` finished")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--qp", default="20..50", help="the --qp the demo was run with")
    parser.add_argument("--only", default=None, help="comma-separated commands to time (default: all)")
    parser.add_argument("--code", type=Path, default=None,
                        help="run the vidvpr of this checkout (e.g. ../main, for a before/after comparison)")
    args = parser.parse_args()
    code = args.code.absolute() if args.code else None
    chosen = commands(args.demo.absolute(), args.qp)
    if args.only:
        chosen = [command for command in chosen if command.name in args.only.split(",")]
    floors = {"python -c pass": [sys.executable, "-c", "pass"], "vidvpr --help": vidvpr("--help")}
    for command in chosen:  # untimed: finish what is left, warm the caches
        run(command.argv, code)
    timings: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in [*floors, *(c.name for c in chosen)]}
    for _ in range(args.repeat):  # interleaved, so the machine's load hits every command alike
        for name, argv in floors.items():
            wall, cpu, _ = run(argv, code)
            timings[name][0].append(wall)
            timings[name][1].append(cpu)
        for command in chosen:
            wall, cpu, stdout = run(command.argv, code)
            if not command.idle(json.loads(stdout)):
                sys.exit(f"{command.name}: the rerun did work; is {args.demo} a finished demo run with these options?")
            timings[command.name][0].append(wall)
            timings[command.name][1].append(cpu)
    load = os.getloadavg()[0]
    print(f"rerun over {args.demo} with the code of {code or Path(__file__).resolve().parents[1]} "
          f"({args.repeat} runs each, interleaved; load average {load:.1f} on "
          f"{os.cpu_count()} cores{': LOADED, wall times stretch' if load > (os.cpu_count() or 1) else ''})")
    print(f"  {'command':16} {'outputs':>7} {'budget':>8} {'wall median':>12} {'(spread)':>13} {'wall/budget':>11} "
          f"{'cpu median':>11} {'cpu/budget':>10}")
    for name, (walls, cpus) in timings.items():
        command = next((c for c in chosen if c.name == name), None)
        files = outputs(command.out) if command else 0
        budget = BUDGET_S + BUDGET_PER_OUTPUT_S * files
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        print(f"  {name:16} {files:7d} {budget:7.3f}s {wall:11.3f}s {spread(walls):>13} {wall / budget:11.2f} "
              f"{cpu:10.3f}s {cpu / budget:10.2f}")
    worst = max((statistics.median(timings[c.name][0]) / (BUDGET_S + BUDGET_PER_OUTPUT_S * outputs(c.out)), c.name)
                for c in chosen)
    print(f"summary: worst rerun {worst[1]} at {worst[0]:.2f}x its budget (wall; target <= 1.00), load {load:.1f}")


if __name__ == "__main__":
    main()

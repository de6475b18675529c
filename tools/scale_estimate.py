#!/usr/bin/env python3
"""Scale on paper: project CPU-hours, GPU-hours, storage and wall time per stage for a dataset, from
the per-unit costs that earlier runs recorded in their sidecars.

    # rates from runs on a sample (slice, encode and eval output folders), then 500 h of 5.7K video:
    python tools/scale_estimate.py --measured M/native M/big M/enc M/desc --measured-cores 1 \\
        --hours 500 --size 5760x2880 --fps 30 --views 4 --res 720p,480p --qp 20..50 --workers 16 --cores 32
    # or the dataset's own source videos (probed) instead of --hours/--size/--fps:
    python tools/scale_estimate.py --measured M/... --videos /data/walks/*.mp4 --res 720p --qp 30,40

What is measured and what is assumed is printed with the table. `--measured-cores` is how many cores
the measured runs kept busy (their CPU time / wall time; at most the machine's cores): slice and
descriptor sidecars record wall time only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vidvpr.core.errors import BadInput, VidvprError
from vidvpr.core.threads import usable_cores
from vidvpr.encoding.options import parse_qp_spec, parse_resolutions
from vidvpr.geo.projection import default_view_size
from vidvpr.media.probe import probe_video
from vidvpr.run.rates import Rates, read_rates
from vidvpr.run.scale import Machine, StageCost, Workload, project, total

SEARCH_BENCH_ROWS = 20_000
SEARCH_BENCH_QUERIES = 256


def measure_search_gflops(dim: int, threads: int) -> float:
    """Exact L2 search speed here (faiss IndexFlatL2), in GFLOP/s per core."""
    import faiss

    faiss.omp_set_num_threads(threads)
    rng = np.random.default_rng(0)
    index = faiss.IndexFlatL2(dim)
    index.add(rng.standard_normal((SEARCH_BENCH_ROWS, dim), dtype=np.float32))
    queries = rng.standard_normal((SEARCH_BENCH_QUERIES, dim), dtype=np.float32)
    index.search(queries[:16], 20)  # warm up
    started = time.perf_counter()
    index.search(queries, 20)
    seconds = time.perf_counter() - started
    return 2 * SEARCH_BENCH_ROWS * SEARCH_BENCH_QUERIES * dim / seconds / 1e9 / threads


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise BadInput(f"'{text}' is not WxH (e.g. 5760x2880)") from None
    return width, height


def workload(args: argparse.Namespace, rates: Rates) -> Workload:
    """The dataset from the options, or from its probed source videos."""
    for name in ("hours", "fps", "views", "file_minutes", "source_mbps", "sampled_fps", "query_fraction", "models",
                 "workers", "cores", "gpu_mpx_per_s", "search_gflops"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise BadInput(f"--{name.replace('_', '-')} must be positive, got {value:g}")
    if args.query_fraction >= 1:
        raise BadInput(f"--query-fraction must be below 1 (the rest is the database), got {args.query_fraction:g}")
    if args.videos:
        infos = [probe_video(Path(path)) for path in args.videos]
        hours = sum(info.duration_s or 0 for info in infos) / 3600
        width, height, fps = infos[0].width, infos[0].height, float(infos[0].fps)
        file_minutes = hours * 60 / len(infos)
        source_mbps = sum(i.path.stat().st_size for i in infos) * 8 / 1e6 / (hours * 3600)
    else:
        if args.hours is None:
            raise BadInput("give --hours (with --size and --fps) or --videos")
        (width, height), fps, hours = _size(args.size), args.fps, args.hours
        file_minutes, source_mbps = args.file_minutes, args.source_mbps
    view = _size(args.view_size) if args.view_size else default_view_size(width, args.fov)
    cells = tuple((*res.size_for(*view), qp) for res in parse_resolutions(args.res) for qp in parse_qp_spec(args.qp))
    if args.codec not in rates.encode_s_per_mpx:
        raise BadInput(f"no measured {args.codec} cells under --measured (found: "
                       f"{', '.join(rates.encode_s_per_mpx) or 'none'}); run vidvpr encode on a sample first")
    return Workload(hours, width, height, fps, args.views, view, cells, args.codec, file_minutes, args.sampled_fps,
                    args.query_fraction, args.models, source_mbps)


def table(stages: list[StageCost]) -> list[str]:
    lines = [f"{'stage':20} {'core-h':>10} {'GPU-h':>8} {'storage':>10} {'units':>8} {'largest unit':>13} "
             f"{'wall':>9}"]
    for s in stages:
        gpu = f"{s.gpu_hours:8.0f}" if s.gpu_hours is not None else f"{'-':>8}"
        lines.append(f"{s.stage:20} {s.core_hours:10,.0f} {gpu} {s.storage_bytes / 1e12:8.1f} TB {s.units:8,d} "
                     f"{s.largest_unit_core_hours:9.1f} c-h {s.wall_hours:7.1f} h")
    return lines


def clamped_qps(by_qp: dict[int, float], work: Workload) -> str:
    """The grid's QPs outside the measured ones, whose bytes per pixel are the nearest measured QP's
    (`vidvpr.run.rates.bytes_per_px` clamps; it interpolates only between measured QPs), in words."""
    low, high = min(by_qp), max(by_qp)
    outside = sorted({qp for _, _, qp in work.cells if not low <= qp <= high})
    if not outside:
        return ""
    return (f"; QP {', '.join(map(str, outside))} outside the measured {low}..{high}: storage at the nearest "
            "measured QP's bytes/pixel (encode more QPs to measure them)")


def rate_lines(rates: Rates, work: Workload, machine: Machine, search_note: str) -> list[str]:
    by_qp = rates.cell_bytes_per_px[work.codec]
    return [
        f"slice: {rates.slice_source_s_per_mpx * 1e3:.2f} core-ms per source Mpx + "
        f"{rates.slice_view_s_per_mpx * 1e3:.2f} per view Mpx; views {rates.view_bytes_per_px:.3f} B/px "
        f"({rates.evidence.get('slice', 'no slice sidecars')})",
        f"encode {work.codec}: {rates.encode_s_per_mpx[work.codec] * 1e3:.2f} core-ms per cell Mpx; "
        + ", ".join(f"qp{qp} {b:.4f}" for qp, b in by_qp.items()) + f" B/px ({rates.evidence.get('encode')})"
        + clamped_qps(by_qp, work),
        f"descriptors: {rates.describe_s_per_mpx * 1e3:.1f} core-ms per input Mpx, {rates.descriptor_dim}-D float16 "
        f"({rates.evidence.get('describe', 'no descriptor sidecars')})",
        f"search: {machine.search_gflops_per_core:.1f} GFLOP/s per core, exact L2 ({search_note})",
        f"assumed: sources {work.source_mbps:g} Mbit/s, files of {work.file_minutes:g} min, {work.sampled_fps:g} "
        f"sampled frame/s per view, {work.query_fraction:g} of them queries, {work.models} model(s)"
        + (f", GPU {machine.gpu_mpx_per_s:g} Mpx/s for descriptors" if machine.gpu_mpx_per_s else ""),
    ]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measured", nargs="+", type=Path, required=True,
                        help="Output folders of earlier runs (their sidecars are the rates).")
    parser.add_argument("--measured-cores", type=float, default=usable_cores(),
                        help="Cores the measured runs kept busy (CPU time / wall time) [default: this machine's].")
    parser.add_argument("--videos", nargs="+", help="The dataset's source videos (probed for hours, size, fps).")
    parser.add_argument("--hours", type=float, help="Hours of 360° video.")
    parser.add_argument("--size", default="5760x2880", help="Equirect size of one eye, WxH.")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--views", type=int, default=4, help="Views per source.")
    parser.add_argument("--fov", type=float, default=90.0, help="View field of view (sets the default view size).")
    parser.add_argument("--view-size", help="View size WxH [default: the source's angular resolution, 16:9].")
    parser.add_argument("--res", default="720p,480p", help="Grid resolutions (as vidvpr encode --res).")
    parser.add_argument("--qp", default="20..50", help="Grid quantisers (as vidvpr encode --qp).")
    parser.add_argument("--codec", default="libx264")
    parser.add_argument("--file-minutes", type=float, default=60.0, help="Minutes per source file (one slice unit).")
    parser.add_argument("--source-mbps", type=float, default=100.0, help="Source bitrate (assumed), Mbit/s.")
    parser.add_argument("--sampled-fps", type=float, default=1.0, help="Manifest frames per second per view.")
    parser.add_argument("--query-fraction", type=float, default=0.5, help="Fraction of sampled frames that are queries.")
    parser.add_argument("--models", type=int, default=1, help="Models evaluated.")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--cores", type=int, default=32, help="Cores per worker.")
    parser.add_argument("--gpu-mpx-per-s", type=float, default=None, help="Assumed GPU descriptor throughput.")
    parser.add_argument("--search-gflops", type=float, default=None, help="Per core [default: measured here].")
    parser.add_argument("--json", action="store_true", help="Print the projection as JSON.")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        rates = read_rates(args.measured, args.measured_cores)
        if not rates.descriptor_dim:
            raise BadInput("no descriptor sidecars under --measured; run vidvpr eval (or describe frames) first")
        work = workload(args, rates)
        threads = max(1, int(args.measured_cores))
        gflops = args.search_gflops or measure_search_gflops(rates.descriptor_dim, threads)
        note = "given" if args.search_gflops else f"measured here, faiss IndexFlatL2, {threads} threads"
        machine = Machine(args.workers, args.cores, gflops, args.gpu_mpx_per_s)
        stages = project(work, rates, machine)
    except VidvprError as exc:
        print(f"scale_estimate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps({"workload": asdict(work), "rates": asdict(rates), "machine": asdict(machine),
                          "stages": [asdict(s) for s in [*stages, total(stages)]]}, indent=2))
        return 0
    print(f"{work.hours:g} h of {work.width}x{work.height} at {work.fps:g} fps, {work.views} views of "
          f"{work.view_size[0]}x{work.view_size[1]}, {len(work.cells)} cells; {machine.workers} workers x "
          f"{machine.cores} cores")
    print("\n".join(table([*stages, total(stages)])))
    print("rates:\n  " + "\n  ".join(rate_lines(rates, work, machine, note)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

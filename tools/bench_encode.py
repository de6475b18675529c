#!/usr/bin/env python3
"""Time the `vidvpr encode` grid against a naive loop of one ffmpeg process per cell.

Encode stage: the grid is vidvpr's own argv (decode the view once, scale once per resolution,
`split` to one x264 per QP); the naive loop runs the same builder with one target per
process, so every encoder has the same settings (preset, QP, GOP, thread count) and the mp4
files must be bit-identical, which is checked. A second naive loop lets x264 pick its thread
count (what a plain script does); its files differ at least in the settings SEI (threads=N), and
x264's frame threads can change encoding decisions, so it reports how many cells decode to
identical frames (8 of 14 on a 2-core machine, 640x360 view, 360p,240x136 x qp 20..50). Measure stage: the grid's one pass per view against one pass
per cell (metrics must be equal). The floor is the encoders' own CPU time spread over all cores:
grid CPU minus a decode+scale-only pass over the same graph, divided by the core count.

Prints wall/CPU seconds (median over --repeat runs, alternating contenders) and the ratios.

    python tools/bench_encode.py VIEW.mp4 --res 480p,360p --qp 20..50 --repeat 2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

from vidvpr.core.threads import encoder_threads
from vidvpr.encoding.grid import encode_grid
from vidvpr.encoding.plan import EncodeConfig, EncodeTarget, encode_command, plan_grid
from vidvpr.media.view_video import describe_view_video
from vidvpr.media.ffmpeg import find_ffmpeg
from vidvpr.encoding.quality import MeasureTarget, measure_command, read_metrics, scale_chain


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU user+system) seconds of one process; raises if it fails."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(argv[:8])} ...: {proc.stderr.read().decode()[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime


def decoded_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            digest.update(frame.to_ndarray(format="yuv420p").tobytes())
    return digest.hexdigest()


def strip_threads(argv: list[str]) -> list[str]:
    """The same argv with x264's thread count left to x264 (auto)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "-threads":
            skip = True
            continue
        out.append(arg)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("view", type=Path)
    parser.add_argument("--qp", default="20..50")
    parser.add_argument("--res", default="480p,360p")
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-vmaf", action="store_true")
    parser.add_argument("--skip-auto", action="store_true", help="skip the naive loop with x264's own thread count")
    args = parser.parse_args()

    from vidvpr.encoding.plan import parse_qp_spec, parse_resolutions

    ffmpeg = find_ffmpeg()
    config = EncodeConfig(qps=parse_qp_spec(args.qp), resolutions=parse_resolutions(args.res), preset=args.preset,
                          vmaf=not args.no_vmaf)
    source = describe_view_video(args.view)
    cells = plan_grid([source], config, Path("/unused"))
    cores = os.cpu_count() or 1
    threads = encoder_threads(config.jobs * len(cells), cores)
    vmaf = config.vmaf and ffmpeg.has_vmaf
    gop = cells[0].gop
    print(f"input {args.view} {source.width}x{source.height} {source.frames} frames; {len(cells)} cells "
          f"({args.res} x qp {args.qp}); {ffmpeg.version}; {cores} cores; x264 threads per encoder {threads}; "
          f"preset {args.preset}; gop {gop}; vmaf {vmaf}")

    def names(folder: Path) -> list[Path]:
        return [folder / f"{c.resolution}_qp{c.qp:02d}.mp4" for c in cells]

    def targets(folder: Path) -> list[EncodeTarget]:
        return [EncodeTarget(c.width, c.height, c.qp, path) for c, path in zip(cells, names(folder))]

    runs: dict[str, list[tuple[float, float]]] = {key: [] for key in
                                                  ("grid", "naive", "naive_auto", "decode_scale", "m_grid", "m_naive", "library")}
    with tempfile.TemporaryDirectory(prefix="bench-encode-") as tmp:
        root = Path(tmp)
        grid_dir, naive_dir, auto_dir, work = (root / n for n in ("grid", "naive", "auto", "work"))
        for folder in (grid_dir, naive_dir, auto_dir, work):
            folder.mkdir()
        sizes = list(dict.fromkeys((c.width, c.height) for c in cells))
        decode_scale = [ffmpeg.path, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(args.view.resolve()),
                        "-filter_complex", f"[0:v]split={len(sizes)}" + "".join(f"[s{i}]" for i in range(len(sizes)))
                        + "".join(f";[s{i}]{scale_chain(*size)}[o{i}]" for i, size in enumerate(sizes))]
        decode_scale += [arg for i in range(len(sizes)) for arg in ("-map", f"[o{i}]")] + ["-f", "null", "-"]
        for rep in range(args.repeat):
            runs["grid"].append(timed(encode_command(ffmpeg.path, args.view, targets(grid_dir), config, gop, threads), work))
            naive = [timed(encode_command(ffmpeg.path, args.view, [t], config, gop, threads), work) for t in targets(naive_dir)]
            runs["naive"].append((sum(w for w, _ in naive), sum(c for _, c in naive)))
            if not args.skip_auto:
                auto = [timed(strip_threads(encode_command(ffmpeg.path, args.view, [t], config, gop, threads)), work)
                        for t in targets(auto_dir)]
                runs["naive_auto"].append((sum(w for w, _ in auto), sum(c for _, c in auto)))
            runs["decode_scale"].append(timed(decode_scale, work))
            measured = [MeasureTarget(c.width, c.height, path) for c, path in zip(cells, names(grid_dir))]
            runs["m_grid"].append(timed(measure_command(ffmpeg.path, args.view, measured, vmaf, threads), work))
            grid_metrics = [read_metrics(work, i, vmaf, source.frames) for i in range(len(cells))]
            per_cell = []
            naive_metrics = []
            for target in measured:
                per_cell.append(timed(measure_command(ffmpeg.path, args.view, [target], vmaf, cores), work))
                naive_metrics.append(read_metrics(work, 0, vmaf, source.frames))
            runs["m_naive"].append((sum(w for w, _ in per_cell), sum(c for _, c in per_cell)))
            out = root / f"library{rep}"
            started = time.perf_counter()
            cpu_before = os.times()
            encode_grid([args.view], out, config, ffmpeg=ffmpeg)
            cpu_after = os.times()
            runs["library"].append((time.perf_counter() - started,
                                    sum(cpu_after[i] - cpu_before[i] for i in range(4))))
            print(f"run {rep + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f}s" for k, v in runs.items() if v), flush=True)

        identical = sum(a.read_bytes() == b.read_bytes() for a, b in zip(names(grid_dir), names(naive_dir)))
        same_frames = (sum(decoded_digest(a) == decoded_digest(b) for a, b in zip(names(grid_dir), names(auto_dir)))
                       if not args.skip_auto else None)
        same_metrics = all((g.psnr_y, g.ssim_y, g.vmaf) == (n.psnr_y, n.ssim_y, n.vmaf)
                           for g, n in zip(grid_metrics, naive_metrics))

    med = {key: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for key, v in runs.items() if v}
    encoder_cpu = med["grid"][1] - med["decode_scale"][1]
    floor = encoder_cpu / cores
    print("\nmedian seconds (wall / CPU):")
    for key, label in (("grid", "grid encode (1 process)"), ("naive", "naive encode (1 process per cell, same threads)"),
                       ("naive_auto", "naive encode (1 process per cell, x264 auto threads)"),
                       ("decode_scale", "decode + scale only"), ("m_grid", "grid measure (1 pass)"),
                       ("m_naive", "naive measure (1 pass per cell)"), ("library", "vidvpr encode_grid end to end")):
        if key in med:
            print(f"  {label:55} {med[key][0]:8.2f} / {med[key][1]:8.2f}")
    print(f"\nencode: grid / naive wall = {med['grid'][0] / med['naive'][0]:.3f}"
          + (f"; grid / naive-auto wall = {med['grid'][0] / med['naive_auto'][0]:.3f}" if "naive_auto" in med else ""))
    print(f"floor (encoder CPU {encoder_cpu:.2f}s / {cores} cores) = {floor:.2f}s; grid wall / floor = "
          f"{med['grid'][0] / floor:.3f}")
    print(f"measure: grid / naive wall = {med['m_grid'][0] / med['m_naive'][0]:.3f}")
    print(f"end to end: encode_grid / (naive encode + naive measure) wall = "
          f"{med['library'][0] / (med['naive'][0] + med['m_naive'][0]):.3f}")
    print(f"outputs: {identical}/{len(cells)} mp4 files bit-identical to the naive loop's"
          + (f"; {same_frames}/{len(cells)} identical decoded frames vs naive-auto" if same_frames is not None else "")
          + f"; metrics equal per cell: {same_metrics}")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()

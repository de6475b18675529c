#!/usr/bin/env python3
"""Time the `vidvpr encode` grid: encoding alone, measuring before and after, and a naive loop.

Encode stage: the grid is vidvpr's own argv (decode the view once, scale once per resolution,
`split` to one x264 per QP); the naive loop runs the same builder with one target per process,
so every encoder has the same settings and the mp4 files must be bit-identical, which is
checked (--naive; a second loop with x264's own thread count with --naive-auto).

Measuring, before and after, on the same view in the same run, alternating contenders:
  before  the encode pass, then a second ffmpeg pass per view decoding the view and every cell
          again, one filter graph per cell (scale, PSNR and SSIM on Y, U and V, VMAF on every
          frame): the pipeline up to vidvpr 0.x's ENCODE_OUTPUT_VERSION 2, kept here as
          `legacy_measure_command`;
  after   one process: the encode pass plus a loopback decoder per encoder, one metric graph per
          size sharing the scaled reference, PSNR-Y and SSIM-Y on the luma plane, VMAF on frames
          0, N, 2N, ... (--vmaf-every, each fed with its neighbours so its score is exact);
  after-full  the same with VMAF on every frame (what overlapping alone gains).
Ratios are to the encode-only wall time. PSNR-Y and SSIM-Y must be equal before and after; the
VMAF difference per cell (max |Δ|) is the subsampling error, printed with the per-frame check
(every sampled frame's score against the full run's).

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
from collections.abc import Sequence
from pathlib import Path

import av

from vidvpr.core.threads import encoder_threads
from vidvpr.encoding.grid import encode_grid
from vidvpr.encoding.plan import EncodeConfig, EncodeTarget, encode_command, parse_qp_spec, parse_resolutions, plan_grid
from vidvpr.encoding.quality import (
    VMAF_MODEL,
    MeasureTarget,
    VmafSampling,
    measure_args,
    parse_vmaf_log,
    read_metrics,
    scale_chain,
    vmaf_measurable,
    vmaf_sampling,
)
from vidvpr.media.ffmpeg import find_ffmpeg
from vidvpr.media.view_video import describe_view_video


def legacy_measure_command(ffmpeg_path: str, reference: Path, cells: Sequence[MeasureTarget], vmaf: bool,
                           vmaf_threads: int) -> list[str]:
    """The measuring pass as it was (ENCODE_OUTPUT_VERSION 2): a second process, one graph per cell."""
    argv = [ffmpeg_path, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-i", str(reference.resolve())]
    argv += [arg for cell in cells for arg in ("-i", str(Path(cell.path).resolve()))]
    maps: list[str] = []
    for i, cell in enumerate(cells):
        metrics = 3 if vmaf and vmaf_measurable(cell.width, cell.height) else 2
        ref, dist, out = ([f"[c{i}{kind}{m}]" for m in range(metrics)] for kind in "rdo")
        graph = [f"[0:v]{scale_chain(cell.width, cell.height)},split={metrics}{''.join(ref)}",
                 f"[{i + 1}:v]split={metrics}{''.join(dist)}",
                 f"{dist[0]}{ref[0]}psnr=stats_file=psnr{i}.log{out[0]}",
                 f"{dist[1]}{ref[1]}ssim=stats_file=ssim{i}.log{out[1]}"]
        if metrics == 3:
            graph.append(f"{dist[2]}{ref[2]}libvmaf=model='version={VMAF_MODEL}':n_threads={vmaf_threads}"
                         f":log_fmt=json:log_path=vmaf{i}.json{out[2]}")
        argv += ["-filter_complex", ";".join(graph)]
        maps += [arg for label in out for arg in ("-map", label)]
    return argv + maps + ["-f", "null", "-"]


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU user+system) seconds of one process; exits if it fails."""
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
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "-threads" and index > argv.index("-filter_complex"):
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
    parser.add_argument("--vmaf-every", type=int, default=EncodeConfig().vmaf_every)
    parser.add_argument("--naive", action="store_true", help="also time one process per cell (same threads)")
    parser.add_argument("--naive-auto", action="store_true", help="also time one process per cell, x264 auto threads")
    parser.add_argument("--skip-library", action="store_true", help="skip encode_grid end to end")
    args = parser.parse_args()

    ffmpeg = find_ffmpeg()
    config = EncodeConfig(qps=parse_qp_spec(args.qp), resolutions=parse_resolutions(args.res), preset=args.preset,
                          vmaf_every=args.vmaf_every)
    source = describe_view_video(args.view)
    cells = plan_grid([source], config, Path("/unused"))
    cores = os.cpu_count() or 1
    threads = encoder_threads(config.jobs * len(cells), cores)
    gop = cells[0].gop
    sampling, full = vmaf_sampling(args.vmaf_every, source.frames), VmafSampling(1, source.frames)
    print(f"input {args.view} {source.width}x{source.height} {source.frames} frames; {len(cells)} cells "
          f"({args.res} x qp {args.qp}); {ffmpeg.version}; {cores} cores; x264 threads per encoder {threads}; "
          f"preset {args.preset}; gop {gop}; vmaf every {sampling.every} frames ({len(sampling.scored)} scored)")

    def names(folder: Path) -> list[Path]:
        return [folder / f"{c.resolution}_qp{c.qp:02d}.mp4" for c in cells]

    def targets(folder: Path) -> list[EncodeTarget]:
        return [EncodeTarget(c.width, c.height, c.qp, path) for c, path in zip(cells, names(folder))]

    def measured(folder: Path) -> list[MeasureTarget]:
        return [MeasureTarget(c.width, c.height, path) for c, path in zip(cells, names(folder))]

    runs: dict[str, list[tuple[float, float]]] = {key: [] for key in (
        "encode", "m_before", "after", "after_full", "naive", "naive_auto", "library")}
    with tempfile.TemporaryDirectory(prefix="bench-encode-") as tmp:
        root = Path(tmp)
        folders = {name: root / name for name in ("grid", "after", "after_full", "naive", "auto", "w_before",
                                                   "w_after", "w_full")}
        for folder in folders.values():
            folder.mkdir()
        for rep in range(args.repeat):
            runs["encode"].append(timed(encode_command(ffmpeg.path, args.view, targets(folders["grid"]), config, gop,
                                                       threads), folders["grid"]))
            runs["m_before"].append(timed(legacy_measure_command(ffmpeg.path, args.view, measured(folders["grid"]),
                                                                 True, threads), folders["w_before"]))
            for key, every in (("after", sampling), ("after_full", full)):
                argv = encode_command(ffmpeg.path, args.view, targets(folders[key]), config, gop, threads,
                                      measure_args(0, measured(folders[key]), True, every))
                runs[key].append(timed(argv, folders["w_after" if key == "after" else "w_full"]))
            if args.naive:
                naive = [timed(encode_command(ffmpeg.path, args.view, [t], config, gop, threads), folders["naive"])
                         for t in targets(folders["naive"])]
                runs["naive"].append((sum(w for w, _ in naive), sum(c for _, c in naive)))
            if args.naive_auto:
                auto = [timed(strip_threads(encode_command(ffmpeg.path, args.view, [t], config, gop, threads)),
                              folders["auto"]) for t in targets(folders["auto"])]
                runs["naive_auto"].append((sum(w for w, _ in auto), sum(c for _, c in auto)))
            if not args.skip_library:
                started, cpu_before = time.perf_counter(), os.times()
                encode_grid([args.view], root / f"library{rep}", config, ffmpeg=ffmpeg)
                cpu_after = os.times()
                runs["library"].append((time.perf_counter() - started,
                                        sum(cpu_after[i] - cpu_before[i] for i in range(4))))
            print(f"run {rep + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f}s" for k, v in runs.items() if v), flush=True)

        before = [read_metrics(folders["w_before"], i, True, source.frames, full) for i in range(len(cells))]
        after = [read_metrics(folders["w_after"], i, True, source.frames, sampling) for i in range(len(cells))]
        after_full = [read_metrics(folders["w_full"], i, True, source.frames, full) for i in range(len(cells))]
        exact = all(parse_vmaf_log((folders["w_after"] / f"vmaf{i}.json").read_text()) and
                    all(a == b for a, b in zip(after[i].per_frame["vmaf"], before[i].per_frame["vmaf"]) if a is not None)
                    for i in range(len(cells)))
        identical = sum(a.read_bytes() == b.read_bytes() for a, b in zip(names(folders["grid"]), names(folders["after"])))
        naive_identical = (sum(a.read_bytes() == b.read_bytes() for a, b in zip(names(folders["grid"]),
                                                                             names(folders["naive"])))
                           if args.naive else None)
        same_frames = (sum(decoded_digest(a) == decoded_digest(b) for a, b in zip(names(folders["grid"]),
                                                                               names(folders["auto"])))
                       if args.naive_auto else None)

    med = {key: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for key, v in runs.items() if v}
    best = {key: min(w for w, _ in v) for key, v in runs.items() if v}  # the least disturbed run (shared machines)
    encode_wall, encode_cpu = med["encode"]
    print("\nmedian seconds (wall / CPU), and the fastest run's wall:")
    rows = (("encode", "encode only (1 process, the grid's argv)"),
            ("m_before", "before: measure pass (2nd process, VMAF every frame)"),
            ("after", f"after: encode + measure in 1 process (VMAF every {args.vmaf_every})"),
            ("after_full", "after, VMAF every frame: encode + measure in 1 process"),
            ("naive", "naive encode (1 process per cell, same threads)"),
            ("naive_auto", "naive encode (1 process per cell, x264 auto threads)"),
            ("library", "after: vidvpr encode_grid end to end (verify, sidecars, table, plot)"))
    for key, label in rows:
        if key in med:
            print(f"  {label:72} {med[key][0]:8.2f} / {med[key][1]:8.2f}   (fastest {best[key]:.2f})")
    print("\nwhole grid with PSNR-Y, SSIM-Y and VMAF / encode only:  wall (median)  wall (fastest runs)  CPU")
    for label, wall, fastest, cpu in (
            ("before (encode pass + measure pass)", encode_wall + med["m_before"][0],
             best["encode"] + best["m_before"], encode_cpu + med["m_before"][1]),
            (f"after  (one process, VMAF every {args.vmaf_every})", med["after"][0], best["after"], med["after"][1]),
            ("after  (one process, VMAF every frame)", med["after_full"][0], best["after_full"], med["after_full"][1]),
            *((("after  (encode_grid end to end)", med["library"][0], best["library"], med["library"][1]),)
              if "library" in med else ())):
        print(f"  {label:45} {wall / encode_wall:13.3f} {fastest / best['encode']:20.3f} {cpu / encode_cpu:6.3f}")

    def max_delta(key: str, new: list, old: list) -> float:
        return max(abs((getattr(a, key) or 0) - (getattr(b, key) or 0)) for a, b in zip(new, old))

    print(f"\nnumbers, after vs before (max |Δ| over {len(cells)} cells): PSNR-Y {max_delta('psnr_y', after, before):.4f} dB, "
          f"SSIM-Y {max_delta('ssim_y', after, before):.6f}, VMAF {max_delta('vmaf', after, before):.4f} "
          f"(every {args.vmaf_every}); VMAF every frame in-process vs before {max_delta('vmaf', after_full, before):.4f}")
    print("VMAF per cell, before → after: " + ", ".join(
        f"{c.resolution}/qp{c.qp}: {b.vmaf:.2f}→{a.vmaf:.2f}" for c, a, b in zip(cells, after, before)))
    print(f"every sampled frame's VMAF equals the full run's: {exact}; encoded files identical to encode-only's: "
          f"{identical}/{len(cells)}"
          + (f"; naive loop's: {naive_identical}/{len(cells)}" if naive_identical is not None else "")
          + (f"; identical decoded frames vs naive-auto: {same_frames}/{len(cells)}" if same_frames is not None else ""))
    print(f"load average at the end: {os.getloadavg()} (other work on the machine slows whatever runs beside "
          "it; CPU seconds are the steadier measure)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Time `vidvpr slice` as a user runs it (the command, in a fresh process) and as a library call,
against ffmpeg's v360 filter doing the same job in one process, on the same input with the same
x264 settings.

Default job (issue 16): 90 frames of a 3840×1920 equirect source → four 960×540 views. The
source is made from the real calibration-room sample (../shared/data/testRoom1_1920Mono.mp4:
its first 90 frames upscaled with ffmpeg's bicubic scaler, x264 CRF 16), or pass your own.

Peers: ffmpeg v360 in one process (decode once, `split` to four v360 + x264 outputs, ffmpeg's
default x264 threads), and with --with-py360 a py360convert `e2p` per-frame loop feeding the same
x264 encoders. Contenders alternate run by run (so machine noise hits all alike); medians and
spreads (min–max) of wall and CPU time over --repeat runs.

What bounds the job: x264. Its CPU time for the same four outputs is measured by re-encoding
vidvpr's views with the same settings (minus decoding them alone); its share of vidvpr's CPU time,
and the wall time x264 alone needs on this machine's cores, are printed.

    python tools/bench_slice.py                          # 4K job, median of 5
    python tools/bench_slice.py INPUT --size 960x540 --repeat 3 --frames 0 --with-py360
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from vidvpr.core.threads import usable_cores
from vidvpr.media.ffmpeg import find_ffmpeg
from vidvpr.media.probe import probe_video
from vidvpr.slicing.config import SliceConfig, plan_views, v360_filter
from vidvpr.slicing.slicer import slice_video

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "testRoom1_1920Mono.mp4"
SOURCE_SIZE = (3840, 1920)


def make_4k_source(sample: Path, out: Path, frames: int) -> Path:
    """The first `frames` frames of `sample` upscaled to 3840×1920 (bicubic), x264 CRF 16 veryfast."""
    ffmpeg = find_ffmpeg()
    subprocess.run([ffmpeg.path, "-v", "error", "-y", "-i", str(sample), "-frames:v", str(frames),
                    "-vf", f"scale={SOURCE_SIZE[0]}:{SOURCE_SIZE[1]}:flags=bicubic", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p", "-an", str(out)], check=True)
    return out


def x264_args(config: SliceConfig) -> list[str]:
    enc = config.encoding
    return ["-c:v", enc.codec, "-preset", enc.preset, "-crf", str(enc.crf), "-pix_fmt", enc.pix_fmt]


def size_option(config: SliceConfig) -> list[str]:
    return ["--size", f"{config.size[0]}x{config.size[1]}"] if config.size else []


def run_command(source: Path, out: Path, config: SliceConfig) -> None:
    """`vidvpr slice` in a fresh process, as a user runs it."""
    subprocess.run([sys.executable, "-m", "vidvpr", "slice", str(source), "--out", str(out), *size_option(config),
                    "--crf", str(config.encoding.crf), "--preset", config.encoding.preset, "--quiet"], check=True)


def run_library(source: Path, out: Path, config: SliceConfig) -> None:
    slice_video(source, out, config)


def run_ffmpeg_v360(source: Path, out: Path, config: SliceConfig) -> None:
    ffmpeg = find_ffmpeg()
    views = plan_views(config, probe_video(source).width)
    labels = [f"v{i}" for i in range(len(views))]
    graph = f"[0:v]split={len(views)}" + "".join(f"[s{i}]" for i in range(len(views))) + ";" + ";".join(
        f"[s{i}]{v360_filter(view, config.interp)}[{label}]" for i, (view, label) in enumerate(zip(views, labels)))
    argv = [ffmpeg.path, "-v", "error", "-y", "-i", str(source), "-filter_complex", graph]
    for label, view in zip(labels, views):
        argv += ["-map", f"[{label}]", *x264_args(config), "-an", str(out / f"{view.name}.mp4")]
    subprocess.run(argv, check=True)


def run_py360_loop(source: Path, out: Path, config: SliceConfig) -> None:
    import py360convert

    ffmpeg = find_ffmpeg()
    info = probe_video(source)
    views = plan_views(config, info.width)
    encoders = [subprocess.Popen([ffmpeg.path, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                                  "-s", f"{v.width}x{v.height}", "-framerate", str(info.fps), "-i", "pipe:0",
                                  *x264_args(config), str(out / f"{v.name}.mp4")], stdin=subprocess.PIPE)
                for v in views]
    with av.open(str(source)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            for view, encoder in zip(views, encoders):
                persp = py360convert.e2p(rgb, (view.hfov_deg, view.intrinsics.vfov_deg), view.yaw_deg,
                                         view.pitch_deg, (view.height, view.width), mode="bilinear")
                encoder.stdin.write(np.ascontiguousarray(persp, dtype=np.uint8).tobytes())
    for encoder in encoders:
        encoder.stdin.close()
        encoder.wait()


def count_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


def cpu_s() -> float:
    """CPU seconds of this process (all threads) and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(func: Callable[[Path, Path, SliceConfig], None], source: Path, config: SliceConfig, frames: int,
          work: Path) -> tuple[float, float, Path]:
    """(wall s, CPU s) of one run, and its output folder under `work` (kept for the x264 measurement)."""
    out = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    cpu, started = cpu_s(), time.perf_counter()
    func(source, out, config)
    wall, cpu = time.perf_counter() - started, cpu_s() - cpu
    videos = sorted(out.rglob("*.mp4"))
    assert len(videos) == len(config.yaws_deg) and all(count_frames(v) == frames for v in videos), \
        f"{func.__name__} did not write {len(config.yaws_deg)} views of {frames} frames"
    return wall, cpu, out


def projection_only_ms(source: Path, config: SliceConfig, frames: int = 30) -> dict[str, float]:
    """Milliseconds per view-frame of the projection alone (no decode, no encode) on real frames."""
    import py360convert

    from vidvpr.media.decode import decode_frames
    from vidvpr.slicing.camera import EquirectCamera
    from vidvpr.slicing.remap import opencv_threads

    info = probe_video(source)
    views = plan_views(config, info.width)
    decoded = [frame for _, frame in zip(range(frames), decode_frames(source))]
    with av.open(str(source)) as container:
        rgb = [frame.to_ndarray(format="rgb24") for _, frame in zip(range(3), container.decode(video=0))]
    camera = EquirectCamera(info, config)
    remappers = [camera.remapper(view, config.interp) for view in views]
    with opencv_threads(1):
        started = time.process_time()
        for frame in decoded:
            for remap in remappers:
                remap([frame])
        ours = (time.process_time() - started) / (len(decoded) * len(views)) * 1000
    started = time.perf_counter()
    for image in rgb:
        for view in views:
            py360convert.e2p(image, (view.hfov_deg, view.intrinsics.vfov_deg), view.yaw_deg, view.pitch_deg,
                             (view.height, view.width), mode="bilinear")
    py360 = (time.perf_counter() - started) / (len(rgb) * len(views)) * 1000
    return {"vidvpr remap (Y+U+V, 1 thread, CPU)": ours, "py360convert e2p (RGB, wall)": py360}


def x264_cpu_s(views: list[Path], config: SliceConfig) -> float:
    """x264's CPU seconds for these view videos: re-encoding them with the slice's settings (one
    thread per view, as vidvpr runs them) minus decoding them alone."""
    ffmpeg = find_ffmpeg()
    inputs = [arg for view in views for arg in ("-i", str(view))]

    def ffmpeg_cpu(per_output: list[str]) -> float:
        argv = [ffmpeg.path, "-v", "error", *inputs]
        for i in range(len(views)):
            argv += ["-map", f"{i}:v", *per_output, "-f", "null", "-"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    threads = max(1, usable_cores() // len(views))
    return ffmpeg_cpu([*x264_args(config), "-threads", str(threads)]) - ffmpeg_cpu(["-c:v", "rawvideo"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", type=Path, default=None,
                        help="equirect video [default: a 3840x1920 source made from the calibration-room sample]")
    parser.add_argument("--frames", type=int, default=90, help="frames of the made 4K source")
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--with-py360", action="store_true", help="also the py360convert loop (slow at 4K)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vidvpr-bench-slice-source-"))
    source = args.input
    if source is None:
        if not SAMPLE.exists():
            sys.exit(f"{SAMPLE}: not found; pass an equirect video")
        source = make_4k_source(SAMPLE, work / "room-3840x1920.mp4", args.frames)
    width, height = (int(v) for v in args.size.split("x"))
    config = SliceConfig(size=(width, height), force=True)
    info = probe_video(source)
    print(f"input {source.name}: {info.width}x{info.height}, {info.frames} frames; {len(config.yaws_deg)} views "
          f"{width}x{height}, x264 crf {config.encoding.crf} preset {config.encoding.preset}; {usable_cores()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    contenders = {"vidvpr slice (command)": run_command, "vidvpr slice_video (library)": run_library,
                  "ffmpeg v360 (split)": run_ffmpeg_v360}
    if args.with_py360:
        contenders["py360convert e2p loop"] = run_py360_loop
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    cpus: dict[str, list[float]] = {name: [] for name in contenders}
    library_views: list[Path] = []
    for _ in range(args.repeat):
        for name, func in contenders.items():
            wall, cpu, out = timed(func, source, config, info.frames, work)
            walls[name].append(wall)
            cpus[name].append(cpu)
            if func is run_library and not library_views:
                library_views = sorted(out.rglob("*.mp4"))
    load = os.getloadavg()[0]
    v360 = statistics.median(walls["ffmpeg v360 (split)"])
    print(f"whole job (decode, project, encode), median of {args.repeat} (spread), load average {load:.1f}:")
    for name in contenders:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"  {name:30} {wall:7.2f} s ({min(walls[name]):.2f}–{max(walls[name]):.2f})  cpu {cpu:7.2f} s  "
              f"/ v360 = {wall / v360:.2f}x")
    x264 = x264_cpu_s(library_views, config)
    ours_cpu = statistics.median(cpus["vidvpr slice_video (library)"])
    print(f"x264 for the four views: {x264:.2f} CPU s = {100 * x264 / ours_cpu:.0f}% of vidvpr's CPU time; on "
          f"{usable_cores()} cores at least {x264 / usable_cores():.2f} s of wall time")
    projection = projection_only_ms(source, config)
    ours_ms = projection["vidvpr remap (Y+U+V, 1 thread, CPU)"]
    print("projection alone, per view-frame:")
    for name, ms in projection.items():
        print(f"  {name:38} {ms:8.2f} ms  vidvpr / this = {ours_ms / ms:.2f}x")
    shutil.rmtree(work, ignore_errors=True)
    command = statistics.median(walls["vidvpr slice (command)"])
    print(f"summary: vidvpr slice (command) {command / v360:.2f}x ffmpeg v360's wall time (target <= 1.00), library "
          f"{statistics.median(walls['vidvpr slice_video (library)']) / v360:.2f}x; x264 {100 * x264 / ours_cpu:.0f}% "
          f"of the CPU; load {load:.1f}")


if __name__ == "__main__":
    main()

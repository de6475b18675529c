#!/usr/bin/env python3
"""Time `vidvpr slice` against its peers on the same input with the same output settings.

Peers: ffmpeg's v360 filter in one process (decode once, `split` to N v360 + x264 outputs), and
a py360convert `e2p` per-frame loop feeding the same x264 encoders. Prints wall times and ratios
(medians over --repeat runs, alternating so machine noise hits every contender alike).

    python tools/bench_slice.py                      # ../shared/data/testRoom1_1920Mono.mp4, 4 × 960x540
    python tools/bench_slice.py INPUT --size 960x540 --repeat 3 --skip-py360
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from vidvpr.media.ffmpeg import find_ffmpeg
from vidvpr.slicing.config import SliceConfig, plan_views, v360_filter
from vidvpr.slicing.slicer import slice_video
from vidvpr.media.probe import probe_video

DEFAULT_INPUT = Path(__file__).resolve().parents[2] / "shared" / "data" / "testRoom1_1920Mono.mp4"


def x264_args(config: SliceConfig) -> list[str]:
    enc = config.encoding
    return ["-c:v", enc.codec, "-preset", enc.preset, "-crf", str(enc.crf), "-pix_fmt", enc.pix_fmt]


def run_vidvpr(source: Path, out: Path, config: SliceConfig) -> int:
    return slice_video(source, out, config)[0].frames


def run_ffmpeg_v360(source: Path, out: Path, config: SliceConfig) -> int:
    ffmpeg = find_ffmpeg()
    views = plan_views(config, probe_video(source).width)
    labels = [f"v{i}" for i in range(len(views))]
    graph = f"[0:v]split={len(views)}" + "".join(f"[s{i}]" for i in range(len(views))) + ";" + ";".join(
        f"[s{i}]{v360_filter(view, config.interp)}[{label}]" for i, (view, label) in enumerate(zip(views, labels)))
    argv = [ffmpeg.path, "-v", "error", "-y", "-i", str(source), "-filter_complex", graph]
    for label, view in zip(labels, views):
        argv += ["-map", f"[{label}]", *x264_args(config), "-an", str(out / f"{view.name}.mp4")]
    subprocess.run(argv, check=True)
    return count_frames(out / f"{views[0].name}.mp4")


def run_py360_loop(source: Path, out: Path, config: SliceConfig) -> int:
    import py360convert

    ffmpeg = find_ffmpeg()
    views = plan_views(config, probe_video(source).width)
    info = probe_video(source)
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
    return count_frames(out / f"{views[0].name}.mp4")


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
        rgb = [frame.to_ndarray(format="rgb24") for _, frame in zip(range(frames), container.decode(video=0))]
    camera = EquirectCamera(info, config)
    remappers = [camera.remapper(view, config.interp) for view in views]
    with opencv_threads(1):
        started = time.process_time()
        for frame in decoded:
            for remap in remappers:
                remap([frame])
        ours = (time.process_time() - started) / (frames * len(views)) * 1000
    started = time.perf_counter()
    for image in rgb[:5]:
        for view in views:
            py360convert.e2p(image, (view.hfov_deg, view.intrinsics.vfov_deg), view.yaw_deg, view.pitch_deg,
                             (view.height, view.width), mode="bilinear")
    py360 = (time.perf_counter() - started) / (5 * len(views)) * 1000
    return {"vidvpr remap (Y+U+V, 1 thread, CPU)": ours, "py360convert e2p (RGB, wall)": py360}


def count_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.demux(video=0) if _.size)


def timed(func, source: Path, config: SliceConfig) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        frames = func(source, Path(tmp), config)
        return time.perf_counter() - started, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-py360", action="store_true", help="the py360convert loop takes about a minute")
    args = parser.parse_args()
    if not args.input.exists():
        sys.exit(f"{args.input}: not found (pass a 1920x960 equirect video)")
    width, height = (int(v) for v in args.size.split("x"))
    config = SliceConfig(size=(width, height), force=True)
    info = probe_video(args.input)
    print(f"input {args.input.name}: {info.width}x{info.height}, {info.frames} frames; "
          f"{len(config.yaws_deg)} views {width}x{height}, x264 crf {config.encoding.crf} preset {config.encoding.preset}")
    contenders = {"vidvpr slice": run_vidvpr, "ffmpeg v360 (split)": run_ffmpeg_v360}
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeat):
        for name, func in contenders.items():
            seconds, frames = timed(func, args.input, config)
            times[name].append(seconds)
            assert frames == info.frames, f"{name} wrote {frames} frames, source has {info.frames}"
    if not args.skip_py360:
        seconds, frames = timed(run_py360_loop, args.input, config)
        times["py360convert e2p loop"] = [seconds]
        assert frames == info.frames
    ours = statistics.median(times["vidvpr slice"])
    print("whole job (decode, project, encode):")
    for name, runs in times.items():
        median = statistics.median(runs)
        print(f"  {name:24} {median:8.2f} s  (runs: {', '.join(f'{t:.2f}' for t in runs)})  "
              f"vidvpr / this = {ours / median:.2f}x")
    projection = projection_only_ms(args.input, config)
    ours_ms = projection["vidvpr remap (Y+U+V, 1 thread, CPU)"]
    print("projection alone, per view-frame:")
    for name, ms in projection.items():
        print(f"  {name:38} {ms:8.2f} ms  vidvpr / this = {ours_ms / ms:.2f}x")


if __name__ == "__main__":
    main()

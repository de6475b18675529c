#!/usr/bin/env python3
"""Stream copy or re-encode: what `vidvpr import` should do with a perspective video, measured.

For camera-like videos (a panning textured scene with sensor noise, H.264 yuv420p) in the forms
phones, dashcams and editors write (no B-frames, B-frames, Matroska, variable frame rate), imports
each one twice (stream copy allowed, and --reencode at the reference CRF) and prints: whether the
copy was taken, import wall time, output size, PSNR-Y of the re-encode against the decoded
source, the time to decode the view once (what encode, eval and export pay every time they read
it), and whether `vidvpr encode` accepts the view frame for frame. Ratios compare the two imports
of the same source, measured in the same run, alternating (so machine noise hits both alike).

    python tools/bench_import.py                  # 640x360, 300 frames per source
    python tools/bench_import.py --size 1280x720 --frames 300 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidvpr.ingest import ImportConfig, import_footage
from vidvpr.media.decode import decode_frames
from vidvpr.media.metrics import image_psnr_db

FPS = 30


def camera_frames(width: int, height: int, frames: int, seed: int = 0):
    """A textured scene panning right 2 px per frame, with per-frame sensor noise (RGB uint8)."""
    rng = np.random.default_rng(seed)
    import cv2

    scene = cv2.GaussianBlur(rng.integers(0, 256, (height, width + 2 * frames + 8, 3), dtype=np.uint8), (0, 0), 3)
    scene = cv2.normalize(scene, None, 0, 255, cv2.NORM_MINMAX)
    for i in range(frames):
        view = scene[:, 2 * i:2 * i + width].astype(np.int16) + rng.normal(0, 3, (height, width, 3)).astype(np.int16)
        yield np.clip(view, 0, 255).astype(np.uint8)


def write_source(path: Path, width: int, height: int, frames: int, bframes: int, vfr: bool) -> Path:
    """Encode the scene with libx264 CRF 20 (a phone's quality) into `path` (container by suffix)."""
    time_base = Fraction(1, 90000)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.options = {"crf": "20", "preset": "veryfast", "x264-params": f"bframes={bframes}"}
        for i, rgb in enumerate(camera_frames(width, height, frames)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            jitter = (i * 7919 % 13 - 6) * 90 if vfr and 0 < i < frames - 1 else 0  # ±6 ms, as phones drift
            frame.pts = i * 3000 + jitter
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def decode_s(path: Path) -> float:
    started = time.perf_counter()
    for _ in decode_frames(path):
        pass
    return time.perf_counter() - started


def psnr_y(source: Path, view: Path) -> float:
    values = [image_psnr_db(a.y, b.y) for a, b in zip(decode_frames(source), decode_frames(view))]
    return float(min(values))


def encode_accepts(view: Path, out: Path) -> bool:
    """Whether `vidvpr encode` makes a cell of the view frame for frame (exit 0, equal_to_input)."""
    done = subprocess.run([sys.executable, "-m", "vidvpr", "encode", str(view), "--out", str(out), "--res", "320x180",
                           "--qp", "30", "--no-vmaf", "--quiet", "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        return False
    cells = list(out.rglob("qp30.json"))
    return bool(cells) and json.loads(cells[0].read_text())["timestamps"]["equal_to_input"]


def run_import(source: Path, out: Path, reencode: bool) -> tuple[float, Path, bool]:
    started = time.perf_counter()
    summary = import_footage([source], out, ImportConfig(hfov_deg=60.0, reencode=reencode, force=True))
    return time.perf_counter() - started, Path(summary.views[0].path), summary.views[0].stream_copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    variants = {"no B-frames (mp4)": (0, False, ".mp4"), "B-frames (mp4)": (3, False, ".mp4"),
                "B-frames (mkv)": (3, False, ".mkv"), "VFR, no B-frames (mp4)": (0, True, ".mp4")}
    print(f"{width}x{height}, {args.frames} frames at {FPS} fps per source; medians of {args.repeat} runs")
    print(f"{'source':26} {'copied':>6} {'import copy/re-enc':>19} {'MB copy/re-enc':>15} {'re-enc PSNR-Y min':>17} "
          f"{'decode copy/re-enc':>19} {'encode accepts':>15}")
    with tempfile.TemporaryDirectory(prefix="bench-import-") as work:
        base = Path(work)
        for number, (name, (bframes, vfr, suffix)) in enumerate(variants.items()):
            source = write_source(base / f"source{number}{suffix}", width, height, args.frames, bframes, vfr)
            times: dict[bool, list[float]] = {False: [], True: []}
            decodes: dict[bool, list[float]] = {False: [], True: []}
            views: dict[bool, Path] = {}
            copied = False
            for _ in range(args.repeat):
                for reencode in (False, True):
                    wall, view, copy = run_import(source, base / f"views-{int(reencode)}", reencode)
                    times[reencode].append(wall)
                    decodes[reencode].append(decode_s(view))
                    views[reencode] = view
                    copied = copied or (copy and not reencode)
            sizes = [views[flag].stat().st_size / 1e6 for flag in (False, True)]
            accepts = [encode_accepts(views[flag], base / f"enc-{number}-{int(flag)}") for flag in (False, True)]
            print(f"{name:26} {'yes' if copied else 'no':>6} "
                  f"{statistics.median(times[False]) / statistics.median(times[True]):>19.3f} "
                  f"{sizes[0]:>6.2f}/{sizes[1]:<8.2f} {psnr_y(source, views[True]):>17.2f} "
                  f"{statistics.median(decodes[False]) / statistics.median(decodes[True]):>19.3f} "
                  f"{'/'.join('yes' if ok else 'NO' for ok in accepts):>15}")


if __name__ == "__main__":
    main()

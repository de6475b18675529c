#!/usr/bin/env python3
"""Luma PSNR of vidvpr's views against an exact float remap, ffmpeg's v360 and py360convert.

All four are computed from the same decoded source frame, so the numbers isolate geometry and
interpolation (plus vidvpr's view encoding). Usage:

    python tools/compare_slice_peers.py ../shared/data/testRoom1_1920Mono.mp4 --size 960x540 --frame 0
    python tools/compare_slice_peers.py ../shared/data/congo.mp4 --stereo tb --size 608x336
"""

from __future__ import annotations

import argparse
import math
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import py360convert

from vidvpr.media.metrics import image_psnr_db
from vidvpr.geo import projection as geometry
from vidvpr.media.ffmpeg import find_ffmpeg
from vidvpr.slicing.config import SliceConfig, plan_views, v360_filter
from vidvpr.slicing.camera import source_eye
from vidvpr.slicing.slicer import slice_video
from vidvpr.media.decode import decode_frames, yuv420p_planes
from vidvpr.media.probe import probe_video

import av


def nth(iterable, index):
    for i, item in enumerate(iterable):
        if i == index:
            return item
    raise SystemExit(f"video has fewer than {index + 1} frames")


def v360_luma(video: Path, view, frame_index: int, eye_crop: str | None) -> np.ndarray:
    ffmpeg = find_ffmpeg()
    chain = ",".join(filter(None, [f"select=eq(n\\,{frame_index})", eye_crop, v360_filter(view)]))
    raw = subprocess.run([ffmpeg.path, "-v", "error", "-i", str(video), "-vf", chain, "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8)[: view.width * view.height].reshape(view.height, view.width)


def py360_luma(eye_luma: np.ndarray, view) -> np.ndarray:
    vfov = view.intrinsics.vfov_deg
    out = py360convert.e2p(eye_luma[..., None].astype(np.float64), (view.hfov_deg, vfov), view.yaw_deg,
                           view.pitch_deg, (view.height, view.width), mode="bilinear")
    return out[..., 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--stereo", default="mono", choices=["mono", "tb"])
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    config = SliceConfig(size=(width, height), stereo=args.stereo)
    info = probe_video(args.video)
    eye_h, eye_row = source_eye(info, config)
    eye_crop = f"crop={info.width}:{eye_h}:0:{eye_row}" if args.stereo == "tb" else None
    source_luma = nth(decode_frames(args.video), args.frame).y[eye_row:eye_row + eye_h].astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        results = slice_video(args.video, Path(tmp), config)
        print(f"{args.video.name} frame {args.frame}, views {width}x{height}, luma PSNR in dB")
        print(f"{'view':18}{'vs exact':>10}{'vs v360':>10}{'vs py360':>10}{'v360 vs exact':>15}{'py360 vs exact':>16}")
        for result in results:
            with av.open(result.path) as container:
                ours = yuv420p_planes(nth(container.decode(video=0), args.frame))[0].astype(np.float64)
            view = next(v for v in plan_views(config, info.width)
                        if v.name == result.view)
            map_x, map_y = geometry.equirect_to_perspective_maps(info.width, eye_h, width, height, view.yaw_deg,
                                                                 view.pitch_deg, view.hfov_deg)
            exact = geometry.sample_bilinear(source_luma, map_x, map_y)
            v360 = v360_luma(args.video, view, args.frame, eye_crop)
            py360 = py360_luma(source_luma, view)
            row = [image_psnr_db(ours, exact), image_psnr_db(ours, v360), image_psnr_db(ours, py360),
                   image_psnr_db(v360, exact), image_psnr_db(py360, exact)]
            print(f"{result.view:18}" + "".join(f"{value:>10.2f}" if i < 3 else f"{value:>15.2f}" if i == 3 else f"{value:>16.2f}"
                                                for i, value in enumerate(row)))
            assert not any(math.isnan(v) for v in row)


if __name__ == "__main__":
    main()

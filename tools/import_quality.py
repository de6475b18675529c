#!/usr/bin/env python3
"""Luma PSNR of imported view videos against their sources, frame by frame, as the sidecar says
they were made (the video decoded, or the images converted to yuv420p the way import does).

    python tools/import_quality.py DATA/views/summer/camera.mp4 DATA/views/winter/camera.mp4

Prints per view: frames compared, minimum and median PSNR-Y (dB), and whether it was a stream copy
(identical frames: infinite PSNR). Undistorted views are not comparable pixel for pixel and are
skipped.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from vidvpr.core.sidecars import ImportedSourceRecord, SliceSidecar
from vidvpr.ingest.images import make_even, read_rgb, rgb_to_planes, scan_image
from vidvpr.media.decode import decode_frames
from vidvpr.media.metrics import image_psnr_db


def source_lumas(source: ImportedSourceRecord, width: int, height: int):
    if source.kind == "video":
        for frame in decode_frames(Path(source.path)):
            yield frame.y[:height, :width]
        return
    for name in source.images or []:
        yield rgb_to_planes(make_even(read_rgb(scan_image(Path(source.path) / name)), width, height))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("views", nargs="+", type=Path, help="imported view videos (their .json beside them)")
    args = parser.parse_args()
    for view in args.views:
        sidecar = SliceSidecar.load(view.with_suffix(".json"))
        if not isinstance(sidecar.source, ImportedSourceRecord) or sidecar.camera is None:
            print(f"{view}: not an imported view; skipped")
            continue
        if sidecar.camera.undistorted:
            print(f"{view}: undistorted on import, not comparable pixel for pixel; skipped")
            continue
        width, height = sidecar.geometry.width, sidecar.geometry.height
        values = [image_psnr_db(out.y, ref) for out, ref in
                  zip(decode_frames(view), source_lumas(sidecar.source, width, height))]
        finite = [value for value in values if math.isfinite(value)]
        how = "stream copy" if sidecar.encoding.stream_copy else f"x264 CRF {sidecar.encoding.crf}"
        low = f"{min(values):.2f}" if finite else "inf"
        median = f"{statistics.median(values):.2f}" if finite else "inf"
        print(f"{view}: {len(values)} frames ({how}), PSNR-Y min {low} dB, median {median} dB")


if __name__ == "__main__":
    main()

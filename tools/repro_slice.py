#!/usr/bin/env python3
"""Are sliced views byte-identical from run to run? Slice one source N times with vidvpr's encoder
as it is and as it was before the reproducibility fix (frames with uninitialised row padding,
heap left as found), alternating, optionally beside busy processes; count the distinct outputs.

x264 reads heap bytes it never wrote (README, "Reproducible views"); this tool shows how often
that changed the views and that it no longer does. How often depends on the content: the held-out
world of a small demo study, sliced into its four 80×32 views (whose 40-pixel chroma rows are the
case where x264 also copies the row padding), shows it; the calibration-room sample did not.

    vidvpr demo study DEMO                      # on a small demo (`vidvpr demo make DEMO --size small`)
    python tools/repro_slice.py DEMO/heldout/database/database.mp4 --slices 20
    python tools/repro_slice.py DEMO/heldout/database/database.mp4 --busy 2    # beside two busy processes
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import multiprocessing
import resource
import shutil
import statistics
import tempfile
from collections import Counter
from pathlib import Path

import av
import numpy as np

from vidvpr.slicing import writer
from vidvpr.slicing.config import SliceConfig
from vidvpr.slicing.slicer import slice_video

AS_FIXED = (writer.yuv420p_frame, writer.defined_heap)
AS_BEFORE = (lambda buffer, width, height: av.VideoFrame.from_ndarray(buffer, format="yuv420p"),
             contextlib.nullcontext)


def busy() -> None:
    """Keep one core busy with matrix products until terminated."""
    a = np.random.default_rng(0).random((400, 400))
    while True:
        a = (a @ a.T) / 400.0


def encode_bytes(frames: list[np.ndarray], width: int, height: int) -> bytes:
    """One view's frames encoded in memory with slicing's x264 settings, padding written."""
    import io

    encoding, out = SliceConfig().encoding, io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream(encoding.codec, rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, encoding.pix_fmt
        stream.options = {"crf": str(encoding.crf), "preset": encoding.preset}
        stream.codec_context.thread_type, stream.codec_context.thread_count = "FRAME", 1
        for pts, buffer in enumerate(frames):
            frame = writer.yuv420p_frame(buffer, width, height)
            frame.pts = pts
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def concurrent_encodes(view: Path, encodes: int, threads: int = 4) -> dict[str, Counter[str]]:
    """The same view's frames (every byte written) encoded `encodes` times by `threads` threads at
    once, with the heap as found and with it defined: how many distinct outputs each time."""
    from concurrent.futures import ThreadPoolExecutor

    with av.open(str(view)) as container:
        frames = [frame.to_ndarray(format="yuv420p") for frame in container.decode(video=0)]
    height, width = frames[0].shape[0] * 2 // 3, frames[0].shape[1]
    outcomes: dict[str, Counter[str]] = {}
    for name, heap in (("heap as found", contextlib.nullcontext), ("heap defined", AS_FIXED[1])):
        with heap(), ThreadPoolExecutor(threads) as pool:
            digests = pool.map(lambda _: hashlib.sha256(encode_bytes(frames, width, height)).hexdigest()[:12],
                               range(encodes))
            outcomes[name] = Counter(digests)
    return outcomes


def own_cpu_s() -> float:
    """CPU seconds of this process, all threads (busy processes are others)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def view_hashes(folder: Path) -> tuple[str, ...]:
    return tuple(hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.rglob("*.mp4")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="a 360° video")
    parser.add_argument("--size", default="auto", help="view size WxH, or auto (the source's resolution)")
    parser.add_argument("--slices", type=int, default=12, help="slices per variant")
    parser.add_argument("--busy", type=int, default=0, help="busy processes running beside")
    parser.add_argument("--encodes", type=int, default=0,
                        help="also encode the first view's frames this many times, four threads at once")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vidvpr-repro-slice-"))
    source = args.input
    size = None if args.size == "auto" else tuple(int(side) for side in args.size.split("x"))
    config = SliceConfig(size=size, force=True)  # type: ignore[arg-type]
    workers = [multiprocessing.Process(target=busy, daemon=True) for _ in range(args.busy)]
    for worker in workers:
        worker.start()
    outputs: dict[str, list[tuple[str, ...]]] = {"as fixed": [], "as before": []}
    cpu_s: dict[str, list[float]] = {"as fixed": [], "as before": []}
    try:
        for run in range(args.slices):
            order = ("as fixed", "as before") if run % 2 == 0 else ("as before", "as fixed")
            for variant in order:
                writer.yuv420p_frame, writer.defined_heap = AS_FIXED if variant == "as fixed" else AS_BEFORE
                folder = work / f"{variant.replace(' ', '-')}-{run}"
                started = own_cpu_s()
                slice_video(source, folder, config)
                cpu_s[variant].append(own_cpu_s() - started)
                outputs[variant].append(view_hashes(folder))
        if args.encodes:
            view = sorted((work / "as-fixed-0").rglob("*.mp4"))[0]
            for name, counts in concurrent_encodes(view, args.encodes).items():
                print(f"{view.name}'s frames encoded {args.encodes}x, 4 threads at once, {name}: {dict(counts)}")
    finally:
        writer.yuv420p_frame, writer.defined_heap = AS_FIXED
        for worker in workers:
            worker.terminate()
        shutil.rmtree(work, ignore_errors=True)
    summary = []
    for variant, runs in outputs.items():
        common = Counter(runs).most_common(1)[0][0]
        files_off = sum(a != b for hashes in runs for a, b in zip(hashes, common))
        files = sum(len(hashes) for hashes in runs)
        print(f"{variant}: {len(set(runs))} distinct sets of views in {len(runs)} slices; "
              f"{files_off} of {files} view files differ from the most common set; "
              f"CPU per slice {statistics.median(cpu_s[variant]):.2f} s (median)")
        summary.append(f"{variant} {len(set(runs))} sets, {files_off}/{files} files off")
    ratio = statistics.median(cpu_s["as fixed"]) / statistics.median(cpu_s["as before"])
    print(f"summary: {source.name}, {args.size} views, {args.busy} busy processes: " + "; ".join(summary)
          + f"; CPU as fixed / as before {ratio:.3f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Accuracy and speed of slicing a native Insta360 .insv, on the demo's dual-fisheye camera.

Renders the demo's database traversal as an .insv (`vidvpr demo make --camera dual-fisheye`), then:

* accuracy: slices it into the four default views and compares every --every-th frame's luma with
  the same view rendered straight from the world (from the band-limited panorama the lens images
  are drawn from; never through a fisheye): PSNR away from the seam (beyond the feather band + 2°)
  and inside the feather band; the same for the views cut from its `--equirect` export, and for
  views cut with two ideal lenses instead of the file's calibration (a control); and the GPS
  read back as a trajectory against the demo's plan.
* speed: `vidvpr slice` of the .insv, and of the same content as equirect (its `--equirect`
  export) into the same views at the same size, --repeat times alternating; median wall and CPU
  seconds and their ratio, plus the export's own time.

    python tools/bench_insv.py                      # 1024x512, one frame per 5 s of walking (68 frames)
    python tools/bench_insv.py --size small --fps 1 --repeat 5
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from vidvpr.core.sidecars import SliceSidecar
from vidvpr.demo.definition import DemoDefinition
from vidvpr.demo.fisheye import UTM_ORIGIN, DualFisheyeRenderer, straight_view_luma
from vidvpr.demo.make import DemoConfig, make_demo, plan_traversal
from vidvpr.demo.world import CameraPose, Lighting, build_world
from vidvpr.geo import fisheye, projection
from vidvpr.geo.readers import read_trajectory
from vidvpr.media.insv.calibration import format_calibration_text, ideal_calibration
from vidvpr.media.decode import decode_frames
from vidvpr.media.metrics import image_psnr_db
from vidvpr.slicing.config import SliceConfig
from vidvpr.slicing.slicer import slice_video


def luma_frames(path: Path) -> list[np.ndarray]:
    return [frame.y.astype(np.float64) for frame in decode_frames(path)]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def accuracy(definition: DemoDefinition, size: tuple[int, int], view_dirs: dict[str, Path], every: int) -> None:
    spec = definition.traversals[0]
    plan = plan_traversal(definition, spec)
    world = build_world(definition.route, definition.places, definition.seed)
    renderer = DualFisheyeRenderer(size, "side-by-side")
    frames = list(range(0, plan.frames, every))
    panoramas = {i: renderer.panorama(world, CameraPose(float(plan.east_m[i]), float(plan.north_m[i]),
                                                        float(plan.heading_deg[i])),
                                      Lighting(spec.lighting_gain, spec.tint_rgb, spec.noise_std,
                                               (definition.seed, 0, i))) for i in frames}
    print(f"luma PSNR (dB) against the view rendered straight from the world, frames {frames[0]}..{frames[-1]} "
          f"every {every} ({len(frames)}): median [min]")
    print(f"  {'route':28} {'view':16} {'away from the seam':>20} {'feather band':>16} {'band share':>10}")
    for route, folder in view_dirs.items():
        for car_path in sorted(folder.glob("*.json")):
            g = SliceSidecar.load(car_path).geometry
            rays = projection.view_world_rays(g.width, g.height, g.yaw_deg, g.pitch_deg, g.hfov_deg)
            offset = np.abs(fisheye.seam_offset_deg(renderer.rig, rays))
            away, band = offset > fisheye.SEAM_FEATHER_DEG / 2 + 2, offset <= fisheye.SEAM_FEATHER_DEG / 2
            sliced = luma_frames(car_path.with_suffix(".mp4"))
            outside, inside = [], []
            for i in frames:
                direct = straight_view_luma(panoramas[i], g.width, g.height, g.yaw_deg, g.pitch_deg, g.hfov_deg)
                outside.append(image_psnr_db(sliced[i][away], direct[away]))
                if band.any():
                    inside.append(image_psnr_db(sliced[i][band], direct[band]))
            in_band = f"{statistics.median(inside):6.2f} [{min(inside):5.2f}]" if inside else "—"
            print(f"  {route:28} {car_path.stem:16} {statistics.median(outside):9.2f} [{min(outside):5.2f}] "
                  f"{in_band:>16} {band.mean():9.1%}")


def gps_error(definition: DemoDefinition, insv: Path) -> None:
    plan = plan_traversal(definition, definition.traversals[0])
    trajectory = read_trajectory(insv)
    error = np.hypot(trajectory.easting_m - UTM_ORIGIN[0] - plan.east_m, trajectory.northing_m - UTM_ORIGIN[1] - plan.north_m)
    print(f"GPS back from the .insv: {trajectory.t_s.size} fixes, max position error {error.max() * 1000:.2f} mm, "
          f"max time error {np.abs(trajectory.t_s - plan.t_s).max() * 1000:.3f} ms")


def remap_only_ms(sources: dict[str, Path], config: SliceConfig, frames: int = 30) -> dict[str, float]:
    """CPU milliseconds per view-frame of the remapping alone (1 OpenCV thread; no decode, no encode)."""
    from vidvpr.media.probe import probe_video
    from vidvpr.slicing.camera import source_camera
    from vidvpr.slicing.config import plan_views
    from vidvpr.slicing.remap import opencv_threads
    from vidvpr.slicing.writer import yuv420p_plane_views

    found = {}
    for name, source in sources.items():
        info = probe_video(source)
        camera = source_camera(info, config)
        views = plan_views(config, camera.equirect_width)
        decoded = [frame for _, frame in zip(range(frames), camera.frames(source, 0))]
        remappers = [camera.remapper(view, config.interp) for view in views]
        buffers = [yuv420p_plane_views(np.empty((v.height * 3 // 2, v.width), np.uint8), v.width, v.height) for v in views]
        with opencv_threads(1):
            started = time.process_time()
            for frame in decoded:
                for remap, planes in zip(remappers, buffers):
                    remap(frame, planes)
            found[name] = (time.process_time() - started) / (len(decoded) * len(views)) * 1000
    return found


def timed(source: Path, out: Path, config: SliceConfig) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_s()
    slice_video(source, out, config)
    return time.perf_counter() - wall, cpu_s() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="default", help="demo frame size name (default 1024x512, small 256x128)")
    parser.add_argument("--fps", type=float, default=0.2, help="frames per second of walking")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--every", type=int, default=4, help="compare every N-th frame")
    args = parser.parse_args()
    base = DemoDefinition()
    definition = base.model_copy(update={"traversals": (base.traversals[0].model_copy(update={"fps": args.fps}),
                                                        base.traversals[1].model_copy(update={"fps": 0.01}))})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        started = time.perf_counter()
        demo = make_demo(out / "demo", DemoConfig(definition=definition, size=args.size, camera="dual-fisheye"))
        insv = Path(demo.traversals[0].video)
        print(f"demo .insv: {demo.size[0]}x{demo.size[1]}, {demo.traversals[0].frames} frames, rendered in "
              f"{time.perf_counter() - started:.1f} s")
        views = slice_video(insv, out / "views", SliceConfig())
        view_size = tuple(SliceSidecar.load(Path(views[0].sidecar)).geometry.model_dump(include={"width", "height"})
                          .values())
        wall, cpu = timed(insv, out / "pano", SliceConfig(equirect=True))
        equirect = out / "pano" / f"{insv.stem}.mp4"
        with av.open(str(equirect)) as container:
            eq_w, eq_h = container.streams.video[0].codec_context.width, container.streams.video[0].codec_context.height
        print(f"--equirect export: {eq_w}x{eq_h} in {wall:.2f} s wall, {cpu:.2f} s CPU")
        slice_video(equirect, out / "views-from-equirect", SliceConfig(size=view_size))  # type: ignore[arg-type]
        ideal = out / "ideal-lenses.txt"  # what --fisheye-fov assumes: circles filling their halves
        ideal.write_text(format_calibration_text(ideal_calibration(demo.size[0] // 2, demo.size[1])))
        slice_video(insv, out / "views-ideal", SliceConfig(calibration=ideal))
        accuracy(definition, demo.size, {".insv → views": out / "views" / insv.stem,
                                         ".insv → equirect → views": out / "views-from-equirect" / insv.stem,
                                         "ideal lenses (control)": out / "views-ideal" / insv.stem}, args.every)
        gps_error(definition, insv)
        config = SliceConfig(size=view_size, force=True)  # type: ignore[arg-type]
        times: dict[str, list[tuple[float, float]]] = {".insv": [], "equirect export of it": []}
        for _ in range(args.repeat):
            times[".insv"].append(timed(insv, out / "t1", config))
            times["equirect export of it"].append(timed(equirect, out / "t2", config))
        print(f"vidvpr slice into 4 views {view_size[0]}x{view_size[1]}, median of {args.repeat} (alternating):")
        ours_wall = statistics.median(t for t, _ in times[".insv"])
        ours_cpu = statistics.median(c for _, c in times[".insv"])
        for name, runs in times.items():
            wall_s, cpu_s_ = statistics.median(t for t, _ in runs), statistics.median(c for _, c in runs)
            print(f"  {name:24} wall {wall_s:7.2f} s  CPU {cpu_s_:7.2f} s   .insv / this: wall {ours_wall / wall_s:.2f}x, "
                  f"CPU {ours_cpu / cpu_s_:.2f}x  (walls: {', '.join(f'{t:.2f}' for t, _ in runs)})")
        remap = remap_only_ms({".insv": insv, "equirect export of it": equirect}, config)
        print("remapping alone (Y+U+V, 1 thread, CPU per view-frame; side views of the .insv blend two lenses):")
        for name, ms in remap.items():
            print(f"  {name:24} {ms:6.2f} ms   .insv / this: {remap['.insv'] / ms:.2f}x")


if __name__ == "__main__":
    main()

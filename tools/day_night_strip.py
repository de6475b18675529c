"""The README's day/night strip: views of the demo world from the same poses by day (the database
walk's light) and by night (the night walk's), as `vidvpr slice` cuts them from the 360° frames.

    python tools/day_night_strip.py [--out docs/day-night.jpg] [--frames 20,113,195] [--yaws 0,90]

Top row by day, bottom row by night; each column one (frame of the night walk, view yaw). The
frames are rendered at the definition's default size and the views are 90° wide, 320×176, like
the demo's views. Frame 195 passes under one of the lamps left on at night.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from vidvpr.demo.definition import DemoDefinition
from vidvpr.demo.make import plan_traversal
from vidvpr.demo.render import render_equirect_frame
from vidvpr.demo.world import CameraPose, Lighting, build_world
from vidvpr.geo.projection import equirect_to_perspective_maps

VIEW = (320, 176)


def strip(frames: list[int], yaws: list[float]) -> np.ndarray:
    """RGB strip: a row by day over a row by night, a column per (frame, yaw)."""
    definition = DemoDefinition()
    world = build_world(definition.route, definition.places, definition.seed)
    night, day = definition.night, definition.traversals[0]
    plan = plan_traversal(definition, night)
    size = definition.sizes["default"]
    rows: list[list[np.ndarray]] = [[], []]
    for index in frames:
        pose = CameraPose(float(plan.east_m[index]), float(plan.north_m[index]), float(plan.heading_deg[index]))
        lit = [Lighting(day.lighting_gain, day.tint_rgb, day.noise_std, (definition.seed, 0, index), day.lighting),
               Lighting(night.lighting_gain, night.tint_rgb, night.noise_std, (definition.seed, 2, index), "night")]
        for row, lighting in zip(rows, lit):
            frame = render_equirect_frame(world, pose, size, lighting)
            for yaw in yaws:
                map_x, map_y = equirect_to_perspective_maps(size[0], size[1], *VIEW, yaw, 0.0, 90.0)
                view = cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
                row.append(np.pad(view, ((2, 2), (2, 2), (0, 0)), constant_values=255))
    return np.concatenate([np.concatenate(row, 1) for row in rows], 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/day-night.jpg"))
    parser.add_argument("--frames", default="20,113,195", help="frames of the night walk")
    parser.add_argument("--yaws", default="0,90", help="view yaws in degrees")
    args = parser.parse_args()
    image = strip([int(f) for f in args.frames.split(",")], [float(y) for y in args.yaws.split(",")])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"{args.out}: {image.shape[1]}x{image.shape[0]}, {args.out.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()

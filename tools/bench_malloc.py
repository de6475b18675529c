"""Page faults, system time and wall time per CPU forward pass, with glibc's default mmap threshold
(the peer) and with `vidvpr.core.memory.retain_freed_memory`, each in its own process (mallopt is
process-wide), measured in the same run.

    python tools/bench_malloc.py [--batch 16] [--size 320x176] [--batches 8]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CHILD = "--child"


def measure(retain: bool, batch: int, width: int, height: int, batches: int) -> dict[str, float]:
    """Per-batch minor faults, system and user CPU seconds and wall seconds of the offline model."""
    import torch

    from vidvpr.core import memory
    from vidvpr.models import registry

    if not retain:
        registry.retain_freed_memory = lambda: False  # the peer: glibc as it comes
    elif not memory.retain_freed_memory():
        raise SystemExit("no glibc mallopt here: nothing to compare")
    model = registry.load_model("netvlad-efficientnet-lite0")
    frames = torch.randn(batch, 3, height, width)
    with torch.inference_mode():
        model(frames)  # warm-up
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(batches):
            model(frames)
        wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    return {"faults": (after.ru_minflt - before.ru_minflt) / batches, "sys_s": (after.ru_stime - before.ru_stime) / batches,
            "user_s": (after.ru_utime - before.ru_utime) / batches, "wall_s": wall / batches}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", default="320x176", help="frame WxH")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument(CHILD, choices=["default", "retain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.child:
        print(json.dumps(measure(args.child == "retain", args.batch, width, height, args.batches)))
        return
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    rows = {}
    for mode in ("default", "retain"):
        out = subprocess.run([sys.executable, __file__, CHILD, mode, "--batch", str(args.batch), "--size", args.size,
                              "--batches", str(args.batches)], env=env, capture_output=True, text=True, check=True)
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'per batch':<24}{'minor faults':>14}{'system s':>10}{'user s':>10}{'wall s':>10}")
    for mode, row in rows.items():
        label = "glibc default (peer)" if mode == "default" else "retain_freed_memory"
        print(f"{label:<24}{row['faults']:>14,.0f}{row['sys_s']:>10.3f}{row['user_s']:>10.3f}{row['wall_s']:>10.3f}")
    print(f"wall ratio retain/default: {rows['retain']['wall_s'] / rows['default']['wall_s']:.2f}; "
          f"faults ratio: {rows['retain']['faults'] / max(rows['default']['faults'], 1):.3f}")


if __name__ == "__main__":
    main()

"""`vidvpr` as torchrun starts it in tests/test_distill_ddp.py, with two hooks set by environment variables:

    VIDVPR_TEST_STOP_AFTER=K   every process raises KeyboardInterrupt after optimiser step K (a Ctrl-C)
    VIDVPR_TEST_WRITES=DIR     each process lists the files it puts in place (every output is written
                               under a temporary name and renamed) in DIR/rank-R.txt
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidvpr.cli import run  # first: it sets OpenMP's wait policy before torch is imported


def record_writes(folder: Path) -> None:
    """Append the destination of every `os.replace` of this process to FOLDER/rank-R.txt."""
    replace = os.replace
    log = folder / f"rank-{os.environ['RANK']}.txt"

    def recording(source: Any, destination: Any, **kwargs: Any) -> None:
        replace(source, destination, **kwargs)
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{destination}\n")

    os.replace = recording  # type: ignore[assignment]


def interrupt_after(step: int, on_step: Callable[[dict[str, float]], None] | None = None
                    ) -> Callable[[dict[str, float]], None]:
    """An `on_step` callback that passes each row on to `on_step`, then raises KeyboardInterrupt
    (a Ctrl-C) once optimiser step `step` is done."""
    def stepped(row: dict[str, float]) -> None:
        if on_step:
            on_step(row)
        if row["step"] == step:
            raise KeyboardInterrupt

    return stepped


def stop_after(step: int) -> None:
    """Make `vidvpr distill` raise KeyboardInterrupt once optimiser step `step` is done."""
    from vidvpr.distill import train

    distill = train.distill

    def stopping(*args: Any, on_step: Callable[[dict[str, float]], None] | None = None, **kwargs: Any) -> Any:
        return distill(*args, on_step=interrupt_after(step, on_step), **kwargs)

    train.distill = stopping  # type: ignore[assignment]


if __name__ == "__main__":
    if "VIDVPR_TEST_WRITES" in os.environ:
        record_writes(Path(os.environ["VIDVPR_TEST_WRITES"]))
    if "VIDVPR_TEST_STOP_AFTER" in os.environ:
        stop_after(int(os.environ["VIDVPR_TEST_STOP_AFTER"]))
    run()

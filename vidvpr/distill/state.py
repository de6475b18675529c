"""A training run's resumable state and its loss curve.

``RUN/train_state.pt`` holds everything a resumed run needs to continue from the same optimiser
step to identical results: student weights, Adam's moments, the mined triplets of the current
mining window, the loss curve so far, the RNG states, what decides the results (options,
teacher fingerprint, data hashes) and what decides their rounding (`arithmetic`: torch's thread
count, the number of processes, torch's version and instruction set). It is written atomically
every `checkpoint_every` steps and at the end of each epoch, and read with ``weights_only`` like
any checkpoint.

A resumed run repeats the uninterrupted one bit for bit when its arithmetic is the same, and
`same_arithmetic` makes the thread count so: a CPU kernel splits its sums between threads, so
one forward and backward pass of the student gives different last bits with 1 and 2 threads
(and identical bits, run after run and process after process, with the same count, also under
load). Another torch version or instruction set, or another number of processes, can change
the last bits of every step: the run then follows the uninterrupted one only to rounding, which
grows over the steps (and could tip a near-tie in hard-negative mining); a warning says so.

Nothing in it depends on the number of training processes: the weights are the student's own
(no DistributedDataParallel ``module.`` prefix), the mined triplets cover the whole mining
window, and everything random in training derives from (seed, epoch, step), not from a
process's RNG (the RNG states saved are the main process's). A state saved by N processes
resumes on any number of them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidvpr.core.atomic import write_text_atomic
from vidvpr.core.errors import BadInput
from vidvpr.distill.mining import Triplet, triplets_from_tensors, triplets_to_tensors
from vidvpr.models.checkpoints import load_checkpoint, save_torch

LOG = logging.getLogger(__name__)

TRAIN_STATE = "train_state.pt"
LOSSES_CSV = "losses.csv"
STATE_FORMAT = "vidvpr.distill-state/2"
CURVE_COLUMNS = ("step", "epoch", "lr", "images", "loss", "ickd", "mse", "triplet")


@dataclass
class Progress:
    """Where a run is: optimiser steps done, the loss curve, the current mining window, teacher work."""

    step: int = 0
    curve: list[dict[str, float]] = field(default_factory=list)
    mined: dict[int, Triplet] = field(default_factory=dict)
    teacher_forwards: dict[str, Any] = field(default_factory=lambda: {"targets": 0, "epochs": []})
    arithmetic: dict[str, Any] = field(default_factory=dict)  # of the run's first process, see `arithmetic`


def arithmetic(processes: int) -> dict[str, Any]:
    """What decides a run's floating-point rounding besides its inputs: torch's intra-op threads,
    the training processes, torch's version and the CPU instruction set its kernels use."""
    return {"threads": torch.get_num_threads(), "processes": processes, "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


@contextlib.contextmanager
def same_arithmetic(saved: dict[str, Any], processes: int) -> Iterator[None]:
    """The block with the thread count the run started with (`saved`, from `arithmetic`), so that a
    resumed run repeats it bit for bit; a warning when something else that decides rounding changed
    (then the threads are left as they are: the run cannot be bitwise the same anyway)."""
    current = arithmetic(processes)
    changed = [f"{name} {saved.get(name)} -> {current[name]}" for name in ("torch", "cpu_capability", "processes")
               if saved.get(name) != current[name]]
    threads = torch.get_num_threads()
    if changed:
        LOG.warning("resumed with other arithmetic (%s): the run follows the uninterrupted one to rounding, not "
                    "bit for bit", ", ".join(changed))
    elif saved.get("threads") != threads:
        LOG.info("resumed: %s torch threads, as the run started (not %d), for identical rounding", saved["threads"],
                 threads)
        torch.set_num_threads(int(saved["threads"]))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _rng_states() -> dict[str, Any]:
    """torch, numpy and Python RNG states (the loop itself draws only from seeded generators)."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy_key": torch.from_numpy(key.astype(np.int64)),
             "numpy": [name, int(pos), int(has_gauss), float(gauss)], "python": json.dumps(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, state["numpy_key"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, key: dict[str, Any], student: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, progress: Progress) -> None:
    """Write the resumable state atomically."""
    payload = {
        "format": STATE_FORMAT, "key": json.dumps(key, sort_keys=True, default=str), "step": progress.step,
        "student": {name: value.detach().cpu().clone() for name, value in student.state_dict().items()},
        "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
        "curve": progress.curve, "mined": triplets_to_tensors(progress.mined),
        "teacher_forwards": json.dumps(progress.teacher_forwards), "rng": _rng_states(),
        "arithmetic": json.dumps(progress.arithmetic),
    }
    save_torch(payload, Path(path))


def _first_difference(stored: dict[str, Any], current: dict[str, Any], prefix: str = "") -> str:
    """The first entry that differs, as deep as both sides are dicts ("data.lq was [...], now [...]"):
    the whole of `data` named every video's hash, a line of thousands of characters for one --lq."""
    for name in sorted(set(stored) | set(current)):
        was, now = stored.get(name), current.get(name)
        if was != now:
            if isinstance(was, dict) and isinstance(now, dict):
                return _first_difference(was, now, f"{prefix}{name}.")
            return f"{prefix}{name} was {was!r}, now {now!r}"
    return "unknown difference"


# each entry of a saved state and its type; the tensors inside "mined" and "rng" are checked too
STATE_LAYOUT = {"key": str, "step": int, "student": dict, "optimizer": dict, "scaler": dict, "curve": list,
                "mined": dict, "teacher_forwards": str, "rng": dict, "arithmetic": str}


def _layout_problem(data: dict[str, Any]) -> str | None:
    """What in a loaded state is missing or of the wrong type, or None."""
    for name, kind in STATE_LAYOUT.items():
        if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
            return f"{name} is {type(data.get(name)).__name__}, not {kind.__name__}"
    tensors = [("mined", name) for name in ("queries", "positives", "negatives")] + \
              [("rng", name) for name in ("torch", "numpy_key")]
    for part, name in tensors:
        if not isinstance(data[part].get(name), torch.Tensor):
            return f"{part}.{name} is not a tensor"
    if not all(isinstance(row, dict) for row in data["curve"]):
        return "curve rows are not tables"
    return None


def load_state(path: Path, key: dict[str, Any], student: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler) -> Progress:
    """Restore a run saved by `save_state`, or BadInput when it was made with another configuration."""
    data = load_checkpoint(path)
    found = data.get("format")
    shown = repr(found) if isinstance(found, (str, int, float, type(None))) else type(found).__name__  # one line
    if isinstance(found, str) and found.startswith(STATE_FORMAT.split("/")[0] + "/") and found != STATE_FORMAT:
        raise BadInput(f"{path}: a training state of another vidvpr version ({shown}, this one reads "
                       f"{STATE_FORMAT}); train into a new --out")
    if not isinstance(found, str) or found != STATE_FORMAT:
        raise BadInput(f"{path}: not a vidvpr distill training state (format {shown})")
    problem = _layout_problem(data)
    if problem:
        raise BadInput(f"{path}: damaged training state ({problem}); train into a new --out")
    try:
        stored = json.loads(data["key"])
    except (KeyError, TypeError, ValueError):
        stored = None
    if not isinstance(stored, dict):
        raise BadInput(f"{path}: damaged training state (no readable configuration); train into a new --out")
    current = json.loads(json.dumps(key, sort_keys=True, default=str))
    if stored != current:
        raise BadInput(f"{path}: made with a different configuration ({_first_difference(stored, current)}); "
                       "resume with the same options, or train into a new --out")
    try:
        with warnings.catch_warnings(record=True) as caught:  # torch warns on some damaged entries: logged, not printed
            warnings.simplefilter("always")
            try:
                student.load_state_dict(data["student"])
                optimizer.load_state_dict(data["optimizer"])
                scaler.load_state_dict(data["scaler"])
                _restore_rng(data["rng"])
            finally:
                for warning in caught:
                    LOG.debug("%s: restoring the training state: %s", path, warning.message)
        return Progress(int(data["step"]), [dict(row) for row in data["curve"]], triplets_from_tensors(data["mined"]),
                        json.loads(data["teacher_forwards"]), dict(json.loads(data["arithmetic"])))
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
        problem = f"{type(exc).__name__} {str(exc).strip().splitlines()[0][:120]}" if str(exc).strip() else type(exc).__name__
        raise BadInput(f"{path}: damaged training state ({problem}); train into a new --out") from None


def write_curve(path: Path, curve: list[dict[str, float]]) -> None:
    """The loss curve as CSV: one row per optimiser step (empty cells for unchosen terms)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in curve:
        writer.writerow({name: row.get(name, "") for name in CURVE_COLUMNS})
    write_text_atomic(Path(path), text.getvalue())


class TensorBoard:
    """Scalars to ``RUN/tensorboard`` when `torch.utils.tensorboard` imports; a no-op otherwise
    (and with no `folder`: processes other than the main one)."""

    def __init__(self, folder: Path | None, start_step: int) -> None:
        self.writer = None
        if folder is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            pass
        else:
            self.writer = SummaryWriter(log_dir=str(folder), purge_step=start_step)

    def log(self, row: dict[str, float]) -> None:
        if self.writer is not None:
            for name in CURVE_COLUMNS[2:]:
                if name in row and name != "images":
                    self.writer.add_scalar(f"train/{name}", row[name], int(row["step"]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

"""Training on several processes: torchrun's environment, the process group and each batch's shares.

`torchrun --nproc-per-node N -m vidvpr distill ...` starts N processes with RANK, WORLD_SIZE,
LOCAL_RANK and MASTER_ADDR in their environment; `distill` then joins them in a process group
(NCCL on GPUs, one per process; gloo on CPUs) and wraps the student in DistributedDataParallel.
`--batch-size` stays the global batch: each batch's rows are split between the processes in
order (`share`), and every loss term is combined over the processes as one process would compute
it on the whole batch (`vidvpr.distill.step.combine_chunk`), so N processes follow the single-process run to within
floating-point rounding. The main process (rank 0) prepares what is computed once (decoded
frames, teacher, inherited targets) before the others read it (`Group.main_first`), and alone
writes checkpoints, the loss curve and the student.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from vidvpr.core.errors import BadInput, VidvprError

T = TypeVar("T")
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR")  # LOCAL_RANK too, 0 when absent


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes (one process when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launched: bool = False  # started by torchrun: join its process group

    @property
    def main(self) -> bool:
        """The process that writes outputs and reports progress."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """A process's own GPU (its LOCAL_RANK) when training on CUDA; `device` otherwise."""
        return torch.device("cuda", self.local_rank) if device.type == "cuda" and self.launched else device

    def share(self, rows: Sequence[T]) -> list[T]:
        """This process's consecutive slice of `rows`, in rank order (slices differ in length by at most one)."""
        base, extra = divmod(len(rows), self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return list(rows[start:start + base + (self.rank < extra)])


def launched_processes(environ: Mapping[str, str] | None = None) -> Processes:
    """The processes torchrun started, from its environment variables (read when called), or those of
    a process group the caller joined already (e.g. processes started by torch.multiprocessing)."""
    env = os.environ if environ is None else environ
    if not all(name in env for name in TORCHRUN_ENV):
        if dist.is_available() and dist.is_initialized():
            return Processes(dist.get_rank(), dist.get_world_size(), int(env.get("LOCAL_RANK", "0")), launched=True)
        return Processes()
    try:
        rank, world_size, local_rank = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0"))
    except ValueError:
        raise BadInput(f"torchrun environment: RANK, WORLD_SIZE and LOCAL_RANK must be integers, got "
                       f"{env['RANK']!r}, {env['WORLD_SIZE']!r} and {env.get('LOCAL_RANK')!r}") from None
    if not 0 <= rank < world_size:
        raise BadInput(f"torchrun environment: RANK {rank} is not in [0, WORLD_SIZE {world_size})")
    return Processes(rank, world_size, local_rank, launched=True)


class RaisedOnMain(VidvprError):
    """An error the main process raised and reports: the others exit with its code and say nothing."""

    def __init__(self, error: VidvprError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code


def check_batch_size(batch_size: int, processes: Processes) -> None:
    """BadInput (on the main process; `RaisedOnMain` on the others) when the global batch does not split evenly."""
    if batch_size % processes.world_size:
        error = BadInput(f"--batch-size {batch_size} is the global batch: it must be a multiple of the "
                         f"{processes.world_size} processes (each takes batch-size / {processes.world_size} rows)")
        raise error if processes.main else RaisedOnMain(error)


class Group:
    """Collective operations among the training processes; with one process, each is the identity."""

    def __init__(self, processes: Processes, device: torch.device) -> None:
        self.processes = processes
        self.device = device
        self.distributed = processes.launched and dist.is_initialized()

    @property
    def world_size(self) -> int:
        return self.processes.world_size if self.distributed else 1

    def sum(self, values: Tensor) -> Tensor:
        """`values` summed over the processes (a copy, on the CPU)."""
        total = values.detach().to(self.device, copy=True)
        if self.distributed:
            dist.all_reduce(total)
        return total.cpu()

    def share(self, rows: Sequence[T]) -> list[T]:
        """This process's share of `rows` (all of them with one process)."""
        return self.processes.share(rows) if self.distributed else list(rows)

    def gather_rows(self, rows: Tensor) -> Tensor:
        """Every process's `rows` concatenated in rank order, on the CPU."""
        if not self.distributed:
            return rows
        counts = [torch.zeros(1, dtype=torch.int64, device=self.device) for _ in range(self.world_size)]
        dist.all_gather(counts, torch.tensor([len(rows)], dtype=torch.int64, device=self.device))
        padded = torch.zeros((int(max(counts)), *rows.shape[1:]), dtype=rows.dtype, device=self.device)
        padded[:len(rows)] = rows.to(self.device)
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded)
        return torch.cat([part[:int(count)] for part, count in zip(parts, counts)]).cpu()

    def main_first(self, work: Callable[[], T]) -> T:
        """`work` on the main process, then, once it succeeded, on the others: what it computes once and
        stores (decoded frames, caches) the others read. An error of the main process stops them all."""
        if not self.distributed:
            return work()
        failure: list[tuple[int, str] | None] = [None]  # the main process's (exit code, message)
        if self.processes.main:
            try:
                return work()
            except BaseException as exc:
                failure[0] = (exc.exit_code, str(exc)) if isinstance(exc, VidvprError) else (1, "stopped")
                raise
            finally:
                dist.broadcast_object_list(failure, src=0)
        dist.broadcast_object_list(failure, src=0)
        if failure[0] is not None:
            error = VidvprError(failure[0][1])
            error.exit_code = failure[0][0]
            raise RaisedOnMain(error)
        return work()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def wrap(self, module: nn.Module, all_weights_used: bool) -> nn.Module:
        """`module` in DistributedDataParallel (as it is with one process). Batch norm stays in eval
        mode during training (`vidvpr.distill.teacher.set_training`): no batch statistics, so nothing
        to synchronise (no SyncBatchNorm). Without `all_weights_used` some trained weights take no
        part in the loss (ICKD alone leaves NetVLAD out) and DistributedDataParallel looks for them."""
        if not self.distributed:
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=not all_weights_used)

    def accumulating(self, module: nn.Module, last: bool) -> contextlib.AbstractContextManager[object]:
        """Gradients summed locally until the `last` backward of an optimiser step, which averages them."""
        if isinstance(module, DistributedDataParallel) and not last:
            return module.no_sync()
        return contextlib.nullcontext()


@contextlib.contextmanager
def joined(processes: Processes, device: torch.device) -> Iterator[Group]:
    """The process group of torchrun's processes for the block (NCCL on CUDA, gloo otherwise),
    joined here unless the caller already did, and left afterwards."""
    started = processes.launched and not dist.is_initialized()
    if started:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=processes.rank,
                                world_size=processes.world_size, device_id=device if device.type == "cuda" else None)
    try:
        yield Group(processes, device)
    finally:
        if started:
            dist.destroy_process_group()

"""Several training processes under ``torchrun``: process group, batch sharding, gathering and the run's command.

``torchrun --nproc_per_node N -m senet.train ...`` starts N copies of the CLI with RANK / WORLD_SIZE / LOCAL_RANK
in their environment; :func:`start` joins them into one process group (NCCL on GPUs, Gloo on CPUs). Every process
holds the whole dataset as uint8 tensors and draws the same seeded epoch order and augmentation choices, so each
one takes its rows of the *global* batch (:func:`shard_rows`, exactly DistributedSampler's split) and the run
sees the same batches as one process with the same ``--batch-size``, whatever N is. That is also why ``--resume``
works across a change of N: nothing in the schedule or the data order depends on N.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .devices import resolve_device
from .provenance import command_line


@dataclass(frozen=True)
class Distributed:
    """This process's place in a run: rank ``rank`` of ``world_size`` (1: a plain single-process run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""  # "nccl" or "gloo"; "" for a single process
    sync_bn: bool = False  # BatchNorm statistics over the global batch (SyncBatchNorm)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints progress and writes checkpoints and cards."""
        return self.rank == 0

    def describe(self) -> dict[str, Any]:
        """What a model card records about the processes that trained it."""
        return {"world_size": self.world_size, "backend": self.backend, "sync_bn": self.sync_bn,
                "nodes": int(os.environ.get("GROUP_WORLD_SIZE", "0")) or _nodes(self.world_size)}


SINGLE = Distributed()


def _nodes(world_size: int) -> int:
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size) or world_size)
    return max(1, world_size // max(1, local))


def launched_by_torchrun() -> bool:
    """True inside a process started by ``torchrun`` (or ``python -m torch.distributed.run``)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def requested_world_size() -> int:
    """How many processes torchrun started (1 outside torchrun), known before the process group exists."""
    return int(os.environ["WORLD_SIZE"]) if launched_by_torchrun() else 1


def start(device_choice: str = "auto", *, sync_bn: bool = False) -> tuple[Distributed, torch.device]:
    """Join the process group torchrun prepared and pick this process's device; a plain run gets SINGLE.

    Under torchrun, ``cuda`` (or ``auto`` on a GPU machine) means the GPU numbered LOCAL_RANK, so N processes on one
    machine use N GPUs; the CPU uses Gloo.

    Raises:
        DeviceError: CUDA was asked for on a machine without a CUDA GPU.
    """
    device = resolve_device(device_choice)
    if requested_world_size() < 2:
        return SINGLE, device
    rank, world, local_rank = (int(os.environ[key]) for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    return Distributed(rank, world, local_rank, backend, sync_bn), device


def stop(ctx: Distributed) -> None:
    """Leave the process group (after a last barrier, so no process exits while another still talks)."""
    if ctx.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def main_only(log: Callable[[str], None], ctx: Distributed) -> Callable[[str], None]:
    """``log`` on rank 0, a no-op elsewhere: one progress line per run, not one per process."""
    return log if ctx.is_main else _silent


def _silent(_: str) -> None:
    pass


def per_process_batch(global_batch: int, world_size: int) -> int:
    """The batch each process trains on; the global batch is what ``--batch-size`` says, whatever N is.

    Raises:
        ValueError: the global batch does not split evenly among the processes.
    """
    if global_batch % world_size:
        raise ValueError(f"--batch-size {global_batch} is the global batch and must split evenly among the "
                         f"{world_size} processes; use a multiple of {world_size}.")
    return global_batch // world_size


def shard_rows(batch: int, ctx: Distributed, device: torch.device) -> torch.Tensor:
    """Positions of this process's rows in a global batch of ``batch``: ``rank, rank + N, rank + 2N, ...``.

    This is DistributedSampler's split: it hands rank r the indices ``perm[r::N]`` of the epoch's permutation and
    its batch sampler cuts them into runs of B / N, so at step s rank r holds ``perm[s*B + r : (s+1)*B : N]``,
    which is these rows of the global batch ``perm[s*B : (s+1)*B]`` (``drop_last`` semantics, as the trainer
    drops the last partial batch).
    """
    return torch.arange(ctx.rank, batch, ctx.world_size, device=device)


def all_reduce_sum(values: torch.Tensor, ctx: Distributed) -> torch.Tensor:
    """Sum of ``values`` over the processes (the tensor itself when there is one process)."""
    if ctx.active:
        values = values.clone()
        dist.all_reduce(values)
    return values


def gather_rows(local: torch.Tensor, total: int, ctx: Distributed, device: torch.device) -> torch.Tensor:
    """Concatenate every process's ``eval_chunk`` results in order: rows ``0 .. total-1`` on every process.

    ``device`` is where the collective runs (NCCL only moves CUDA tensors).
    """
    if not ctx.active:
        return local
    longest = -(-total // ctx.world_size)
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[:len(local)] = local
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded)
    sizes = [len(chunk) for chunk in torch.arange(total).tensor_split(ctx.world_size)]
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def eval_chunk(total: int, ctx: Distributed) -> slice:
    """This process's contiguous share of ``total`` evaluation rows (no padding, no duplicates)."""
    sizes = [len(chunk) for chunk in torch.arange(total).tensor_split(ctx.world_size)]
    start = sum(sizes[:ctx.rank])
    return slice(start, start + sizes[ctx.rank])


def broadcast_value(value: Any, ctx: Distributed) -> Any:
    """Rank 0's ``value`` on every process: decisions that depend on a clock (time budget, stop-after)."""
    if not ctx.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_buffers(module: nn.Module, ctx: Distributed) -> None:
    """Give every process rank 0's buffers (BatchNorm running statistics differ per process without SyncBN)."""
    if ctx.active:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def run_command(module: str, argv: Sequence[str] | None, ctx: Distributed) -> str:
    """The command that started this run: ``python -m MODULE ARGS``, or the torchrun line that started N of them.

    Under torchrun the launcher's own arguments are read from its command line (the parent process on Linux);
    where that is not readable they are rebuilt from the environment torchrun sets.
    """
    single = command_line(module, argv)
    if not launched_by_torchrun():
        return single
    return single.replace("python -m", f"torchrun {_launcher_args()} -m", 1)


def _launcher_args() -> str:
    try:
        parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0")
        words = [word.decode() for word in parent if word]
    except OSError:
        words = []
    for i, word in enumerate(words):
        if word.endswith("torchrun") or word == "torch.distributed.run":
            launcher = words[i + 1:]
            if "-m" in launcher:  # the launcher's own options come before "-m MODULE"
                return " ".join(shlex.quote(w) for w in launcher[:launcher.index("-m")])
    nodes = _nodes(int(os.environ["WORLD_SIZE"]))
    local = os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])
    return f"--nnodes {nodes} --nproc_per_node {local}"

"""Spread an analysis's samples over the processes of a ``torch.distributed`` group.

A process group is started by a standard launcher (``torchrun``, ``srun torchrun`` under SLURM,
or Lightning's), never by a process pool of our own: :func:`launched_group` joins the group the
launcher's environment describes, for the commands; from Python, call
``torch.distributed.init_process_group()`` under torchrun and every analysis that takes samples
in batches (:func:`~gan_dissect.dissection.dissect_layers`,
:func:`~gan_dissect.effects.measure_effect`, :func:`~gan_dissect.effects.effect_curve`) shards
them. Inside the group, batch ``b`` of an analysis belongs to rank ``b % world``; each rank
folds its batches into streaming statistics and the ranks merge them (exactly: counts, sketches
and per-batch sums replayed in batch order), so every rank ends with the numbers one process
gets.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch


def group() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside a ``torch.distributed`` group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def own_batches(num_batches: int) -> list[int]:
    """The batch numbers of ``range(num_batches)`` this process handles (every world-th one)."""
    rank, world = group()
    return [b for b in range(num_batches) if b % world == rank]


def gather(value: Any) -> list[Any]:
    """Every rank's ``value`` (any picklable object), in rank order; ``[value]`` when alone."""
    import torch.distributed as dist

    world = group()[1]
    if world == 1:
        return [value]
    values: list[Any] = [None] * world
    dist.all_gather_object(values, value)
    return values


def barrier() -> None:
    """Wait until every process of the group gets here (nothing to wait for when alone)."""
    import torch.distributed as dist

    if group()[1] > 1:
        dist.barrier()


def launched_world() -> int:
    """How many processes the launcher started (``WORLD_SIZE``; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """This process's rank among the launcher's (``RANK``; 0 without a launcher)."""
    return int(os.environ.get("RANK", "0"))


@contextlib.contextmanager
def launched_group(device: torch.device) -> Iterator[torch.device]:
    """Within the block, this process is in the group that ``torchrun`` (or SLURM through it)
    describes in its environment; yields the device this rank works on (GPU ``LOCAL_RANK`` on
    CUDA). gloo on the CPU, NCCL on GPUs; a group started here is left at the end of the block.

    Outside a launcher (``WORLD_SIZE`` unset or 1), or in a group that is already started,
    nothing is started or left and ``device`` is yielded. Threads per rank follow
    ``OMP_NUM_THREADS``, which ``torchrun`` sets (to 1 unless given).
    """
    import torch.distributed as dist

    if launched_world() <= 1 or dist.is_initialized():
        yield device
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield device
    finally:
        dist.destroy_process_group()

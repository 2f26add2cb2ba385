"""DistributedDataParallel helpers: start the process group torchrun describes, share rank 0's
values, sum metrics over ranks, and give every rank rank 0's batch-norm statistics.

With one process (no ``WORLD_SIZE`` > 1) every helper is a no-op.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist


def start_distributed(device: torch.device) -> tuple[int, int, bool]:
    """(rank, world_size, whether we started the process group) from torchrun's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, False
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), True


def local_device(device: torch.device, world: int) -> torch.device:
    """The GPU of this process (``LOCAL_RANK``) when several processes share a machine's GPUs."""
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return device


def share(values: tuple, world: int) -> tuple:
    """Rank 0's values on every rank."""
    if world <= 1:
        return values
    box = [tuple(str(v) if isinstance(v, Path) else v for v in values)]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def reduce_mean(sums: torch.Tensor, world: int) -> tuple[float, float]:
    """(mean loss, accuracy) from (loss sum, correct, count), summed over ranks."""
    if world > 1:
        sums = sums.clone()
        torch.distributed.all_reduce(sums)
    loss_sum, correct, count = sums.tolist()
    return loss_sum / max(count, 1), correct / max(count, 1)


def sync_buffers(model: torch.nn.Module, world: int) -> None:
    """Give every rank rank 0's buffers (batch-norm running statistics), so all ranks hold one model."""
    if world > 1:
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, src=0)


def barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()

"""torchrun context: one process per rank, gloo on CPU (nccl when every rank has a GPU), for
training (DDP) and for simulation (images sharded over ranks, results gathered).

Outside torchrun (no WORLD_SIZE in the environment) everything degrades to a single process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .machine import pick_device


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, *values: float) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64)
        if self.enabled:
            dist.all_reduce(t)
        return t.tolist()

    def sync_buffers(self, model: torch.nn.Module) -> None:
        """Give every rank rank 0's BatchNorm statistics (DDP leaves them a step apart)."""
        if self.enabled:
            for b in model.buffers():
                dist.broadcast(b, 0)

    def shard(self, n: int) -> range:
        """This rank's contiguous share of n items (batches): rank r takes the r-th of `world`
        near-equal blocks, so the items keep their global order across ranks."""
        return range(self.rank * n // self.world, (self.rank + 1) * n // self.world)

    def gather(self, value) -> list:
        """Every rank's `value` (any picklable object), in rank order, on every rank."""
        if not self.enabled:
            return [value]
        out = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def setup(device: str = "auto") -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = pick_device(device).type == "cuda"         # an error for cuda without a CUDA device
    dev = torch.device(f"cuda:{local}" if cuda else "cpu")
    if world > 1 and not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if cuda else "gloo")
    return Dist(rank, world, dev)

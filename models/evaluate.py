"""ANN top-1 accuracy. RSM stays active (as in the paper), so evaluation is seeded."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..distributed import Dist
from ..errors import UserError


@torch.no_grad()
def accuracy(model: torch.nn.Module, data: Dataset, batch_size: int = 256, seed: int = 0,
             dist: Dist | None = None) -> float:
    """Top-1 accuracy in [0, 1]; under DDP each rank takes every world-th image."""
    dist = dist or Dist()
    model = getattr(model, "module", model)
    was_training = model.training
    model.eval()
    shard = Subset(data, range(dist.rank, len(data), dist.world))
    torch.manual_seed(seed + dist.rank)
    correct = total = 0
    for x, y in DataLoader(shard, batch_size=batch_size):
        pred = model(x.to(dist.device)).argmax(1).cpu()
        correct += int((pred == y).sum())
        total += len(y)
    model.train(was_training)
    correct, total = dist.all_sum(correct, total)
    return correct / max(total, 1)


def ann_accuracy(model: torch.nn.Module, data: Dataset, source: str) -> float:
    """The ANN's accuracy on the samples its SNN runs (the energy report's baseline); a UserError
    naming `source` when the model cannot read them (shapes or classes that do not fit)."""
    try:
        return accuracy(model.float(), data)
    except RuntimeError as e:
        raise UserError(f"{source} cannot read these inputs: {str(e).splitlines()[0]}") from None

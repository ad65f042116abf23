"""Random Spike Masking (RSM): drop each spike independently with probability p.

As the MST code does it: keep = rand(x.shape) > p, x * keep, drawn anew at every call, with no
1/(1-p) rescaling, active in training *and* evaluation (the network learns its masked
statistics). In the exported SNN the same mask becomes stochastic synapse gating per time step.
"""
from __future__ import annotations

import torch
from torch import nn

from ..ir.ratio import check_ratio


class RandomSpikeMask(nn.Module):
    """Bernoulli keep-mask with keep probability 1 - p on every element."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = check_ratio(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0:
            return x
        return x * (torch.rand_like(x) > self.p).to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"

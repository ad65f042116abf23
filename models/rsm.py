"""Random Spike Masking (RSM): drop each spike independently with probability p.

As the MST code does it: keep = rand(x.shape) > p, x * keep, drawn anew at every call, with no
1/(1-p) rescaling, active in training *and* evaluation (the network learns its masked
statistics). In the exported SNN the same mask becomes stochastic synapse gating per time step.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError


def check_ratio(p: float) -> float:
    """A masking ratio must lie in [0, 1): p = 1 would silence the synapse entirely."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise UserError(f"masking ratio must be a number in [0, 1), got {p!r}") from None
    if not 0.0 <= p < 1.0:
        raise UserError(f"masking ratio must be in [0, 1), got {p}")
    return p


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

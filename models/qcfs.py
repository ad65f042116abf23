"""QCFS: the quantization-clip-floor-shift activation that stands in for an IF neuron in training.

    h(z) = (lam / L) * clip(floor(z * L / lam + 0.5), 0, L)        (docs/sources.md, "MST")

Written, as in the QCFS/MST code, as clamp(z / lam, 0, 1) -> floor(. * L + 0.5) / L -> * lam, which
has the same values and gives lam its gradient through the clamp. floor has a straight-through
gradient. After conversion each QCFS becomes an IF neuron with threshold lam, reset by
subtraction and initial membrane lam / 2, whose mean output over T >= L steps matches h(z).
"""
from __future__ import annotations

import torch
from torch import nn


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class QCFS(nn.Module):
    """QCFS with L levels and a learnable scalar threshold `lam` (excluded from weight decay)."""

    def __init__(self, levels: int = 16, lam_init: float = 2.0):
        super().__init__()
        if levels < 1:
            raise ValueError("QCFS levels must be >= 1")
        self.levels = int(levels)
        self.lam = nn.Parameter(torch.tensor(float(lam_init)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.clamp(z / self.lam, 0.0, 1.0)
        x = _FloorSTE.apply(x * self.levels + 0.5) / self.levels
        return x * self.lam

    def extra_repr(self) -> str:
        return f"levels={self.levels}"

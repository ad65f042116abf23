"""The masking ratio, one rule for every layer that takes one (CLI, models, graph re-gating)."""
from __future__ import annotations

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

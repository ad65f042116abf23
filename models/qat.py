"""Loihi's number formats for quantization-aware training of directly trained SNNs (SAFormer).

A slayer CUBA neuron of threshold 1 keeps u and v in units of 1/4096 and takes synaptic input in
units of 1/64 (its w_scale): exactly Lava's bit-accurate LIF with vth = 64 (vth << 6 = 4096).
The functions here put every value a trained network uses on the grid the fixed-point plan
(loihi/plan.py, docs/fixed-point.md) will find it on, so the exported network computes
the same integers as the trained one. Rounding is straight-through in the backward pass.

- weights: 8-bit mantissa, even (mixed sign), one exponent per tensor in [-8, 7]
  (`quantize_weights`); a layer on the analog input keeps exponent >= 0, because the input's
  8 fraction bits use the rest of the range;
- a synaptic current: floored to the 1/64 input unit (Lava's Dense shifts by the exponent);
- biases: 13-bit mantissa with a 3-bit exponent per element, in 1/4096 (`quantize_bias`);
- the analog input: 8 fraction bits, rounded half up (`quantize_input`).
"""
from __future__ import annotations

import torch

from ..loihi import quantize as lq
from ..loihi.widths import ACT_SHIFT, CUBA_SCALE, INPUT_BITS, WEIGHT_EXP, WEIGHT_MAX_MIXED

V_SCALE = CUBA_SCALE << ACT_SHIFT  # membrane units per threshold; CUBA_SCALE: input units per threshold


def _ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """q in the forward pass, the identity's gradient in the backward pass."""
    return x + (q - x).detach()


def weight_exponent(w: torch.Tensor, analog: bool = False) -> int:
    """The smallest exponent whose grid holds the largest weight with an even mantissa <= 254."""
    big = float(w.detach().abs().max()) * CUBA_SCALE
    lo = 0 if analog else WEIGHT_EXP[0]
    if big == 0.0:
        return lo
    e = lo
    while big / 2.0 ** e > WEIGHT_MAX_MIXED and e < WEIGHT_EXP[1]:
        e += 1
    return e


def quantize_weight(w: torch.Tensor, analog: bool = False) -> torch.Tensor:
    step = 2.0 * 2.0 ** weight_exponent(w, analog) / CUBA_SCALE
    q = torch.clamp(torch.round(w / step), -WEIGHT_MAX_MIXED // 2, WEIGHT_MAX_MIXED // 2) * step
    return _ste(w, q)


def floor_current(c: torch.Tensor) -> torch.Tensor:
    """The synaptic current in whole input units (Lava's Dense floors when it shifts right)."""
    return _ste(c, torch.floor(c * CUBA_SCALE) / CUBA_SCALE)


def quantize_bias(b: torch.Tensor) -> torch.Tensor:
    """Per element: the 13-bit mantissa and 3-bit exponent the fixed-point plan will pick."""
    mant, exp, _ = lq.quantize_bias(b.detach().double().cpu().numpy() * V_SCALE)
    q = torch.as_tensor(mant * 2.0 ** exp / V_SCALE, dtype=b.dtype, device=b.device)
    return _ste(b, q)


def quantize_output(w: torch.Tensor) -> torch.Tensor:
    """Classifier weights as the plan scales the output: 7-bit magnitude of the largest weight."""
    big = w.detach().abs().max().clamp_min(1e-12)
    unit = big / WEIGHT_MAX_MIXED
    q = torch.round(w / (2 * unit)) * 2 * unit
    return _ste(w, q)


def quantize_input(x: torch.Tensor) -> torch.Tensor:
    """Analog input as 8-fraction-bit graded spikes: floor(x * 256 + 0.5) / 256."""
    s = float(1 << INPUT_BITS)
    return _ste(x, torch.floor(x * s + 0.5) / s)

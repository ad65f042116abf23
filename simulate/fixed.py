"""The reference simulator's fixed-point arithmetic (docs/fixed-point.md): synapses, neurons, host
softmax and the output on the integers of the plan (loihi/plan.py), held exactly in float64 (CUDA
has no integer matmul). The Lava process models implement the same rules independently; parity
tests that they agree.
"""
from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from ..ir import nodes as X
from ..ir.topology import POOLS
from ..loihi.plan import NeuronQ
from ..loihi.quantize import layernorm_fixed, softmax_fixed
from ..loihi.widths import ACT_SHIFT, DECAY_ONE, GRADED_LIMIT, SD_SHIFT, U_WRAP, V_LIMIT
from ..ir.topology import pair
from . import kernels
from .neurons import SigmaDeltaParams, sd_init, sd_step, subtract_levels
from .ops import flat_steps, increments, operands, pad, running_sum, step_numbers


def shift(y: torch.Tensor, e: int) -> torch.Tensor:
    """Integer y * 2^e (floor when e < 0), on integers held exactly in float64."""
    return y * 2.0 ** e if e >= 0 else torch.floor(y / 2.0 ** -e)


def wrap(u: torch.Tensor) -> tuple[torch.Tensor, int]:
    """24-bit wrap-around of Lava's current u, and how many values wrapped."""
    wrapped = int(((u > U_WRAP) | (u <= -U_WRAP)).sum())
    u = torch.where(u > U_WRAP, u - 2 * U_WRAP, u)
    return torch.where(u <= -U_WRAP, u + 2 * U_WRAP, u), wrapped


def pool_sum(node, x: torch.Tensor) -> torch.Tensor:
    k = pair(node.kernel_size)
    return flat_steps(x, lambda v: F.avg_pool2d(v, k, pair(node.stride), pair(node.padding),
                                                count_include_pad=True, divisor_override=1))


def synapse(node, x: torch.Tensor, w: torch.Tensor, q) -> torch.Tensor:
    """A synaptic node on integer inputs: the weighted sum shifted by the layer exponent
    (SpikeProduct, which remembers, is `product`)."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        y = F.linear(x, w)
    elif isinstance(node, nir.Scale):
        y = x * w
    elif isinstance(node, POOLS):
        y = pool_sum(node, x) * w
    elif isinstance(node, nir.Conv1d):
        y = flat_steps(x, lambda v: F.conv1d(v, w, None, int(node.stride), pad(node.padding),
                                             int(node.dilation), int(node.groups)))
    else:
        y = flat_steps(x, lambda v: F.conv2d(v, w, None, pair(node.stride), pair(pad(node.padding)),
                                             pair(node.dilation), int(node.groups)))
    return shift(y, q.exp)


def product(node: X.SpikeProduct, x: torch.Tensor, m: float, e: int, steps: torch.Tensor, carry):
    """(output, carry) over a chunk with step numbers `steps`; carry: the operands' running sums
    and the last G (None at the start)."""
    a, b = operands(node, x)
    if node.mode == "per_step":
        return shift(m * (a @ b), e), None
    # G_t = floor(m A_t B_t 2^e / t); out_t = G_t - G_{t-1}. Exact: m A_t B_t < 2^52 (checked).
    A0, B0, G0 = carry or (None, None, None)
    A, Bc = running_sum(a, A0), running_sum(b, B0)
    X_ = m * (A @ Bc)
    if X_.numel() and float(X_.abs().max()) >= 2.0 ** 52:
        raise UserError("fixed point: a cumulative product overflows 52 bits; use a smaller T")
    t = step_numbers(steps, X_.dtype, X_)
    G = torch.floor(X_ * 2.0 ** e / t) if e >= 0 else torch.floor(X_ / (t * 2.0 ** -e))
    return increments(G, G0), (A[-1:], Bc[-1:], G[-1:])


def softmax(node: X.HostSoftmax, x: torch.Tensor, in_scale: float) -> torch.Tensor:
    """One step and image at a time, as Lava does (see loihi.quantize.softmax_fixed)."""
    T, B = x.shape[:2]
    flat = x.cpu().numpy()
    y = np.empty(flat.shape, np.int64)
    bias = np.broadcast_to(np.asarray(node.bias, np.float64), flat.shape[2:])
    for t in range(T):
        for b in range(B):
            y[t, b] = softmax_fixed(flat[t, b], in_scale, node.scale, bias, int(node.axis))
    return torch.as_tensor(y, dtype=x.dtype, device=x.device)


def layer_norm(node: X.HostLayerNorm, x: torch.Tensor, in_scale: float, steps: torch.Tensor, carry):
    """(output, carry) over a chunk, one step and image at a time as Lava does (see
    loihi.quantize.layernorm_fixed); carry: per image the running input total and the last output."""
    T, B = x.shape[:2]
    flat = x.cpu().numpy()
    y = np.empty((T, B) + flat.shape[3:], np.int64)
    shape = tuple(int(v) for v in node.shape)
    bias = np.broadcast_to(np.asarray(node.bias, np.float64), shape)
    weight = np.asarray(node.weight, np.float64)
    args = (weight, bias, int(node.axis), float(node.eps))
    if node.mode == "per_step":
        for t in range(T):
            for b in range(B):
                y[t, b] = layernorm_fixed(flat[t, b], in_scale, 1, *args)
        return torch.as_tensor(y, dtype=x.dtype, device=x.device), None
    total, last = carry or (np.zeros((B,) + flat.shape[2:]), np.zeros((B,) + shape, np.int64))
    first = int(steps[0])
    for b in range(B):
        for t in range(T):
            total[b] = total[b] + flat[t, b]
            now = layernorm_fixed(total[b], in_scale, first + t, *args)
            y[t, b], last[b] = now - last[b], now
    return torch.as_tensor(y, dtype=x.dtype, device=x.device), (total, last)


@dataclass
class Saturation:
    """Clipped membranes (steps x neurons): v above +(2^23 - 1), below -(2^23 - 1); u wrapped."""
    high: int = 0
    low: int = 0
    wrapped: int = 0


def payload(x: torch.Tensor, sat: Saturation) -> torch.Tensor:
    """A relay's integer sum as a graded message: clipped to the 24-bit payload, counted in `sat`."""
    sat.high += int((x > GRADED_LIMIT).sum())
    sat.low += int((x < -GRADED_LIMIT).sum())
    return x.clamp(-GRADED_LIMIT, GRADED_LIMIT)


def current(q: NeuronQ, x: torch.Tensor, sat: Saturation, u: torch.Tensor | None):
    """Lava's current u for every step, and the last: u = (u * (4096 - (du + 1))) >> 12 (toward
    zero) + (a_in << 6), wrapping at 24 bits; `u` the current before the chunk (None: 0).
    IF nodes (du = 4095): u = a_in << 6, no scan."""
    a = x * (1 << ACT_SHIFT)
    keep_u = DECAY_ONE - (q.du + 1)
    if keep_u == 0:
        u_all, wrapped = wrap(a)
        u = None
    elif kernels.usable(a):                        # the current remembers: scan it (fused)
        u = torch.zeros_like(a[0]) if u is None else u
        u_all, u, wrapped = kernels.fixed_current(a, u, keep_u, DECAY_ONE, U_WRAP)
    else:
        u_all, wrapped = torch.empty_like(a), 0
        u = torch.zeros_like(a[0]) if u is None else u
        for t in range(a.shape[0]):
            u, w = wrap(torch.trunc(u * keep_u / DECAY_ONE) + a[t])
            u_all[t], wrapped = u, wrapped + w
    sat.wrapped += wrapped
    return u_all, u


def voltage_step(q: NeuronQ, v: torch.Tensor, drive: torch.Tensor, sat: Saturation):
    """One step of v = (v * (4096 - dv)) >> 12 + u + bias, saturating at 24 bits, with the node's
    own spike rule and reset. Returns (spikes, v); counts clipped values into `sat`."""
    keep_v = DECAY_ONE - q.dv
    v = torch.trunc(v * keep_v / DECAY_ONE) + drive if keep_v != DECAY_ONE else v + drive
    sat.high += int((v > V_LIMIT).sum())
    sat.low += int((v < -V_LIMIT).sum())
    v.clamp_(-V_LIMIT, V_LIMIT)                    # in place on this step's new tensor
    th = float(q.threshold)
    if q.subtract:
        return subtract_levels(v, th, q.levels)
    s = v > th
    return s, v.masked_fill_(s, 0.0)


def neuron(q: NeuronQ, x: torch.Tensor, bias: torch.Tensor, v_init: torch.Tensor,
           sat: Saturation, state=None):
    """Spikes (k, ...) of a neuron on integer input x (Lava's LIF datapath, docs/fixed-point.md)
    and its state (u, v) after the chunk; `state` the state before it (None: the start)."""
    u, v = state or (None, None)
    u_all, u = current(q, x, sat, u)
    drive = u_all + bias
    v = (torch.zeros_like(x[0]) + v_init).contiguous() if v is None else v
    if kernels.usable(drive):
        out, v, high, low = kernels.fixed_voltage(drive, v, DECAY_ONE - q.dv, DECAY_ONE, V_LIMIT,
                                                  float(q.threshold), q.subtract, q.levels)
        sat.high, sat.low = sat.high + high, sat.low + low
        return out, (u, v)
    out = torch.empty_like(x)
    for t in range(x.shape[0]):
        s, v = voltage_step(q, v, drive[t], sat)
        out[t] = s
    return out, (u, v)


def sigma_delta(q, x: torch.Tensor, bias: torch.Tensor, state=None):
    """Messages (k, ...) of a sigma-delta neuron (ir/nodes.py SigmaDelta) on integer input x in
    units of 2^-12 (Lava's PyDeltaModelFixed / PySigmaDeltaModelFixed), in units of 2^-6, and its
    state (sigma, activation, residue) after the chunk: the float step on integers, each message
    shifted right (the bits below are not sent, nor kept in the residue)."""
    p = SigmaDeltaParams(q.threshold, bias, q.sigma, q.relu)
    state = state or sd_init(p, x[0])
    out = torch.empty_like(x)
    for t in range(x.shape[0]):
        s, state = sd_step(p, state, x[t])
        out[t] = torch.floor(s / (1 << SD_SHIFT))
    return out, state

"""Neuron dynamics in floating point, as pure step functions: `step(params, state, drive_t)` returns
(spikes_t, new state) and changes nothing else. `scan` runs one over the time axis.

The drive (a neuron's input for every step, with its constant terms folded in) is computed for all
steps at once by `*_drive`; only the membrane is scanned: on the CPU by a fused kernel doing the
same arithmetic (kernels.py), elsewhere by `scan`. Readings: docs/nir-extensions.md (ResetSubIF,
stock IF) and ir/cuba.py (stock LIF, CubaLIF).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import nir
import numpy as np
import torch

from ..ir import nodes as X
from ..ir.cuba import LEAKY, cuba
from ..ir.topology import node_shape
from . import kernels


@dataclass(frozen=True)
class IFParams:
    """Integrate-and-fire. subtract: v >= threshold, v -= threshold (ResetSubIF); otherwise stock
    NIR IF: v > threshold, v = v_reset."""
    threshold: torch.Tensor
    v_init: torch.Tensor
    bias: torch.Tensor               # ResetSubIF's constant current (0 for stock IF)
    gain: torch.Tensor               # stock IF's r (1 for ResetSubIF)
    subtract: bool
    v_reset: torch.Tensor | None = None
    levels: int = 1                  # ResetSubIF's M: payloads 0..M, one threshold subtracted per unit
    keep: float = 1.0                # ResetSubIF's 1 - decay: v_t = keep v_{t-1} + drive


def if_drive(p: IFParams, x: torch.Tensor) -> torch.Tensor:
    """Input of every step: ResetSubIF x + bias, stock IF r x (one op for all steps)."""
    return x + p.bias if p.subtract else x * p.gain


def if_init(p: IFParams, like: torch.Tensor) -> torch.Tensor:
    return (torch.zeros_like(like) + p.v_init).contiguous()


def if_step(p: IFParams, v: torch.Tensor, drive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    v = v + drive if p.keep == 1.0 else v * p.keep + drive      # a new tensor: the caller's stays as it was
    if p.subtract and p.levels == 1:
        s = v >= p.threshold
        return s, v.sub_(s * p.threshold)
    if p.subtract:
        return subtract_levels(v, p.threshold, p.levels)
    s = v > p.threshold
    return s, torch.where(s, p.v_reset, v)


def subtract_levels(v: torch.Tensor, threshold, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ResetSubIF's graded rule on v (changed in place): `levels` times in turn, v >= threshold:
    v -= threshold and the payload grows by one. Returns (payloads, v); float and fixed point."""
    k = torch.zeros_like(v)
    for _ in range(levels):
        s = v >= threshold
        v.sub_(s * threshold)
        k += s
    return k, v


@dataclass(frozen=True)
class CubaParams:
    """Stock LIF / CubaLIF in the discrete-time reading of ir/cuba.py (all broadcast to the shape)."""
    keep_u: torch.Tensor             # 1 - du
    g_in: torch.Tensor
    keep_v: torch.Tensor             # 1 - dv
    g_u: torch.Tensor
    bias: torch.Tensor
    threshold: torch.Tensor
    v_reset: torch.Tensor
    memory: bool                     # the current decays slower than one step (du != 1)


def cuba_drive(p: CubaParams, x: torch.Tensor) -> torch.Tensor:
    return x * p.g_in


def cuba_init(p: CubaParams, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros_like(like), torch.zeros_like(like)


def cuba_step(p: CubaParams, state, drive: torch.Tensor):
    u, v = state
    u = u * p.keep_u + drive if p.memory else drive
    v = v * p.keep_v + u * p.g_u + p.bias
    s = v > p.threshold
    return s, (u, torch.where(s, p.v_reset, v))


def scan(step: Callable, params, state, drive: torch.Tensor) -> tuple[torch.Tensor, object]:
    """Spikes (T, ...) of `step` over the steps of `drive` (in the drive's dtype), and the state."""
    out = torch.empty_like(drive)
    for t in range(drive.shape[0]):
        s, state = step(params, state, drive[t])
        out[t] = s
    return out, state


def if_fused(p: IFParams, v: torch.Tensor, x: torch.Tensor, order: tuple, flat: dict):
    return kernels.if_scan(x, v, order, flat["threshold"], flat["v_reset"], flat["bias" if p.subtract else "gain"],
                           p.subtract, p.levels)


def cuba_fused(p: CubaParams, state, x: torch.Tensor, order: tuple, flat: dict):
    return kernels.cuba_scan(x, *state, order, *(flat[k] for k in ("g_in", "keep_u", "keep_v", "g_u", "bias",
                                                                   "threshold", "v_reset")), p.memory)


@dataclass(frozen=True)
class SigmaDeltaParams:
    """ir/nodes.py SigmaDelta: threshold, bias, whether the input integrates and relu applies."""
    threshold: torch.Tensor
    bias: torch.Tensor
    sigma: bool
    relu: bool


def sd_drive(p: SigmaDeltaParams, x: torch.Tensor) -> torch.Tensor:
    return x


def sd_init(p: SigmaDeltaParams, like: torch.Tensor) -> tuple:
    return torch.zeros_like(like), torch.zeros_like(like), torch.zeros_like(like)


def sd_step(p: SigmaDeltaParams, state, x: torch.Tensor):
    """(message, (sigma, activation, residue)) of one step."""
    sigma, act, residue = state
    sigma = sigma + x if p.sigma else x
    a = sigma + p.bias
    a = torch.clamp_min(a, 0.0) if p.relu else a
    d = a - act + residue
    out = torch.where(d.abs() >= p.threshold, d, torch.zeros_like(d))
    return out, (sigma, a, d - out)


@dataclass
class Neuron:
    """A neuron node's parameters with the functions that run it; `fused` runs a whole chunk
    on the CPU (kernels.py), with the parameters flattened once per dtype and memory layout."""
    params: object
    step: Callable
    init: Callable
    drive: Callable
    fused: Callable
    shape: tuple
    flat: dict = field(default_factory=dict)

    def run(self, state, x: torch.Tensor):
        """Spikes (T, ...) for the input x (T, B, *shape), and the state after it; the drive is
        formed inside the fused kernel, in the same order as `drive` forms it."""
        if self.fused is None or not kernels.usable(x):
            return scan(self.step, self.params, state, self.drive(self.params, x))
        order = kernels.layout(x)
        if (x.dtype, order) not in self.flat:
            dtype = torch.empty(0, dtype=x.dtype).numpy().dtype
            fields = {k: v for k, v in vars(self.params).items() if isinstance(v, torch.Tensor)}
            fields.setdefault("v_reset", torch.zeros(()))
            self.flat[x.dtype, order] = {k: kernels.in_order(v.cpu().numpy().astype(dtype), self.shape, order)
                                         for k, v in fields.items()}
        return self.fused(self.params, state, x, order, self.flat[x.dtype, order])


def strict(value, tensor: Callable) -> torch.Tensor:
    """A threshold of a strict rule (x > threshold) as a tensor, rounded down where the run's
    dtype cannot hold it: x > result exactly where x > the file's value (round to nearest would
    move a float64 threshold just below lam / 2 onto lam / 2 in float32, export/portable.py)."""
    t = tensor(value)
    if t.dtype == torch.float64:
        return t
    v = torch.as_tensor(np.array(value, np.float64), device=t.device)
    return torch.where(t.double() > v, torch.nextafter(t, torch.full_like(t, -np.inf)), t)


def for_node(node, tensor: Callable) -> Neuron:
    """The dynamics of a neuron node; `tensor` turns its numpy parameters into tensors."""
    zero = tensor(0.0)
    if isinstance(node, X.ResetSubIF):
        p = IFParams(tensor(node.threshold), tensor(node.v_init), tensor(node.bias), zero, subtract=True,
                     levels=int(node.levels), keep=1.0 - node.decay)
        if node.decay:                  # a leak: stepped (the fused kernel integrates without one)
            return Neuron(p, if_step, if_init, if_drive, None, node_shape(node))
    elif isinstance(node, LEAKY):
        c, shape = cuba(node), node_shape(node)
        p = CubaParams(*(tensor(np.broadcast_to(a, shape)) for a in
                         (1.0 - c.du, c.g_in, 1.0 - c.dv, c.g_u, c.bias)),
                       strict(np.broadcast_to(c.threshold, shape), tensor), tensor(np.broadcast_to(c.v_reset, shape)),
                       memory=bool(np.any(c.du != 1.0)))
        return Neuron(p, cuba_step, cuba_init, cuba_drive, cuba_fused, shape)
    elif isinstance(node, X.SigmaDelta):
        p = SigmaDeltaParams(tensor(node.threshold), tensor(np.broadcast_to(node.bias, node_shape(node))),
                             bool(node.sigma), bool(node.relu))
        return Neuron(p, sd_step, sd_init, sd_drive, None, node_shape(node))
    elif isinstance(node, nir.IF):      # stock NIR IF: v += r I; spike when v > threshold; v = v_reset
        p = IFParams(strict(node.v_threshold, tensor), zero, zero, tensor(node.r), subtract=False,
                     v_reset=tensor(node.v_reset))
    else:
        raise AssertionError(type(node))
    return Neuron(p, if_step, if_init, if_drive, if_fused, node_shape(node))

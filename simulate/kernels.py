"""Fused time loops of the neurons on the CPU (numba): one pass over a chunk's drive per neuron
node instead of a handful of torch ops per step. Each kernel does the same IEEE operations in the
same order as the torch step functions (neurons.py, fixed.py), so spikes and states are identical
(tests/test_kernels.py compares them); numba does not contract a * b + c into a fused multiply-add
unless asked (fastmath is off).

Arrays: drive and out (T, M) contiguous, M = batch x neurons; state (M,); per-neuron parameters
(N,), element j reading parameter j % N. Elements run in parallel (prange), time in order.
"""
from __future__ import annotations

import numba
import numpy as np
import torch

_JIT = dict(parallel=True, cache=True, nogil=True)


@numba.njit(**_JIT)
def _if(drive, v, th, v_reset, subtract, out):
    T, M = drive.shape
    N = th.shape[0]
    for j in numba.prange(M):
        vj, t_, r = v[j], th[j % N], v_reset[j % N]
        for t in range(T):
            vj = vj + drive[t, j]
            if subtract:
                s = vj >= t_
                if s:
                    vj = vj - t_
            else:
                s = vj > t_
                if s:
                    vj = r
            out[t, j] = 1.0 if s else 0.0
        v[j] = vj


@numba.njit(**_JIT)
def _cuba(drive, u, v, keep_u, keep_v, g_u, bias, th, v_reset, memory, out):
    T, M = drive.shape
    N = th.shape[0]
    for j in numba.prange(M):
        n = j % N
        uj, vj = u[j], v[j]
        ku, kv, g, b, t_, r = keep_u[n], keep_v[n], g_u[n], bias[n], th[n], v_reset[n]
        for t in range(T):
            uj = uj * ku + drive[t, j] if memory else drive[t, j]
            vj = vj * kv + uj * g + b
            s = vj > t_
            if s:
                vj = r
            out[t, j] = 1.0 if s else 0.0
        u[j], v[j] = uj, vj


@numba.njit(**_JIT)
def _fixed_v(drive, v, keep_v, one, limit, th, subtract, out, high, low):
    """Lava's voltage: v = trunc(v keep_v / one) + drive (v + drive when keep_v = one), counted
    and clipped at +-limit, then the spike rule; high/low: per element, clipped steps."""
    T, M = drive.shape
    for j in numba.prange(M):
        vj, hj, lj = v[j], 0, 0
        for t in range(T):
            vj = np.trunc(vj * keep_v / one) + drive[t, j] if keep_v != one else vj + drive[t, j]
            if vj > limit:
                hj += 1
                vj = limit
            elif vj < -limit:
                lj += 1
                vj = -limit
            if subtract:
                s = vj >= th
                if s:
                    vj = vj - th
            else:
                s = vj > th
                if s:
                    vj = 0.0
            out[t, j] = 1.0 if s else 0.0
        v[j], high[j], low[j] = vj, hj, lj


@numba.njit(**_JIT)
def _fixed_u(a, u, keep_u, one, wrap, out, wrapped):
    """Lava's remembering current: u = trunc(u keep_u / one) + a, wrapped into (-wrap, wrap]."""
    T, M = a.shape
    for j in numba.prange(M):
        uj, w = u[j], 0
        for t in range(T):
            uj = np.trunc(uj * keep_u / one) + a[t, j]
            if uj > wrap:
                uj -= 2 * wrap
                w += 1
            elif uj <= -wrap:
                uj += 2 * wrap
                w += 1
            out[t, j] = uj
        u[j], wrapped[j] = uj, w


def usable(drive: torch.Tensor) -> bool:
    """The kernels run CPU float tensors; anything else takes the torch loop."""
    return drive.device.type == "cpu" and drive.dtype in (torch.float32, torch.float64)


def _flat(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.numpy()).reshape(x.shape[0], -1)


def _state(x: torch.Tensor) -> np.ndarray:
    """A copy of a state tensor as a flat array (the caller's tensor stays as it was)."""
    return x.numpy().reshape(-1).copy()


def per_neuron(p: torch.Tensor, shape: tuple, dtype) -> np.ndarray:
    """A parameter broadcast to the node's shape, flat (N,), in the drive's dtype."""
    return np.ascontiguousarray(np.broadcast_to(p.cpu().numpy().astype(dtype), shape)).reshape(-1)


def if_scan(drive: torch.Tensor, v: torch.Tensor, th, v_reset, subtract: bool):
    """Spikes (T, ...) and the new v of an IF node over drive (T, B, *shape); th, v_reset flat."""
    d = _flat(drive)
    out, vv = np.empty_like(d), _state(v)
    _if(d, vv, th, v_reset, subtract, out)
    return torch.from_numpy(out).reshape(drive.shape), torch.from_numpy(vv).reshape(v.shape)


def cuba_scan(drive: torch.Tensor, u: torch.Tensor, v: torch.Tensor, keep_u, keep_v, g_u, bias, th, v_reset,
              memory: bool):
    d = _flat(drive)
    out, uu, vv = np.empty_like(d), _state(u), _state(v)
    _cuba(d, uu, vv, keep_u, keep_v, g_u, bias, th, v_reset, memory, out)
    return (torch.from_numpy(out).reshape(drive.shape),
            (torch.from_numpy(uu).reshape(u.shape), torch.from_numpy(vv).reshape(v.shape)))


def fixed_voltage(drive: torch.Tensor, v: torch.Tensor, keep_v: int, one: int, limit: float, th: float,
                  subtract: bool):
    """Spikes, new v, and the clipped steps (high, low) of a fixed-point neuron over a chunk."""
    d = _flat(drive)
    out, vv = np.empty_like(d), _state(v)
    high, low = np.empty(vv.shape, np.int64), np.empty(vv.shape, np.int64)
    _fixed_v(d, vv, float(keep_v), float(one), float(limit), float(th), subtract, out, high, low)
    return (torch.from_numpy(out).reshape(drive.shape), torch.from_numpy(vv).reshape(v.shape),
            int(high.sum()), int(low.sum()))


def fixed_current(a: torch.Tensor, u: torch.Tensor, keep_u: int, one: int, wrap: float):
    """Every step's current, the last, and how many values wrapped."""
    d = _flat(a)
    out, uu, w = np.empty_like(d), _state(u), np.empty(d.shape[1], np.int64)
    _fixed_u(d, uu, float(keep_u), float(one), float(wrap), out, w)
    return torch.from_numpy(out).reshape(a.shape), torch.from_numpy(uu).reshape(u.shape), int(w.sum())

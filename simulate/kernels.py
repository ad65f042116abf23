"""Fused time loops of the neurons, and the synapse gate, on the CPU (numba): one pass over a
chunk's drive per neuron node instead of a handful of torch ops per step. Each kernel does the same IEEE operations in the
same order as the torch step functions (neurons.py, fixed.py), so spikes and states are identical
(tests/test_kernels.py compares them); numba does not contract a * b + c into a fused multiply-add
unless asked (fastmath is off).

Arrays: drive and out (T, M) contiguous, M = batch x neurons (in the drive's memory order: a
convolution's channels-last output is scanned as (T, B, H, W, C), parameters permuted alike);
state (M,); per-neuron parameters (N,). Tiles of one image's neurons run in parallel (prange); within a tile, time runs in order
and the neurons of each step form an inner loop the compiler can vectorize.
"""
from __future__ import annotations

import numba
import numpy as np
import torch

from ..ir import stream

_JIT = dict(parallel=True, cache=True, nogil=True)
TILE = 2048         # neurons of one image per task: the state of a tile stays in cache over time


@numba.njit(cache=True)
def _tiles(B, N):
    """(image, first neuron, last neuron) of every task: B x ceil(N / TILE) tiles."""
    per = (N + TILE - 1) // TILE
    out = np.empty((B * per, 3), np.int64)
    for b in range(B):
        for k in range(per):
            out[b * per + k, 0] = b
            out[b * per + k, 1] = k * TILE
            out[b * per + k, 2] = min(N, (k + 1) * TILE)
    return out


@numba.njit(**_JIT)
def _if(x, v, th, v_reset, offset, subtract, out):
    """subtract (ResetSubIF): v += x + offset, v >= th, v -= th; else (stock IF): v += x * offset,
    v > th, v = v_reset (the drive rounded first, as if_drive does)."""
    T, M = x.shape
    N = th.shape[0]
    tiles = _tiles(M // N, N)
    for k in numba.prange(tiles.shape[0]):
        base, lo, hi = tiles[k, 0] * N, tiles[k, 1], tiles[k, 2]
        for t in range(T):
            for n in range(lo, hi):
                j = base + n
                vj = v[j] + (x[t, j] + offset[n] if subtract else x[t, j] * offset[n])
                if subtract:
                    s = vj >= th[n]
                    vj = vj - th[n] if s else vj
                else:
                    s = vj > th[n]
                    vj = v_reset[n] if s else vj
                out[t, j] = 1.0 if s else 0.0
                v[j] = vj


@numba.njit(**_JIT)
def _cuba(x, u, v, g_in, keep_u, keep_v, g_u, bias, th, v_reset, memory, out):
    """u = u keep_u + x g_in (u = x g_in without memory); v = v keep_v + u g_u + bias; v > th."""
    T, M = x.shape
    N = th.shape[0]
    tiles = _tiles(M // N, N)
    for k in numba.prange(tiles.shape[0]):
        base, lo, hi = tiles[k, 0] * N, tiles[k, 1], tiles[k, 2]
        for t in range(T):
            for n in range(lo, hi):
                j = base + n
                d = x[t, j] * g_in[n]
                uj = u[j] * keep_u[n] + d if memory else d
                vj = v[j] * keep_v[n] + uj * g_u[n] + bias[n]
                s = vj > th[n]
                v[j] = v_reset[n] if s else vj
                u[j] = uj
                out[t, j] = 1.0 if s else 0.0


@numba.njit(**_JIT)
def _fixed_v(drive, v, keep_v, one, limit, th, subtract, out, high, low):
    """Lava's voltage: v = trunc(v keep_v / one) + drive (v + drive when keep_v = one), counted
    and clipped at +-limit, then the spike rule; high/low: per element, clipped steps."""
    T, M = drive.shape
    for k in numba.prange((M + TILE - 1) // TILE):
        lo, hi = k * TILE, min(M, (k + 1) * TILE)
        for j in range(lo, hi):
            high[j] = 0
            low[j] = 0
        for t in range(T):
            for j in range(lo, hi):
                vj = np.trunc(v[j] * keep_v / one) + drive[t, j] if keep_v != one else v[j] + drive[t, j]
                high[j] += vj > limit
                low[j] += vj < -limit
                vj = min(max(vj, -limit), limit)
                if subtract:
                    s = vj >= th
                    vj = vj - th if s else vj
                else:
                    s = vj > th
                    vj = 0.0 if s else vj
                out[t, j] = 1.0 if s else 0.0
                v[j] = vj


@numba.njit(**_JIT)
def _fixed_u(a, u, keep_u, one, wrap, out, wrapped):
    """Lava's remembering current: u = trunc(u keep_u / one) + a, wrapped into (-wrap, wrap]."""
    T, M = a.shape
    for k in numba.prange((M + TILE - 1) // TILE):
        lo, hi = k * TILE, min(M, (k + 1) * TILE)
        for j in range(lo, hi):
            wrapped[j] = 0
        for t in range(T):
            for j in range(lo, hi):
                uj = np.trunc(u[j] * keep_u / one) + a[t, j]
                up, down = uj > wrap, uj <= -wrap
                uj = uj - 2 * wrap if up else (uj + 2 * wrap if down else uj)
                wrapped[j] += up or down
                out[t, j] = uj
                u[j] = uj


_mix32 = numba.njit(cache=True)(stream.mix32)       # the stream's own hash, compiled


@numba.njit(**_JIT)
def _gate(x, skey, imix, drop_below, y, dropped):
    """SynapseGate on x (T, B, n): an element x != 0 is dropped when mix32(skey[t, b] ^ imix[i])
    < drop_below (ir/stream.keep_mask); y the passed values, dropped[i] the sum of dropped ones."""
    T, B, n = x.shape
    for k in numba.prange((n + TILE - 1) // TILE):
        lo, hi = k * TILE, min(n, (k + 1) * TILE)
        for i in range(lo, hi):
            dropped[i] = 0.0
        for t in range(T):
            for b in range(B):
                s = skey[t, b]
                for i in range(lo, hi):
                    v = x[t, b, i]
                    if v != 0.0 and _mix32(s ^ imix[i]) < drop_below:
                        y[t, b, i] = 0.0
                        dropped[i] += v
                    else:
                        y[t, b, i] = v


def gate(x: torch.Tensor, skey: torch.Tensor, imix: torch.Tensor, p: float):
    """(gated x, per-element sum of dropped values as float64) for x (T, B, ...)."""
    T, B = x.shape[:2]
    xs = np.ascontiguousarray(x.numpy()).reshape(T, B, -1)
    y, dropped = np.empty_like(xs), np.empty(xs.shape[2], np.float64)
    _gate(xs, np.ascontiguousarray(skey.numpy()), np.ascontiguousarray(imix.numpy()), stream.drop_threshold(p),
          y, dropped)
    return torch.from_numpy(y).reshape(x.shape), torch.from_numpy(dropped).reshape(x.shape[2:])


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


def channels_last(x: torch.Tensor) -> bool:
    """x (T, B, C, H, W) stored channels last (a convolution's output, ops.py): its (T, B, H, W, C)
    view is contiguous."""
    return x.dim() == 5 and not x.is_contiguous() and x.permute(0, 1, 3, 4, 2).is_contiguous()


def if_scan(x: torch.Tensor, v: torch.Tensor, th, v_reset, offset, subtract: bool):
    """Spikes (T, ...) and the new v of an IF node on input x (T, B, *shape); th, v_reset and
    offset (ResetSubIF's bias, stock IF's gain) flat per neuron. A channels-last x is scanned in
    its own memory order (the neurons are independent: the same operations on each) and the
    spikes come back channels last, for the next convolution; so does a 5-d x that must be copied
    anyway (the first layer's, the same at every step)."""
    if x.dim() == 5 and not x.is_contiguous():                 # channels last, or to be copied anyway
        T, B, C, H, W = x.shape
        hwc = [np.ascontiguousarray(p.reshape(C, H, W).transpose(1, 2, 0)).reshape(-1) for p in (th, v_reset, offset)]
        d = np.ascontiguousarray(x.permute(0, 1, 3, 4, 2).numpy()).reshape(T, -1)
        out, vv = np.empty_like(d), v.permute(0, 2, 3, 1).numpy().reshape(-1).copy()
        _if(d, vv, *hwc, subtract, out)
        return (torch.from_numpy(out).reshape(T, B, H, W, C).permute(0, 1, 4, 2, 3),
                torch.from_numpy(vv).reshape(B, H, W, C).permute(0, 3, 1, 2).contiguous())
    d = _flat(x)
    out, vv = np.empty_like(d), _state(v)
    _if(d, vv, th, v_reset, offset, subtract, out)
    return torch.from_numpy(out).reshape(x.shape), torch.from_numpy(vv).reshape(v.shape)


def cuba_scan(x: torch.Tensor, u: torch.Tensor, v: torch.Tensor, g_in, keep_u, keep_v, g_u, bias, th, v_reset,
              memory: bool):
    """Spikes and the new (u, v) of a LIF / CubaLIF node on input x; parameters flat per neuron."""
    d = _flat(x)
    out, uu, vv = np.empty_like(d), _state(u), _state(v)
    _cuba(d, uu, vv, g_in, keep_u, keep_v, g_u, bias, th, v_reset, memory, out)
    return (torch.from_numpy(out).reshape(x.shape),
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

"""Fused time loops of the neurons, and the synapse gate, on the CPU (numba): one pass over a
chunk's drive per neuron node instead of a handful of torch ops per step. Each kernel does the same IEEE operations in the
same order as the torch step functions (neurons.py, fixed.py), so spikes and states are identical
(tests/test_kernels.py compares them); numba does not contract a * b + c into a fused multiply-add
unless asked (fastmath is off).

Arrays: drive and out (T, M) contiguous, M = batch x neurons (in the drive's memory order: a
convolution's channels-last output is scanned as (T, B, H, W, C), tokens-last (C, N) as (T, B, N,
C), parameters permuted alike; `layout`); state (M,); per-neuron parameters (N,). Tiles of one
image's neurons run in parallel (prange); within a tile, time runs in order and the neurons of
each step form an inner loop over 1-d slices, which the compiler vectorizes (indexing the 2-d
arrays inside the loop instead was not vectorized, several times slower).
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
        lo, hi = tiles[k, 1], tiles[k, 2]
        at = tiles[k, 0] * N + lo
        vk, thk, rk, ok = v[at:at + hi - lo], th[lo:hi], v_reset[lo:hi], offset[lo:hi]
        for t in range(T):
            xt, st = x[t, at:at + hi - lo], out[t, at:at + hi - lo]
            for n in range(hi - lo):
                vj = vk[n] + (xt[n] + ok[n] if subtract else xt[n] * ok[n])
                if subtract:
                    s = vj >= thk[n]
                    vj = vj - thk[n] if s else vj
                else:
                    s = vj > thk[n]
                    vj = rk[n] if s else vj
                st[n] = 1.0 if s else 0.0
                vk[n] = vj


@numba.njit(**_JIT)
def _if_graded(x, v, th, bias, levels, out):
    """ResetSubIF with `levels` M > 1: v += x + bias, then M times in turn: v >= th: v -= th,
    k += 1 (apart from _if so that the binary loop stays branch-free and vectorized)."""
    T, M = x.shape
    N = th.shape[0]
    tiles = _tiles(M // N, N)
    for k in numba.prange(tiles.shape[0]):
        lo, hi = tiles[k, 1], tiles[k, 2]
        at = tiles[k, 0] * N + lo
        vk, thk, bk = v[at:at + hi - lo], th[lo:hi], bias[lo:hi]
        for t in range(T):
            xt, st = x[t, at:at + hi - lo], out[t, at:at + hi - lo]
            for n in range(hi - lo):
                vj = vk[n] + (xt[n] + bk[n])
                pay = 0.0
                for _ in range(levels):
                    if vj >= thk[n]:
                        vj = vj - thk[n]
                        pay += 1.0
                st[n] = pay
                vk[n] = vj


@numba.njit(**_JIT)
def _cuba(x, u, v, g_in, keep_u, keep_v, g_u, bias, th, v_reset, memory, out):
    """u = u keep_u + x g_in (u = x g_in without memory); v = v keep_v + u g_u + bias; v > th."""
    T, M = x.shape
    N = th.shape[0]
    tiles = _tiles(M // N, N)
    for k in numba.prange(tiles.shape[0]):
        lo, hi = tiles[k, 1], tiles[k, 2]
        at = tiles[k, 0] * N + lo
        uk, vk = u[at:at + hi - lo], v[at:at + hi - lo]
        gi, ku, kv, gu, bk, thk, rk = (g_in[lo:hi], keep_u[lo:hi], keep_v[lo:hi], g_u[lo:hi], bias[lo:hi],
                                       th[lo:hi], v_reset[lo:hi])
        for t in range(T):
            xt, st = x[t, at:at + hi - lo], out[t, at:at + hi - lo]
            for n in range(hi - lo):
                d = xt[n] * gi[n]
                uj = uk[n] * ku[n] + d if memory else d
                vj = vk[n] * kv[n] + uj * gu[n] + bk[n]
                s = vj > thk[n]
                vk[n] = rk[n] if s else vj
                uk[n] = uj
                st[n] = 1.0 if s else 0.0


@numba.njit(**_JIT)
def _fixed_v(drive, v, keep_v, one, limit, th, subtract, levels, out, high, low):
    """Lava's voltage: v = trunc(v keep_v / one) + drive (v + drive when keep_v = one), counted
    and clipped at +-limit, then the spike rule (subtract: up to `levels` thresholds in turn, the
    payload their number); high/low: per element, clipped steps."""
    T, M = drive.shape
    for k in numba.prange((M + TILE - 1) // TILE):
        lo, hi = k * TILE, min(M, (k + 1) * TILE)
        vk, hk, lk = v[lo:hi], high[lo:hi], low[lo:hi]
        hk[:] = 0
        lk[:] = 0
        for t in range(T):
            dt, st = drive[t, lo:hi], out[t, lo:hi]
            for j in range(hi - lo):
                vj = np.trunc(vk[j] * keep_v / one) + dt[j] if keep_v != one else vk[j] + dt[j]
                hk[j] += vj > limit
                lk[j] += vj < -limit
                vj = min(max(vj, -limit), limit)
                pay = 0.0
                if subtract:
                    for _ in range(levels):
                        if vj >= th:
                            vj = vj - th
                            pay += 1.0
                elif vj > th:
                    vj = 0.0
                    pay = 1.0
                st[j] = pay
                vk[j] = vj


@numba.njit(**_JIT)
def _fixed_u(a, u, keep_u, one, wrap, out, wrapped):
    """Lava's remembering current: u = trunc(u keep_u / one) + a, wrapped into (-wrap, wrap]."""
    T, M = a.shape
    for k in numba.prange((M + TILE - 1) // TILE):
        lo, hi = k * TILE, min(M, (k + 1) * TILE)
        uk, wk = u[lo:hi], wrapped[lo:hi]
        wk[:] = 0
        for t in range(T):
            at, ot = a[t, lo:hi], out[t, lo:hi]
            for j in range(hi - lo):
                uj = np.trunc(uk[j] * keep_u / one) + at[j]
                up, down = uj > wrap, uj <= -wrap
                uj = uj - 2 * wrap if up else (uj + 2 * wrap if down else uj)
                wk[j] += up or down
                ot[j] = uj
                uk[j] = uj


_mix32 = numba.njit(cache=True)(stream.mix32)       # the stream's own hash, compiled


@numba.njit(**_JIT)
def _gate(x, skey, imix, drop_below, y, dropped, count):
    """SynapseGate on x (T, B, n): an element x != 0 is dropped when mix32(skey[t, b] ^ imix[i])
    < drop_below (ir/stream.keep_mask); y the passed values, dropped[i] the sum of dropped ones,
    count[i] their number."""
    T, B, n = x.shape
    for k in numba.prange((n + TILE - 1) // TILE):
        lo, hi = k * TILE, min(n, (k + 1) * TILE)
        mk, dk, ck = imix[lo:hi], dropped[lo:hi], count[lo:hi]
        dk[:] = 0.0
        ck[:] = 0.0
        for t in range(T):
            for b in range(B):
                s = skey[t, b]
                xt, yt = x[t, b, lo:hi], y[t, b, lo:hi]
                for i in range(hi - lo):
                    v = xt[i]
                    if v != 0.0 and _mix32(s ^ mk[i]) < drop_below:
                        yt[i] = 0.0
                        dk[i] += v
                        ck[i] += 1.0
                    else:
                        yt[i] = v


def gate(x: torch.Tensor, skey: torch.Tensor, imix: torch.Tensor, p: float):
    """(gated x, per-element sum of dropped values, per-element number of dropped ones, both
    float64) for x (T, B, ...), scanned in x's memory order: `imix` is the elements' hashes in
    that order (in_order)."""
    T, B = x.shape[:2]
    order = layout(x)
    xs = to_memory(x, order).reshape(T, B, -1)
    y, dropped, count = np.empty_like(xs), np.empty(xs.shape[2], np.float64), np.empty(xs.shape[2], np.float64)
    _gate(xs, np.ascontiguousarray(skey.numpy()), np.ascontiguousarray(imix.numpy()), stream.drop_threshold(p),
          y, dropped, count)
    return (from_memory(y.reshape(T, -1), x.shape, order), from_memory(dropped, x.shape[2:], order, lead=0),
            from_memory(count, x.shape[2:], order, lead=0))


def usable(drive: torch.Tensor) -> bool:
    """The kernels run CPU float tensors; anything else takes the torch loop."""
    return drive.device.type == "cpu" and drive.dtype in (torch.float32, torch.float64)


def layout(x: torch.Tensor, lead: int = 2) -> tuple:
    """The element axes of x (`lead` leading axes, then the element shape) from outermost to
    innermost in memory: (0, 1, ...) for a contiguous tensor, (1, 2, 0) for a convolution's
    channels-last (C, H, W), (1, 0) for tokens-last (C, N) (ops.py). The kernels scan the
    neurons in this order, which needs no copy and gives spikes in the same layout."""
    return tuple(d - lead for d in sorted(range(lead, x.dim()), key=lambda d: (-x.stride(d), d)))


def in_order(a: np.ndarray, shape: tuple, order: tuple) -> np.ndarray:
    """A per-element array (flat, or broadcasting to the element shape) as a new flat array in
    the memory order `order`."""
    a = np.asarray(a)
    a = a.reshape(shape) if a.size == int(np.prod(shape)) else a
    return np.array(np.broadcast_to(a, shape).transpose(order), order="C").reshape(-1)


def stored(x: torch.Tensor, order: tuple, lead: int = 2) -> torch.Tensor:
    """x with its element axes permuted to `order`: a view, contiguous when x is stored so."""
    return x.permute(*range(lead), *(d + lead for d in order))


def to_memory(x: torch.Tensor, order: tuple, lead: int = 2) -> np.ndarray:
    """x as (its first axis, the rest) with the elements in `order`; a copy only where x is not
    stored so (an expanded static input, another layout)."""
    return np.ascontiguousarray(stored(x, order, lead).numpy()).reshape(x.shape[0] if lead else 1, -1)


def from_memory(a: np.ndarray, shape: tuple, order: tuple, lead: int = 2) -> torch.Tensor:
    """The tensor of logical `shape` whose memory is `a` (an array or tensor), elements in
    `order` (a permuted view)."""
    stored = tuple(shape[:lead]) + tuple(shape[lead + d] for d in order)
    inverse = tuple(int(i) + lead for i in np.argsort(order))
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(a)
    return t.reshape(stored).permute(*range(lead), *inverse)


def if_scan(x: torch.Tensor, v: torch.Tensor, order: tuple, th, v_reset, offset, subtract: bool, levels: int = 1):
    """Spikes (T, ...) and the new v of an IF node on input x (T, B, *shape); th, v_reset and
    offset (ResetSubIF's bias, stock IF's gain) flat per neuron in x's memory `order` (layout).
    The neurons are independent, so scanning them in memory order is the same arithmetic on
    each; spikes and state come back in that layout, for the next convolution or linear."""
    d = to_memory(x, order)
    out, vv = np.empty_like(d), to_memory(v, order, lead=1).reshape(-1).copy()
    if levels > 1:
        _if_graded(d, vv, th, offset, levels, out)
    else:
        _if(d, vv, th, v_reset, offset, subtract, out)
    return from_memory(out, x.shape, order), from_memory(vv, v.shape, order, lead=1)


def cuba_scan(x: torch.Tensor, u: torch.Tensor, v: torch.Tensor, order: tuple, g_in, keep_u, keep_v, g_u, bias,
              th, v_reset, memory: bool):
    """Spikes and the new (u, v) of a LIF / CubaLIF node on input x; parameters flat per neuron
    in x's memory `order`, as if_scan."""
    d = to_memory(x, order)
    out = np.empty_like(d)
    uu, vv = (to_memory(s, order, lead=1).reshape(-1).copy() for s in (u, v))
    _cuba(d, uu, vv, g_in, keep_u, keep_v, g_u, bias, th, v_reset, memory, out)
    return (from_memory(out, x.shape, order),
            (from_memory(uu, u.shape, order, lead=1), from_memory(vv, v.shape, order, lead=1)))


def _flat(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.numpy()).reshape(x.shape[0], -1)


def _state(x: torch.Tensor) -> np.ndarray:
    """A copy of a state tensor as a flat array (the caller's tensor stays as it was)."""
    return x.numpy().reshape(-1).copy()


def fixed_voltage(drive: torch.Tensor, v: torch.Tensor, keep_v: int, one: int, limit: float, th: float,
                  subtract: bool, levels: int = 1):
    """Spikes, new v, and the clipped steps (high, low) of a fixed-point neuron over a chunk."""
    d = _flat(drive)
    out, vv = np.empty_like(d), _state(v)
    high, low = np.empty(vv.shape, np.int64), np.empty(vv.shape, np.int64)
    _fixed_v(d, vv, float(keep_v), float(one), float(limit), float(th), subtract, levels, out, high, low)
    return (torch.from_numpy(out).reshape(drive.shape), torch.from_numpy(vv).reshape(v.shape),
            int(high.sum()), int(low.sum()))


def fixed_current(a: torch.Tensor, u: torch.Tensor, keep_u: int, one: int, wrap: float):
    """Every step's current, the last, and how many values wrapped."""
    d = _flat(a)
    out, uu, w = np.empty_like(d), _state(u), np.empty(d.shape[1], np.int64)
    _fixed_u(d, uu, float(keep_u), float(one), float(wrap), out, w)
    return torch.from_numpy(out).reshape(a.shape), torch.from_numpy(uu).reshape(u.shape), int(w.sum())

"""What every non-neuron node does to a (T, B, *shape) tensor in floating point: the T steps of a
chunk of time, a synaptic op one call per step so that a chunk's length cannot change how it
rounds (per_step; docs/nir-extensions.md for the extension nodes). Nodes that
remember earlier steps (delays, cumulative products and norms) take what they carried out of the
previous chunk and return what the next one needs, so a run in chunks equals a run in one.
Also the small shape helpers the fixed-point and counting modules share.
"""
from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from ..ir import nodes as X
from ..ir.topology import pair
from . import kernels


def pad(p):
    if isinstance(p, str):
        if p == "valid":
            return 0
        raise UserError(f"padding {p!r} is not supported (use explicit integers)")
    a = np.asarray(p).reshape(-1)
    return int(a[0]) if a.size == 1 else tuple(int(v) for v in a)


def flat_steps(x: torch.Tensor, f) -> torch.Tensor:
    """Apply a per-sample op f to all T*B samples of x (T, B, ...) at once: for exact arithmetic
    (fixed point's integers), where the order of summation cannot change a result."""
    T, B = x.shape[:2]
    y = f(x.reshape(T * B, *x.shape[2:]))
    return y.reshape(T, B, *y.shape[1:])


ALIGN = 64          # bytes: torch's CPU allocator aligns every tensor so (c10 gAlignment)


def per_step(x: torch.Tensor, f) -> torch.Tensor:
    """Apply an op f on (B, ...) to each step of x (T, B, ...), one call per step, each on memory
    aligned as a fresh tensor's. Float kernels (oneDNN, MKL) choose their order of summation by
    the shapes they are given, the CPU and the alignment: a chunk of 4 steps in one call rounds
    otherwise than 4 calls of one step (measured on AVX-512: the last bits of a ResNet's logits).
    One call shape whatever the chunk makes a float run the same for every chunk, so results do
    not depend on the memory free (engine.chunk_steps) or --chunk. The output keeps f's layout."""
    T = x.shape[0]
    first = f(_aligned(x[0]))
    order = sorted(range(first.dim()), key=lambda d: (-first.stride(d), d))   # outermost first
    out = first.new_empty((T,) + tuple(first.shape[d] for d in order))
    out = out.permute(0, *(1 + order.index(d) for d in range(first.dim())))   # f's layout, T outermost
    out[0] = first
    for t in range(1, T):
        out[t] = f(_aligned(x[t]))
    return out


def _aligned(v: torch.Tensor) -> torch.Tensor:
    return v if v.data_ptr() % ALIGN == 0 else v.clone()


def operands(node: X.SpikeProduct, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The a and b operands of a packed SpikeProduct input."""
    T, B = x.shape[:2]
    na = int(np.prod(node.a_shape))
    return (x[..., :na].reshape(T, B, *node.a_shape.tolist()),
            x[..., na:].reshape(T, B, *node.b_shape.tolist()))


def delay(x: torch.Tensor, d, held: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """x delayed by d steps (an int, or a tensor of steps per element); `held` is the last max(d)
    inputs of earlier chunks (None: zeros, the start)."""
    D = d if isinstance(d, int) else int(d.max())
    if D == 0:
        return x, None
    if held is None:
        held = x.new_zeros(D, *x.shape[1:])
    both = torch.cat([held, x])
    k = x.shape[0]
    if isinstance(d, int):
        return both[:k], both[k:]
    at = torch.arange(k, device=x.device).reshape(k, *([1] * (x.dim() - 1))) + D - d     # step read per element
    return torch.gather(both, 0, at.expand(x.shape)), both[k:]


def step_numbers(steps: torch.Tensor, dtype, like: torch.Tensor) -> torch.Tensor:
    """The chunk's 1-based step numbers t as a column that broadcasts over (k, ...) like `like`."""
    return steps.to(dtype).reshape(-1, *([1] * (like.dim() - 1)))


def increments(total: torch.Tensor, last: torch.Tensor | None) -> torch.Tensor:
    """out_t = total_t - total_{t-1} of a running total, `last` the total before the chunk
    (written into one new tensor: no shifted copy of the total)."""
    out = torch.empty_like(total)
    torch.sub(total[1:], total[:-1], out=out[1:])
    if last is None:
        out[:1] = total[:1]
    else:
        torch.sub(total[:1], last, out=out[:1])
    return out


def running_sum(x: torch.Tensor, last: torch.Tensor | None) -> torch.Tensor:
    """Cumulative sum over time continuing from `last` (one sequential sum for the whole run)."""
    return x.cumsum(0) if last is None else torch.cat([last, x]).cumsum(0)[1:]


class RoutePlan:
    """How a Route gathers: the positions written (None: all; a slice: one contiguous run, as
    operand packing writes), the output shape, and per memory layout of the input the source
    positions to read (kernels.layout), so a channels- or tokens-last input is not copied
    first. A fully written (C, N) output comes out tokens-last (stored (N, C)), the layout in
    which a token-wise linear layer is one matrix product (synapse)."""

    def __init__(self, node: X.Route, in_shape: tuple, device):
        idx = np.asarray(node.index).reshape(-1)
        pos = np.flatnonzero(idx >= 0)
        self.span, self.in_shape, self.device = tuple(node.index.shape), tuple(in_shape), device
        if pos.size == idx.size:
            self.where = None
        elif pos.size and pos[-1] - pos[0] + 1 == pos.size:
            self.where = slice(int(pos[0]), int(pos[-1]) + 1)
        else:
            self.where = torch.as_tensor(pos, device=device)
        self.out_order = (1, 0) if self.where is None and len(self.span) == 2 and min(self.span) > 1 else \
            tuple(range(len(self.span)))
        src = idx[pos]
        if self.where is None:                                # read in the output's memory order
            src = kernels.in_order(src.reshape(self.span), self.span, self.out_order)
        self._src, self._by_order = src, {}

    def source(self, order: tuple) -> torch.Tensor:
        """Source positions in an input stored in `order`."""
        if order not in self._by_order:
            n = int(np.prod(self.in_shape))
            stored = kernels.in_order(np.arange(n), self.in_shape, order)     # memory slot -> element
            slot = np.empty(n, np.int64)
            slot[stored] = np.arange(n)
            self._by_order[order] = torch.as_tensor(slot[self._src], device=self.device)
        return self._by_order[order]


@dataclass(frozen=True)
class Placed:
    """A Route's output that fills one contiguous run of its positions (operand packing), the
    rest 0: the run's values (T, B, n), where they go, the output shape. Kept apart until a
    fan-in sum (fan_in) writes such runs side by side, instead of adding zero-padded copies."""
    values: torch.Tensor
    where: slice
    shape: tuple

    def __getitem__(self, steps) -> "Placed":
        return Placed(self.values[steps], self.where, self.shape)

    def dense(self) -> torch.Tensor:
        return _place([self], None)


def dense(y) -> torch.Tensor:
    """A node's output as a tensor (a Placed run padded with its zeros)."""
    return y.dense() if isinstance(y, Placed) else y


def _place(runs: list, under: torch.Tensor | None) -> torch.Tensor:
    """Runs that do not overlap written into one tensor: onto a copy of `under` (added), else
    side by side with zeros only in the positions no run covers."""
    T, B = runs[0].values.shape[:2]
    span = runs[0].shape
    n = int(np.prod(span))
    if under is None:
        out = runs[0].values.new_empty(T * B, n)
        edges = [0] + [e for r in sorted(runs, key=lambda r: r.where.start) for e in (r.where.start, r.where.stop)] + [n]
        for lo, hi in zip(edges[::2], edges[1::2]):
            if hi > lo:
                out[:, lo:hi] = 0
        for r in runs:
            out[:, r.where] = r.values.reshape(T * B, -1)
    else:
        out = under.reshape(T * B, n).clone()
        for r in runs:
            out[:, r.where] += r.values.reshape(T * B, -1)
    return out.reshape(T, B, *span)


def _apart(runs: list) -> bool:
    """Runs of one shape and dtype whose positions do not overlap."""
    spans = sorted((r.where.start, r.where.stop) for r in runs)
    return (all(r.shape == runs[0].shape and r.values.dtype == runs[0].values.dtype for r in runs)
            and all(a[1] <= b[0] for a, b in zip(spans, spans[1:])))


def fan_in(values: list) -> torch.Tensor:
    """The sum of a node's inputs (NIR sums fan-in), in fan-in order. Placed runs that do not
    overlap, with at most one full input beneath them, are written into one tensor: exactly the
    same values (x + 0 = x, and a + b = b + a in IEEE arithmetic) without the zero padding."""
    runs = [v for v in values if isinstance(v, Placed)]
    full = [v for v in values if not isinstance(v, Placed)]
    if runs and len(full) <= 1 and _apart(runs) and \
            (not full or tuple(full[0].shape) == tuple(runs[0].values.shape[:2]) + tuple(runs[0].shape)):
        return _place(runs, full[0] if full else None)
    out = dense(values[0])
    for v in values[1:]:
        out = out + dense(v)
    return out


def route(x: torch.Tensor, plan: RoutePlan):
    """Gather by a route plan: zeros where the index is -1 (a Placed run when the written
    positions are one contiguous run)."""
    T, B = x.shape[:2]
    order = kernels.layout(x)
    flat = kernels.stored(x, order).reshape(T * B, -1)                      # a view when stored in order
    src = plan.source(order)
    picked = torch.gather(flat, 1, src.expand(flat.shape[0], -1))   # row-wise gather: torch's fastest
    if plan.where is None:
        return kernels.from_memory(picked.reshape(T, -1), (T, B) + plan.span, plan.out_order)
    if isinstance(plan.where, slice):
        return Placed(picked.reshape(T, B, -1), plan.where, plan.span)
    out = flat.new_zeros(T * B, int(np.prod(plan.span)))
    out.scatter_(1, plan.where.expand(flat.shape[0], -1), picked)
    return out.reshape(T, B, *plan.span)


def synapse(node, x: torch.Tensor, param) -> torch.Tensor:
    """A synaptic node in floating point; `param(key, value)` gives its cached tensors."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        bias = param("b", node.bias) if isinstance(node, nir.Affine) else None
        w = param("w", node.weight)
        return per_step(x, lambda v: F.linear(v, w, bias))
    if isinstance(node, nir.Scale):                 # the factors stored as x is (same-layout operands vectorize)
        order = kernels.layout(x)
        shape = tuple(x.shape[2:])
        flat = param(("s", order), lambda: kernels.in_order(np.asarray(node.scale), shape, order))
        return x * kernels.from_memory(flat, shape, order, lead=0)
    if isinstance(node, nir.Conv1d) and node.weight.shape[2] == 1 and int(node.groups) == 1 \
            and int(node.stride) == 1 and pad(node.padding) == 0:
        # token-wise linear layer: a matmul per step, (C_out, C_in) @ (B, C_in, N)
        w = param("w2", np.asarray(node.weight)[:, :, 0])
        if x.dim() == 4 and x.transpose(2, 3).is_contiguous():         # tokens-last: one product, bias fused
            b = param("b", node.bias)
            return per_step(x, lambda v: F.linear(v.transpose(1, 2), w, b).transpose(1, 2))
        b = param("b1", np.asarray(node.bias)[:, None])
        return per_step(x, lambda v: torch.matmul(w, v).add_(b))         # in place on the fresh product
    if isinstance(node, nir.Conv1d):
        w, b = param("w", node.weight), param("b", node.bias)
        return per_step(x, lambda v: F.conv1d(v, w, b, int(node.stride), pad(node.padding),
                                              int(node.dilation), int(node.groups)))
    if isinstance(node, nir.Conv2d):
        w, b = param("w", node.weight), param("b", node.bias)
        if x.dtype == torch.float32 and x.device.type == "cpu":        # oneDNN: 2-5x faster channels last
            fmt = torch.channels_last
            w = w.contiguous(memory_format=fmt)
            return per_step(x, lambda v: F.conv2d(v.contiguous(memory_format=fmt), w, b, pair(node.stride),
                                                  pair(pad(node.padding)), pair(node.dilation), int(node.groups)))
        return per_step(x, lambda v: F.conv2d(v, w, b, pair(node.stride), pair(pad(node.padding)),
                                              pair(node.dilation), int(node.groups)))
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        k = pair(node.kernel_size)
        y = per_step(x, lambda v: F.avg_pool2d(v, k, pair(node.stride), pair(node.padding),
                                               count_include_pad=True))
        return y * (k[0] * k[1]) if isinstance(node, nir.SumPool2d) else y
    raise AssertionError(type(node))


def product(node: X.SpikeProduct, x: torch.Tensor, steps: torch.Tensor, total: int, carry):
    """(output, carry) of a SpikeProduct over a chunk whose step numbers are `steps` in a run
    of `total` steps; carry: the operands' running sums and the last P (None at the start)."""
    a, b = operands(node, x)
    if node.mode == "per_step":
        return node.scale * (a @ b), None
    # cumulative: P_t = A_t B_t / t; out_t = P_t - P_{t-1}. A_t B_t are integer counts, exact
    # in float32 while below 2^24 (over the whole run), so float64 is used only past that.
    dt = x.dtype if total * total * int(node.a_shape[-1]) < 2 ** 24 else torch.float64
    A0, B0, P0 = carry or (None, None, None)
    A, Bc = running_sum(a.to(dt), A0), running_sum(b.to(dt), B0)
    P = torch.matmul(A, Bc).div_(step_numbers(steps, dt, A))
    return increments(P, P0).mul_(node.scale).to(x.dtype), (A[-1:], Bc[-1:], P[-1:])


def softmax(node: X.HostSoftmax, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return torch.softmax(node.scale * x + bias, dim=int(node.axis))


def layer_norm(node: X.HostLayerNorm, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
               steps: torch.Tensor, carry):
    """(output, carry) over a chunk; x (k, B, K, *shape): the packed streams. Both modes of
    docs/nir-extensions.md. The running sum is one float64 sum over the run (what torch's CPU
    cumsum accumulates in for float32 too), so chunks do not change it."""
    s = (weight * x).sum(2) + bias
    dim = int(node.axis) + 2 if int(node.axis) >= 0 else int(node.axis)

    def norm(v):
        d = v - v.mean(dim, keepdim=True)
        return d / torch.sqrt((d * d).mean(dim, keepdim=True) + node.eps)

    if node.mode == "per_step":
        return norm(s), None
    S0, y0 = carry or (None, None)
    S = running_sum(s.to(torch.float64), S0)
    t = step_numbers(steps, s.dtype, s)
    y = t * norm(S.to(s.dtype) / t)
    return increments(y, y0), (S[-1:], y[-1:])


def leaky_integrate(x: torch.Tensor, v: torch.Tensor | None, keep, gain, bias) -> tuple[torch.Tensor, torch.Tensor]:
    """Stock NIR I and LI, whose output is their state (Euler steps of dt = 1, v_0 = 0):
    v_t = keep v_{t-1} + gain x_t + bias (I: keep 1, gain r, bias 0; LI: keep 1 - 1/tau,
    gain r / tau, bias v_leak / tau). Returns (v_1..v_k, v_k)."""
    out = torch.empty_like(x)
    v = torch.zeros_like(x[0]) if v is None else v
    for t in range(x.shape[0]):
        v = v * keep + x[t] * gain + bias
        out[t] = v
    return out, v


def threshold(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Stock NIR Threshold: 1 where x > theta (strict, as NIR states it), else 0."""
    return (x > theta).to(x.dtype)

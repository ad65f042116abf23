"""Exact synaptic-event counting (docs/energy.md): a delivered event is one spike times one
non-zero synapse leaving it. Counts are kept per element of a node's output over all steps and
images, carried through routing nodes, and multiplied by each synaptic node's fan-out.

Graded spikes (ResetSubIF levels > 1) are counted two ways at once: a spike of payload k is k
events (what the 45-nm models price) and one message (what a graded-spike chip like Loihi 2
delivers). In a graph with graded neurons a count is complex: real part events, imaginary part
messages; routes, gates and fan-in sums carry both alike. Binary graphs keep real counts.
"""
from __future__ import annotations

import nir
import numpy as np
import torch
import torch.nn.functional as F

from ..ir import nodes as X
from ..ir.topology import ROUTING, SYNAPTIC, Topology, node_shape, pair
from . import kernels
from .ops import pad


def analog_sources(topo: Topology) -> set[str]:
    """Nodes whose output is analog (host values): the Input, host ops and what they reach
    through routing. Synapses fed by them count MACs, not events."""
    analog = set()
    for n in topo.order:
        node = topo.node(n)
        if isinstance(node, (nir.Input,) + X.HOST_OPS):
            analog.add(n)
        elif isinstance(node, ROUTING) and any(p in analog for p in topo.preds[n]):
            analog.add(n)
    return analog


def activity_needed(topo: Topology, analog: set[str]) -> set[str]:
    """Nodes whose per-element event counts feed an event count: the spiking inputs of synaptic
    nodes and, through routing, the nodes behind them."""
    need = set()
    for n in reversed(topo.order):
        node = topo.node(n)
        if (isinstance(node, SYNAPTIC) and n not in analog) or (isinstance(node, ROUTING) and n in need):
            need.update(topo.preds[n])
    return need


def _fit(f: torch.Tensor, shape: tuple) -> torch.Tensor:
    """conv_transpose may come out short of the input by the stride remainder; pad with zeros."""
    if tuple(f.shape) == tuple(shape):
        return f
    out = f.new_zeros(shape)
    sl = tuple(slice(0, min(a, b)) for a, b in zip(f.shape, shape))
    out[sl] = f[sl]
    return out


def fanout(node, device="cpu") -> torch.Tensor:
    """Per input element of a synaptic node, the number of non-zero synapses leaving it (float64,
    the node's input shape)."""
    shape = node_shape(node, "input")
    f64 = dict(dtype=torch.float64, device=device)
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = torch.as_tensor(np.asarray(node.weight) != 0, **f64)
        return w.sum(-2).reshape(shape)
    if isinstance(node, nir.Scale):
        return torch.as_tensor(np.asarray(node.scale) != 0, **f64).reshape(shape)
    if isinstance(node, nir.Conv1d):
        w = torch.as_tensor(np.asarray(node.weight) != 0, **f64)
        out = torch.ones(1, *node_shape(node), **f64)
        f = F.conv_transpose1d(out, w, stride=int(node.stride), padding=pad(node.padding),
                               dilation=int(node.dilation), groups=int(node.groups))[0]
        return _fit(f, shape)
    if isinstance(node, nir.Conv2d):
        w = torch.as_tensor(np.asarray(node.weight) != 0, **f64)
        out = torch.ones(1, *node_shape(node), **f64)
        f = F.conv_transpose2d(out, w, stride=pair(node.stride), padding=pair(pad(node.padding)),
                               dilation=pair(node.dilation), groups=int(node.groups))[0]
        return _fit(f, shape)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        c, h, w_ = node_shape(node)
        out = torch.ones(1, c, h, w_, **f64)
        f = F.conv_transpose2d(out, torch.ones(c, 1, *pair(node.kernel_size), **f64),
                               stride=pair(node.stride), padding=pair(node.padding), groups=c)[0]
        return _fit(f, shape)
    if isinstance(node, X.SpikeProduct):
        M, N = int(node.a_shape[-2]), int(node.b_shape[-1])
        return torch.cat([torch.full((int(np.prod(node.a_shape)),), float(N), **f64),
                          torch.full((int(np.prod(node.b_shape)),), float(M), **f64)])
    raise AssertionError(type(node))


def host_macs(node, fan: torch.Tensor, steps: int, images: int) -> int:
    """MACs of a synaptic node on analog input (the image, a host op's output), done on the host."""
    if isinstance(node, X.SpikeProduct):
        a, b = node.a_shape, node.b_shape
        return steps * images * int(np.prod(a[:-1])) * int(a[-1]) * int(b[-1])
    return int(steps * images * fan.sum().item())


def events(counts: torch.Tensor, fan: torch.Tensor) -> tuple[int, int]:
    """(synaptic events, synaptic messages) from per-element counts and the fan-out (equal
    unless the counts are complex, graded)."""
    total = (counts.reshape(fan.shape) * fan).sum().item()
    return split(total)


def split(total) -> tuple[int, int]:
    """(events, messages) of a count total: a complex one's parts, a real one twice."""
    if isinstance(total, complex):
        return int(round(total.real)), int(round(total.imag))
    return int(round(total)), int(round(total))


def sum_counts(items):
    """Sum of the count tensors that exist (None when none does): fan-in sums counts too."""
    items = [i for i in items if i is not None]
    if not items:
        return None
    out = items[0]
    for i in items[1:]:
        out = out + i
    return out


def count_index(index: np.ndarray, sources: int, device) -> torch.Tensor:
    """A Route's index for count vectors (route_counts): -1 points past the `sources` counts,
    at the 0 appended there."""
    idx = np.asarray(index, np.int64)
    return torch.as_tensor(np.where(idx < 0, sources, idx), device=device)


def route_counts(counts: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per-element counts through a Route (0 where the index is -1), `index` from count_index."""
    flat = torch.cat([counts.reshape(-1), counts.new_zeros(1)])
    return torch.index_select(flat, 0, index.reshape(-1)).reshape(index.shape)     # faster than flat[index]


def spike_counts(y: torch.Tensor, graded: bool = False) -> torch.Tensor:
    """Per element of (T, B, *shape) spikes, the total over steps and images (float64; graded:
    complex, payloads + 1j messages). Counts per element are < 2^24: exact in the float32 sum."""
    if graded:
        return _per_element(y, lambda rows: torch.complex(rows.sum(0).double(),
                                                          torch.count_nonzero(rows, dim=0).double()))
    return _per_element(y, lambda rows: rows.sum(0).double())


def nonzero_counts(y: torch.Tensor, graded: bool = False) -> torch.Tensor:
    """Per element, the steps x images where the value is not 0 (graded values count once: one
    event, one message)."""
    n = _per_element(y, lambda rows: torch.count_nonzero(rows, dim=0).to(torch.float64))
    return torch.complex(n, n) if graded else n


def _per_element(y: torch.Tensor, reduce) -> torch.Tensor:
    """reduce(rows) over the (T x B, elements) rows of y, in y's memory order (no copy of a
    channels-last or tokens-last y, kernels.layout), as a tensor of the element shape."""
    T, B = y.shape[:2]
    order = kernels.layout(y)
    return kernels.from_memory(reduce(kernels.stored(y, order).reshape(T * B, -1)), y.shape[2:], order, lead=0)

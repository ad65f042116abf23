"""Structure of a NIR graph that every backend needs: node kinds, shapes, edges, topological order.

No torch here: the Lava worker imports this and must stay torch-free (docs/sources.md, "Lava in practice").
"""
from __future__ import annotations

from collections import defaultdict

import nir
import numpy as np

from ..errors import UserError
from ..machine import check_fits
from . import nodes as X
from .validate import shown

# Nodes that move values without synapses: their inputs' activity flows through unchanged.
ROUTING = (X.Route, nir.Flatten, X.SynapseGate, nir.Delay)
SYNAPTIC = (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.Scale, nir.AvgPool2d, nir.SumPool2d,
            X.SpikeProduct)
POOLS = (nir.AvgPool2d, nir.SumPool2d)
NEURONS = (X.ResetSubIF, nir.IF, nir.LIF, nir.CubaLIF)
SUPPORTED = ROUTING + SYNAPTIC + NEURONS + (nir.Input, nir.Output) + X.HOST_OPS


def pair(v) -> tuple[int, int]:
    """A NIR size field (kernel, stride, ...) given as one value or two, as (height, width)."""
    a = np.asarray(v).reshape(-1)
    return (int(a[0]), int(a[-1]))


def delay_steps(name: str, node: nir.Delay) -> int:
    """The one delay of a Delay node, in steps (what every backend supports)."""
    d = np.unique(np.asarray(node.delay))
    if d.size != 1 or d[0] < 0 or d[0] != int(d[0]):
        raise UserError(f"{name}: only one non-negative integer delay per Delay node is supported")
    return int(d[0])


def node_shape(node, key: str = "output") -> tuple:
    t = node.output_type if key == "output" else node.input_type
    return tuple(int(v) for v in np.asarray(list(t.values())[0]).reshape(-1))


class Topology:
    """Predecessors (in edge order: the order fan-in is summed), consumers, topological order,
    and the single Input and Output of a graph."""

    def __init__(self, graph: nir.NIRGraph):
        self.graph = graph
        self.preds: dict[str, list[str]] = defaultdict(list)
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for a, b in graph.edges:
            for n in (a, b):
                if n not in graph.nodes:
                    raise UserError(f"an edge names node {n!r}, which the graph does not have")
            self.preds[b].append(a)
            self.consumers[a].append(b)
        self.order = topological_order(graph, self.preds)
        inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
        outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
        if len(inputs) != 1 or len(outputs) != 1:
            raise UserError(f"the graph needs exactly one Input and one Output node "
                            f"(has {len(inputs)} and {len(outputs)})")
        self.input, self.output = inputs[0], outputs[0]
        for n in self.order:
            if n != self.input and not self.preds[n]:
                raise UserError(f"node {shown(n)} has no input edge")
        # a small file may declare huge layers: say so before anything allocates them
        self.values = sum(int(np.prod(node_shape(graph.nodes[n]), dtype=np.float64)) for n in self.order)
        check_fits(8 * self.values, f"the graph ({self.values:,.0f} values per sample)", "the graph's layer sizes")

    def node(self, name: str):
        return self.graph.nodes[name]

    def spiking(self) -> set[str]:
        """Nodes whose output is binary spikes: neurons, and routing nodes fed by one spiking node
        (fan-in sums spikes into counts)."""
        out: set[str] = set()
        for n in self.order:
            node = self.graph.nodes[n]
            if isinstance(node, NEURONS) or (isinstance(node, ROUTING) and len(self.preds[n]) == 1
                                             and self.preds[n][0] in out):
                out.add(n)
        return out


def topological_order(graph: nir.NIRGraph, preds: dict | None = None) -> list[str]:
    """Depth-first post-order over predecessors (the order of the first path to each node), with an
    explicit stack: a chain of any length works (no recursion limit)."""
    if preds is None:
        preds = defaultdict(list)
        for a, b in graph.edges:
            preds[b].append(a)
    order, state = [], {}
    for root in graph.nodes:
        if state.get(root) == 2:
            continue
        state[root] = 1
        stack = [(root, iter(preds[root]))]
        while stack:
            n, todo = stack[-1]
            for p in todo:
                if state.get(p) == 1:
                    raise UserError(f"the graph has a cycle through node {shown(p)} (not supported)")
                if state.get(p) != 2:
                    state[p] = 1
                    stack.append((p, iter(preds[p])))
                    break
            else:
                stack.pop()
                state[n] = 2
                order.append(n)
    return order


def check_supported(graph: nir.NIRGraph, supported: tuple, who: str) -> None:
    bad = sorted({f"{k} ({type(n).__name__})" for k, n in graph.nodes.items() if not isinstance(n, supported)})
    if bad:
        raise UserError(f"unsupported node(s) for {who}: {', '.join(bad)}")

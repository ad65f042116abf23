"""A neuron whose inputs exceed a core's axons, split into partial sums on relay neurons, written
into the graph (docs/loihi2-plan.md, "Fan-in"): what `mst plan` places and what simulates.

A core takes at most `in_axons` distinct inputs, so a neuron whose synaptic nodes reach it with a
larger fan-in cannot live on any core. Its input edges are packed, in order, into groups of at
most `in_axons` inputs; each group feeds a Relay (ir/nodes.py: a graded neuron that sends its
summed input on), and each relay reaches the neuron through an identity Scale: the neuron's fan-in
becomes the number of groups. A dense layer (Linear, Affine) larger than a core's inputs is cut by
input columns (a Route picks them). The function is unchanged: the neuron sums the same terms,
regrouped (exact in fixed point, whose sums are integers; float sums may round otherwise in the
last bit). Biases stay with the neuron, so fixed point quantizes the same bias: a synaptic node's
bias is moved to a twin of it with zero weights (no synapses) that feeds the neuron directly.
Recurrent edges into the neuron stay direct.
"""
from __future__ import annotations

import dataclasses
import math

import nir
import numpy as np

from ..errors import UserError
from ..ir import nodes as X
from ..ir.topology import NEURONS, SYNAPTIC, Topology, node_shape
from .placement import CURRENT_ROUTES, feeds, placements, synapse_bias
from .resources import connections

DENSE = (nir.Linear, nir.Affine)


class _Graph:
    """Nodes and edges being rewritten (edges keep their places: the order fan-in is summed)."""

    def __init__(self, graph: nir.NIRGraph):
        self.nodes, self.edges = dict(graph.nodes), list(graph.edges)

    def add(self, name: str, node, *sources: str) -> str:
        if name in self.nodes:
            raise UserError(f"split: the graph already has a node named {name!r}")
        self.nodes[name] = node
        self.edges += [(s, name) for s in sources]
        return name

    def retarget(self, edge: tuple, to: str) -> None:
        self.edges[self.edges.index(edge)] = (edge[0], to)

    def graph(self, metadata) -> nir.NIRGraph:
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=dict(metadata or {}))


def _sources(topo: Topology, p: str) -> list[str]:
    """The synaptic nodes whose current reaches through node `p` (itself, or through routes)."""
    if isinstance(topo.node(p), SYNAPTIC):
        return [p]
    if isinstance(topo.node(p), CURRENT_ROUTES):
        return [s for q in topo.preds[p] for s in _sources(topo, q)]
    return []


def _unbiased(node):
    """The node without its bias (an Affine becomes a Linear)."""
    if isinstance(node, nir.Affine):
        return nir.Linear(weight=node.weight)
    return dataclasses.replace(node, bias=np.zeros_like(node.bias))


def _twin(node):
    """A copy with zero weights: the bias alone, with no synapse."""
    return dataclasses.replace(node, weight=np.zeros_like(node.weight))


def split(graph: nir.NIRGraph, in_axons: int) -> tuple[nir.NIRGraph, dict[str, list[str]]]:
    """(the graph with every fan-in beyond `in_axons` on relays, neuron -> its relays)."""
    topo = Topology(graph)
    fed = feeds(placements(topo))
    fan = {s: connections(topo.node(s))[1] for s in topo.order if isinstance(topo.node(s), SYNAPTIC)}
    looped = {n for loop in topo.loops for n in loop}
    g, relays = _Graph(graph), {}
    for n in topo.order:
        node = topo.node(n)
        if not isinstance(node, NEURONS) or isinstance(node, X.Relay):
            continue
        if sum(fan[s] for s in fed.get(n, [])) <= in_axons:
            continue
        if n in looped:
            raise UserError(f"split: {n} has a fan-in beyond {in_axons} inputs inside a recurrent loop; "
                            "relays are not placed in loops")
        relays[n] = _split(g, topo, n, in_axons, fan)
    return g.graph(graph.metadata), relays


def _split(g: _Graph, topo: Topology, n: str, in_axons: int, fan: dict) -> list[str]:
    shape = node_shape(topo.node(n), "input")
    entries, direct = [], 0                       # (edge into n, its fan-in); inputs that stay
    for p in topo.preds[n]:
        src = _sources(topo, p)
        inputs = sum(fan[s] for s in src)
        if (p, n) in topo.back:
            direct += inputs
            continue
        if p in src and synapse_bias(topo.node(p)) is not None:      # the bias stays: a twin carries it
            g.add(f"{p}.bias", _twin(topo.node(p)), *topo.preds[p])
            g.edges.append((f"{p}.bias", n))
            g.nodes[p] = _unbiased(topo.node(p))
        elif any(synapse_bias(topo.node(s)) is not None for s in src):   # a bias routed on its way
            direct += inputs
            continue
        if inputs > in_axons and p in src and isinstance(g.nodes[p], DENSE):
            entries += _columns(g, topo, p, n, in_axons)
        elif inputs > in_axons:
            raise UserError(f"split: {n}'s input {p} alone reaches it with {inputs} inputs, more than a core's "
                            f"{in_axons}, and only dense layers are cut by columns")
        elif inputs:
            entries.append(((p, n), inputs))
    groups: list[list] = []
    for edge, fan in entries:                     # in order, as many inputs as a core takes
        if not groups or sum(f for _, f in groups[-1]) + fan > in_axons:
            groups.append([])
        groups[-1].append((edge, fan))
    if direct + len(groups) > in_axons:
        raise UserError(f"split: {n} still takes {direct + len(groups)} inputs on relays, more than a core's "
                        f"{in_axons}")
    names = []
    for i, group in enumerate(groups):
        r = g.add(f"{n}.relay{i}", X.Relay(shape=np.array(shape)))
        for edge, _ in group:
            g.retarget(edge, r)
        g.add(f"{r}.sum", nir.Scale(scale=np.ones(shape, np.float32)), r)
        g.edges.append((f"{r}.sum", n))
        names.append(r)
    return names


def _columns(g: _Graph, topo: Topology, p: str, n: str, in_axons: int) -> list:
    """A dense layer cut into column blocks of at most `in_axons` inputs, each read by a Route:
    entries (edge into n, fan-in) that replace the layer's edge."""
    (src,) = topo.preds[p]
    w = np.asarray(g.nodes[p].weight)
    k = math.ceil(w.shape[1] / in_axons)
    out = []
    for j, cols in enumerate(np.array_split(np.arange(w.shape[1]), k)):
        pick = g.add(f"{p}.cols{j}", X.Route(in_shape=np.array(node_shape(topo.node(src))), index=cols), src)
        part = g.add(f"{p}.part{j}", nir.Linear(weight=w[:, cols]), pick)
        g.edges.append((part, n))
        out.append(((part, n), connections(g.nodes[part])[1]))
    g.edges.remove((p, n))
    g.edges = [e for e in g.edges if e != (src, p)]
    del g.nodes[p]
    return out

"""Blocks of a graph that can run one at a time: consecutive runs of the topological order, cut
only where every edge that crosses the cut leaves a neuron or the Input.

A block then needs nothing from the blocks before it but spike trains (or the images), which the
reference simulator records: so a graph too large for one Lava run is checked block by block,
each block fed the reference's spikes (compare/parity.py). No cycle is cut (a recurrent edge's
two ends share a block), and each block with the nodes that feed it is connected, because Lava
compiles and runs only the processes connected to the one it is given.
"""
from __future__ import annotations

import numpy as np

from .topology import NEURONS, Topology, walk


def late_order(topo: Topology) -> list[str]:
    """A topological order that puts every node as late as it can: depth first from the Output
    along forward edges, the latest inputs first, so a synapse comes just before the neuron it
    feeds (not just after its source: a residual sum's synapses would then span a whole stage
    and leave no cut)."""
    pos = {n: i for i, n in enumerate(topo.order)}
    latest_first = {n: sorted(topo.forward_preds[n], key=pos.get, reverse=True) for n in topo.order}
    return walk([topo.output] + topo.order[::-1], latest_first)


def cuts(topo: Topology, order: list[str]) -> list[bool]:
    """cuts[i]: `order` may be cut before position i (0 < i < len; the ends always can)."""
    pos = {n: i for i, n in enumerate(order)}
    blocked = np.zeros(len(order) + 1, np.int64)          # difference array of uncuttable spans
    for b in order:
        for a in topo.preds[b]:
            lo, hi = sorted((pos[a], pos[b]))
            backward = pos[a] >= pos[b]
            if backward or not (a == topo.input or isinstance(topo.node(a), NEURONS)):
                blocked[lo + 1] += 1
                blocked[hi + 1] -= 1
    open_spans = np.cumsum(blocked)
    return [True] + [bool(open_spans[i] == 0) for i in range(1, len(order))] + [True]


def feeds(topo: Topology, members: list[str]) -> list[str]:
    """The nodes outside `members` whose outputs `members` read, in topological order."""
    inside = set(members)
    outside = {p for n in members for p in topo.preds[n] if p not in inside}
    return [n for n in topo.order if n in outside]


def connected(topo: Topology, members: list[str]) -> bool:
    """`members` and the nodes that feed them form one connected piece (edges either way)."""
    nodes = set(members) | set(feeds(topo, members))
    if not nodes:
        return True
    link = {n: set() for n in nodes}
    for b in members:
        for a in topo.preds[b]:
            if a in nodes:
                link[a].add(b)
                link[b].add(a)
    seen, todo = set(), [next(iter(nodes))]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(link[n] - seen)
    return seen == nodes


def blocks(topo: Topology, cost: dict[str, float], budget: float) -> list[list[str]]:
    """The nodes split into blocks of total cost at most `budget` where the cuts allow it (a block
    that cannot be cut smaller is kept whole). The Input belongs to no block: each block that reads
    it gets the images. Of the two orders tried (the topological order, and late_order), the one
    whose largest block costs least: neither is best everywhere (an attention block's synapses cut
    better early, a residual sum's late)."""
    tries = [_split(topo, order, cost, budget) for order in (topo.order, late_order(topo))]
    return min(tries, key=lambda parts: (max(sum(cost[n] for n in p) for p in parts), len(parts)))


def _split(topo: Topology, full: list[str], cost: dict, budget: float) -> list[list[str]]:
    ok = cuts(topo, full)
    order = [n for n in full if n != topo.input]
    pos = {n: i for i, n in enumerate(full)}
    allowed = [i for i, n in enumerate(order) if ok[pos[n]]] + [len(order)]   # cut before order[i]
    out, start = [], 0
    while start < len(order):
        later = [j for j in allowed if j > start]
        total = np.cumsum([cost[n] for n in order[start:]])
        fit = [j for j in later if total[j - start - 1] <= budget]
        j = fit[-1] if fit else later[0]
        while not connected(topo, order[start:j]) and j < len(order):
            j = next(k for k in later if k > j)
        out.append(order[start:j])
        start = j
    return out

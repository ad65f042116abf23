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
NEURONS = (X.ResetSubIF, nir.IF, nir.LIF, nir.CubaLIF, X.SigmaDelta, X.Relay)
GRADED_MESSAGES = (X.SigmaDelta, X.Relay)               # a message of any value, counted once
SUPPORTED = ROUTING + SYNAPTIC + NEURONS + (nir.Input, nir.Output) + X.HOST_OPS
# Stock nodes only the reference simulator runs in float (others' graphs, the exact stock export):
# integrators whose output is their state, and the Heaviside step.
INTEGRATORS = (nir.I, nir.LI)
FLOAT_ONLY = INTEGRATORS + (nir.Threshold,)


def pair(v) -> tuple[int, int]:
    """A NIR size field (kernel, stride, ...) given as one value or two, as (height, width)."""
    a = np.asarray(v).reshape(-1)
    return (int(a[0]), int(a[-1]))


def pool_gain(node) -> float:
    """What a pool multiplies each input by: 1 / (its window's area) for AvgPool2d, 1 for SumPool2d."""
    k = pair(node.kernel_size)
    return 1.0 / (k[0] * k[1]) if isinstance(node, nir.AvgPool2d) else 1.0


def one_value(value, error: str) -> float:
    """The one value of a parameter that a layer keeps once (a hardware register, a framework's
    per-layer constant), or UserError(error) when it differs across the layer's neurons."""
    v = np.unique(np.asarray(value, np.float64))
    if v.size != 1:
        raise UserError(error)
    return float(v[0])


def delays(name: str, node: nir.Delay) -> np.ndarray:
    """A Delay node's delays in steps, one per element (netx's axonal delays differ per neuron)."""
    d = np.broadcast_to(np.asarray(node.delay, np.float64), node_shape(node))
    if np.any(d < 0) or np.any(d != np.round(d)):
        raise UserError(f"{name}: delays must be non-negative integers of steps")
    return d.astype(np.int64)


def delay_steps(name: str, node: nir.Delay) -> int:
    """The one delay of a Delay node, in steps (what our Lava processes support)."""
    d = np.unique(delays(name, node))
    if d.size != 1:
        raise UserError(f"{name}: the Lava backend takes one delay per Delay node, this one has {d.size}")
    return int(d[0])


def node_shape(node, key: str = "output") -> tuple:
    t = node.output_type if key == "output" else node.input_type
    return tuple(int(v) for v in np.asarray(list(t.values())[0]).reshape(-1))


class Topology:
    """Predecessors (in edge order: the order fan-in is summed), consumers, the single Input and
    Output, the recurrent edges and an execution order.

    Recurrent graphs (docs/time-and-randomness.md, "Recurrent edges"): an edge that closes a cycle
    (a back edge of a depth-first walk from the Input along the edges in file order) delivers its
    source's output one step late, 0 at step 1, as NIR's recurrent examples and nirtorch do.
    `loops` are the groups of nodes joined by such cycles, run one step at a time; `items` is
    the order in which nodes (names) and loops (tuples of names in order) run."""

    def __init__(self, graph: nir.NIRGraph):
        self.graph = graph
        self.preds: dict[str, list[str]] = defaultdict(list)
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for a, b in graph.edges:
            for n in (a, b):
                if n not in graph.nodes:
                    raise UserError(f"an edge names node {shown(n)!r}, which the graph does not have")
            self.preds[b].append(a)
            self.consumers[a].append(b)
        inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
        outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
        if len(inputs) != 1 or len(outputs) != 1:
            raise UserError(f"the graph needs exactly one Input and one Output node "
                            f"(has {len(inputs)} and {len(outputs)})")
        self.input, self.output = inputs[0], outputs[0]
        self.back = back_edges(graph, self.input, self.consumers)
        forward = {b: [a for a in ps if (a, b) not in self.back] for b, ps in self.preds.items()}
        self.forward_preds = defaultdict(list, forward)
        order = topological_order(graph, self.forward_preds)
        self.loops = loops(order, self.back, self.forward_preds, self.consumers)
        self.items = run_order(order, self.loops, self.forward_preds)
        self.order = [n for item in self.items for n in (item if isinstance(item, tuple) else (item,))]
        for n in self.order:
            if n != self.input and not self.preds[n]:
                raise UserError(f"node {shown(n)} ({type(graph.nodes[n]).__name__}) has no input edge")
        # a small file may declare huge layers: say so before anything allocates them
        self.values = sum(int(np.prod(node_shape(graph.nodes[n]), dtype=np.float64)) for n in self.order)
        check_fits(8 * self.values, f"the graph ({self.values:,.0f} values per sample)", "the graph's layer sizes")

    def node(self, name: str):
        return self.graph.nodes[name]

    def spiking(self) -> set[str]:
        """Nodes whose output is binary spikes: neurons (not graded ones, levels > 1), and routing
        nodes fed by one spiking node (fan-in sums spikes into counts)."""
        out: set[str] = set()
        for n in self.order:
            node = self.graph.nodes[n]
            binary = isinstance(node, NEURONS + (nir.Threshold,)) and getattr(node, "levels", 1) == 1 \
                and not isinstance(node, GRADED_MESSAGES)
            if binary or (isinstance(node, ROUTING) and len(self.preds[n]) == 1 and self.preds[n][0] in out):
                out.add(n)
        return out


def walk(roots, step: dict, on_cycle=lambda n, m: None) -> list[str]:
    """Depth-first walk from each root in turn along `step` (node -> next nodes), with an explicit
    stack (a chain of any length works: no recursion limit). `on_cycle(n, m)` is called for a step
    to a node m on the current path. Returns the nodes in post-order."""
    order, state = [], {}
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(step[root]))]
        while stack:
            n, todo = stack[-1]
            for m in todo:
                if state.get(m) == 1:
                    on_cycle(n, m)
                elif m not in state:
                    state[m] = 1
                    stack.append((m, iter(step[m])))
                    break
            else:
                stack.pop()
                state[n] = 2
                order.append(n)
    return order


def topological_order(graph: nir.NIRGraph, preds: dict | None = None) -> list[str]:
    """Post-order over predecessors (the order of the first path to each node). `preds` must be
    acyclic (Topology leaves the recurrent edges out)."""
    if preds is None:
        preds = defaultdict(list)
        for a, b in graph.edges:
            preds[b].append(a)

    def cycle(n, p):
        raise UserError(f"the graph has a cycle through node {shown(p)}")
    return walk(graph.nodes, preds, cycle)


def back_edges(graph: nir.NIRGraph, start: str, consumers: dict) -> set[tuple[str, str]]:
    """Edges to a node on the current path of a depth-first walk along the edges in file order,
    from the Input first, then from any node not reached: the edges that close cycles."""
    back: set = set()
    walk([start] + list(graph.nodes), consumers, lambda n, c: back.add((n, c)))
    return back


def _reach(start: str, step: dict) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for m in step[todo.pop()]:
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def loops(order: list[str], back: set, preds: dict, consumers: dict) -> list[tuple]:
    """Groups of nodes that recurrent edges join into cycles (each in `order`): for a back edge
    a -> b, the nodes on forward paths from b to a; groups that share a node are one."""
    succ = defaultdict(list)
    for b, ps in preds.items():
        for a in ps:
            succ[a].append(b)
    groups: list[set] = []
    for a, b in back:
        g = (_reach(b, succ) & _reach(a, preds)) | {a, b}
        for other in [o for o in groups if o & g]:
            g |= other
            groups.remove(other)
        groups.append(g)
    pos = {n: i for i, n in enumerate(order)}
    return sorted((tuple(sorted(g, key=pos.__getitem__)) for g in groups), key=lambda g: pos[g[0]])


def run_order(order: list[str], groups: list[tuple], preds: dict) -> list:
    """`order` with each loop as one item, placed where all its inputs from outside are ready
    (Kahn's algorithm over the condensed graph, ties broken by `order`)."""
    import heapq
    item_of = {n: n for n in order}
    for g in groups:
        for n in g:
            item_of[n] = g
    pos = {n: i for i, n in enumerate(order)}
    first = lambda item: pos[item[0]] if isinstance(item, tuple) else pos[item]  # noqa: E731
    items = list(dict.fromkeys(item_of[n] for n in order))
    needs = {it: {item_of[p] for n in (it if isinstance(it, tuple) else (it,)) for p in preds[n]} - {it}
             for it in items}
    users = defaultdict(list)
    for it, ns in needs.items():
        for d in ns:
            users[d].append(it)
    ready = [(first(it), i, it) for i, it in enumerate(items) if not needs[it]]
    heapq.heapify(ready)
    out = []
    while ready:
        _, i, it = heapq.heappop(ready)
        out.append(it)
        for u in users[it]:
            needs[u].discard(it)
            if not needs[u]:
                heapq.heappush(ready, (first(u), items.index(u), u))
    return out


def check_supported(graph: nir.NIRGraph, supported: tuple, who: str) -> None:
    bad = sorted({f"{k} ({type(n).__name__})" for k, n in graph.nodes.items() if not isinstance(n, supported)})
    if bad:
        raise UserError(f"unsupported node(s) for {who}: {', '.join(bad)}")

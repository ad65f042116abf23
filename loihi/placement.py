"""Where each synaptic node's current goes, and where its bias lands.

Loihi-style synapses (Lava's Dense, Sparse, ...) have no bias: a synaptic node's bias is a constant
current, so both backends that follow hardware (Lava, and the reference simulator in fixed point)
add it to the bias of the neuron that integrates the current, or to the host-side output. This
module follows each synaptic node through the routing nodes after it (Flatten, Route) to those
"targets" and carries the bias along the same routes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np

from ..errors import UserError
from ..ir import nodes as X
from ..ir.topology import NEURONS, POOLS, SYNAPTIC, Topology, node_shape

# Routing a current may pass through on its way to a neuron (a gate or a delay would change it).
CURRENT_ROUTES = (nir.Flatten, X.Route, nir.Delay)    # a Delay of a current: netx's DelayDense (ir/netx.py)


@dataclass
class Placement:
    """The targets of one synaptic node: neurons, the Output, or synapses (only after a pool)."""
    kind: str                                   # "neuron", "output" or "synapse"
    targets: list = field(default_factory=list)
    bias: dict = field(default_factory=dict)    # target -> float64 bias in the target's shape


def feeds(placed: dict[str, Placement]) -> dict[str, list[str]]:
    """Neuron -> the synaptic nodes whose current it integrates (in `placements` order)."""
    out: dict[str, list[str]] = {}
    for name, p in placed.items():
        for t in p.targets if p.kind == "neuron" else ():
            out.setdefault(t, []).append(name)
    return out


def synapse_bias(node) -> np.ndarray | None:
    """The node's bias broadcast to its output shape, or None when it has none (or all zero)."""
    b = getattr(node, "bias", None) if isinstance(node, (nir.Affine, nir.Conv1d, nir.Conv2d)) else None
    if b is None or not np.any(b):
        return None
    shape = node_shape(node)
    b = np.asarray(b, np.float64).reshape(-1)
    return np.broadcast_to(b.reshape((-1,) + (1,) * (len(shape) - 1)), shape).copy()


def _route(value: np.ndarray, node) -> np.ndarray:
    if isinstance(node, nir.Delay):
        raise UserError("a synapse with a bias feeds a Delay: the bias would arrive late (not supported)")
    if isinstance(node, nir.Flatten):
        return value.reshape(node_shape(node))
    flat = np.concatenate([value.reshape(-1), [0.0]])
    idx = np.asarray(node.index)
    return flat[np.where(idx < 0, flat.size - 1, idx)]


def place(topo: Topology, name: str) -> Placement:
    """Follow synaptic node `name` through Flatten/Route nodes to the nodes that use its current."""
    bias = synapse_bias(topo.node(name))
    found: dict[str, list] = {}

    def walk(n: str, value):
        for c in topo.consumers[n]:
            node = topo.node(c)
            if isinstance(node, CURRENT_ROUTES):
                walk(c, None if value is None else _route(value, node))
            else:
                found.setdefault(c, []).append(value)

    walk(name, bias)
    kinds = set()
    for c in found:
        node = topo.node(c)
        if isinstance(node, NEURONS):
            kinds.add("neuron")
        elif isinstance(node, nir.Output):
            kinds.add("output")
        elif isinstance(node, SYNAPTIC) and isinstance(topo.node(name), POOLS):
            kinds.add("synapse")
        else:
            raise UserError(f"{name} ({type(topo.node(name)).__name__}) feeds {c} "
                            f"({type(node).__name__}): a synaptic current must reach a neuron or the "
                            "output (only pooling may feed another synaptic layer)")
    if len(kinds) != 1:
        raise UserError(f"{name} feeds {sorted(found)}: mixed kinds of targets are not supported")
    kind = kinds.pop()
    if kind == "synapse" and bias is not None:
        raise UserError(f"{name}: a pooling node has no bias")
    out = Placement(kind, sorted(found))
    for c, values in found.items():
        vals = [v for v in values if v is not None]
        if vals:
            out.bias[c] = np.sum(vals, axis=0)
    return out


def placements(topo: Topology) -> dict[str, Placement]:
    return {n: place(topo, n) for n in topo.order if isinstance(topo.node(n), SYNAPTIC)}


def moved_biases(topo: Topology, where: dict[str, Placement]) -> dict[str, np.ndarray]:
    """Target -> sum of the biases of every synaptic node that feeds it (float64)."""
    out: dict[str, np.ndarray] = {}
    for p in where.values():
        for t, b in p.bias.items():
            out[t] = out[t] + b if t in out else b
    return out

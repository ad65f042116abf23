"""Re-export the gating of a NIR graph at another masking ratio, weights unchanged: every
SynapseGate gets the new p (p = 0 keeps the node, which then passes everything on). The seed and
streams stay, so the draws of two ratios are coupled: a spike kept at p is kept at every p' < p."""
from __future__ import annotations

import copy

import nir

from ..errors import UserError
from .ratio import check_ratio
from .nodes import SynapseGate


def gates(graph: nir.NIRGraph) -> list[str]:
    return [k for k, n in graph.nodes.items() if isinstance(n, SynapseGate)]


def with_ratio(graph: nir.NIRGraph, p: float) -> nir.NIRGraph:
    p = check_ratio(p)
    if not gates(graph):
        raise UserError("the graph has no SynapseGate to re-gate: export the model with a masking "
                        "ratio above 0 (mst export --mask P) to sweep ratios")
    nodes = {}
    for k, n in graph.nodes.items():
        nodes[k] = SynapseGate(shape=n.shape, p=p, seed=n.seed, stream=n.stream) if isinstance(n, SynapseGate) \
            else n
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=copy.deepcopy(graph.metadata))

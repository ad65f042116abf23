"""Energy per inference from exact event counts, under named models (docs/energy.md).

Counts come from either backend (the reference simulator, or a Lava run played back through the
same counting, compare/playback.py). Every constant carries its source (docs/sources.md, "Energy").
"""
from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from ..ir import nodes as X
from ..ir.topology import SYNAPTIC, Topology
from ..simulate.counting import fanout

PJ = 1e-12


@dataclass(frozen=True)
class EnergyModel:
    name: str
    source: str
    synaptic_event: float          # J per delivered synaptic event (one spike x one target)
    neuron_active: float           # J per neuron update in a step where the neuron fires
    neuron_inactive: float         # J per neuron update in a step where it does not
    spike: float                   # J per spike sent (routing)
    host_mac: float                # J per MAC on analog values (the image, softmax), on the host


MODELS = {
    "loihi1": EnergyModel(
        "loihi1", "Davies et al., IEEE Micro 2018, Table 1: 23.6 pJ per synaptic spike op, neuron "
        "update 81 pJ active / 52 pJ inactive (we count an update as active when the neuron fires), "
        "1.7 pJ per spike within a tile (tile hops not modelled); host MACs at 45 nm fp32, 4.6 pJ",
        23.6 * PJ, 81 * PJ, 52 * PJ, 1.7 * PJ, 4.6 * PJ),
    "45nm-fp32": EnergyModel(
        "45nm-fp32", "Horowitz 2014, 45 nm fp32: E_AC 0.9 pJ per synaptic event, E_MAC 4.6 pJ per "
        "analog MAC (the spiking-transformer convention E = E_MAC FLOPs_analog + E_AC SOPs)",
        0.9 * PJ, 0.0, 0.0, 0.0, 4.6 * PJ),
    "45nm-int8": EnergyModel(
        "45nm-int8", "Horowitz 2014, 45 nm int8: E_AC 0.03 pJ, E_MAC 0.23 pJ", 0.03 * PJ, 0.0, 0.0, 0.0,
        0.23 * PJ),
}
ANN_MAC = {"45nm-fp32": 4.6 * PJ, "45nm-int8": 0.23 * PJ}     # Horowitz 2014


def energy(counts: dict, model: EnergyModel) -> dict:
    """counts per inference: spikes, synaptic_events, neuron_updates, host_macs -> joules by part."""
    parts = {"synaptic": counts["synaptic_events"] * model.synaptic_event,
             "neuron": counts["spikes"] * model.neuron_active
             + (counts["neuron_updates"] - counts["spikes"]) * model.neuron_inactive,
             "spike": counts["spikes"] * model.spike,
             "host": counts["host_macs"] * model.host_mac}
    parts["total"] = sum(parts.values())
    return parts


def ann_macs(graph: nir.NIRGraph) -> dict[str, int]:
    """MACs of one ANN forward pass of the same (converted) network, per synaptic node: one per
    non-zero synapse; for a product a @ b, M K N per batch element."""
    out = {}
    for name in Topology(graph).order:
        node = graph.nodes[name]
        if isinstance(node, X.SpikeProduct):
            a, b = node.a_shape, node.b_shape
            out[name] = int(np.prod(a[:-1])) * int(a[-1]) * int(b[-1])
        elif isinstance(node, SYNAPTIC):
            out[name] = int(fanout(node).sum().item())
    return out


def ann_energy(macs: int) -> dict:
    return {k: macs * v for k, v in ANN_MAC.items()}


def per_inference(res, images: int) -> dict:
    """Totals per inference from a Result or an Evaluation (sums over its images)."""
    n = max(images, 1)
    return {"spikes": sum(res.spike_counts.values()) / n,
            "synaptic_events": sum(res.synaptic_events.values()) / n,
            "gated_events": sum(res.gated_events.values()) / n,
            "neuron_updates": sum(res.neuron_updates.values()) / n,
            "host_macs": sum(res.host_macs.values()) / n}


def per_node(res, images: int, order: list[str]) -> dict:
    n = max(images, 1)
    out = {}
    for k in order:
        row = {"spikes": res.spike_counts.get(k, 0) / n, "synaptic_events": res.synaptic_events.get(k, 0) / n,
               "gated_events": res.gated_events.get(k, 0) / n, "host_macs": res.host_macs.get(k, 0) / n,
               "neuron_updates": res.neuron_updates.get(k, 0) / n}
        if any(row.values()):
            out[k] = row
    return out

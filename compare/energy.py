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
    per_message: bool = False      # a graded spike costs one event whatever its payload (else k events)


MODELS = {
    "loihi1": EnergyModel(
        "loihi1", "Davies et al., IEEE Micro 2018, Table 2: 23.6 pJ per synaptic spike op, neuron "
        "update 81 pJ active / 52 pJ inactive (we count an update as active when the neuron fires), "
        "1.7 pJ per spike within a tile (tile hops not modelled); host MACs at 45 nm fp32, 4.6 pJ",
        23.6 * PJ, 81 * PJ, 52 * PJ, 1.7 * PJ, 4.6 * PJ),
    "loihi2": EnergyModel(
        "loihi2", "stated assumption (Intel publishes no per-operation energy of Loihi 2): Loihi 1's "
        "per-operation energies (Davies et al. 2018, Table 2) with one synaptic op per delivered "
        "message whatever its payload, Loihi 2 scaling a weight by a graded spike's payload in the "
        "synapse (Orchard et al., SiPS 2021, 'Efficient neuromorphic signal processing with Loihi 2'); "
        "host MACs at 45 nm fp32, 4.6 pJ",
        23.6 * PJ, 81 * PJ, 52 * PJ, 1.7 * PJ, 4.6 * PJ, per_message=True),
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
    """counts per inference (per_inference) -> joules by part. A neuron update is active when it
    sends a spike (of any payload); graded spikes cost their payload in events, or one event each
    under a per-message model (the two are equal for binary spikes)."""
    fired = counts.get("spike_messages", counts["spikes"])
    sent = fired if model.per_message else counts["spikes"]
    events = counts.get("synaptic_messages", counts["synaptic_events"]) if model.per_message \
        else counts["synaptic_events"]
    parts = {"synaptic": events * model.synaptic_event,
             "neuron": fired * model.neuron_active + (counts["neuron_updates"] - fired) * model.neuron_inactive,
             "spike": sent * model.spike,
             "host": counts["host_macs"] * model.host_mac}
    parts["total"] = sum(parts.values())
    return parts


def against_ann(energy_uj: dict, ann_uj: dict) -> dict:
    """The SNN's energy over the ANN's at the same precision: 45 nm fp32 over the fp32 ANN, 45 nm
    int8 over the int8 ANN (the fair baseline, arXiv 2409.08290)."""
    return {k: energy_uj[k]["total"] / ann_uj[k] for k in ANN_MAC if ann_uj.get(k)}


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
    """Totals per inference from a Result or an Evaluation (sums over its images), or from one of
    their `at` entries (a dict of the same count fields)."""
    n = max(images, 1)
    get = res.get if isinstance(res, dict) else lambda f: getattr(res, f)
    return {"spikes": sum(get("spike_counts").values()) / n,
            "synaptic_events": sum(get("synaptic_events").values()) / n,
            "gated_events": sum(get("gated_events").values()) / n,
            "neuron_updates": sum(get("neuron_updates").values()) / n,
            "host_macs": sum(get("host_macs").values()) / n,
            "spike_messages": sum(get("spike_messages").values()) / n,
            "synaptic_messages": sum(get("synaptic_messages").values()) / n}


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

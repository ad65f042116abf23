"""Map a NIR graph onto Loihi-style neurocores (`mst resources`; sizes: docs/sources.md, "Energy").

Each neuron node is a layer placed on its own cores. Cores for a layer = max(neurons / neurons per
core, synapses / synapses per core), synapses counted as the non-zero connections into it, stored
one per connection (no weight sharing: an upper bound for convolutions). A neuron whose fan-in
exceeds a core's input axons does not fit. Ops that stock Loihi cores lack are listed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import nir
import numpy as np
import torch
import torch.nn.functional as F

from ..ir import nodes as X
from ..ir.topology import NEURONS, Topology, node_shape
from .placement import feeds, placements
from .widths import GRADED_BITS, PAYLOAD_BITS


@dataclass(frozen=True)
class CoreProfile:
    name: str
    neurons: int
    synapses: int
    in_axons: int
    cores_per_chip: int
    source: str
    graded: bool = True              # carries graded spikes (integer payloads)


PROFILES = {
    "loihi2": CoreProfile("loihi2", 8192, 120_000_000 // 128, 4096, 128,
                          "Loihi 2: 128 cores, up to 8192 neurons per core, 120M synapses per chip "
                          "(an average of 937,500 per core); input axons per core taken from Loihi 1 (4096)"),
    "loihi1": CoreProfile("loihi1", 1024, 128 * 1024, 4096, 128,
                          "Loihi 1: 1024 compartments, 4096 input axons, 128 KiB synaptic memory per "
                          "core (one byte per synapse assumed), 128 cores per chip; binary spikes only",
                          graded=False),
}

CUSTOM = {
    X.SpikeProduct: "spike x spike product: custom neuron microcode, not a synaptic crossbar",
    X.SynapseGate: "stochastic synapse gating: no stock Loihi feature (per-synapse random gating)",
    X.HostSoftmax: "softmax: runs on the host",
    X.HostLayerNorm: "layer norm: runs on the host",
    X.ResetSubIF: "reset by subtraction: Loihi 2 microcode neuron (stock LIF resets to zero)",
}


def connections(node) -> tuple[int, int]:
    """(non-zero connections, largest fan-in of one output) of a synaptic node."""
    if isinstance(node, X.SpikeProduct):
        return 0, 2 * int(node.a_shape[-1])            # both operands' K inputs per output
    if isinstance(node, nir.Scale):
        return int(np.count_nonzero(np.broadcast_to(node.scale, node_shape(node)))), 1
    if isinstance(node, (nir.Affine, nir.Linear)):
        nz = np.asarray(node.weight) != 0
        return int(nz.sum()), int(nz.sum(1).max())
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        k = np.asarray(node.kernel_size).reshape(-1)
        area = int(k[0]) * int(k[-1])
        return int(np.prod(node_shape(node))) * area, area
    w = torch.as_tensor(np.asarray(node.weight) != 0, dtype=torch.float64)
    x = torch.ones(1, *node_shape(node, "input"), dtype=torch.float64)
    dims = 1 if isinstance(node, nir.Conv1d) else 2
    stride = np.broadcast_to(np.asarray(node.stride).reshape(-1), (dims,))
    pad = np.broadcast_to(np.asarray(node.padding).reshape(-1), (dims,))
    conv = F.conv1d if dims == 1 else F.conv2d
    per = conv(x, w, None, tuple(int(v) for v in stride), tuple(int(v) for v in pad),
               groups=int(node.groups))
    return int(per.sum().item()), int(per.max().item())


def resources(graph: nir.NIRGraph, profile: CoreProfile) -> dict:
    topo = Topology(graph)
    fed = feeds(placements(topo))
    layers, problems = [], []
    for name in topo.order:
        node = topo.node(name)
        if not isinstance(node, NEURONS):
            continue
        conns = [connections(topo.node(s)) for s in fed.get(name, [])]
        neurons = int(np.prod(node_shape(node)))
        synapses = sum(c for c, _ in conns)
        fan_in = sum(f for _, f in conns)
        cores = max(math.ceil(neurons / profile.neurons), math.ceil(synapses / profile.synapses), 1)
        fits = fan_in <= profile.in_axons
        if not fits:
            problems.append(f"{name}: fan-in {fan_in} exceeds {profile.in_axons} input axons per core")
        levels = int(getattr(node, "levels", 1))
        if levels > 1 and not profile.graded:
            problems.append(f"{name}: graded spikes (levels {levels}) need a chip with graded spikes (loihi2); "
                            f"export with --spike-levels 1 for {profile.name}")
        layers.append({"layer": name, "neurons": neurons, "synapses": synapses, "max_fan_in": fan_in,
                       "cores": cores, "fits": fits, "levels": levels})
    custom: dict[str, list] = {}
    for name in topo.order:
        if type(topo.node(name)) in CUSTOM:
            custom.setdefault(CUSTOM[type(topo.node(name))], []).append(name)
    total = sum(r["cores"] for r in layers)
    top = max([r["levels"] for r in layers] + [1])
    payload = {"levels": top, "bits": top.bit_length(), "max_bits": PAYLOAD_BITS, "message_bits": GRADED_BITS} \
        if top > 1 else None
    return {"spike_payload": payload, "profile": profile.name, "source": profile.source, "layers": layers, "cores": total,
            "chips": math.ceil(total / profile.cores_per_chip),
            "neurons": sum(r["neurons"] for r in layers), "synapses": sum(r["synapses"] for r in layers),
            "does_not_fit": problems, "beyond_stock_cores": custom}

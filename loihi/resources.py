"""`mst resources`: the plan's placement without a run (loihi/chip.py place, loihi/split.py):
the layers on a chip's cores with weight sharing, a fan-in beyond a core's axons split on relays,
what still does not fit, and the ops stock Loihi cores lack. Time and energy need activity: `mst
plan` adds them to this same placement (one placement, two views).
"""
from __future__ import annotations

import math

import nir
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from ..ir import nodes as X
from ..ir.topology import Topology, node_shape
from .widths import GRADED_BITS, PAYLOAD_BITS

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


def resources(graph: nir.NIRGraph, chip) -> dict:
    """The placement of `graph` on `chip` (a loihi/chip.py Chip), after the fan-in split."""
    from .chip import kinds, loads, place
    from .split import split
    problems = []
    try:
        graph, _ = split(graph, chip.in_axons)
    except UserError as e:                   # what cannot be split is reported, the rest still placed
        problems.append(str(e))
    topo = Topology(graph)
    layers, host = place(topo, chip)
    rows = []
    for L in layers:
        node = topo.node(L.layer)
        levels = int(getattr(node, "levels", 1))
        fits = L.fan_in <= chip.in_axons
        if not fits and not problems:
            problems.append(f"{L.layer}: fan-in {L.fan_in} exceeds {chip.in_axons} input axons per core")
        if levels > 1 and not chip.graded:
            problems.append(f"{L.layer}: graded spikes (levels {levels}) need a chip with graded spikes (loihi2); "
                            f"export with --spike-levels 1 for {chip.name}")
        rows.append({"layer": L.layer, "neurons": L.neurons, "synapses": L.connections, "weights": L.weights,
                     "fan_in": L.fan_in, "cores": L.cores, "relay_of": L.relay_of,
                     "fits": fits, "levels": levels, "per_core": loads(L, chip)})
    custom: dict[str, list] = {}
    for name in topo.order:
        if type(topo.node(name)) in CUSTOM:
            custom.setdefault(CUSTOM[type(topo.node(name))], []).append(name)
    total = sum(r["cores"] for r in rows)
    top = max([r["levels"] for r in rows] + [1])
    payload = {"levels": top, "bits": top.bit_length(), "max_bits": PAYLOAD_BITS, "message_bits": GRADED_BITS} \
        if top > 1 else None
    return {"spike_payload": payload, "profile": chip.name, "source": chip.source, "layers": rows, "cores": total,
            "chips": max(1, math.ceil(total / chip.cores_per_chip)),
            "neurons": sum(r["neurons"] for r in rows), "synapses": sum(r["synapses"] for r in rows),
            "weights": sum(r["weights"] for r in rows), "does_not_fit": problems, "beyond_stock_cores": custom,
            "placed": kinds(topo), "host_values_per_step": host}

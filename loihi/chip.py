"""A graph on Loihi chips with time (`mst plan`, `mstdeploy.plan`): cores per layer with the weight
sharing a core has, the busiest core's work per step, latency, throughput, static energy and EDP
(docs/loihi2-plan.md). Every constant names its source; what is an assumption says so.

A neuron node is a layer on cores of its own. Its cores hold at most `neurons` neurons each and
`synapses` weights: a convolution's kernel (Conv1d: a token-wise linear layer) is one copy per core
that holds any of its outputs (Loihi shares it: Intel's compiler puts 81-2,880 synapse entries on a
PilotNet core of 2,048-3,168 neurons, docs/loihi2-measurements.md); a dense layer's non-zero weights
are split with its outputs. A fan-in beyond a core's input axons is split on relay neurons in the
graph itself before it is placed (split.py), so a relay layer is a layer like any other. Work is
spread evenly over a layer's cores (an assumption: a core's share of the layer's synaptic events,
neuron updates and messages sent), and a step lasts as long as the busiest core plus the barrier.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import nir
import numpy as np

from ..errors import UserError
from ..ir import nodes as X
from ..ir.topology import NEURONS, SYNAPTIC, Topology, node_shape
from .placement import feeds, placements
from .resources import connections
from .widths import GRADED_BITS

NS = 1e-9


@dataclass(frozen=True)
class Chip:
    name: str
    neurons: int               # neuron slots per core
    synapses: int              # weights per core (8-bit)
    in_axons: int              # inputs per core (fan-in of one neuron at most)
    cores_per_chip: int
    t_synop: float             # s per synaptic op (one event into one target)
    t_neuron: float            # s per neuron update (a step's update of one neuron)
    t_spike: float             # s per spike sent
    t_barrier: float           # s per step: the mesh-wide barrier
    static_w: float | None     # W per chip when idle; None: not known
    source: str
    graded: bool = True        # carries graded spikes (integer payloads)


TABLE2 = ("Davies et al., IEEE Micro 2018, Table 2 (Loihi 1, pre-silicon, 0.75 V): 3.5 ns per synaptic op "
          "(max), 5.3-8.4 ns per neuron update (inactive/active; 8.4 taken), 2.1 ns per spike within a tile, "
          "465 ns mesh barrier (32 tiles)")
CHIPS = {
    "loihi2": Chip("loihi2", 4096, 131_072, 16_384, 128, 3.5 * NS, 8.4 * NS, 2.1 * NS, 465 * NS, 0.232078,
                   "assumptions: 4,096 neuron slots and ~16k input axons per core (Intel's compiler utilisation "
                   "in lava-dl's netx notebooks, derived); 128 KiB of 8-bit weights per core (Loihi 1's synaptic "
                   "memory); Loihi 1's per-operation times, " + TABLE2 + "; static power 0.232078 W per chip "
                   "(Intel, PilotNet LIF on one Loihi 2 chip, lava-dl pilotnet_snn/benchmark.ipynb)"),
    "loihi1": Chip("loihi1", 1024, 131_072, 4096, 128, 3.5 * NS, 8.4 * NS, 2.1 * NS, 465 * NS, None,
                   "Loihi 1: 1,024 compartments, 4,096 input axons, 128 KiB synaptic memory (one byte per "
                   "weight assumed) per core, 128 cores per chip (Davies et al. 2018); " + TABLE2 +
                   "; static power not published per chip (not priced); binary spikes only", graded=False),
}
SHARED = (nir.Conv1d, nir.Conv2d)       # one copy of the kernel per core


@dataclass
class Layer:
    layer: str
    synapses: dict            # synaptic node -> the share of its current this layer takes (1 / its targets)
    neurons: int
    connections: int          # non-zero connections into the layer (synapses, one per connection)
    fan_in: int
    weights: int              # stored: shared kernels once, dense weights once
    kernel: int               # of which shared kernels (a copy on every core, or split by channels)
    cores: int
    relay_of: str | None      # the neuron this relay layer sends partial sums to (split.py), else None
    synaptic_events: float    # per step and inference (from the run)
    spikes: float             # messages sent per step and inference (a graded spike is one)
    core_seconds: float       # the busiest core's work per step


def place(topo: Topology, chip: Chip) -> tuple[list[Layer], dict]:
    """Layers on cores, before activity: (layers, host traffic per step in values)."""
    placed = placements(topo)
    fed = feeds(placed)
    layers = []
    for name in topo.order:
        node = topo.node(name)
        if not isinstance(node, NEURONS):
            continue
        conns = [(topo.node(s), *connections(topo.node(s))) for s in fed.get(name, [])]   # (node, count, fan-in)
        neurons = int(np.prod(node_shape(node)))
        fan_in = sum(f for _, _, f in conns)
        kernel = sum(int(np.count_nonzero(s.weight)) for s, _, _ in conns if isinstance(s, SHARED))  # all of it
        dense = sum(c for s, c, _ in conns if not isinstance(s, SHARED))
        by_neurons = math.ceil(neurons / chip.neurons)
        room = chip.synapses - kernel            # what a core keeps for dense weights beside its kernels
        by_weights = math.ceil(dense / room) if dense and room > 0 else (1 if room > 0 else math.inf)
        if room <= 0:                            # the kernels alone overflow a core: split by output channels
            by_weights = math.ceil(kernel / chip.synapses) * max(1, math.ceil(dense / chip.synapses))
        share = {s: 1.0 / len(placed[s].targets) for s in fed.get(name, [])}
        relay_of = next((t for c in topo.consumers[name] for t in placed[c].targets), None) \
            if isinstance(node, X.Relay) else None
        layers.append(Layer(name, share, neurons, sum(c for _, c, _ in conns), fan_in, kernel + dense, kernel,
                            max(by_neurons, by_weights, 1), relay_of, 0.0, 0.0, 0.0))
    host = {}
    for name in topo.order:
        node = topo.node(name)
        if isinstance(node, nir.Input):         # analog input, sent every step as graded messages
            host[name] = int(np.prod(node_shape(node, "input")))
        elif isinstance(node, X.HOST_OPS):
            host[name] = int(np.prod(node_shape(node, "input"))) + int(np.prod(node_shape(node)))
    return layers, host


STOCK = (nir.IF, nir.LIF, nir.CubaLIF, X.SigmaDelta, X.Relay, nir.Linear, nir.Affine, nir.Conv1d, nir.Conv2d, nir.Scale,
         nir.AvgPool2d, nir.SumPool2d, nir.Delay)            # Lava processes with a Loihi 2 model (LIF, Dense, ..)
MICROCODE = (X.ResetSubIF, X.SpikeProduct, X.SynapseGate)      # Loihi 2's programmable neurons / synapses
WIRING = (nir.Flatten, X.Route, nir.Input, nir.Output)           # axon routing, no process of its own


def kinds(topo: Topology) -> dict[str, list[str]]:
    """Every node, by where it runs: a stock Lava process with a Loihi 2 model, custom neuron
    microcode, the host, or wiring (loihi/resources.py CUSTOM says why each custom op is custom)."""
    out: dict[str, list[str]] = {"stock": [], "microcode": [], "host": [], "wiring": []}
    for n in topo.order:
        node = topo.node(n)
        kind = "host" if isinstance(node, X.HOST_OPS) else "microcode" if isinstance(node, MICROCODE) else \
            "wiring" if isinstance(node, WIRING) else "stock" if isinstance(node, STOCK) else None
        if kind is None:
            raise AssertionError(f"{n}: {type(node).__name__} has no place")
        out[kind].append(n)
    return out


def busy(layer: Layer, chip: Chip) -> float:
    """Seconds of work per step on one of the layer's cores (work spread evenly)."""
    return (layer.synaptic_events * chip.t_synop + layer.neurons * chip.t_neuron + layer.spikes * chip.t_spike) \
        / layer.cores


def depth(topo: Topology) -> int:
    """Steps from the input to the output: one per synaptic node on the longest path (each sends
    the previous step's sum, as Lava's do; a relay's identity synapse is one more)."""
    d: dict[str, int] = {}
    for n in topo.order:
        before = [d[p] for p in topo.forward_preds[n] if p in d]
        d[n] = max(before, default=0) + (1 if isinstance(topo.node(n), SYNAPTIC) else 0)
    return d.get(topo.output, 0)


def loads(layer: Layer, chip: Chip) -> dict:
    """Per core of the layer, against the core's limits."""
    groups = math.ceil(layer.kernel / chip.synapses)          # a kernel over a core: split by channels
    kernel = math.ceil(layer.kernel / groups) if groups else 0
    return {"neurons": math.ceil(layer.neurons / layer.cores), "neuron_limit": chip.neurons,
            "weights": kernel + math.ceil((layer.weights - layer.kernel) / layer.cores),
            "weight_limit": chip.synapses, "inputs": min(layer.fan_in, chip.in_axons), "input_limit": chip.in_axons}


def activity(res, images: int) -> dict:
    """What `plan` needs of a run (a simulator Result or Evaluation), per inference."""
    k = max(images, 1)
    return {key: {a: v / k for a, v in getattr(res, key).items()}
            for key in ("synaptic_events", "spike_messages", "host_macs")}


def plan(graph: nir.NIRGraph, chip: Chip, activity: dict, steps: int, dynamic_j: float | None) -> dict:
    """The report on a graph whose fan-in fits (split.py): `activity` per inference over `steps`
    steps (synaptic_events per synaptic node, spike_messages per neuron node, a graded spike one
    message, both summed over the steps); `dynamic_j`: dynamic energy per inference
    (compare/energy.py's model), None if not priced."""
    topo = Topology(graph)
    layers, host = place(topo, chip)
    for L in layers:
        if L.fan_in > chip.in_axons:
            raise UserError(f"{L.layer}: fan-in {L.fan_in} exceeds {chip.in_axons} input axons per core "
                            "(split it on relays first: loihi/split.py)")
    def ops(s: str) -> float:                 # graded input values are synaptic ops on chip too
        return float(activity["synaptic_events"].get(s, 0.0)) + float(activity.get("host_macs", {}).get(s, 0.0))

    for L in layers:
        L.synaptic_events = sum(ops(s) * share for s, share in L.synapses.items()) / steps
        L.spikes = float(activity["spike_messages"].get(L.layer, 0.0)) / steps
        L.core_seconds = busy(L, chip)
    cores = sum(L.cores for L in layers)
    chips = max(1, math.ceil(cores / chip.cores_per_chip))
    step = max((L.core_seconds for L in layers), default=0.0) + chip.t_barrier
    steps_deep = depth(topo)
    per_inference = steps * step                                 # pipelined: a new input every T steps
    latency = (steps + steps_deep) * step
    static = None if chip.static_w is None else chip.static_w * chips * per_inference
    total = None if dynamic_j is None else dynamic_j + (static or 0.0)
    bottleneck = max(layers, key=lambda L: L.core_seconds).layer if layers else None
    return {"profile": chip.name, "source": chip.source, "cores": cores, "chips": chips,
            "neurons": sum(L.neurons for L in layers), "layers": [
                {**asdict(L), "per_core": loads(L, chip)} for L in layers],
            "placed": kinds(topo), "bottleneck": bottleneck, "step_seconds": step, "steps": steps, "depth": steps_deep,
            "latency_seconds": latency, "throughput_per_second": 1.0 / per_inference,
            "host_values_per_step": host, "host_bytes_per_step": sum(host.values()) * GRADED_BITS // 8,
            "energy_joules": {"dynamic": dynamic_j, "static": static, "total": total},
            "edp_joule_seconds": None if total is None else total * latency}

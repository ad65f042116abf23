"""What a run of the reference simulator gives (Result), where a chunk of time sits (Clock), what a
chunk holds between nodes (Held), and the state a run carries between chunks (carried_size)."""
from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np
import torch

from ..ir import nodes as X
from ..ir.topology import INTEGRATORS, NEURONS, delays, node_shape


# The count fields of a Result (and an Evaluation), each node -> total.
COUNTS = ("spike_counts", "synaptic_events", "gated_events", "host_macs", "neuron_updates", "spike_messages",
          "synaptic_messages")


@dataclass
class Result:
    logits: torch.Tensor                    # (T, B, K) per-step output
    spikes: dict = field(default_factory=dict)        # node -> (T, B, *shape) bool (uint8 payloads), if recorded
    spike_counts: dict = field(default_factory=dict)  # node -> total spikes (all steps, samples; payloads)
    synaptic_events: dict = field(default_factory=dict)  # synaptic node -> delivered events (payload-weighted)
    gated_events: dict = field(default_factory=dict)  # synaptic node -> events removed by gating
    host_macs: dict = field(default_factory=dict)     # node -> MACs done on the host / analog input
    neuron_updates: dict = field(default_factory=dict)
    saturation: dict = field(default_factory=dict)    # fixed point: neuron -> counts of clipped v
    spike_messages: dict = field(default_factory=dict)     # node -> spikes sent (graded: messages, any payload)
    synaptic_messages: dict = field(default_factory=dict)  # synaptic node -> delivered messages
    at: dict = field(default_factory=dict)   # step t of `marks` -> {count field: its dict after step t}

    def predictions_by_step(self) -> torch.Tensor:
        """(T, B) argmax of the logits summed over steps 1..t, for every t."""
        return self.logits.cumsum(0).argmax(-1)


@dataclass(frozen=True)
class Clock:
    """Where a chunk of time sits: its samples (global indices), its 1-based step numbers and
    the run's total steps (the gate stream and cumulative nodes key on these, not on the chunk)."""
    samples: torch.Tensor
    steps: torch.Tensor
    total: int


@dataclass
class Held:
    """What a chunk keeps of each node until its last consumer has run: output (k, B, ...),
    spikes dropped by gates upstream and events per element (both summed over steps and samples)."""
    outs: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)
    acts: dict = field(default_factory=dict)
    recorded: dict = field(default_factory=dict)
    static: set = field(default_factory=set)       # outputs equal at every step: computed once

    def keep(self, name, y, drop, act, rec) -> None:
        self.outs[name] = y
        if drop is not None:
            self.dropped[name] = drop
        if act is not None:
            self.acts[name] = act
        if rec is not None:
            self.recorded[name] = rec

    def forget(self, name) -> None:
        for d in (self.outs, self.dropped, self.acts):
            d.pop(name, None)


def add(counts: dict, key: str, value) -> None:
    counts[key] = counts.get(key, 0) + value


def carried_size(graph: nir.NIRGraph, order) -> int:
    """Values per sample that nodes carry between chunks: neuron state (u and v), delay lines,
    cumulative products' running operands (an upper bound, for the memory check)."""
    n = 0
    for name in order:
        node = graph.nodes[name]
        if isinstance(node, NEURONS):
            n += 3 * int(np.prod(node_shape(node)))   # u, v; a sigma-delta's sigma, activation, residue
        elif isinstance(node, INTEGRATORS):
            n += int(np.prod(node_shape(node)))
        elif isinstance(node, nir.Delay):
            n += int(delays(name, node).max(initial=0)) * int(np.prod(node_shape(node)))
        elif isinstance(node, (X.SpikeProduct, X.HostLayerNorm)):
            n += 2 * int(np.prod(node_shape(node, "input"))) + 2 * int(np.prod(node_shape(node)))
    return n

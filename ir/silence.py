"""A run where nothing fires is never silent: what to tell the user, and the likely cause (the time
step a file was read with, or the framework that wrote it; docs/interop.md). Torch-free."""
from __future__ import annotations

import nir
import numpy as np

from ..errors import caution
from .producers import NAMES
from .topology import NEURONS
from .validate import shown


def silent(graph: nir.NIRGraph, spike_counts: dict) -> list[str]:
    """Warnings for a run of `graph` whose spikes per node were `spike_counts` (graded: payloads,
    complex counts' real part): no neuron fired, or the neurons feeding the output never did.
    Each is also shown (a Caution); the list goes into the run's report."""
    neurons = [k for k, n in graph.nodes.items() if isinstance(n, NEURONS)]
    if not neurons:
        return []
    fired = {k: float(np.real(spike_counts.get(k, 0))) for k in neurons}
    outputs = {k for k, n in graph.nodes.items() if isinstance(n, nir.Output)}
    last = [a for a, b in graph.edges if b in outputs and a in fired]
    if sum(fired.values()) == 0:
        what = f"no neuron fired ({len(neurons)} neuron node{'s' if len(neurons) > 1 else ''})"
    elif last and sum(fired[k] for k in last) == 0:
        what = f"the output layer ({', '.join(shown(k) for k in last)}) never fired"
    else:
        return []
    message = f"{what}: {cause(graph)}"
    caution(message)
    return [message]


def cause(graph: nir.NIRGraph) -> str:
    meta = graph.metadata or {}
    if "read_as" in meta:
        return (f"read as {NAMES[meta['read_as']]} runs it, with its dt = {meta['producer_dt']:g}; if it exported with "
                "another dt, pass it with --dt; `mst inspect` shows each neuron's step as read")
    if "looks_like" in meta:
        return f"{meta['because']}: read it with --from {meta['looks_like']}"
    dt = meta.get("read_with_dt", 1.0)
    return (f"time read in steps of dt = {dt:g} (--dt); if the file was written in seconds or by snnTorch, Norse "
            "or SpikingJelly, pass its step or --from; `mst inspect` shows each neuron's step as read")

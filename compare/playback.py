"""Counts of a recorded run: a Lava run's spikes and gate outputs, played back through the
reference simulator's exact event counting (spikes, delivered and gated-out synaptic events, host
MACs, neuron updates per node). The counts are those of the Lava run: wherever Lava's recorded
spikes or gates differ, so do they."""
from __future__ import annotations

import nir
import numpy as np
import torch

from ..backends.lava_nc.run import LavaRun
from ..simulate.engine import Result, Simulator


def lava_counts(graph: nir.NIRGraph, x: torch.Tensor, run: LavaRun, fixed: bool, first_sample: int = 0,
                chunk: int | None = None, marks: tuple = ()) -> Result:
    """x: the run's images (B, *input shape), in order; the result's logits are the reference's;
    `marks` as Simulator.run."""
    recorded = {**run.spikes, **run.delivered}
    playback = {k: torch.as_tensor(np.ascontiguousarray(v.swapaxes(0, 1)), dtype=torch.float64)
                for k, v in recorded.items()}
    sim = Simulator(graph, "cpu", torch.float64, fixed_point=fixed, chunk=chunk)
    return sim.run(x, run.logits.shape[0], first_sample=first_sample, playback=playback, marks=marks)

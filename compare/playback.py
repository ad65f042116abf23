"""Counts of a recorded run: a Lava run's spikes and gate outputs, played back through the
reference simulator's exact event counting (spikes, delivered and gated-out synaptic events, host
MACs, neuron updates per node). The counts are those of the Lava run: wherever Lava's recorded
spikes or gates differ, so do they."""
from __future__ import annotations

import nir
import numpy as np
import torch

from ..backends.lava_nc.run import LavaRun
from ..errors import UserError
from ..ir import nodes as X
from ..simulate.engine import Result, Simulator


class Playback:
    """Recorded outputs (node -> (T, B, *shape) tensor) that replace the simulator's for those
    neurons and gates (Simulator.run's `playback`): a neuron's spikes, or a gate's passed spikes
    (the rest were dropped, and are counted as gated out)."""

    def __init__(self, recorded: dict, graded: bool):
        self.recorded, self.graded = recorded, graded

    def __contains__(self, name) -> bool:
        return name in self.recorded

    def window(self, t0: int, t1: int) -> "Playback":
        """Steps t0..t1 - 1 (a chunk, or one step of a recurrent group)."""
        return Playback({n: v[t0:t1] for n, v in self.recorded.items()}, self.graded)

    def output(self, name, node, x, drop, count):
        """(output, dropped counts) of node `name` fed x (T, B, *shape), as recorded."""
        rec = self.recorded[name].to(x.device, x.dtype)
        if tuple(rec.shape) != tuple(x.shape):
            raise UserError(f"recorded output of shape {tuple(rec.shape)}, the node's is {tuple(x.shape)}")
        if not isinstance(node, X.SynapseGate):
            return rec, None
        y = x * rec
        if not count:
            return y, None
        T, B = x.shape[:2]
        dropped = (x * (rec == 0)).reshape(T * B, -1)
        gone = dropped.double().sum(0).reshape(x.shape[2:])
        if self.graded:
            gone = torch.complex(gone, torch.count_nonzero(dropped, dim=0).double().reshape(x.shape[2:]))
        return y, gone if drop is None else drop + gone


def lava_counts(graph: nir.NIRGraph, x: torch.Tensor, run: LavaRun, fixed: bool, first_sample: int = 0,
                chunk: int | None = None, marks: tuple = ()) -> Result:
    """x: the run's images (B, *input shape), in order; the result's logits are the reference's;
    `marks` as Simulator.run."""
    recorded = {k: torch.as_tensor(np.ascontiguousarray(v.swapaxes(0, 1)), dtype=torch.float64)
                for k, v in {**run.spikes, **run.delivered}.items()}
    sim = Simulator(graph, "cpu", torch.float64, fixed_point=fixed, chunk=chunk)
    graded = any(getattr(n, "levels", 1) > 1 for n in graph.nodes.values())
    return sim.run(x, run.logits.shape[0], first_sample=first_sample, playback=Playback(recorded, graded),
                   marks=marks)

"""Accuracy-vs-T of a NIR graph on a data set, with the reference simulator, in batches; under
torchrun the batches are shared out over the ranks and the figures gathered."""
from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from ..distributed import Dist
from ..errors import UserError
from ..machine import check_fits
from ..progress import bar
from ..data import datasets
from ..ir.topology import node_shape as _shape
from .engine import COUNTS, Simulator


@dataclass
class Evaluation:
    steps: int
    images: int
    correct_by_step: np.ndarray                     # (T,) images right with logits summed to t
    spike_counts: dict = field(default_factory=dict)
    synaptic_events: dict = field(default_factory=dict)
    gated_events: dict = field(default_factory=dict)
    host_macs: dict = field(default_factory=dict)
    neuron_updates: dict = field(default_factory=dict)
    saturation: dict = field(default_factory=dict)   # fixed point: neuron -> clipped-v counts
    spikes: dict = field(default_factory=dict)      # node -> (images, T, *shape) uint8, if recorded
    spike_messages: dict = field(default_factory=dict)
    synaptic_messages: dict = field(default_factory=dict)
    at: dict = field(default_factory=dict)          # mark t -> {count field: node -> total after step t}
    logits: torch.Tensor | None = None              # (T, images, K) outputs of every step, if kept

    def accuracy(self, t: int) -> float:
        return float(self.correct_by_step[t - 1]) / max(self.images, 1)

    def curve(self) -> dict[int, float]:
        return {t: self.accuracy(t) for t in range(1, self.steps + 1)}

    def add(self, other: "Evaluation") -> None:
        """Add another part's images and counts (recorded spikes follow this part's)."""
        self.images += other.images
        self.correct_by_step = self.correct_by_step + other.correct_by_step
        pairs = [(getattr(self, f), getattr(other, f)) for f in COUNTS]
        for t, theirs in other.at.items():
            mine = self.at.setdefault(t, {f: {} for f in COUNTS})
            pairs += [(mine[f], theirs[f]) for f in COUNTS]
        for mine, theirs in pairs:
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        for k, v in other.saturation.items():
            acc = self.saturation.setdefault(k, dict.fromkeys(v, 0))
            for kind, n in v.items():
                acc[kind] += n
        for k, v in other.spikes.items():
            self.spikes[k] = np.concatenate([self.spikes[k], v]) if k in self.spikes else v
        if other.logits is not None:
            self.logits = other.logits if self.logits is None else torch.cat([self.logits, other.logits], 1)


def graph_image_shape(graph: nir.NIRGraph) -> tuple:
    inp = next(n for n in graph.nodes.values() if isinstance(n, nir.Input))
    return _shape(inp, "input")


def graph_classes(graph: nir.NIRGraph) -> int:
    """How many outputs (classes) the graph has."""
    out = next(n for n in graph.nodes.values() if isinstance(n, nir.Output))
    return int(np.prod(_shape(out, "output")))


def load_images(dataset: str, graph: nir.NIRGraph, data: str | None, limit: int | None, steps: int | None = None):
    """The test split of `dataset` at the graph's input size (first `limit` images); event data
    sets binned into `steps` frames."""
    shape = graph_image_shape(graph)
    if len(shape) != 3:
        raise UserError(f"the graph's input has shape {shape}, not an image (C, H, W): it cannot read {dataset}")
    c, h, w = shape
    ds = datasets.load(dataset, "test", h, data, steps=steps)
    x0, _ = ds[0]
    if tuple(x0.shape[-3:]) != (c, h, w):
        raise UserError(f"{dataset} images are {tuple(x0.shape[-3:])}, the graph expects {(c, h, w)}")
    if limit is not None:
        ds = Subset(ds, range(min(limit, len(ds))))
    return ds


def stack_images(data, limit: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """The first `limit` (default all) images of a data set as one batch, and their labels."""
    n = len(data) if limit is None else min(limit, len(data))
    return torch.stack([data[i][0] for i in range(n)]), np.array([int(data[i][1]) for i in range(n)])


def recorded(sim: Simulator, record) -> set | None:
    """The nodes whose spikes a run keeps: "all", names (a list, or "a,b" as --record takes them),
    or None; a name the graph lacks is one line."""
    if not record:
        return None
    names = set(sim.order) if record == "all" else set(record.split(",") if isinstance(record, str) else record)
    bad = sorted(names - set(sim.graph.nodes))
    if bad:
        raise UserError(f"--record: no such node(s): {', '.join(bad)}")
    return names


def evaluate(sim: Simulator, data, steps: int, batch_size: int = 64, progress: bool = True,
             record: set | None = None, ranks: Dist | None = None, marks: tuple = (),
             keep_logits: bool = False) -> Evaluation:
    """Run every image of `data` for `steps` steps; image i of the set is gating sample i;
    counts also after each step of `marks` (Evaluation.at); every step's outputs with `keep_logits`.
    With `ranks` (torchrun), each rank runs a contiguous block of the batches and every rank
    returns the whole set's figures: the same batches, samples and counts as one process."""
    ranks = ranks or Dist()
    n = len(data)
    check_fits(steps * (min(n, batch_size) * graph_classes(sim.graph) * 8 + 64),
               f"the outputs of {steps} steps x {min(n, batch_size)} samples", "-T")   # kept for every t
    if record:          # recordings are kept whole (one byte per neuron, step and image) until returned
        size = sum(int(np.prod(_shape(sim.graph.nodes[k]))) for k in record)
        check_fits(size * steps * n, f"recording {len(record)} node(s) for {n} images x {steps} steps",
                   "-T, -n or the recorded nodes")
    mine = ranks.shard(-(-n // batch_size))
    first, stop = mine.start * batch_size, min(mine.stop * batch_size, n)
    ev = Evaluation(steps, 0, np.zeros(steps, np.int64))
    offset = first
    recorded: dict[str, list] = {}
    loader = DataLoader(Subset(data, range(first, stop)), batch_size=batch_size)
    for x, y in bar(loader, desc=f"simulate T={steps}", enabled=progress and ranks.main, unit="batch"):
        r = sim.run(x, steps, first_sample=offset, record=record, marks=marks)
        for k, v in r.spikes.items():
            recorded.setdefault(k, []).append(v.transpose(0, 1).to(torch.uint8).numpy())
        offset += len(y)
        pred = r.predictions_by_step()
        part = Evaluation(steps, len(y), (pred == y[None, :]).sum(1).numpy(), r.spike_counts, r.synaptic_events,
                          r.gated_events, r.host_macs, r.neuron_updates, r.saturation,
                          spike_messages=r.spike_messages, synaptic_messages=r.synaptic_messages, at=r.at,
                          logits=r.logits.cpu() if keep_logits else None)
        ev.add(part)
    ev.spikes = {k: np.concatenate(v) for k, v in recorded.items()}
    if not ranks.enabled:
        return ev
    whole = Evaluation(steps, 0, np.zeros(steps, np.int64))
    for part in ranks.gather(ev):
        whole.add(part)
    return whole

"""Calibration of a converted network for few steps (`mst export --calibrate N`).

At small T an IF neuron's mean output misses its QCFS activation by a systematic amount (the
quantization of T x M levels, and the errors of the layers before it). SNN Calibration (Li et al.,
ICML 2021, "light pipeline"; docs/sources.md, "Few steps") measures, layer by layer in order, the
mean error e between the ANN's activation and the SNN's mean output over T steps on a few training
images, with the layers before already calibrated, and moves it into the neuron:

- `bias` (bias correction): the neuron's constant current grows by e (in its own units), every step;
- `potential` (potential correction): its initial potential grows by T e, once;
- `both`: half of e each way.

Errors are per neuron element (the node's fields broadcast to its shape), averaged over the images.
The ANN's activations come from the same model exported with L levels (`reference`, its QCFS's
levels): run for one step, it is the quantized ANN exactly (ir/nodes.py ResetSubIF). Only
ResetSubIF fields change; gating keeps its seed and streams, so the calibrated graph runs exactly
like any other in both backends.
"""
from __future__ import annotations

import copy
import json

import nir
import numpy as np
import torch

from ..errors import UserError
from ..ir import nodes as X
from ..ir.topology import Topology
from ..loihi.plan import uniform
from ..progress import bar
from ..simulate.engine import Simulator

METHODS = ("bias", "potential", "both")
SCALES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)    # of a reset-to-zero neuron's threshold, tried in turn


def _neurons(graph: nir.NIRGraph, kind=X.ResetSubIF) -> list[str]:
    return [n for n in Topology(graph).order if isinstance(graph.nodes[n], kind)]


def _threshold(node: X.ResetSubIF, name: str) -> float:
    th = uniform(node.threshold, "threshold", name, who="calibration")
    if not th > 0:
        raise UserError(f"calibration: {name} needs a positive threshold")
    return th


def _outputs(graph: nir.NIRGraph, x: torch.Tensor, steps: int, nodes: set, batch: int, device="cpu") -> dict:
    """Per node, the mean payload per step of every image (images, *shape), float64, on the CPU."""
    sim = Simulator(graph, device, dtype=torch.float64)
    out: dict[str, list] = {n: [] for n in nodes}
    for i in range(0, len(x), batch):
        r = sim.run(x[i:i + batch], steps, first_sample=i, record=nodes, count=False)
        for n in nodes:
            out[n].append(r.spikes[n].double().mean(0).cpu())
    return {n: torch.cat(v) for n, v in out.items()}


def calibrate(graph: nir.NIRGraph, reference: nir.NIRGraph, x: torch.Tensor, steps: int,
              method: str = "both", batch: int = 64, progress: bool = True, device="cpu") -> nir.NIRGraph:
    """A copy of `graph` calibrated for `steps` steps on images x (N, *input shape); `reference`
    is the same model exported with its QCFS levels (one step of it = the quantized ANN); the
    simulator runs on `device` (a torch device or its name)."""
    if method not in METHODS:
        raise UserError(f"calibration method must be one of {list(METHODS)}, got {method!r}")
    names = _neurons(graph)
    if not names:
        raise UserError("calibration: the graph has no converted (ResetSubIF) neurons")
    if names != _neurons(reference):
        raise UserError("calibration: the reference graph is not the same network")
    graph = copy.deepcopy(graph)
    share = {"bias": 1.0, "potential": 0.0, "both": 0.5}[method]       # of e into the bias; the rest into v_init
    target = _outputs(reference, x, 1, set(names), batch, device)
    for n in names:                       # in the units of the calibrated graph's threshold
        target[n] = target[n] * (_threshold(reference.nodes[n], n) / _threshold(graph.nodes[n], n))
    for n in bar(names, desc=f"calibrate T={steps}", enabled=progress, unit="layer"):
        node = graph.nodes[n]
        th = _threshold(node, n)
        mean = _outputs(graph, x, steps, {n}, batch, device)[n]
        e = ((target[n] - mean).mean(0) * th).numpy()          # volts per step, per element
        shape = tuple(int(v) for v in node.shape)
        node.bias = (np.broadcast_to(np.asarray(node.bias, np.float64), shape) + share * e).astype(np.float32)
        node.v_init = (np.broadcast_to(np.asarray(node.v_init, np.float64), shape)
                       + (1.0 - share) * steps * e).astype(np.float32)
    graph.metadata = {**(graph.metadata or {}), "calibrated": f"{method}, T={steps}, {len(x)} images"}
    return graph


def calibrate_thresholds(graph: nir.NIRGraph, reference: nir.NIRGraph, x: torch.Tensor, steps: int,
                         batch: int = 64, progress: bool = True, device="cpu") -> nir.NIRGraph:
    """A copy of a `--reset zero` export (stock IF neurons) with each layer's threshold scaled, in
    order, by the factor of SCALES whose mean output over `steps` steps is nearest (mean squared)
    to the ANN's activation on images x. A neuron that resets to zero loses the potential above
    its threshold at every spike, so its rate at the conversion's threshold lam falls short
    (1 / ceil(lam / x) for an input x per step); a lower threshold, not a bias, makes up for it,
    since the spike still stands for lam (the next layer's weights)."""
    names = _neurons(graph, nir.IF)
    if not names:
        raise UserError("calibration: the graph has no IF neurons (export with --reset zero)")
    if names != _neurons(reference):
        raise UserError("calibration: the reference graph is not the same network")
    graph = copy.deepcopy(graph)
    target = _outputs(reference, x, 1, set(names), batch, device)
    chosen = {}
    for n in bar(names, desc=f"calibrate thresholds T={steps}", enabled=progress, unit="layer"):
        node = graph.nodes[n]
        lam = uniform(node.v_threshold, "threshold", n, who="calibration")
        target_n = target[n] * (_threshold(reference.nodes[n], n) / lam)      # in spikes of lam
        errors = []
        for a in SCALES:
            node.v_threshold = np.full_like(np.asarray(node.v_threshold), a * lam, dtype=np.float32)
            mean = _outputs(graph, x, steps, {n}, batch, device)[n]
            errors.append(float(((mean - target_n) ** 2).mean()))
        chosen[n] = SCALES[int(np.argmin(errors))]
        node.v_threshold = np.full_like(np.asarray(node.v_threshold), chosen[n] * lam, dtype=np.float32)
    graph.metadata = {**(graph.metadata or {}), "calibrated": f"thresholds, T={steps}, {len(x)} images",
                      "threshold_scales": json.dumps(chosen)}
    return graph

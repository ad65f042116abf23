"""`mst parity`: run a NIR graph in the reference simulator and in Lava on the same images and
gating samples, and compare every neuron's spikes one by one.

Criteria: fixed point, zero differing spikes at every node and identical logits (both backends
run the integers of docs/fixed-point.md). Float, identical predictions and at most
FLOAT_TOLERANCE of the reference's spikes differing: float sums in another order may round a
membrane across its threshold (measured: zero on every graph we ship, see docs/results.md).
"""
from __future__ import annotations

import sys
import time

import numpy as np
import torch

from ..backends.lava_nc.run import LavaRun, node_bytes, run_bytes, run_lava
from ..errors import UserError
from ..ir.io import read_graph
from ..backends.lava_nc.netx_job import is_netx_file
from ..backends.lava_nc.network import SUPPORTED as LAVA_SUPPORTED
from ..ir.blocks import blocks, feeds
from ..ir.silence import silent
from ..ir.topology import NEURONS, Topology, check_supported
from ..machine import available_memory
from ..simulate.engine import Result, Simulator

FLOAT_TOLERANCE = 1e-3


def compare_spikes(ref: np.ndarray, lava: np.ndarray, exact: bool = True) -> dict:
    """ref, lava: (images, T, *shape) bool, payloads or message values. Count and first difference
    in (step, image, index) order. Float runs (`exact` False) compare message values (a relay's
    partial sums) to 1e-5 of the largest: float32 and float64 sums differ in their last bits."""
    diff = ref != lava
    if not exact and ref.dtype.kind == "f":
        diff = ~np.isclose(ref, lava, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max(initial=0.0)))
    count = np.count_nonzero if ref.dtype.kind == "f" else np.sum     # sigma-delta values: messages sent
    out = {"spikes_reference": int(count(ref)), "spikes_lava": int(count(lava)), "mismatched": int(diff.sum()),
           "first": None}
    if out["mismatched"]:
        d = diff.reshape(diff.shape[0], diff.shape[1], -1).transpose(1, 0, 2)     # (T, images, n)
        step, image, flat = np.unravel_index(int(np.flatnonzero(d)[0]), d.shape)
        index = np.unravel_index(int(flat), ref.shape[2:])
        out["first"] = {"step": int(step) + 1, "image": int(image), "index": [int(i) for i in index]}
    return out


def compare(ref: Result, lava: LavaRun, fixed_point: bool) -> dict:
    per_node = {}
    for name, spikes in ref.spikes.items():
        if name not in lava.spikes:
            raise UserError(f"the Lava run recorded no spikes for neuron {name}")
        per_node[name] = compare_spikes(spikes.numpy().swapaxes(0, 1), lava.spikes[name], exact=fixed_point)
        if fixed_point:
            per_node[name]["saturation_reference"] = ref.saturation.get(name)
            per_node[name]["saturation_lava"] = lava.saturation.get(name)
    ref_logits = ref.logits.numpy()
    total = sum(v["mismatched"] for v in per_node.values())
    spikes = sum(v["spikes_reference"] for v in per_node.values())
    same_pred = bool(np.array_equal(ref_logits.sum(0).argmax(-1), lava.predictions()))
    max_diff = float(np.abs(ref_logits - lava.logits).max())
    failed = []                                   # what broke the criterion, for a person
    if fixed_point:
        criterion = "fixed point: zero mismatched spikes, identical logits and saturation counts" + \
            ("" if lava.saturation else " (saturation: not recorded by this Lava run)")
        if total:
            failed.append(f"{total} spikes differ")
        if max_diff != 0.0:
            failed.append(f"logits differ by up to {max_diff:.3g}")
        failed += [f"{k}: saturation counts differ (reference {v['saturation_reference']}, "
                   f"Lava {v['saturation_lava']})" for k, v in per_node.items()
                   if v["saturation_lava"] is not None and v["saturation_reference"] != v["saturation_lava"]]
    else:
        criterion = (f"float: identical predictions and mismatched spikes <= {FLOAT_TOLERANCE:g} "
                     "of the reference's spikes")
        if not same_pred:
            failed.append("predictions differ")
        if total > FLOAT_TOLERANCE * max(spikes, 1):
            failed.append(f"{total} of {spikes} spikes differ")
    passed = not failed
    return {"mismatched_spikes": total, "reference_spikes": spikes, "predictions_equal": same_pred,
            "logits_max_abs_diff": max_diff, "passed": passed, "criterion": criterion, "failed": failed,
            "per_node": per_node}


def run_parity(graph_path, x: torch.Tensor, steps: int, fixed_point: bool, timeout: float = 900,
               progress: bool = True, chunk: int | None = None, device="cpu", reading: dict | None = None,
               block_nodes: int | None = None, graph=None) -> dict:
    """Both backends on inputs x (B, ...) or (B, T, ...), samples 0..B-1; the report of the module
    docstring. `chunk`, `device`: the reference simulator's steps at a time (None: from memory)
    and device; `reading`: read_graph's dt, producer and reset (ir/io.py). `block_nodes`: run Lava on blocks of
    at most this many nodes (ir/blocks.py), each fed the reference's spikes; None: the whole
    graph when it fits in half the memory available, else blocks that do. `graph`: the file as the
    caller already read it (with `reading`): read once per process."""
    if graph is None:
        graph = read_graph(graph_path, **(reading or {}))
    sim = Simulator(graph, device, torch.float64, fixed_point=fixed_point, chunk=chunk)
    netx = is_netx_file(graph_path)                 # runs in netx's own processes
    if not netx:
        check_supported(graph, LAVA_SUPPORTED, "the Lava backend")
    neurons = {k for k, n in graph.nodes.items() if isinstance(n, NEURONS)}
    t0 = time.perf_counter()
    ref = sim.run(x, steps, record=neurons)
    ref_seconds = time.perf_counter() - t0
    topo = Topology(graph)
    parts = None if netx else lava_blocks(topo, len(x), steps, block_nodes)   # netx: whole
    if parts is None:
        lava = run_lava(graph_path, x.numpy(), steps, fixed_point, timeout=timeout, progress=progress, reading=reading,
                        graph=graph)
    else:
        lava = _by_blocks(graph_path, graph, topo, parts, ref, x.numpy(), steps, fixed_point, timeout,
                          progress, reading)
    res = compare(ref, lava, fixed_point)
    res["warnings"] = silent(graph, ref.spike_counts)
    return {"graph": str(graph_path), "mode": "fixed_point" if fixed_point else "float", "images": len(x),
            "steps": steps, **res, "lava_seconds": lava.seconds, "reference_seconds": ref_seconds,
            "lava_predictions": lava.predictions().tolist(),
            "lava": {k: lava.meta[k] for k in ("lava_steps", "depth", "processes", "delays_inserted",
                                                "build_seconds", "compile_seconds", "run_seconds", "blocks")
                     if k in lava.meta}}


def lava_blocks(topo: Topology, images: int, steps: int, block_nodes: int | None) -> list | None:
    """The blocks Lava runs one at a time, or None for the whole graph in one run."""
    if block_nodes is None:
        cost = node_bytes(topo, images, steps)
        budget = available_memory() // 2 - run_bytes(topo)
        if sum(cost.values()) <= budget:
            return None
    else:
        cost, budget = {n: 1 for n in topo.order}, block_nodes
    parts = blocks(topo, cost, budget)
    return None if len(parts) == 1 else parts


def _by_blocks(graph_path, graph, topo, parts, ref: Result, images, steps, fixed_point, timeout, progress, reading) -> LavaRun:
    """Lava on each block, fed the reference's spikes; one LavaRun of all their records (the
    logits from the block that holds the output)."""
    whole = LavaRun(np.zeros((steps, len(images), 0)), meta={"lava_steps": 0, "depth": 0, "processes": 0,
                                                            "delays_inserted": 0, "build_seconds": 0.0,
                                                            "compile_seconds": 0.0, "run_seconds": 0.0,
                                                            "blocks": []})
    for i, members in enumerate(parts):
        fed = [n for n in feeds(topo, members) if n != topo.input]
        played = {n: ref.spikes[n].numpy().swapaxes(0, 1) for n in fed}
        run = run_lava(graph_path, images, steps, fixed_point, timeout=timeout, progress=progress, reading=reading,
                       block=members, feeds=played, graph=graph)
        m, w = run.meta, whole.meta
        for k in ("lava_steps", "delays_inserted", "build_seconds", "compile_seconds", "run_seconds"):
            w[k] += m[k]
        w["depth"], w["processes"] = max(w["depth"], m["depth"]), max(w["processes"], m["processes"])
        w["blocks"].append({"first": members[0], "last": members[-1], "nodes": len(members), "fed_by": fed,
                            "processes": m["processes"], "lava_steps": m["lava_steps"], "seconds": run.seconds})
        whole.spikes.update(run.spikes)
        whole.saturation.update(run.saturation)
        if topo.output in members:
            whole.logits, whole.raw = run.logits, run.raw
        if progress:
            print(f"block {i + 1}/{len(parts)}: {len(members)} nodes ({members[0]} .. {members[-1]}), "
                  f"{m['processes']} processes, {run.seconds:.1f} s", file=sys.stderr, flush=True)
    return whole

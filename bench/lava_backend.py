"""Lava backend speed beside the reference simulator, on the same graphs, measured in one run.

    .venv/bin/python bench/lava_backend.py [--ckpt runs/demo/mst-tiny.pt] [-n 4] [-T 32] [--layers 1,2,5,10,20]

For mst-tiny (the checkpoint if it exists, else random weights; digits images) and for chains of
L Dense + IF layers (width 100, random weights, the 10-layer chain of docs/sources.md, "Lava in practice"):
Lava's compile time (graph to processes, Lava compile, process start) and simulated steps per
second, and the reference simulator's steps per second (all images in one batch; a "step" is one
image-step, so both count the same work), in float and bit-accurate fixed point. Each Lava run
twice in this one run: with the process models in one Lava process (groups 1, the default,
procs/group.py) and one process per model (groups 0, Lava's usual layout); both must give the
same spikes (the parity columns compare each with the reference).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import nir
import numpy as np
import torch

from mstdeploy.backends.lava_nc.run import run_lava
from mstdeploy.compare.parity import compare
from mstdeploy.ir.topology import NEURONS
from mstdeploy.ir import nodes as X
from mstdeploy.ir.io import write_graph
from mstdeploy.export.lower import to_nir
from mstdeploy.models import checkpoint
from mstdeploy.data import datasets
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model
from mstdeploy.simulate.engine import Simulator


def dense_chain(layers: int, width: int = 100, seed: int = 0) -> nir.NIRGraph:
    g = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([width])})}
    edges, prev = [], "input"
    for i in range(layers):
        w = g.normal(0, 2.0 / width ** 0.5, (width, width)).astype(np.float32)
        nodes[f"fc{i}"] = nir.Linear(weight=w)
        nodes[f"if{i}"] = X.ResetSubIF(shape=(width,), threshold=1.0, v_init=0.5, bias=0.1)
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"if{i}")]
        prev = f"if{i}"
    nodes["head"] = nir.Linear(weight=g.normal(0, 0.1, (10, width)).astype(np.float32))
    nodes["output"] = nir.Output(output_type={"output": np.array([10])})
    edges += [(prev, "head"), ("head", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def measure(name: str, graph: nir.NIRGraph, x: np.ndarray, T: int, fixed: bool, tmp: pathlib.Path) -> None:
    path = tmp / f"{name}.nir"
    write_graph(graph, path)
    sim = Simulator(graph, "cpu", torch.float64, fixed_point=fixed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    sim.run(xt, 2)                                               # warm-up
    t0 = time.perf_counter()
    sim.run(xt, T)
    ref_steps_s = len(x) * T / (time.perf_counter() - t0)
    neurons = {k for k, n in graph.nodes.items() if isinstance(n, NEURONS)}
    ref = sim.run(xt, T, record=neurons)
    rates = {}
    for groups in (0, 1):
        lava = run_lava(path, x, T, fixed, progress=False, timeout=3600, groups=groups)
        m = lava.meta
        rates[groups] = m["lava_steps"] / m["run_seconds"]
        differ = compare(ref, lava, fixed)["mismatched_spikes"]
        print(f"| {name} | {'fixed' if fixed else 'float'} | {groups} | {m['processes']} | {m['depth']} | "
              f"{m['build_seconds'] + m['compile_seconds']:.1f} s | {rates[groups]:.1f} | {ref_steps_s:.0f} | "
              f"{ref_steps_s / rates[groups]:.0f}x | {differ} |", flush=True)
    print(f"| | | groups 1 / groups 0 | | | | {rates[1] / rates[0]:.2f}x | | | |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="runs/demo/mst-tiny.pt")
    ap.add_argument("-n", "--images", type=int, default=4)
    ap.add_argument("-T", "--steps", type=int, default=32)
    ap.add_argument("--layers", default="1,2,5,10,20")
    a = ap.parse_args()
    torch.set_num_threads(2)
    print(f"{a.images} images x T={a.steps}; Lava steps/s counts Lava time steps (images x T + depth); "
          f"reference steps/s counts image-steps (images x T, one batch)", file=sys.stderr)
    print("| graph | mode | groups | processes | depth | Lava compile | Lava steps/s | reference steps/s | "
          "reference / Lava | spikes differ |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        if pathlib.Path(a.ckpt).exists():
            model, _ = checkpoint.load(a.ckpt)
            label = "mst-tiny"
        else:
            torch.manual_seed(0)
            model = build_model(preset("mst-tiny", in_chans=1, attention="spiking", mask=0.75))
            label = "mst-tiny (random)"
        x = datasets.load("digits", "test", model.config.img_size).tensors[0][:a.images].numpy()
        graph = to_nir(model)
        for fixed in (False, True):
            measure(label, graph, x, a.steps, fixed, tmp)
        xc = np.random.default_rng(1).uniform(0, 1, (a.images, 100))
        for L in (int(v) for v in a.layers.split(",")):
            measure(f"Dense chain, {L} layers", dense_chain(L), xc, a.steps, True, tmp)


if __name__ == "__main__":
    main()

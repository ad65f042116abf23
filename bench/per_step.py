"""What one float synaptic call per step costs (simulate/ops.py per_step, docs/simulator-speed.md
section 5): the same runs with the calls batched over all K x B samples of a chunk (flat_steps,
what fixed point keeps), which round differently with K on some CPUs.

    .venv/bin/python bench/per_step.py [--runs 2]

Random-weight models (thresholds 1, so neurons fire), random inputs, float32 on the CPU; each
line: best of --runs for both layouts, measured in this one run, and their ratio.
"""
from __future__ import annotations

import argparse
import time

import torch

from mstdeploy.export.lower import to_nir
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model
from mstdeploy.simulate import ops
from mstdeploy.simulate.engine import Simulator

CASES = [("resnet18", {}, 32, 16), ("vgg16", {}, 32, 16), ("resnet18", {}, 128, 8), ("vgg16", {}, 128, 8),
         ("vgg16", {}, 4, 16), ("mst-fmnist", {"in_chans": 1}, 64, 8)]


def model(name: str, **kw):
    m = build_model(preset(name, **kw))
    for mod in m.modules():
        if hasattr(mod, "lam"):
            mod.lam.data.fill_(1.0)
    return m.eval().float()


def best(sim: Simulator, x, T: int, runs: int) -> float:
    sim.run(x, T)                                                   # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sim.run(x, T)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    per_step = ops.per_step
    for name, kw, B, T in CASES:
        g = to_nir(model(name, **kw))
        x = torch.rand(B, *Simulator(g).input_shape)
        secs = {}
        for layout, fn in (("batched", ops.flat_steps), ("per step", per_step)):
            ops.per_step = fn
            secs[layout] = best(Simulator(g), x, T, args.runs)
        ops.per_step = per_step
        print(f"{name} B={B} T={T}: batched {secs['batched']:.2f} s, per step {secs['per step']:.2f} s, "
              f"x{secs['per step'] / secs['batched']:.2f}", flush=True)


if __name__ == "__main__":
    main()

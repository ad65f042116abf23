"""Reference-simulator speed: time for T steps / (T x ANN forward time), on one batch.

    .venv/bin/python bench/simulate.py [--tiny-ckpt runs/demo/mst-tiny.pt] [--device auto] [--runs 5]

Prints, for mst-tiny (digits batch of 64, T=32) and mst-t (random weights, 2 random 224x224
images, T=8), the ratio (target <= 1.2, issue 14) and synaptic events per second. The timings
interleave in this one run, on the same batch, after a warm-up: each SNN run sits between two
timings of T ANN forwards, its ratio is taken against their mean, and the median of `--runs`
ratios is printed with their range (this machine's speed moves by 20% within minutes; a ratio
of neighbouring timings moves much less), with the minor page faults of the median SNN run.
`--glibc-default` skips the allocator setting a CPU Simulator makes (machine.keep_freed_memory,
docs/simulator-speed.md), to measure what it buys: run the bench once with it and once without.
"""
from __future__ import annotations

import argparse
import pathlib
import resource
import statistics
import time

import torch

from mstdeploy.export.lower import to_nir
from mstdeploy.models import checkpoint
from mstdeploy.data import datasets
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model
from mstdeploy.simulate import engine
from mstdeploy.simulate.engine import Simulator
from mstdeploy.machine import pick_device


def seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def bench(name: str, model, x: torch.Tensor, T: int, device, runs: int) -> None:
    model = model.eval().to(device)
    x = x.to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def ann():                                   # T forwards: what T steps of the SNN replace
        return seconds(lambda: ([model(x) for _ in range(T)], sync())) / T

    sim = Simulator(to_nir(model.cpu()), device)
    model.to(device)
    with torch.no_grad():
        model(x)
        sim.run(x, T)                                               # warm-up (caches, allocator)
        ratios, snns, anns, faulted = [], [], [], []
        for _ in range(runs):
            before, f0 = ann(), faults()
            snns.append(seconds(lambda: (sim.run(x, T), sync())))
            faulted.append(faults() - f0)
            anns.append((before + ann()) / 2)
            ratios.append(snns[-1] / (T * anns[-1]))
        r = sim.run(x, T)
    events = sum(r.synaptic_events.values())
    snn, a = statistics.median(snns), statistics.median(anns)
    print(f"{name:9s} batch {x.shape[0]:3d}  T={T:3d}  ANN {1000 * a:8.1f} ms  SNN {snn:7.2f} s  "
          f"ratio SNN/(T x ANN) = {statistics.median(ratios):5.2f} (median of {runs}, {min(ratios):.2f}-{max(ratios):.2f}; "
          f"target <= 1.2)  {events / snn / 1e6:8.1f} M synaptic events/s  ({events / x.shape[0]:,.0f} per image)  "
          f"{statistics.median(faulted):,.0f} page faults per SNN run",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny-ckpt", default="runs/demo/mst-tiny.pt")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--skip-t", action="store_true", help="only mst-tiny")
    ap.add_argument("--runs", type=int, default=5, help="SNN runs, each between two ANN timings")
    ap.add_argument("--glibc-default", action="store_true", help="leave glibc's malloc settings as they are")
    a = ap.parse_args()
    device = pick_device(a.device)
    if a.glibc_default:
        engine.keep_freed_memory = lambda: False
    torch.set_grad_enabled(False)
    print(f"device {device}, {torch.get_num_threads()} threads")
    if pathlib.Path(a.tiny_ckpt).exists():
        tiny, _ = checkpoint.load(a.tiny_ckpt)
        src = a.tiny_ckpt
    else:
        torch.manual_seed(0)
        tiny = build_model(preset("mst-tiny", in_chans=1, attention="spiking", mask=0.75))
        src = "random weights"
    x = datasets.load("digits", "test", tiny.config.img_size).tensors[0][:64]
    print(f"mst-tiny: {src}")
    bench("mst-tiny", tiny, x, 32, device, a.runs)
    if not a.skip_t:
        torch.manual_seed(0)
        big = build_model(preset("mst-t", attention="spiking", mask=0.75, num_classes=10))
        bench("mst-t", big, torch.randn(2, 3, 224, 224), 8, device, a.runs)


if __name__ == "__main__":
    main()

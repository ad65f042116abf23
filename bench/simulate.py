"""Reference-simulator speed: time for T steps / (T x ANN forward time), on one batch.

    .venv/bin/python bench/simulate.py [--tiny-ckpt runs/demo/mst-tiny.pt] [--device auto]

Prints, for mst-tiny (digits batch of 64, T=32) and mst-t (random weights, 2 random 224x224
images, T=8), the ratio (target <= 1.2, issue 14) and synaptic events per second. Both timings are taken
in this one run, on the same batch, after a warm-up.
"""
from __future__ import annotations

import argparse
import pathlib
import time

import torch

from mstdeploy.export.lower import to_nir
from mstdeploy.models import checkpoint
from mstdeploy.data import datasets
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model
from mstdeploy.simulate.engine import Simulator
from mstdeploy.machine import pick_device


def best_of(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench(name: str, model, x: torch.Tensor, T: int, device) -> None:
    model = model.eval().to(device)
    x = x.to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        model(x)
        ann = best_of(lambda: (model(x), sync()), 5)
    sim = Simulator(to_nir(model.cpu()), device)
    sim.run(x, min(T, 2))                                           # warm-up (caches, allocator)
    snn = best_of(lambda: (sim.run(x, T), sync()), 2)
    r = sim.run(x, T)
    events = sum(r.synaptic_events.values())
    print(f"{name:9s} batch {x.shape[0]:3d}  T={T:3d}  ANN {1000 * ann:8.1f} ms  SNN {snn:7.2f} s  "
          f"ratio SNN/(T x ANN) = {snn / (T * ann):5.2f}  (target <= 1.2)  "
          f"{events / snn / 1e6:8.1f} M synaptic events/s  ({events / x.shape[0]:,.0f} per image)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny-ckpt", default="runs/demo/mst-tiny.pt")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--skip-t", action="store_true", help="only mst-tiny")
    a = ap.parse_args()
    device = pick_device(a.device)
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
    bench("mst-tiny", tiny, x, 32, device)
    if not a.skip_t:
        torch.manual_seed(0)
        big = build_model(preset("mst-t", attention="spiking", mask=0.75, num_classes=10))
        bench("mst-t", big, torch.randn(2, 3, 224, 224), 8, device)


if __name__ == "__main__":
    main()

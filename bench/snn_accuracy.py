"""docs/results.md table: ANN vs converted SNN (reference simulator) for the mst-tiny checkpoints.

    .venv/bin/python bench/snn_accuracy.py [--ckpt-dir runs/bench-train] [-T 128]

Uses the checkpoints written by bench/train_digits.py; exports each to NIR (gating seed 0) and
simulates the whole digits test set once for T steps, reading accuracy at every t. A masked ANN's
accuracy depends on its random masks: the table gives the mean over mask seeds 0..9 of one
forward pass, and the accuracy of logits averaged over 64 mask draws (what an SNN, which redraws
its gates at every step, averages over at T = 64). The SNN reads the LayerNorm head both ways
(`mst export --layernorm`): cumulative (the exact readout) and per_step (the official conversion).
"""
from __future__ import annotations

import argparse
import json
import pathlib

import torch

from mstdeploy.atomic import write_text
from mstdeploy.export.lower import to_nir
from mstdeploy.models import checkpoint
from mstdeploy.data import datasets
from mstdeploy.models.evaluate import accuracy
from mstdeploy.simulate.engine import Simulator
from mstdeploy.simulate.evaluate import evaluate

REPORT = (8, 16, 32, 64, 128, 256)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt-dir", default="runs/bench-train")
    ap.add_argument("-T", type=int, default=128)
    a = ap.parse_args()
    rows = []
    for ck in sorted(pathlib.Path(a.ckpt_dir).glob("mst-tiny-*.pt")):
        model, _ = checkpoint.load(ck)
        test = datasets.load("digits", "test", model.config.img_size)
        seeds = range(10) if model.config.mask else range(1)
        ann = sum(accuracy(model, test, seed=s) for s in seeds) / len(seeds)
        snn = {}
        for reading in ("cumulative", "per_step"):
            ev = evaluate(Simulator(to_nir(model, seed=0, layernorm=reading)), test, a.T, progress=False)
            snn[reading] = {t: ev.accuracy(t) for t in REPORT if t <= a.T}
        torch.manual_seed(0)
        x, y = next(iter(torch.utils.data.DataLoader(test, batch_size=len(test))))
        avg = torch.stack([model(x) for _ in range(64 if model.config.mask else 1)]).mean(0)
        ann64 = (avg.argmax(1) == y).double().mean().item()
        row = {"checkpoint": ck.name, "attention": model.config.attention, "mask": model.config.mask,
               "ann": ann, "ann_64_draws": ann64, "snn": snn}
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_text(pathlib.Path(a.ckpt_dir) / "snn_accuracy.json", json.dumps(rows, indent=2))
    steps = [t for t in REPORT if t <= a.T]
    print("\n| attention | mask | ANN | ANN, 64 mask draws | head | " + " | ".join(f"SNN T={t}" for t in steps) + " |")
    print("|---" * (5 + len(steps)) + "|")
    for r in rows:
        for reading, acc in r["snn"].items():
            print(f"| {r['attention']} | {r['mask']} | {100 * r['ann']:.2f}% | {100 * r['ann_64_draws']:.2f}% | "
                  f"{reading} | " + " | ".join(f"{100 * acc[t]:.2f}%" for t in steps) + " |")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()

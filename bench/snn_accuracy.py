"""README table: ANN vs converted SNN (reference simulator) for the mst-tiny checkpoints.

    .venv/bin/python bench/snn_accuracy.py [--ckpt-dir runs/bench-train] [-T 128]

Uses the checkpoints written by bench/train_digits.py; exports each to NIR (gating seed 0) and
simulates the whole digits test set once for T steps, reading accuracy at every t.
"""
from __future__ import annotations

import argparse
import json
import pathlib

import torch

from mstdeploy.atomic import write_text
from mstdeploy.export.lower import to_nir
from mstdeploy.models import checkpoint, datasets
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
        ann = accuracy(model, test, seed=0)
        ev = evaluate(Simulator(to_nir(model, seed=0)), test, a.T, progress=False)
        row = {"checkpoint": ck.name, "attention": model.config.attention, "mask": model.config.mask,
               "ann": ann, "snn": {t: ev.accuracy(t) for t in REPORT if t <= a.T}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_text(pathlib.Path(a.ckpt_dir) / "snn_accuracy.json", json.dumps(rows, indent=2))
    steps = [t for t in REPORT if t <= a.T]
    print("\n| attention | mask | ANN | " + " | ".join(f"SNN T={t}" for t in steps) + " |")
    print("|---" * (3 + len(steps)) + "|")
    for r in rows:
        print(f"| {r['attention']} | {r['mask']} | {100 * r['ann']:.2f}% | "
              + " | ".join(f"{100 * r['snn'][t]:.2f}%" for t in steps) + " |")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()

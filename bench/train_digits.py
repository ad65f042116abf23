"""Reproduce docs/results.md's ANN accuracy table: mst-tiny on digits, both attention modes, mask 0/0.75.

    .venv/bin/python bench/train_digits.py [--epochs 60] [--out runs/bench-train]

Prints a markdown table and writes the checkpoints (reused by later benches) and results.json.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time

from mstdeploy.atomic import write_text
from mstdeploy.models.train import TrainArgs, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--out", default="runs/bench-train")
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    rows = []
    for attention in ("spiking", "softmax"):
        for mask in (0.0, 0.75):
            t0 = time.time()
            r = train(TrainArgs(model="mst-tiny", dataset="digits", epochs=a.epochs, progress=False,
                                out=str(out / f"mst-tiny-{attention}-{mask}.pt"),
                                overrides={"attention": attention, "mask": mask}))
            rows.append({"attention": attention, "mask": mask, "ann_accuracy": r["ann_accuracy"],
                         "seconds": round(time.time() - t0, 1)})
            print(f"{attention:8s} mask {mask:4.2f}: {100 * r['ann_accuracy']:.2f}%  "
                  f"({rows[-1]['seconds']} s)", flush=True)
    write_text(out / "results.json", json.dumps(rows, indent=2))
    print("\n| attention | mask | ANN top-1 (digits test, 360 images) | train time |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['attention']} | {r['mask']} | {100 * r['ann_accuracy']:.2f}% | {r['seconds']} s |")


if __name__ == "__main__":
    main()

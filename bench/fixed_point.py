"""docs/results.md table: fixed point against float on trained digits models, and Lava parity.

    .venv/bin/python bench/fixed_point.py [--ckpt-dir runs/bench-fixed] [-T 64] [--parity-images 8]

For mst-tiny (spiking and softmax attention, 75% RSM) and vgg-tiny (no mask and 50% RSM), trained
here if their checkpoints are missing (60 epochs, seed 0): the reference simulator's accuracy on
the whole digits test set (360 images) in float32 and in fixed point at several T, and
`mst parity --fixed-point` on the first images at T = 32 (Lava against the reference).
"""
from __future__ import annotations

import argparse
import json
import pathlib

import torch

from mstdeploy.atomic import write_text
from mstdeploy.ir.io import write_graph
from mstdeploy.export.lower import to_nir
from mstdeploy.models import checkpoint
from mstdeploy.data import datasets
from mstdeploy.models.evaluate import accuracy
from mstdeploy.models.train import TrainArgs, train
from mstdeploy.simulate.engine import Simulator
from mstdeploy.simulate.evaluate import evaluate, stack_images
from mstdeploy.compare.parity import run_parity

MODELS = {
    "mst-tiny-spiking-0.75": ("mst-tiny", {"attention": "spiking", "mask": 0.75}),
    "mst-tiny-softmax-0.75": ("mst-tiny", {"attention": "softmax", "mask": 0.75}),
    "vgg-tiny": ("vgg-tiny", {"mask": 0.0}),
    "vgg-tiny-0.5": ("vgg-tiny", {"mask": 0.5}),
}
REPORT = (8, 16, 32, 64)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt-dir", default="runs/bench-fixed")
    ap.add_argument("-T", "--steps", type=int, default=64)
    ap.add_argument("--parity-images", type=int, default=8)
    a = ap.parse_args()
    d = pathlib.Path(a.ckpt_dir)
    rows = []
    for name, (model, overrides) in MODELS.items():
        ck = d / f"{name}.pt"
        if not ck.exists():
            train(TrainArgs(model=model, dataset="digits", out=str(ck), overrides=overrides, epochs=60,
                            progress=False))
        m, _ = checkpoint.load(ck)
        test = datasets.load("digits", "test", m.config.img_size)
        graph = to_nir(m, seed=0)
        path = d / f"{name}.nir"
        write_graph(graph, path)
        row = {"model": name, "ann": accuracy(m, test)}
        for mode, fixed in (("float", False), ("fixed", True)):
            ev = evaluate(Simulator(graph, fixed_point=fixed), test, a.steps, progress=False)
            row[mode] = {t: ev.accuracy(t) for t in REPORT if t <= a.steps}
            if fixed:
                row["saturation"] = {k: v for k, v in ev.saturation.items() if any(v.values())}
        torch.set_num_threads(2)
        x, _ = stack_images(test, a.parity_images)
        rep = run_parity(path, x, 32, fixed_point=True, timeout=1800, progress=False)
        write_text(d / f"{name}-parity.json", json.dumps(rep, indent=2))
        row["parity"] = {k: rep[k] for k in ("mismatched_spikes", "reference_spikes", "logits_max_abs_diff",
                                             "lava_seconds", "passed")}
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_text(d / "results.json", json.dumps(rows, indent=2))
    ts = [t for t in REPORT if t <= a.steps]
    print("\n| model | ANN | " + " | ".join(f"float T={t} | fixed T={t}" for t in ts) +
          f" | Lava fixed point, {a.parity_images} images, T=32 |")
    print("|---|---|" + "---|---|" * len(ts) + "---|")
    for r in rows:
        p = r["parity"]
        print(f"| {r['model']} | {100 * r['ann']:.2f}% | " +
              " | ".join(f"{100 * r['float'][t]:.2f}% | {100 * r['fixed'][t]:.2f}%" for t in ts) +
              f" | {p['mismatched_spikes']} of {p['reference_spikes']:,} spikes differ ({p['lava_seconds']:.0f} s) |")


if __name__ == "__main__":
    main()

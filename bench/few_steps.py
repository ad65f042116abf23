"""docs/results.md table: few steps at the ANN's accuracy, and what it costs, on a real benchmark.

    .venv/bin/python bench/few_steps.py [--dataset fashion-mnist] [--model mst-fmnist] \
        [--ckpt-dir runs/bench-few-steps] [--masks 0,0.75] [-n 10000] [--calibrate 256] [--epochs 30] \
        [-T 32] [--graded-steps 32] [--calibrate-steps 1,2,4,8,16,32] \
        [--configs binary,graded,calibrated] [--device auto|cpu|cuda] [--tables]

Per masking ratio, one model (trained when its checkpoint is missing: `mst train --model
mst-fmnist --mask P --epochs 30 --batch-size 128`), its ANN accuracy on the test images, and the
SNN at T = 1, 2, 4, .., -T in five configurations: binary spikes; binary, calibrated for each T of
--calibrate-steps on `--calibrate` training images (compare/calibrate.py, potentials and biases); graded spikes M = 2,
4 and L (the QCFS levels), up to --graded-steps. Each run goes through the energy report (compare/energy_report.py):
accuracy, synaptic events (payload-weighted) and messages, Loihi 1 / Loihi 2 / 45 nm energy and
the ratios to the fp32 and int8 ANN at every T, and the smallest T within 0.5 point of the ANN.
Prints one JSON line per run, then a markdown table; writes results.json (a mask run replaces
that mask's entry and keeps the others) and a plot of accuracy and energy against T per configuration.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time

from mstdeploy.atomic import write_text
from mstdeploy.compare.energy_report import energy_report
from mstdeploy.data import datasets
from mstdeploy.distributed import setup
from mstdeploy.machine import DEVICES
from mstdeploy.compare.calibrate import calibrate
from mstdeploy.export.lower import to_nir
from mstdeploy.models import checkpoint
from mstdeploy.models.evaluate import accuracy
from mstdeploy.models.train import TrainArgs, train
from mstdeploy.simulate.evaluate import stack_images

STEPS = (1, 2, 4, 8, 16, 32)            # the table's columns


def _run(graph, test, steps, ann_acc, label, ranks):
    t0 = time.time()
    rep, _ = energy_report(graph, test, steps, source=label, dataset="", progress=False, ann_accuracy=ann_acc,
                           ranks=ranks)
    run = rep["runs"][0]
    rows = {int(t): {"accuracy": r["accuracy"], "synaptic_events": r["per_inference"]["synaptic_events"],
                     "synaptic_messages": r["per_inference"]["synaptic_messages"],
                     "loihi1_uJ": r["energy_uJ"]["loihi1"]["total"], "loihi2_uJ": r["energy_uJ"]["loihi2"]["total"],
                     "fp32_uJ": r["energy_uJ"]["45nm-fp32"]["total"], "vs_fp32": r["vs_ann"]["45nm-fp32"],
                     "vs_int8": r["vs_ann"]["45nm-int8"]} for t, r in run["by_step"].items()}
    print(json.dumps({"run": label, "seconds": round(time.time() - t0, 1), "by_step": rows,
                      "within": run["within_tolerance"]}), flush=True)
    return rows, rep["ann"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data", default=None)
    ap.add_argument("--model", default="mst-fmnist")
    ap.add_argument("--ckpt-dir", default="runs/bench-few-steps")
    ap.add_argument("--masks", default="0,0.75")
    ap.add_argument("-n", "--images", type=int, default=10000)
    ap.add_argument("--calibrate", type=int, default=256, help="training images for calibration")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("-T", "--steps", type=int, default=32, help="binary spikes: up to this T")
    ap.add_argument("--graded-steps", type=int, default=32, help="graded spikes: up to this T")
    ap.add_argument("--calibrate-steps", default="1,2,4,8,16,32", help="the T each calibration is for")
    ap.add_argument("--configs", default="binary,graded,calibrated",
                    help="which configurations to run; the others keep their rows in results.json")
    ap.add_argument("--device", default="auto", choices=DEVICES, help="training, simulation and calibration (auto: CUDA if any)")
    ap.add_argument("--tables", action="store_true", help="print results.json's tables and plot it; run nothing")
    a = ap.parse_args()
    ranks = setup(a.device)
    d = pathlib.Path(a.ckpt_dir)
    out = d / "results.json"
    results = json.loads(out.read_text()) if out.exists() else {}   # other masks' rows stay
    for res in results.values():                                      # JSON's keys are strings; T is an int
        res["runs"] = {k: {int(t): r for t, r in v.items()} for k, v in res["runs"].items()}
    for p in ([] if a.tables else (float(v) for v in a.masks.split(","))):
        ck = d / f"{a.model}-{a.dataset}-mask{p:g}.pt"
        if not ck.exists():
            train(TrainArgs(model=a.model, dataset=a.dataset, data=a.data, out=str(ck), epochs=a.epochs,
                            batch_size=128, device=a.device, overrides={"mask": p}))
        model, _ = checkpoint.load(ck)
        L = model.config.levels
        test = datasets.load(a.dataset, "test", model.config.img_size, a.data)
        if a.images < len(test):
            from torch.utils.data import Subset
            test = Subset(test, range(a.images))
        ann_acc = accuracy(model, test)
        print(json.dumps({"mask": p, "ann_accuracy": ann_acc, "levels": L}), flush=True)
        x_cal, _ = stack_images(datasets.load(a.dataset, "train", model.config.img_size, a.data), a.calibrate)
        reference = to_nir(model, seed=0, spike_levels=L)
        old = results.get(str(p), {})
        runs = dict(old.get("runs", {}))
        ann, configs = old.get("ann"), a.configs.split(",")
        for m in sorted({1, 2, 4, L}):
            name = "binary" if m == 1 else f"graded M={m}" + (" (= L)" if m == L else "")
            if ("binary" if m == 1 else "graded") in configs:
                runs[name], ann = _run(to_nir(model, seed=0, spike_levels=m), test,
                                       a.steps if m == 1 else a.graded_steps, ann_acc, f"mask {p:g} M={m}", ranks)
        if "calibrated" in configs:
            runs.setdefault("binary+calibration", {})
            for t in (int(v) for v in a.calibrate_steps.split(",")):
                g = calibrate(to_nir(model, seed=0), reference, x_cal, t, progress=False, device=ranks.device)
                runs["binary+calibration"][t] = _run(g, test, t, ann_acc, f"mask {p:g} calibrated T={t}", ranks)[0][t]
        if ann is None:
            raise SystemExit("--configs left out every run: nothing priced the ANN")
        results[str(p)] = {"ann_accuracy": ann_acc, "levels": L, "ann": ann, "runs": runs}
        write_text(out, json.dumps(results, indent=2))
    _table(results)
    _plot(results, d / "few_steps.png")


def _table(results: dict) -> None:
    for p, res in results.items():
        print(f"\nmask {p}: ANN {100 * res['ann_accuracy']:.2f}% (L = {res['levels']}), "
              f"{res['ann']['energy_uJ']['45nm-fp32']:.2f} uJ fp32 / {res['ann']['energy_uJ']['45nm-int8']:.3f} uJ int8")
        print("| configuration | " + " | ".join(f"T={t}" for t in STEPS) + " | first T within 0.5 pt |")
        print("|---|" + "---|" * (len(STEPS) + 1))
        for name, rows in res["runs"].items():
            cells, first = [], "-"
            for t in STEPS:
                r = rows.get(t)
                if r is None:
                    cells.append("")
                    continue
                cells.append(f"{100 * r['accuracy']:.2f}% x{r['vs_fp32']:.2f} / x{r['vs_int8']:.2f}")
                if first == "-" and r["accuracy"] >= res["ann_accuracy"] - 0.005:
                    first = f"T={t}: x{r['vs_fp32']:.2f} fp32, x{r['vs_int8']:.2f} int8, {r['loihi2_uJ']:.2f} uJ Loihi 2"
            print(f"| {name} | " + " | ".join(cells) + f" | {first} |")
        print("cells: SNN accuracy, energy / fp32 ANN (45 nm, payload-weighted), energy / int8 ANN")
        print("\n| configuration | T | accuracy | synaptic events | messages | Loihi 1 | Loihi 2 | 45 nm fp32 "
              "| / fp32 ANN | / int8 ANN |\n" + "|---" * 10 + "|")
        for name, rows in res["runs"].items():
            for t in STEPS:
                r = rows.get(t)
                if r is not None:
                    print(f"| {name} | {t} | {100 * r['accuracy']:.2f}% | {r['synaptic_events']:,.0f} | "
                          f"{r['synaptic_messages']:,.0f} | {r['loihi1_uJ']:.1f} uJ | {r['loihi2_uJ']:.1f} uJ | "
                          f"{r['fp32_uJ']:.2f} uJ | x{r['vs_fp32']:.2f} | x{r['vs_int8']:.2f} |")


def _plot(results: dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mstdeploy.compare.plots import save_png
    fig, axes = plt.subplots(len(results), 2, figsize=(11, 4 * len(results)), squeeze=False)
    for (p, res), (acc_ax, en_ax) in zip(results.items(), axes):
        for name, rows in res["runs"].items():
            ts = sorted(int(t) for t in rows)
            acc_ax.plot(ts, [100 * rows[t]["accuracy"] for t in ts], marker="o", label=name)
            en_ax.plot(ts, [rows[t]["vs_fp32"] for t in ts], marker="o", label=name)
        acc_ax.axhline(100 * res["ann_accuracy"], color="k", ls="--", label="ANN")
        acc_ax.axhspan(100 * res["ann_accuracy"] - 0.5, 100 * res["ann_accuracy"], color="k", alpha=0.08)
        en_ax.axhline(1.0, color="k", ls="--", label="fp32 ANN")
        for ax in (acc_ax, en_ax):
            ax.set_xscale("log", base=2)
            ax.set_xticks(STEPS, [str(t) for t in STEPS])
            ax.set_xlabel("time steps T")
            ax.grid(alpha=0.3)
        acc_ax.set_ylabel("test accuracy (%)")
        acc_ax.set_title(f"Accuracy against T (mask {p})")
        en_ax.set_ylabel("energy / fp32 ANN (45 nm, payload-weighted)")
        en_ax.set_yscale("log")
        en_ax.set_title(f"Energy against T (mask {p})")
        acc_ax.legend(fontsize=8)
    save_png(fig, path)


if __name__ == "__main__":
    main()

"""docs/results.md table: SAFormer (directly trained SNN) beside mst-tiny (converted) at equal T.

    .venv/bin/python bench/saformer.py [--ckpt-dir runs/bench-saformer] [--epochs 40] \
        [--mst-dir runs/bench-masking] [--mst-epochs 120] [-T 4,8,16,32] [--lava-images 8]

Trains (or reuses) saformer-tiny without masking and with 75% RSM on q, k, attn, and mst-tiny
(spiking attention) likewise (the checkpoints of bench/masking.py when present). Each is exported
and run in the reference simulator on the whole digits test set at every T: SNN accuracy in
float and in fixed point, and per inference the delivered synaptic events, spikes and energy of the
fixed-point run (the Loihi target). SAFormer's own accuracy (its torch model at its training T) is
printed beside its fixed-point accuracy, and `--lava-images` images run in Lava fixed point against
the reference, spike by spike.
"""
from __future__ import annotations

import argparse
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mstdeploy.atomic import write_text  # noqa: E402
from mstdeploy.ir.io import write_graph  # noqa: E402
from mstdeploy.export.lower import to_nir  # noqa: E402
from mstdeploy.models import checkpoint
from mstdeploy.data import datasets  # noqa: E402
from mstdeploy.models.evaluate import accuracy  # noqa: E402
from mstdeploy.models.train import TrainArgs, train  # noqa: E402
from mstdeploy.compare.energy import MODELS, energy, per_inference  # noqa: E402
from mstdeploy.compare.energy_report import save_png  # noqa: E402
from mstdeploy.simulate.engine import Simulator  # noqa: E402
from mstdeploy.simulate.evaluate import evaluate, stack_images  # noqa: E402
from mstdeploy.compare.parity import run_parity  # noqa: E402


def _model(name: str, path: pathlib.Path, epochs: int, overrides: dict):
    if not path.exists():
        print(f"training {name} {overrides} -> {path}", flush=True)
        train(TrainArgs(model=name, dataset="digits", out=str(path), epochs=epochs, progress=False,
                        overrides=overrides))
    return checkpoint.load(path)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt-dir", default="runs/bench-saformer")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--mst-dir", default="runs/bench-masking")
    ap.add_argument("--mst-epochs", type=int, default=120)
    ap.add_argument("-T", "--steps", default="4,8,16,32")
    ap.add_argument("--lava-images", type=int, default=8)
    a = ap.parse_args()
    d, md = pathlib.Path(a.ckpt_dir), pathlib.Path(a.mst_dir)
    steps = [int(t) for t in a.steps.split(",")]
    sites = ["q", "k", "attn"]
    specs = {
        "saformer-tiny": ("saformer-tiny", d / "saformer-tiny-0.0.pt", a.epochs, {"mask": 0.0}),
        "saformer-tiny 75% RSM": ("saformer-tiny", d / "saformer-tiny-0.75.pt", a.epochs,
                                  {"mask": 0.75, "mask_sites": sites}),
        "mst-tiny": ("mst-tiny", md / "mst-tiny-spiking-0.0.pt", a.mst_epochs,
                     {"attention": "spiking", "mask": 0.0, "mask_sites": sites}),
        "mst-tiny 75% RSM": ("mst-tiny", md / "mst-tiny-spiking-0.75.pt", a.mst_epochs,
                             {"attention": "spiking", "mask": 0.75, "mask_sites": sites}),
    }
    rows: dict[str, dict] = {}
    for label, (name, path, epochs, over) in specs.items():
        model = _model(name, path, epochs, over)
        test = datasets.load("digits", "test", model.config.img_size)
        graph = to_nir(model, seed=0)
        row = {"model_accuracy": accuracy(model, test), "by_T": {}}
        if name.startswith("saformer"):
            row["trained_T"] = model.config.steps
        for T in steps:
            flt = evaluate(Simulator(graph), test, T, progress=False)
            fix = evaluate(Simulator(graph, fixed_point=True), test, T, progress=False)
            counts = per_inference(fix, fix.images)
            row["by_T"][T] = {"accuracy_float": flt.accuracy(T), "accuracy_fixed": fix.accuracy(T),
                              "synaptic_events": counts["synaptic_events"], "spikes": counts["spikes"],
                              "loihi1_uJ": energy(counts, MODELS["loihi1"])["total"] * 1e6,
                              "fp32_uJ": energy(counts, MODELS["45nm-fp32"])["total"] * 1e6}
            print(json.dumps({"model": label, "T": T, **row["by_T"][T]}), flush=True)
        if name.startswith("saformer") and a.lava_images:
            nir_path = d / f"{path.stem}.nir"
            write_graph(graph, nir_path)
            x, _ = stack_images(test, a.lava_images)
            par = run_parity(nir_path, x, model.config.steps, fixed_point=True, progress=False)
            row["lava_parity"] = {"images": a.lava_images, "T": model.config.steps,
                                  "mismatched_spikes": par["mismatched_spikes"],
                                  "reference_spikes": par["reference_spikes"], "passed": par["passed"]}
            print(json.dumps({"model": label, "lava_parity": row["lava_parity"]}), flush=True)
        rows[label] = row
    write_text(d / "results.json", json.dumps(rows, indent=2))
    _plot(rows, steps, d / "saformer_vs_mst.png")

    print("\n| digits test (360 images) | T | SNN accuracy, float | SNN accuracy, fixed point | synaptic events "
          "per inference | spikes | Loihi 1 energy |")
    print("|---|---|---|---|---|---|---|")
    for label, r in rows.items():
        for T in steps:
            v = r["by_T"][T]
            print(f"| {label} | {T} | {100 * v['accuracy_float']:.2f}% | {100 * v['accuracy_fixed']:.2f}% | "
                  f"{v['synaptic_events'] / 1e6:.2f} M | {v['spikes'] / 1e3:.0f} k | {v['loihi1_uJ']:.0f} uJ |")
    for label, r in rows.items():
        extra = f", trained at T={r['trained_T']}" if "trained_T" in r else " (the ANN)"
        print(f"{label}: its own accuracy {100 * r['model_accuracy']:.2f}%{extra}"
              + (f"; Lava fixed point: {r['lava_parity']['mismatched_spikes']} of "
                 f"{r['lava_parity']['reference_spikes']} spikes differ on {r['lava_parity']['images']} images"
                 if "lava_parity" in r else ""))
    print(f"results -> {d / 'results.json'}, plot -> {d / 'saformer_vs_mst.png'}")


def _plot(rows: dict, steps: list, path: pathlib.Path) -> None:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for label, r in rows.items():
        style = "o-" if label.startswith("saformer") else "s--"
        a1.plot(steps, [100 * r["by_T"][T]["accuracy_fixed"] for T in steps], style, label=label)
        a2.plot(steps, [r["by_T"][T]["synaptic_events"] / 1e6 for T in steps], style, label=label)
    for ax, title in ((a1, "SNN accuracy (fixed point, digits test)"), (a2, "synaptic events per inference (M)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(steps, [str(t) for t in steps])
        ax.set_xlabel("time steps T")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    a1.set_ylabel("accuracy (%)")
    a2.legend()
    save_png(fig, path)


if __name__ == "__main__":
    main()

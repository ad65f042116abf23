"""docs/results.md table: what 75% Random Spike Masking buys on mst-tiny, beside the paper's numbers.

    .venv/bin/python bench/masking.py [--ckpt-dir runs/bench-masking] [--epochs 60] [-T 32] \
        [--sites q,k,attn]

As the paper does, two models are trained: without masking and with 75% RSM (training and
inference alike). Each is exported and run in the reference simulator on the whole digits test
set for T steps: SNN accuracy at T, delivered synaptic events per inference at the masked sites
(the synaptic nodes behind the masked model's gates) and in the whole network, and energy.
Checkpoints are reused when present.
"""
from __future__ import annotations

import argparse
import json
import pathlib

from mstdeploy.atomic import write_text
from mstdeploy.export.lower import to_nir
from mstdeploy.models import checkpoint
from mstdeploy.data import datasets
from mstdeploy.models.train import TrainArgs, train
from mstdeploy.compare.energy import MODELS, energy, per_inference
from mstdeploy.compare.energy_report import masked_sites
from mstdeploy.simulate.engine import Simulator
from mstdeploy.simulate.evaluate import evaluate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt-dir", default="runs/bench-masking")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("-T", "--steps", type=int, default=32)
    ap.add_argument("--sites", default="q,k,attn")
    ap.add_argument("--attention", default="spiking")
    a = ap.parse_args()
    d = pathlib.Path(a.ckpt_dir)
    rows, sites = {}, None
    for p in (0.75, 0.0):                                  # the masked model names the sites
        ck = d / f"mst-tiny-{a.attention}-{p}.pt"
        if not ck.exists():
            train(TrainArgs(model="mst-tiny", dataset="digits", out=str(ck), epochs=a.epochs, progress=False,
                            overrides={"attention": a.attention, "mask": p, "mask_sites": a.sites.split(",")}))
        model, _ = checkpoint.load(ck)
        graph = to_nir(model, seed=0)
        sites = sites or masked_sites(graph)
        test = datasets.load("digits", "test", model.config.img_size)
        ev = evaluate(Simulator(graph), test, a.steps, progress=False)
        counts = per_inference(ev, ev.images)
        rows[p] = {"accuracy": ev.accuracy(a.steps), "events": counts["synaptic_events"],
                   "site_events": sum(ev.synaptic_events.get(k, 0) for k in sites) / ev.images,
                   "spikes": counts["spikes"],
                   "loihi1_uJ": energy(counts, MODELS["loihi1"])["total"] * 1e6,
                   "fp32_uJ": energy(counts, MODELS["45nm-fp32"])["total"] * 1e6}
        print(json.dumps({"mask": p, **rows[p]}), flush=True)
    write_text(d / "results.json", json.dumps({"sites": sites, "rows": {str(k): v for k, v in rows.items()}},
                                              indent=2))
    base, masked = rows[0.0], rows[0.75]
    print(f"\nmasked sites ({len(sites)} synaptic nodes): {', '.join(sites)}")
    print(f"\n| mst-tiny, {a.attention} attention, digits | SNN accuracy T={a.steps} | synaptic events at masked "
          f"sites | all synaptic events | spikes | Loihi 1 energy | 45 nm fp32 energy |")
    print("|---|---|---|---|---|---|---|")
    for p, r in ((0.0, base), (0.75, masked)):
        print(f"| RSM {p:.0%} | {100 * r['accuracy']:.2f}% | {r['site_events']:,.0f} "
              f"(x{r['site_events'] / base['site_events']:.2f}) | {r['events']:,.0f} (x{r['events'] / base['events']:.2f}) | "
              f"{r['spikes']:,.0f} | {r['loihi1_uJ']:.0f} uJ | {r['fp32_uJ']:.2f} uJ |")
    print(f"\nmasked sites: {100 * (1 - masked['site_events'] / base['site_events']):.1f}% fewer events; "
          f"whole network: {100 * (1 - masked['events'] / base['events']):.1f}% fewer; "
          f"accuracy change {100 * (masked['accuracy'] - base['accuracy']):+.2f} points")


if __name__ == "__main__":
    main()

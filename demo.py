"""The end-to-end demo on the built-in digits data (`make demo` / `mst demo`).

Trains mst-tiny (softmax-free `spiking` attention, 75% RSM on q, k, attn) on digits, or reuses the
checkpoint of an earlier run; evaluates the ANN; exports the SNN to NIR; simulates accuracy
against T (reference simulator, whole test set); runs 8 images in Lava fixed point and checks
spike-exact parity; writes the energy report with a 0 / 0.5 / 0.75 masking sweep (re-gating the
same weights). Then the few-step deployment of the same checkpoint: graded spikes
(`--spike-levels`), its Lava parity and its energy report against the ANN (files named *-graded
and few-steps-*).
runs/demo/summary.json holds the figures of both.
"""
from __future__ import annotations

import json
import pathlib

from .atomic import staged_folder, write_text
from .compare.energy_report import REPORT_FILES
from .errors import UserError

DEMO_EPOCHS = 60
DEMO_STEPS = 64            # accuracy against T, up to this
ENERGY_STEPS = 32          # the energy report and the sweep
LAVA_IMAGES = 8
SWEEP = (0.0, 0.5, 0.75)
FEW_LEVELS = 4             # the few-step deployment: graded spikes 0..4 ...
FEW_STEPS = 4              # ... for at most 4 steps (T x M = 16 = the QCFS levels L)
DEMO_FILES = ("mst-tiny.nir", "parity.json", "summary.json", "mst-tiny-graded.nir", "parity-graded.json") \
    + tuple(f"few-steps-{name}" for name in REPORT_FILES)                   # and the energy report's files


def run_demo(out: str = "runs/demo", epochs: int | None = None, retrain: bool = False) -> dict:
    """The demo's steps; its files appear in `out` together at the end (none if it fails)."""
    out_dir = pathlib.Path(out)
    with staged_folder(out_dir, owned=DEMO_FILES) as stage:
        summary = _steps(out_dir, stage, epochs, retrain)
    print("[demo] files written:")
    for f in sorted(p for p in out_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        print(f"  {f}")
    return summary


def _steps(out_dir: pathlib.Path, stage: pathlib.Path, epochs: int | None, retrain: bool) -> dict:
    """Everything is written into `stage`; paths printed and stored are the final ones in out_dir."""
    from .compare.energy_report import energy_report, run_line, write_report
    from .compare.parity import run_parity
    from .data import datasets
    from .export.lower import to_nir
    from .ir.io import write_graph
    from .models import checkpoint
    from .models.evaluate import accuracy
    from .models.train import TrainArgs, train
    from .simulate.engine import Simulator
    from .simulate.evaluate import evaluate, stack_images

    ckpt = out_dir / "mst-tiny.pt"
    model = None
    if not retrain and ckpt.exists():
        try:
            model, _ = checkpoint.load(ckpt)
            print(f"[demo] 1/7 reusing {ckpt} (pass --retrain to train again)")
        except UserError as e:                 # e.g. a checkpoint of an older model layout
            print(f"[demo] cannot reuse {ckpt} ({e}); training again")
    if model is None:
        print(f"[demo] 1/7 training mst-tiny on digits with 75% RSM -> {ckpt}")
        train(TrainArgs(model="mst-tiny", dataset="digits", out=str(stage / ckpt.name),
                        overrides={"attention": "spiking", "mask": 0.75}, epochs=epochs or DEMO_EPOCHS))
        model, _ = checkpoint.load(stage / ckpt.name)
    test = datasets.load("digits", "test", model.config.img_size)
    ann = accuracy(model, test)
    print(f"[demo] 2/7 ANN top-1 accuracy (digits test, {len(test)} images, one masked pass): {100 * ann:.2f}%")

    graph = to_nir(model, seed=0)
    nir_path = out_dir / "mst-tiny.nir"
    write_graph(graph, stage / nir_path.name)
    print(f"[demo] 3/7 exported the SNN: {nir_path} ({len(graph.nodes)} nodes)")

    ev = evaluate(Simulator(graph), test, DEMO_STEPS)
    curve = {t: ev.accuracy(t) for t in (1, 2, 4, 8, 16, 32, 64) if t <= DEMO_STEPS}
    print("[demo] 4/7 SNN accuracy (reference simulator): " +
          ", ".join(f"T={t} {100 * a:.2f}%" for t, a in curve.items()))

    x, _ = stack_images(test, LAVA_IMAGES)
    par = run_parity(stage / nir_path.name, x, ENERGY_STEPS, fixed_point=True)
    par["graph"] = str(nir_path)
    write_text(stage / "parity.json", json.dumps(par, indent=2))
    print(f"[demo] 5/7 Lava, bit-accurate fixed point, {LAVA_IMAGES} images x T={ENERGY_STEPS}: "
          f"{par['mismatched_spikes']} of {par['reference_spikes']:,} spikes differ from the reference "
          f"({'PASS' if par['passed'] else 'FAIL'}), predictions {par['lava_predictions']}, "
          f"{par['lava_seconds']:.0f} s in Lava")

    print(f"[demo] 6/7 energy report, masking sweep {', '.join(map(str, SWEEP))} (same weights, re-gated):")
    rep, spikes = energy_report(graph, test, ENERGY_STEPS, source=str(nir_path), dataset="digits",
                                ratios=list(SWEEP), raster="block0.attn.attn", progress=False,
                                on_run=lambda r: print(run_line(r, ENERGY_STEPS), flush=True))
    print(f"ANN of the same network: {rep['ann']['macs']:,} MACs, "
          f"{rep['ann']['energy_uJ']['45nm-fp32']:.2f} uJ at 45 nm fp32")
    write_report(rep, stage, spikes)
    runs = {str(r["ratio"]): r for r in rep["runs"]}
    summary = {"model": "mst-tiny", "dataset": "digits", "checkpoint": str(ckpt), "nir": str(nir_path),
               "mask": model.config.mask, "attention": model.config.attention, "ann_accuracy": ann,
               "snn_accuracy": {str(t): a for t, a in curve.items()},
               "parity_mismatched_spikes": par["mismatched_spikes"], "parity_passed": par["passed"],
               "lava_images": LAVA_IMAGES, "lava_steps": ENERGY_STEPS,
               "energy_steps": ENERGY_STEPS,
               "synaptic_events": {p: r["per_inference"]["synaptic_events"] for p, r in runs.items()},
               "gated_events": {p: r["per_inference"]["gated_events"] for p, r in runs.items()},
               "masked_site_events": {p: r["masked_site_events"] for p, r in runs.items()},
               "accuracy_by_ratio": {p: r["accuracy"] for p, r in runs.items()},
               "energy_uJ_loihi1": {p: r["energy_uJ"]["loihi1"]["total"] for p, r in runs.items()},
               "energy_uJ_45nm_fp32": {p: r["energy_uJ"]["45nm-fp32"]["total"] for p, r in runs.items()},
               "ann_energy_uJ_45nm_fp32": rep["ann"]["energy_uJ"]["45nm-fp32"]}
    trained = runs[str(SWEEP[-1])]
    summary["few_steps"] = _few_steps(model, test, ann, out_dir, stage)
    write_text(stage / "summary.json", json.dumps(summary, indent=2))
    few = summary["few_steps"]
    print(f"[demo] summary: ANN {100 * ann:.2f}%, SNN {100 * curve[32]:.2f}% at T=32; Lava parity "
          f"{par['mismatched_spikes']} differing spikes; at the trained ratio {SWEEP[-1]}: "
          f"{trained['per_inference']['synaptic_events']:,.0f} synaptic events and "
          f"{trained['energy_uJ']['loihi1']['total']:.0f} uJ (Loihi 1) per inference, "
          f"x{trained['vs_ann']['45nm-fp32']:.2f} of the fp32 ANN; few steps (graded 0..{FEW_LEVELS}): "
          f"{100 * few['accuracy']:.2f}% at T={few['steps']}, x{few['vs_ann']['45nm-fp32']:.2f} of the fp32 ANN, "
          f"parity {few['parity_mismatched']} differing")
    return summary


def _few_steps(model, test, ann: float, out_dir: pathlib.Path, stage: pathlib.Path) -> dict:
    """Step 7: the same checkpoint with graded spikes, at the first T <= FEW_STEPS within 1 point
    of the ANN (else FEW_STEPS): Lava parity and the energy report (few-steps-*)."""
    import tempfile
    from .compare.energy_report import energy_report, run_line, write_report
    from .compare.parity import run_parity
    from .export.lower import to_nir
    from .ir.io import write_graph
    from .simulate.evaluate import stack_images
    graph = to_nir(model, seed=0, spike_levels=FEW_LEVELS)
    write_graph(graph, stage / "mst-tiny-graded.nir")
    print(f"[demo] 7/7 few steps: graded spikes 0..{FEW_LEVELS} ({out_dir / 'mst-tiny-graded.nir'}), "
          f"energy report up to T={FEW_STEPS}:")
    rep, spikes = energy_report(graph, test, FEW_STEPS, source=str(out_dir / "mst-tiny-graded.nir"),
                                dataset="digits", raster="block0.attn.attn", progress=False, ann_accuracy=ann,
                                tolerance=0.01, on_run=lambda r: print(run_line(r, FEW_STEPS), flush=True))
    with tempfile.TemporaryDirectory(dir=stage) as tmp:
        for f in write_report(rep, tmp, spikes):
            f.rename(stage / f"few-steps-{f.name}")
    run = rep["runs"][0]
    steps = run["within_tolerance"]["steps"] or FEW_STEPS
    x, _ = stack_images(test, LAVA_IMAGES)
    par = run_parity(stage / "mst-tiny-graded.nir", x, steps, fixed_point=True, progress=False)
    par["graph"] = str(out_dir / "mst-tiny-graded.nir")
    write_text(stage / "parity-graded.json", json.dumps(par, indent=2))
    at = run["by_step"][str(steps)]
    print(f"[demo] few steps: T={steps}, {100 * at['accuracy']:.2f}% (ANN {100 * ann:.2f}%), "
          f"x{at['vs_ann']['45nm-fp32']:.2f} of the fp32 ANN, x{at['vs_ann']['45nm-int8']:.2f} of the int8 ANN; "
          f"Lava fixed point, {LAVA_IMAGES} images: {par['mismatched_spikes']} of {par['reference_spikes']:,} "
          f"payloads differ ({'PASS' if par['passed'] else 'FAIL'})")
    return {"levels": FEW_LEVELS, "steps": steps, "accuracy": at["accuracy"], "vs_ann": at["vs_ann"],
            "energy_uJ_45nm_fp32": at["energy_uJ"]["45nm-fp32"]["total"],
            "energy_uJ_loihi2": at["energy_uJ"]["loihi2"]["total"],
            "synaptic_events": at["per_inference"]["synaptic_events"],
            "synaptic_messages": at["per_inference"]["synaptic_messages"],
            "accuracy_by_step": run["accuracy_by_step"],
            "parity_mismatched": par["mismatched_spikes"], "parity_passed": par["passed"]}

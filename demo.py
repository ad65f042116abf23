"""The end-to-end demo on the built-in digits data (`make demo` / `mst demo`).

Trains mst-tiny (softmax-free `spiking` attention, 75% RSM on q, k, attn) on digits, or reuses the
checkpoint from an earlier run, evaluates it, exports the SNN to NIR, simulates accuracy against T
with the reference simulator, and writes runs/demo/summary.json.
"""
from __future__ import annotations

import json
import pathlib

from .atomic import write_text

DEMO_EPOCHS = 60
DEMO_STEPS = 64


def run_demo(out: str = "runs/demo", epochs: int | None = None, retrain: bool = False) -> dict:
    from .models import checkpoint, datasets
    from .models.evaluate import accuracy
    from .models.train import TrainArgs, train

    out_dir = pathlib.Path(out)
    ckpt = out_dir / "mst-tiny.pt"
    if retrain or not ckpt.exists():
        print(f"[demo] training mst-tiny on digits with 75% RSM -> {ckpt}")
        train(TrainArgs(model="mst-tiny", dataset="digits", out=str(ckpt),
                        overrides={"attention": "spiking", "mask": 0.75},
                        epochs=epochs or DEMO_EPOCHS))
    else:
        print(f"[demo] reusing {ckpt} (pass --retrain to train again)")
    model, _ = checkpoint.load(ckpt)
    test = datasets.load("digits", "test", model.config.img_size)
    ann = accuracy(model, test)
    print(f"[demo] ANN top-1 accuracy (digits test, {len(test)} images): {100 * ann:.2f}%")

    from .export.io import write_graph
    from .export.lower import to_nir
    from .simulate.engine import Simulator
    from .simulate.evaluate import evaluate
    graph = to_nir(model, seed=0)
    nir_path = out_dir / "mst-tiny.nir"
    write_graph(graph, nir_path)
    print(f"[demo] exported the SNN: {nir_path} ({len(graph.nodes)} nodes)")
    ev = evaluate(Simulator(graph), test, DEMO_STEPS)
    curve = {t: ev.accuracy(t) for t in (1, 2, 4, 8, 16, 32, 64) if t <= DEMO_STEPS}
    print("[demo] SNN accuracy (reference simulator): " +
          ", ".join(f"T={t} {100 * a:.2f}%" for t, a in curve.items()))
    summary = {"model": "mst-tiny", "dataset": "digits", "checkpoint": str(ckpt), "nir": str(nir_path),
               "mask": model.config.mask, "attention": model.config.attention, "ann_accuracy": ann,
               "snn_accuracy": {str(t): a for t, a in curve.items()},
               "synaptic_events_per_inference": sum(ev.events.values()) / ev.images,
               "gated_events_per_inference": sum(ev.gated_events.values()) / ev.images}
    write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    print("[demo] files written:")
    for f in (ckpt, nir_path, out_dir / "summary.json"):
        print(f"  {f}")
    return summary

"""The end-to-end demo on the built-in digits data (`make demo` / `mst demo`).

Trains mst-tiny (softmax-free `spiking` attention, 75% RSM on q, k, attn) on digits, or reuses the
checkpoint from an earlier run, evaluates it, and writes runs/demo/summary.json.
"""
from __future__ import annotations

import json
import pathlib

from .atomic import write_text

DEMO_EPOCHS = 60


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
    summary = {"model": "mst-tiny", "dataset": "digits", "checkpoint": str(ckpt),
               "mask": model.config.mask, "attention": model.config.attention, "ann_accuracy": ann}
    write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    print("[demo] files written:")
    for f in (ckpt, out_dir / "summary.json"):
        print(f"  {f}")
    return summary

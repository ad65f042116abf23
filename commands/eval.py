"""`mst eval`: top-1 accuracy of a checkpoint (QCFS models: the ANN; SAFormer: the SNN)."""
from __future__ import annotations

import json

from .common import add_mask_options, count, mask_overrides, seed


def add_parser(sub) -> None:
    e = sub.add_parser("eval", help="top-1 accuracy of a checkpoint (QCFS: the ANN; SAFormer: the SNN)")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", help="default: the data set it was trained on")
    e.add_argument("--data", metavar="PATH")
    add_mask_options(e)
    e.add_argument("--batch-size", type=count, default=256)
    e.add_argument("--seed", type=seed, default=0, help="seed of the RSM masks")
    e.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    e.set_defaults(func=run)


def run(args) -> int:
    from .. import api
    from ..atomic import check_outputs, write_text
    from ..data import datasets
    from ..models import checkpoint
    from ..models.registry import accuracy_label, accuracy_name
    check_outputs({"--json": args.json}, [args.checkpoint])
    model, ck = checkpoint.load(args.checkpoint, **mask_overrides(args))
    name = args.dataset or ck["meta"].get("dataset", "digits")
    data = datasets.load(name, "test", model.config.img_size, args.data, steps=getattr(model.config, "steps", None))
    acc = api.evaluate(model, data, batch_size=args.batch_size, seed=args.seed)
    print(f"{accuracy_label(model.config)} top-1 accuracy on {name} test ({len(data)} images): {100 * acc:.2f}%")
    if args.json:
        write_text(args.json, json.dumps({"dataset": name, "images": len(data),
                                          accuracy_name(model.config): acc}, indent=2))
    return 0

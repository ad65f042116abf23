"""`mst demo`: the end-to-end demo on the built-in digits data (demo.py)."""
from __future__ import annotations

from .common import count


def add_parser(sub) -> None:
    d = sub.add_parser("demo", help="the end-to-end demo on the built-in digits data")
    d.add_argument("--out", default="runs/demo", help="output directory")
    d.add_argument("--epochs", type=count, default=None, help="training epochs (default: the demo's)")
    d.add_argument("--retrain", action="store_true", help="train even if a checkpoint exists")
    d.set_defaults(func=run)


def run(args) -> int:
    from ..atomic import output_folder
    from ..demo import run_demo
    output_folder(args.out, "--out")
    run_demo(args.out, epochs=args.epochs, retrain=args.retrain)
    return 0

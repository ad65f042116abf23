"""`mst parity`: the reference simulator and Lava on the same images and gating samples, every
neuron's spikes compared (compare/parity.py); a table, PASS or FAIL (exit 1), a JSON report."""
from __future__ import annotations

import json

from .common import (count, add_simulator_options, add_lava_options, add_run_options, lava_images, reading,
                     report_path)


def add_parser(sub) -> None:
    pa = sub.add_parser("parity", help="spike-by-spike comparison of Lava and the reference simulator")
    add_run_options(pa, 8)
    add_simulator_options(pa)
    add_lava_options(pa, "parity")
    pa.add_argument("--block-nodes", metavar="K", type=count, default=None,
                    help="run Lava on blocks of at most K nodes, each fed the reference simulator's spikes "
                         "(default: the whole graph when it fits in memory, else blocks that do)")
    pa.set_defaults(func=run)


def run(args) -> int:
    from ..atomic import write_text
    json_path = report_path(args, "parity")
    from ..compare.parity import run_parity
    from ..machine import pick_device
    graph, x, _, _ = lava_images(args)
    report = run_parity(args.graph, x, args.steps, args.fixed_point, args.timeout, not args.no_progress,
                        chunk=args.chunk, device=pick_device(args.device), reading=reading(args),
                        block_nodes=args.block_nodes, graph=graph)
    _print(report)
    write_text(json_path, json.dumps(report, indent=2))
    print(f"report -> {json_path}")
    return 0 if report["passed"] else 1


def _print(r: dict) -> None:
    width = max(len(k) for k in r["per_node"]) if r["per_node"] else 4
    print(f"{'node':{width}s}  {'spikes (ref)':>12s}  {'spikes (lava)':>13s}  {'differ':>7s}  first (step, image, index)")
    for name, v in r["per_node"].items():
        first = "" if v["first"] is None else f"{v['first']['step']}, {v['first']['image']}, {tuple(v['first']['index'])}"
        print(f"{name:{width}s}  {v['spikes_reference']:12d}  {v['spikes_lava']:13d}  {v['mismatched']:7d}  {first}")
    print(f"{r['mode']}: {r['images']} images x {r['steps']} steps, {r['mismatched_spikes']} of "
          f"{r['reference_spikes']} spikes differ, logits max |diff| {r['logits_max_abs_diff']:.3g}, "
          f"predictions {'equal' if r['predictions_equal'] else 'DIFFER'}")
    parts = r["lava"].get("blocks")
    where = f"{len(parts)} blocks, up to " if parts else ""
    print(f"Lava {r['lava_seconds']:.1f} s ({where}{r['lava']['processes']} processes, {r['lava']['lava_steps']} Lava "
          f"steps, depth {r['lava']['depth']}), reference {r['reference_seconds']:.2f} s")
    print(("PASS" if r["passed"] else "FAIL: " + "; ".join(r["failed"])) + f" ({r['criterion']})")

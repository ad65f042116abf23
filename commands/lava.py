"""`mst lava`: run a NIR graph in Lava's Loihi 2 simulation (float or bit-accurate fixed point),
print per-image predictions, spike counts and wall time; in fixed point also the per-layer scale
choices and any saturation. Writes a JSON report."""
from __future__ import annotations

import json
import pathlib

from .common import add_lava_options, add_run_options, lava_images, reading, report_path


def add_parser(sub) -> None:
    lv = sub.add_parser("lava", help="run a NIR graph in Lava's Loihi 2 simulation (float or fixed point)")
    add_run_options(lv, 8)
    add_lava_options(lv, "lava")
    lv.set_defaults(func=run)


def run(args) -> int:
    from ..atomic import write_text
    json_path = report_path(args, "lava")
    from ..backends.lava_nc.run import run_lava
    from ..ir.silence import silent
    graph, x, labels, labelled = lava_images(args)
    x = x.numpy()
    run_ = run_lava(args.graph, x, args.steps, args.fixed_point, timeout=args.timeout, progress=not args.no_progress,
                    reading=reading(args), graph=graph)
    pred = run_.predictions()
    per_image = sum(s.reshape(s.shape[0], -1).sum(1) for s in run_.spikes.values())
    mode = "fixed point (bit-accurate)" if args.fixed_point else "floating point"
    m = run_.meta
    print(f"{pathlib.Path(args.graph).name} in Lava, {mode}: {len(x)} images x {args.steps} steps")
    print("image  label  prediction  spikes")
    for i in range(len(x)):
        print(f"{i:5d}  {labels[i]:5d}  {pred[i]:10d}  {int(per_image[i]):6d}")
    acc = float((pred == labels).mean()) if labelled else None
    steps_per_s = m["lava_steps"] / m["run_seconds"] if m["run_seconds"] else float("inf")
    print(f"accuracy {100 * acc:.2f}% ({int((pred == labels).sum())}/{len(x)}) at T={args.steps}" if labelled
          else f"no labels: no accuracy (T={args.steps})")
    print(f"wall time {run_.seconds:.1f} s: build {m['build_seconds']:.1f} s, compile {m['compile_seconds']:.1f} s, "
          f"run {m['run_seconds']:.1f} s ({m['lava_steps']} Lava steps, {steps_per_s:.1f} steps/s; "
          f"{m['processes']} processes, depth {m['depth']}, {m['delays_inserted']} balancing delays)")
    saturated = {k: v for k, v in run_.saturation.items() if any(v.values())}
    if args.fixed_point:
        _print_quantization(m["quantization"])
        if saturated:
            print("saturation (steps x neurons; high = v clipped at +2^23-1, low = at -(2^23-1), "
                  "wrapped = input wrapped at 24 bits):")
            for k, v in saturated.items():
                print(f"  {k}: high {v['high']}, low {v['low']}, wrapped {v['wrapped']}")
        else:
            print("saturation: none")
    report = {"graph": str(args.graph), "mode": "fixed_point" if args.fixed_point else "float",
              "dataset": args.dataset, "inputs": args.inputs, "dt": args.dt, "images": len(x), "steps": args.steps,
              "labels": labels.tolist() if labelled else None,
              "predictions": pred.tolist(), "accuracy": acc, "spikes_per_image": [int(v) for v in per_image],
              "spikes_per_node": {k: int(v.sum()) for k, v in run_.spikes.items()},
              "saturation": run_.saturation, "seconds": run_.seconds, "lava_steps_per_second": steps_per_s,
              **{k: m[k] for k in ("lava_steps", "depth", "processes", "delays_inserted", "build_seconds",
                                   "compile_seconds", "run_seconds", "quantization")},
              "logits": run_.logits.sum(0).tolist(),
              "warnings": silent(graph, {k: int(v.sum()) for k, v in run_.spikes.items()})}
    write_text(json_path, json.dumps(report, indent=2))
    print(f"report -> {json_path}")
    return 0


def _print_quantization(rows: list[dict]) -> None:
    """Per-layer scale choices (docs/fixed-point.md)."""
    print("fixed-point scales (synapses: 8-bit weights x 2^exp in the target neuron's units; "
          "neurons: threshold = vth << 6):")
    for r in rows:
        if r["kind"] == "synapse":
            flags = ", ".join(f"{r[k]} {k}" for k in ("clipped", "zeroed") if r[k])
            print(f"  {r['node']:28s} {r['type']:12s} exp {r['weight_exp']:3d}  {r['sign']:10s} "
                  f"max |w| {r['max_weight']:3d}  rms err {100 * r['rel_error']:.2f}%" + (f"  ({flags})" if flags else ""))
        else:
            print(f"  {r['node']:28s} {r['type']:12s} vth {r['vth']} (unit {r['unit']:.3g})"
                  + (f"  bias clipped {r['bias_clipped']}" if r["bias_clipped"] else ""))

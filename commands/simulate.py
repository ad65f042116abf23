"""`mst simulate`: the reference simulator on a data set: accuracy-vs-T table, JSON report and
optional spike recordings. Under torchrun the images are shared out over the ranks; rank 0
prints and writes the figures of the whole set."""
from __future__ import annotations

import json
import pathlib
import time

from ..errors import UserError
from .common import add_simulator_options, add_run_options, count, graph_and_images

TABLE_STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def add_parser(sub) -> None:
    s = sub.add_parser("simulate", help="reference simulator: accuracy vs T, events, spikes")
    add_run_options(s, None, default_steps=64)
    add_simulator_options(s)
    s.add_argument("--batch-size", type=count, default=64)
    s.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    s.add_argument("--json", metavar="FILE", help="result file (default runs/simulate/<graph>.json)")
    s.add_argument("--record", metavar="NODES", help="record spikes of these nodes (comma list, or all)")
    s.add_argument("--spikes-out", metavar="FILE", help="HDF5 file for recorded spikes")
    s.set_defaults(func=run)


def report_steps(T: int) -> list[int]:
    return [t for t in TABLE_STEPS if t < T] + [T]


def spikes_bytes(spikes: dict, steps: int) -> bytes:
    """The --spikes-out HDF5 file, made in memory (see ir/io.graph_bytes)."""
    import io
    import h5py
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["layout"] = "images x steps x neuron shape, 1 = spike"
        f.attrs["steps"] = steps
        for k, v in spikes.items():
            f.create_dataset(k, data=v, compression="gzip")
    return buf.getvalue()


def run(args) -> int:
    import torch
    from ..atomic import check_outputs
    from ..distributed import setup
    from ..simulate.engine import Simulator
    json_path = args.json or f"runs/simulate/{pathlib.Path(args.graph).stem}.json"
    check_outputs({"--json": json_path, "--spikes-out": args.spikes_out}, [args.graph, args.data, args.inputs, args.labels])
    graph, data = graph_and_images(args)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    ranks = setup(args.device)
    try:
        return _run(args, graph, data, Simulator(graph, ranks.device, dtype, fixed_point=args.fixed_point,
                                                 chunk=args.chunk), ranks, json_path)
    finally:
        ranks.close()


def _run(args, graph, data, sim, ranks, json_path) -> int:
    from ..atomic import write_files
    from ..compare.energy import per_inference
    from ..data import datasets
    from ..ir.silence import silent
    from ..simulate.evaluate import evaluate, recorded
    mode = "fixed point" if args.fixed_point else args.dtype
    record = recorded(sim, args.record)
    if record and not args.spikes_out:
        raise UserError("--record needs --spikes-out FILE")
    t0 = time.time()
    ev = evaluate(sim, data, args.steps, args.batch_size, progress=not args.no_progress, record=record,
                  ranks=ranks)
    seconds = time.time() - t0
    if not ranks.main:
        return 0
    where = f"{ranks.world} ranks, " if ranks.enabled else ""
    labelled = getattr(data, "labelled", True)
    print(f"{pathlib.Path(args.graph).name} on {args.dataset or args.inputs}: {ev.images} samples, {args.steps} "
          f"steps, {seconds:.1f} s ({where}{sim.device}, {mode})")
    if labelled:
        print("    T  accuracy")
        for t in report_steps(args.steps):
            print(f"{t:5d}  {100 * ev.accuracy(t):7.2f}%")
    else:
        print("no labels: no accuracy")
    out = {
        "graph": str(args.graph), "dataset": args.dataset, "inputs": args.inputs, "images": ev.images,
        "classes": datasets.classes(args.dataset, args.data) if args.dataset else None,
        "steps": args.steps, "dt": args.dt, "device": str(sim.device), "ranks": ranks.world, "dtype": args.dtype,
        "fixed_point": args.fixed_point, "seconds": seconds,
        "accuracy": {str(t): a for t, a in ev.curve().items()} if labelled else None,
        "per_inference": per_inference(ev, ev.images),       # graded spikes: messages beside events
        "per_node": {k: {"spikes": ev.spike_counts.get(k, 0), "synaptic_events": ev.synaptic_events.get(k, 0),
                         "gated_events": ev.gated_events.get(k, 0), "host_macs": ev.host_macs.get(k, 0)}
                     for k in sim.order if k in ev.spike_counts or k in ev.synaptic_events or k in ev.host_macs},
    }
    out["warnings"] = silent(graph, ev.spike_counts)
    if args.fixed_point:
        out["saturation"] = {k: v for k, v in ev.saturation.items() if any(v.values())}
        print("saturated membranes (steps x neurons): " + (", ".join(
            f"{k} high {v['high']} low {v['low']}" for k, v in out["saturation"].items()) or "none"))
    outputs = {json_path: json.dumps(out, indent=2).encode()}
    if record:
        outputs[args.spikes_out] = spikes_bytes(ev.spikes, args.steps)
    if json_path == "-":                      # standard output is not staged
        print(outputs.pop(json_path).decode())
    write_files(outputs)                        # both, or neither
    print(f"synaptic events per image: {out['per_inference']['synaptic_events']:,.0f}  -> {json_path}")
    if record:
        print(f"spikes of {len(ev.spikes)} node(s) -> {args.spikes_out}")
    return 0

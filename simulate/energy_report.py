"""`mst energy`: events, energy and accuracy per inference, per node and in total, with either
backend, optionally for a sweep of masking ratios; writes energy.json and PNG plots."""
from __future__ import annotations

import json
import pathlib
import re
import tempfile

import nir
import numpy as np

from ..atomic import atomic_path, write_text
from ..errors import UserError
from ..export import nodes as X
from ..export.gating import with_ratio
from ..export.io import read_graph, write_graph
from ..export.topology import NEURONS, ROUTING, SYNAPTIC, Topology
from .energy import MODELS, ann_energy, ann_macs, energy, per_inference, per_node
from .engine import Simulator
from .evaluate import evaluate, load_images, stack_images


def masked_sites(graph: nir.NIRGraph) -> list[str]:
    """Synaptic nodes whose input passes through a SynapseGate (the sites RSM masks)."""
    topo = Topology(graph)
    gated: set[str] = set()
    for n in topo.order:
        node = topo.node(n)
        if isinstance(node, X.SynapseGate) or (isinstance(node, ROUTING) and any(p in gated for p in topo.preds[n])):
            gated.add(n)
    return [n for n in topo.order if isinstance(topo.node(n), SYNAPTIC) and any(p in gated for p in topo.preds[n])]


def _reference(graph, data, T, fixed, raster, progress):
    ev = evaluate(Simulator(graph, fixed_point=fixed), data, T, progress=progress,
                  record={raster} if raster else None)
    spikes = ev.spikes[raster][0].astype(bool) if raster else None        # image 0: (T, *shape)
    return ev, ev.images, ev.curve(), spikes


def _lava(graph, data, T, fixed, raster, timeout, progress):
    from ..backends.lava.run import run_lava
    from .playback import lava_counts
    x, y = stack_images(data)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "g.nir"
        write_graph(graph, path)
        run = run_lava(path, x.numpy(), T, fixed, timeout=timeout, progress=progress)
    res = lava_counts(graph, x, run, fixed)
    pred = run.logits.cumsum(0).argmax(-1)                                  # (T, images)
    curve = {t: float((pred[t - 1] == y).mean()) for t in range(1, T + 1)}
    return res, len(x), curve, (run.spikes[raster][0] if raster else None)


def energy_command(args) -> dict:
    if args.steps < 1:
        raise UserError("-T must be >= 1")
    graph = read_graph(args.graph)
    fixed = bool(args.fixed_point)
    Simulator(graph, fixed_point=fixed)                   # checks support (and the fixed-point plan)
    neurons = [k for k, n in graph.nodes.items() if isinstance(n, NEURONS)]
    raster = args.raster or (neurons[0] if neurons else None)
    if raster and raster not in neurons:
        raise UserError(f"--raster: {raster!r} is not a neuron node of the graph")
    ratios = [None] if args.sweep is None else args.sweep
    n = args.images if args.images is not None else (8 if args.backend == "lava" else None)
    data = load_images(args.dataset, graph, args.data, n)
    macs = ann_macs(graph)
    sites = masked_sites(graph)
    order = Topology(graph).order
    runs, first_spikes = [], None
    for p in ratios:
        g = graph if p is None else with_ratio(graph, p)
        if args.backend == "lava":
            res, images, curve, spikes = _lava(g, data, args.steps, fixed, raster, args.timeout, not args.no_progress)
        else:
            res, images, curve, spikes = _reference(g, data, args.steps, fixed, raster, not args.no_progress)
        counts = per_inference(res, images)
        site_events = sum(res.events.get(k, 0) for k in sites) / max(images, 1)
        run = {"ratio": p, "accuracy": curve[args.steps], "accuracy_by_step": {str(t): a for t, a in curve.items()},
               "per_inference": counts, "masked_site_events": site_events,
               "energy_uJ": {m: {k: v * 1e6 for k, v in energy(counts, model).items()} for m, model in MODELS.items()},
               "per_node": per_node(res, images, order)}
        runs.append(run)
        label = "as exported" if p is None else f"ratio {p:g}"
        print(f"{label}: accuracy {100 * run['accuracy']:.2f}% at T={args.steps}, "
              f"{counts['synaptic_events']:,.0f} synaptic events ({site_events:,.0f} at masked sites), "
              f"{counts['gated_events']:,.0f} gated out, {counts['spikes']:,.0f} spikes per inference; "
              f"Loihi 1 {run['energy_uJ']['loihi1']['total']:.2f} uJ, 45 nm fp32 "
              f"{run['energy_uJ']['45nm-fp32']['total']:.2f} uJ", flush=True)
        if p == ratios[0]:
            first_spikes = spikes
    ann = {"macs": sum(macs.values()), "energy_uJ": {k: v * 1e6 for k, v in ann_energy(sum(macs.values())).items()}}
    print(f"ANN of the same network: {ann['macs']:,} MACs, {ann['energy_uJ']['45nm-fp32']:.2f} uJ at 45 nm fp32")
    out_dir = pathlib.Path(args.out)
    report = {"graph": str(args.graph), "backend": args.backend, "mode": "fixed_point" if fixed else "float",
              "dataset": args.dataset, "images": images, "steps": args.steps,
              "models": {k: m.source for k, m in MODELS.items()}, "ann": ann,
              "ann_macs_per_node": macs, "masked_sites": sites, "runs": runs}
    write_text(out_dir / "energy.json", json.dumps(report, indent=2))
    plots = write_plots(report, out_dir, raster, first_spikes)
    print(f"report -> {out_dir / 'energy.json'}; plots: {', '.join(str(p) for p in plots)}")
    return report


def _layer(name: str) -> str:
    """Group a synaptic node with its neuron: block0.attn.q.in0 -> block0.attn.q."""
    return re.sub(r"\.in\d+$", "", name)


def write_plots(report: dict, out_dir: pathlib.Path, raster: str | None, spikes) -> list[pathlib.Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    run = report["runs"][-1] if report["runs"][-1]["ratio"] else report["runs"][0]
    layers: dict[str, list] = {}
    for k, v in run["per_node"].items():
        if v["synaptic_events"] or v["gated_events"]:
            acc = layers.setdefault(_layer(k), [0.0, 0.0])
            acc[0] += v["synaptic_events"]
            acc[1] += v["gated_events"]
    names = list(layers)
    fig, ax = plt.subplots(figsize=(8, max(3, 0.22 * len(names) + 1)))
    y = np.arange(len(names))
    delivered = np.array([layers[k][0] for k in names])
    gated = np.array([layers[k][1] for k in names])
    ax.barh(y, delivered, color="tab:blue", label="delivered")
    ax.barh(y, gated, left=delivered, color="tab:orange", label="gated out (masked)")
    ax.set_yticks(y, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("synaptic events per inference")
    title = "as exported" if run["ratio"] is None else f"masking ratio {run['ratio']:g}"
    ax.set_title(f"Synaptic events per layer ({title}, T={report['steps']}, {report['backend']})")
    ax.legend(loc="lower right")
    paths.append(save_png(fig, out_dir / "events_per_layer.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in report["runs"]:
        steps = sorted(int(t) for t in r["accuracy_by_step"])
        ax.plot(steps, [100 * r["accuracy_by_step"][str(t)] for t in steps],
                label="as exported" if r["ratio"] is None else f"ratio {r['ratio']:g}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("time steps T")
    ax.set_ylabel("SNN accuracy (%)")
    ax.set_title(f"Accuracy against T ({report['images']} images, {report['backend']})")
    ax.grid(alpha=0.3)
    ax.legend()
    paths.append(save_png(fig, out_dir / "accuracy_vs_T.png"))

    if len(report["runs"]) > 1 and all(r["ratio"] is not None for r in report["runs"]):
        ratios = [r["ratio"] for r in report["runs"]]
        fig, ax = plt.subplots(figsize=(6, 4))
        for m, style in (("loihi1", "o-"), ("45nm-fp32", "s--")):
            ax.plot(ratios, [r["energy_uJ"][m]["total"] for r in report["runs"]], style, label=f"energy, {m}")
        ax.set_xlabel("masking ratio p")
        ax.set_ylabel("energy per inference (uJ)")
        ax2 = ax.twinx()
        ax2.plot(ratios, [100 * r["accuracy"] for r in report["runs"]], "^:", color="tab:green",
                 label=f"accuracy at T={report['steps']}")
        ax2.set_ylabel("accuracy (%)")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="lower left")
        ax.set_title("Energy and accuracy against the masking ratio")
        paths.append(save_png(fig, out_dir / "sweep.png"))

    if raster is not None and spikes is not None:
        flat = np.asarray(spikes).reshape(spikes.shape[0], -1)
        t, i = np.nonzero(flat)
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.scatter(t + 1, i, s=1, marker="|", color="black")
        ax.set_xlabel("time step")
        ax.set_ylabel("neuron (flat index)")
        ax.set_xlim(0.5, flat.shape[0] + 0.5)
        ax.set_ylim(-0.5, flat.shape[1] - 0.5)
        ax.set_title(f"Spike raster of {raster}, first image ({len(t)} spikes)")
        paths.append(save_png(fig, out_dir / "raster.png"))
    return paths


def save_png(fig, path: pathlib.Path) -> pathlib.Path:
    import matplotlib.pyplot as plt
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path

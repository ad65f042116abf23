"""The energy report: events, energy and accuracy per inference, per node and in total, with
either backend, optionally for a sweep of masking ratios; energy.json and PNG plots."""
from __future__ import annotations

import json
import pathlib
import tempfile
from typing import Callable

import nir

from ..atomic import staged_folder, write_text
from ..distributed import Dist
from ..errors import UserError
from ..ir import nodes as X
from ..ir.gating import with_ratio
from ..ir.io import write_graph
from ..ir.silence import silent
from ..ir.topology import NEURONS, ROUTING, SYNAPTIC, Topology
from ..loihi.chip import CHIPS, activity, plan
from .energy import MODELS, against_ann, ann_energy, ann_macs, energy, per_inference, per_node
from .plots import write_plots
from ..simulate.engine import Simulator
from ..simulate.evaluate import evaluate, stack_images


def masked_sites(graph: nir.NIRGraph) -> list[str]:
    """Synaptic nodes whose input passes through a SynapseGate (the sites RSM masks)."""
    topo = Topology(graph)
    gated: set[str] = set()
    for n in topo.order:
        node = topo.node(n)
        if isinstance(node, X.SynapseGate) or (isinstance(node, ROUTING) and any(p in gated for p in topo.preds[n])):
            gated.add(n)
    return [n for n in topo.order if isinstance(topo.node(n), SYNAPTIC) and any(p in gated for p in topo.preds[n])]


def marks(steps: int) -> tuple:
    """The steps at which a report prices the run: 1, 2, 4, ... below T, and T."""
    return tuple(sorted({1 << k for k in range(steps.bit_length()) if 1 << k < steps} | {steps}))


def _reference(graph, data, steps, fixed_point, raster, progress, chunk, ranks):
    ev = evaluate(Simulator(graph, ranks.device, fixed_point=fixed_point, chunk=chunk), data, steps,
                  progress=progress, record={raster} if raster else None, ranks=ranks, marks=marks(steps))
    spikes = ev.spikes[raster][0].astype(bool) if raster else None        # image 0: (T, *shape)
    return ev, ev.images, ev.curve(), spikes


def _lava(graph, data, steps, fixed_point, raster, timeout, progress, chunk):
    from ..backends.lava_nc.run import run_lava
    from .playback import lava_counts
    x, y = stack_images(data)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "g.nir"
        write_graph(graph, path)
        run = run_lava(path, x.numpy(), steps, fixed_point, timeout=timeout, progress=progress, graph=graph)
    res = lava_counts(graph, x, run, fixed_point, chunk=chunk, marks=marks(steps))
    pred = run.logits.cumsum(0).argmax(-1)                                  # (T, images)
    curve = {t: float((pred[t - 1] == y).mean()) for t in range(1, steps + 1)}
    return res, len(x), curve, (run.spikes[raster][0] if raster else None)


def energy_report(graph: nir.NIRGraph, data, steps: int, *, source: str, dataset: str,
                  fixed_point: bool = False, backend: str = "reference", ratios: list | None = None,
                  raster: str | None = None, timeout: float = 900, progress: bool = True,
                  on_run: Callable[[dict], None] | None = None, chunk: int | None = None,
                  ranks: Dist | None = None, ann_accuracy: float | None = None, tolerance: float = 0.005,
                  classes: list | None = None):
    """Events, energy and accuracy per inference of `graph` on `data` (a data set), as exported
    (`ratios` None) or re-gated at each ratio. Returns the report (energy.json) and the raster
    node's spikes on the first image of the first run. `source`, `dataset`: labels for the report;
    `on_run` sees each run's figures as soon as they are known; `chunk`: the reference
    simulator's steps at a time (None: from memory); `ranks`: torchrun's ranks, over which the
    reference backend shares out the images (every rank gets the whole report). Each run is
    priced at T and at the steps of `marks` (by_step), set against the fp32 and int8 ANN of the
    same network (vs_ann); with the ANN's `ann_accuracy` on the same images, the smallest of
    those steps whose accuracy is within `tolerance` of it (within_tolerance)."""
    ranks = ranks or Dist()
    if steps < 1:
        raise UserError("the number of steps must be >= 1")
    if backend not in ("reference", "lava"):
        raise UserError(f"unknown backend {backend!r} (reference or lava)")
    if backend == "lava" and ranks.enabled:
        raise UserError("--backend lava runs in one process: start it without torchrun")
    Simulator(graph, fixed_point=fixed_point)             # checks support (and the fixed-point plan)
    neurons = [k for k, n in graph.nodes.items() if isinstance(n, NEURONS)]
    raster = raster or (neurons[0] if neurons else None)
    if raster and raster not in neurons:
        raise UserError(f"raster node {raster!r} is not a neuron node of the graph")
    macs = ann_macs(graph)
    ann_uj = {k: v * 1e6 for k, v in ann_energy(sum(macs.values())).items()}
    sites = masked_sites(graph)
    order = Topology(graph).order
    runs, first_spikes = [], None
    for p in ratios or [None]:
        g = graph if p is None else with_ratio(graph, p)
        if backend == "lava":
            res, images, curve, spikes = _lava(g, data, steps, fixed_point, raster, timeout, progress, chunk)
        else:
            res, images, curve, spikes = _reference(g, data, steps, fixed_point, raster, progress, chunk, ranks)
        counts = per_inference(res, images)
        site_events = sum(res.synaptic_events.get(k, 0) for k in sites) / max(images, 1)
        run = {"ratio": p, "accuracy": curve[steps], "accuracy_by_step": {str(t): a for t, a in curve.items()},
               "masked_site_events": site_events, **priced(counts, ann_uj),
               "by_step": {str(t): {"accuracy": curve[t], **priced(per_inference(res.at[t], images), ann_uj)}
                           for t in sorted(res.at)},
               "per_node": per_node(res, images, order), "warnings": silent(g, res.spike_counts)}
        run["chip"] = on_chip(g, res, images, steps, run["energy_uJ"])
        if ann_accuracy is not None:
            run["within_tolerance"] = within(run["by_step"], ann_accuracy, tolerance)
        runs.append(run)
        if len(runs) == 1:
            first_spikes = spikes
        if on_run:
            on_run(run)
    ann = {"macs": sum(macs.values()), "energy_uJ": ann_uj, "accuracy": ann_accuracy, "tolerance": tolerance}
    report = {"graph": source, "backend": backend, "mode": "fixed_point" if fixed_point else "float",
              "dataset": dataset, "classes": classes, "images": images, "steps": steps, "ranks": ranks.world,
              "models": {k: m.source for k, m in MODELS.items()}, "ann": ann,
              "ann_macs_per_node": macs, "masked_sites": sites, "raster": raster, "runs": runs}
    return report, first_spikes


def priced(counts: dict, ann_uj: dict) -> dict:
    """Energy of per-inference counts under every model, and its ratio to the ANN's."""
    uj = {m: {k: v * 1e6 for k, v in energy(counts, model).items()} for m, model in MODELS.items()}
    return {"per_inference": counts, "energy_uJ": uj, "vs_ann": against_ann(uj, ann_uj)}


def on_chip(graph: nir.NIRGraph, res, images: int, steps: int, uj: dict) -> dict:
    """The Loihi rows' time and static energy (loihi/chip.py, `mst plan`) from this run's activity,
    per profile; where a fan-in needs relays on a profile, the reason instead (`mst plan` places
    and simulates the split graph)."""
    out, act = {}, activity(res, images)
    for name, chip in CHIPS.items():
        try:
            rep = plan(graph, chip, act, steps, uj[name]["total"] * 1e-6)
        except UserError as e:
            out[name] = {"not_timed": f"{e}; mst plan splits it"}
            continue
        e = rep["energy_joules"]
        out[name] = {"cores": rep["cores"], "chips": rep["chips"], "step_us": rep["step_seconds"] * 1e6,
                     "latency_ms": rep["latency_seconds"] * 1e3, "per_second": rep["throughput_per_second"],
                     "static_uJ": None if e["static"] is None else e["static"] * 1e6,
                     "total_uJ": None if e["total"] is None else e["total"] * 1e6}
    return out


def within(by_step: dict, ann_accuracy: float, tolerance: float) -> dict:
    """The first priced step whose accuracy is at least the ANN's less `tolerance`, with its
    accuracy and energy ratios (steps None: none is)."""
    for t, row in by_step.items():
        if row["accuracy"] >= ann_accuracy - tolerance - 1e-12:
            return {"steps": int(t), "accuracy": row["accuracy"], "vs_ann": row["vs_ann"]}
    return {"steps": None, "accuracy": None, "vs_ann": None}


def run_line(run: dict, steps: int) -> str:
    """One line of a run's figures, for a person."""
    c, e = run["per_inference"], run["energy_uJ"]
    label = "as exported" if run["ratio"] is None else f"ratio {run['ratio']:g}"
    r = run["vs_ann"]
    line = (f"{label}: accuracy {100 * run['accuracy']:.2f}% at T={steps}, "
            f"{c['synaptic_events']:,.0f} synaptic events ({run['masked_site_events']:,.0f} at masked sites), "
            f"{c['gated_events']:,.0f} gated out, {c['spikes']:,.0f} spikes per inference; "
            f"Loihi 1 {e['loihi1']['total']:.2f} uJ, 45 nm fp32 {e['45nm-fp32']['total']:.2f} uJ; "
            f"x{r['45nm-fp32']:.2f} of the fp32 ANN, x{r['45nm-int8']:.2f} of the int8 ANN")
    if c["synaptic_messages"] != c["synaptic_events"]:
        line += f"; graded: {c['synaptic_messages']:,.0f} messages, Loihi 2 {e['loihi2']['total']:.2f} uJ"
    c2 = run.get("chip", {}).get("loihi2", {})
    if "step_us" in c2:
        line += (f"; on Loihi 2 ({c2['chips']} chip(s)): step {c2['step_us']:.3g} us, latency {c2['latency_ms']:.3g} ms, "
                 f"static {c2['static_uJ']:.2f} uJ, dynamic + static {c2['total_uJ']:.2f} uJ")
    w = run.get("within_tolerance")
    if w is not None:
        line += ("; within tolerance of the ANN at no priced T" if w["steps"] is None else
                 f"; within tolerance of the ANN from T={w['steps']} ({100 * w['accuracy']:.2f}%, "
                 f"x{w['vs_ann']['45nm-fp32']:.2f} fp32, x{w['vs_ann']['45nm-int8']:.2f} int8)")
    return line


# Every file a report may hold: a new report replaces them all (a file it no longer writes goes).
REPORT_FILES = ("energy.json", "events_per_layer.png", "accuracy_vs_T.png", "energy_vs_T.png", "sweep.png", "raster.png")


def write_report(report: dict, out_dir, spikes) -> list[pathlib.Path]:
    """energy.json and the plots into out_dir, whole or not at all; returns the files written."""
    out_dir = pathlib.Path(out_dir)
    with staged_folder(out_dir, owned=REPORT_FILES) as stage:
        write_text(stage / "energy.json", json.dumps(report, indent=2))
        plots = write_plots(report, stage, report["raster"], spikes)
    return [out_dir / "energy.json"] + [out_dir / p.name for p in plots]

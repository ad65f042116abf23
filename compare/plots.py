"""The energy report's plots (PNG): events per layer, accuracy against T, the masking sweep and a
spike raster, each readable on its own (titles, axis labels, legends)."""
from __future__ import annotations

import io
import pathlib
import re

import numpy as np

from ..atomic import write_bytes


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

    paths.append(_energy_vs_steps(report, out_dir, plt))

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


def _energy_vs_steps(report: dict, out_dir: pathlib.Path, plt) -> pathlib.Path:
    """Accuracy and energy relative to the ANN at every priced T (1, 2, 4, .., T), per run."""
    fig, (acc, en) = plt.subplots(1, 2, figsize=(11, 4))
    ann = report["ann"].get("accuracy")
    for r in report["runs"]:
        label = "as exported" if r["ratio"] is None else f"ratio {r['ratio']:g}"
        steps = sorted(int(t) for t in r["by_step"])
        acc.plot(steps, [100 * r["by_step"][str(t)]["accuracy"] for t in steps], "o-", label=label)
        for model, style in (("45nm-fp32", "o-"), ("45nm-int8", "s--")):
            en.plot(steps, [r["by_step"][str(t)]["vs_ann"][model] for t in steps], style, label=f"{label}, {model}")
    if ann is not None:
        acc.axhline(100 * ann, color="k", ls="--", label="ANN")
        acc.axhspan(100 * (ann - report["ann"]["tolerance"]), 100 * ann, color="k", alpha=0.08)
    en.axhline(1.0, color="k", ls="--", label="the ANN (same precision)")
    ticks = sorted({int(t) for r in report["runs"] for t in r["by_step"]})
    for ax in (acc, en):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel("time steps T")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    acc.set_ylabel("SNN accuracy (%)")
    acc.set_title(f"Accuracy against T ({report['images']} images)")
    en.set_yscale("log")
    en.set_ylabel("SNN energy / ANN energy (45 nm)")
    en.set_title("Energy against T, relative to the fp32 and int8 ANN")
    return save_png(fig, out_dir / "energy_vs_T.png")


def save_png(fig, path: pathlib.Path) -> pathlib.Path:
    import matplotlib.pyplot as plt
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png")
    plt.close(fig)
    write_bytes(path, buf.getvalue())
    return path


def plan_plot(rep: dict, path: pathlib.Path) -> pathlib.Path:
    """`mst plan`'s layers: cores, and each core's time per step against the step (loihi/chip.py)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    layers = rep["layers"]
    names = [L["layer"] for L in layers]
    y = np.arange(len(names))
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, max(3, 0.25 * len(names) + 1.5)), sharey=True)
    relay = [bool(L["relay_of"]) for L in layers]
    a.barh(y, [L["cores"] for L in layers], color=["tab:orange" if r else "tab:blue" for r in relay])
    a.barh([], [], color="tab:blue", label="neuron cores")
    if any(relay):
        a.barh([], [], color="tab:orange", label="relay cores (fan-in split)")
    a.set_yticks(y, names, fontsize=7)
    a.invert_yaxis()
    a.set_xlabel("cores")
    a.legend(loc="lower right", fontsize=7)
    b.barh(y, [1e6 * L["core_seconds"] for L in layers], color="tab:green")
    b.axvline(1e6 * rep["step_seconds"], color="k", linestyle="--", label="step (busiest + barrier)")
    if rep.get("sanafe"):
        b.axvline(1e6 * rep["sanafe"]["step_seconds"], color="tab:red", linestyle=":", label="SANA-FE's step (Loihi 1)")
    b.set_xlabel("work per core and step (us)")
    b.legend(loc="lower right", fontsize=7)
    e = rep["energy_joules"]
    energy = "" if e["total"] is None else f", {1e3 * e['total']:.3g} mJ per inference"
    fig.suptitle(f"{rep['profile']}: {rep['cores']} cores on {rep['chips']} chip(s), step "
                 f"{1e6 * rep['step_seconds']:.3g} us, T = {rep['steps']}{energy}")
    return save_png(fig, path)

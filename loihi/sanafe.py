"""A graph as SANA-FE input files (SANA-FE 2.2.9, University of Texas / Sandia: a simulator of
neuromorphic chips' time and energy per step; github.com/SLAM-Lab/SANA-FE), to cross-check the
plan's time and energy (docs/loihi2-plan.md, "SANA-FE"). Writes SANA-FE's own formats (an
architecture YAML and a network YAML, read by `sanafe.load_arch` / `sanafe.load_net`) with numpy
and yaml only: SANA-FE is GPL-3.0 and is never imported here; sanafe_run.py runs the files in
SANA-FE's own interpreter (`make sanafe`), in a process of its own.

Mapping (one neuron node = one SANA-FE group; graphs of stock LIF / CubaLIF neurons, as netx
files read: others are refused with one line):
- LIF / CubaLIF whose current lasts one step -> `leaky_integrate_fire`: leak_decay = 1 - dt/tau,
  input_decay = 0, hard reset to v_reset, v > threshold (as NIR and Lava).
- Units: weights, biases and thresholds times `units` (64 for a netx file: PilotNet's vThMant 25
  is 25 and its weights Loihi's integer mantissas; SANA-FE truncates the potential to 1/64 after
  the leak, as Loihi's 6-bit shift does).
- Conv2d without padding -> a conv2d hyperedge on `loihi_conv_synapse`; with padding -> a sparse
  list of its in-bounds taps (zeros kept, as the conv2d hyperedge keeps them); Affine / Linear ->
  a sparse list of the non-zero weights on `loihi_dense_synapse`; biases per neuron.
- Input -> Scale -> LIF (netx's input layer): the frame (times the scale) is the bias.
- Cores: `per_core` neurons per core, a layer never shares a core, all channels of a block of
  positions on a core (as Loihi compilers place convolutions: a spike reaches few cores). Loihi
  1's tile of 4 cores (SANA-FE's loihi.yaml, whose header cites Davies et al. 2018) is repeated on
  a mesh 4 tiles high and as wide as needed: one mesh, no chip-to-chip links. order="neuron" fills
  cores in (C, H, W) order instead (a spike then reaches many cores).
"""
from __future__ import annotations

import json
import math
import pathlib
import subprocess
import tempfile

import numpy as np
import yaml

from ..errors import UserError

# Loihi 1 per-event energies (J) and latencies (s): Davies et al. 2018, as in SANA-FE's loihi.yaml.
LOIHI1 = dict(
    hop=dict(energy_north_hop=4.2e-12, latency_north_hop=6.5e-9, energy_east_hop=3.0e-12, latency_east_hop=4.1e-9,
             energy_south_hop=4.2e-12, latency_south_hop=6.5e-9, energy_west_hop=3.0e-12, latency_west_hop=4.1e-9),
    axon_in=dict(energy_message_in=0.0, latency_message_in=16.0e-9),
    soma=dict(model="leaky_integrate_fire", energy_access_neuron=51.2e-12, latency_access_neuron=6.0e-9,
              energy_update_neuron=21.6e-12, latency_update_neuron=3.7e-9,
              energy_spike_out=69.3e-12, latency_spike_out=30.0e-9),
    synapses={"loihi_dense_synapse": (35.5e-12, 3.8e-9), "loihi_sparse_synapse": (33.6e-12, 4.7e-9),
              "loihi_conv_synapse": (24.0e-12, 3.1e-9)},
    axon_out=dict(energy_message_out=111.0e-12, latency_message_out=5.1e-9),
    sync={1: 0.6e-6, 2: 1.0e-6, 4: 1.4e-6, 29: 1.8e-6})


MAPPED = ("Input", "Output", "Scale", "Flatten", "Conv2d", "Affine", "Linear", "LIF", "CubaLIF")


def arch_yaml(cores: int, per_core: int = 1024) -> dict:
    """Loihi 1's tile of 4 cores, repeated on a mesh 4 high and ceil(tiles / 4) wide."""
    tiles = max(1, math.ceil(cores / 4))
    width, height = max(1, math.ceil(tiles / 4)), 4
    c = LOIHI1
    core = dict(name="loihi_core[0..3]",
                attributes=dict(buffer_position="soma", buffer_inside_unit=False, max_neurons_supported=per_core),
                axon_in=[dict(name="loihi_in", attributes=c["axon_in"])],
                soma=[dict(name="loihi_lif", attributes=c["soma"])],
                dendrite=[dict(name="loihi_dendrites", attributes=dict(model="accumulator", energy_update=0.0,
                                                                        latency_update=0.0))],
                synapse=[dict(name=n, attributes=dict(model="current_based", energy_process_spike=e,
                                                      latency_process_spike=t))
                         for n, (e, t) in c["synapses"].items()],
                axon_out=[dict(name="loihi_out", attributes=c["axon_out"])])
    return dict(architecture=dict(
        name="loihi_chip",
        attributes=dict(topology="mesh", width=width, height=height, link_buffer_size=16,
                        sync_model="table", latency_sync=c["sync"]),
        tile=[dict(name=f"loihi_tile[0..{width * height - 1}]", attributes=c["hop"], core=[core])]))


def _f(x) -> str:
    """A number as YAML text: integers without a decimal point."""
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def _flat(values) -> str:
    return "[" + ", ".join(_f(v) for v in np.asarray(values).ravel()) + "]"


def _ranges(values):
    """(start, end, value) runs of equal values."""
    v = np.asarray(values, np.float64).ravel()
    cut = np.flatnonzero(np.diff(v)) + 1
    starts, ends = np.r_[0, cut], np.r_[cut, v.size] - 1
    return [(int(s), int(e), v[s]) for s, e in zip(starts, ends)]


def _scalar(a, name):
    a = np.asarray(a, np.float64).ravel()
    if not np.all(a == a[0]):
        raise UserError(f"per-neuron {name} is not supported (a group attribute here)")
    return float(a[0])


def _conv_pairs(w, in_shape, stride, pad):
    """(source, target, weight) of every in-bounds kernel tap of a padded Conv2d, C-order indices."""
    co, ci, kh, kw = w.shape
    _, H, W = in_shape
    oh, ow = (H + 2 * pad[0] - kh) // stride[0] + 1, (W + 2 * pad[1] - kw) // stride[1] + 1
    o, y, x, c, ky, kx = np.meshgrid(*(np.arange(n) for n in (co, oh, ow, ci, kh, kw)), indexing="ij")
    iy, ix = y * stride[0] - pad[0] + ky, x * stride[1] - pad[1] + kx
    ok = (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
    src = (c * H + iy) * W + ix
    dst = (o * oh + y) * ow + x
    return src[ok], dst[ok], w[o[ok], c[ok], ky[ok], kx[ok]]


def write(graph, frame, arch_path, net_path, *, units=64.0, dt=1.0, per_core=1024, order="spatial"):
    """Write the two files; returns {"layers": {group: (first core, cores)}, "cores", "units"}."""
    nodes, preds = graph.nodes, {}
    for a, b in graph.edges:
        preds.setdefault(b, []).append(a)
    kind = lambda k: type(nodes[k]).__name__
    for k in nodes:
        if kind(k) not in MAPPED or kind(k) in ("LIF", "CubaLIF") and len(preds.get(k, [])) != 1:
            raise UserError(f"SANA-FE: {k} ({kind(k)}) is not mapped: loihi/sanafe.py maps chains of stock LIF / "
                            "CubaLIF layers (netx files), each fed by one synaptic node")
    neuron_keys = [k for k in nodes if kind(k) in ("LIF", "CubaLIF")]
    name = {k: k.replace(".", "_") for k in neuron_keys}          # '.' separates group and neuron
    groups, edges, mappings, placed, core = [], [], [], {}, 0
    frame = np.asarray(frame, np.float64)
    for k in neuron_keys:
        n = nodes[k]
        size = int(np.prod(n.output_type["output"]))
        tau = _scalar(getattr(n, "tau_mem", getattr(n, "tau", None)), "tau")
        r = _scalar(n.r, "r")
        if kind(k) == "CubaLIF" and _scalar(n.tau_syn, "tau_syn") != dt:
            raise UserError(f"{k}: a current that outlasts one step (tau_syn != dt) is not mapped")
        gain = 1.0 if math.isinf(tau) else dt * r / tau                # v += gain * I
        decay = 1.0 if math.isinf(tau) else 1.0 - dt / tau
        bias = np.zeros(size) + (0.0 if math.isinf(tau) else dt / tau * _scalar(n.v_leak, "v_leak"))
        (src,) = preds[k]
        syn_hw = "loihi_dense_synapse"
        if kind(src) == "Scale" and kind(preds[src][0]) == "Input":    # the frame as bias
            bias = bias + gain * (np.asarray(nodes[src].scale) * frame.reshape(nodes[src].scale.shape)).ravel()
        elif kind(src) in ("Conv2d", "Affine", "Linear"):
            s = nodes[src]
            w = np.asarray(s.weight, np.float64) * gain * units
            pre = preds[src][0]
            while kind(pre) == "Flatten":
                pre = preds[pre][0]
            if pre not in name:
                raise UserError(f"{k}: synapse {src} is not fed by a neuron node")
            b = getattr(s, "bias", None)
            if kind(src) == "Conv2d":
                syn_hw = "loihi_conv_synapse"
                if s.groups != 1 or tuple(s.dilation) != (1, 1):
                    raise UserError(f"{src}: groups/dilation are not mapped")
                cin, H, W = (int(d) for d in s.input_type["input"])
                if b is not None:
                    hw = size // w.shape[0]
                    bias = bias + np.repeat(np.asarray(b, np.float64) * gain, hw)
                if tuple(s.padding) == (0, 0):
                    kh, kw = w.shape[2:]
                    edges.append(f"- {name[pre]} -> {name[k]}: {{type: conv2d, input_height: {H}, "
                                 f"input_width: {W}, input_channels: {cin}, kernel_height: {kh}, "
                                 f"kernel_width: {kw}, kernel_count: {w.shape[0]}, stride_height: {s.stride[0]}, "
                                 f"stride_width: {s.stride[1]}, weight: {_flat(w.transpose(2, 3, 1, 0))}}}")
                else:
                    a_, b_, v_ = _conv_pairs(w, (cin, H, W), tuple(s.stride), tuple(s.padding))
                    edges.append(_sparse(name[pre], name[k], a_, b_, v_))
            else:
                if b is not None:
                    bias = bias + np.asarray(b, np.float64).ravel() * gain
                t, f = np.nonzero(w)
                edges.append(_sparse(name[pre], name[k], f, t, w[t, f]))
        else:
            raise UserError(f"{k}: input from a {kind(src)} is not mapped")
        soma = dict(threshold=_scalar(n.v_threshold, "v_threshold") * units, reset=_scalar(n.v_reset, "v_reset") * units,
                    reset_mode="hard", leak_decay=decay, input_decay=0.0)
        attrs = [dict(log_spikes=True), dict(soma_hw_name="loihi_lif"), dict(dendrite_hw_name="loihi_dendrites"),
                 dict(synapse_hw_name=syn_hw), dict(soma=soma)]
        bias = bias * units
        groups.append(dict(name=name[k], attributes=attrs,
                           neurons=[{f"{s}..{e}" if e > s else str(s): [dict(bias=float(v))]}
                                    for s, e, v in _ranges(bias)]))
        shape = [int(d) for d in n.output_type["output"]]
        if order == "spatial" and len(shape) == 3 and shape[0] <= per_core:
            # all channels of a block of positions on one core (as Loihi compilers place convolutions):
            #  a spike then reaches few cores, so few messages
            chans, hw = shape[0], shape[1] * shape[2]
            ppc = per_core // chans
            cores = math.ceil(hw / ppc)
            for i in range(cores):
                c, p0, p1 = core + i, i * ppc, min(hw, (i + 1) * ppc) - 1
                mappings += [f"  - {name[k]}.{ch * hw + p0}..{ch * hw + p1}: {{core: {c // 4}.{c % 4}}}"
                             for ch in range(chans)]
        else:                                                          # neuron order (channel-major)
            cores = math.ceil(size / per_core)
            for i in range(cores):
                c = core + i
                mappings.append(f"  - {name[k]}.{i * per_core}..{min(size, (i + 1) * per_core) - 1}: "
                                f"{{core: {c // 4}.{c % 4}}}")
        placed[name[k]] = (core, cores)
        core += cores
    with open(arch_path, "w") as fh:
        yaml.safe_dump(arch_yaml(core, per_core), fh, sort_keys=False)
    head = yaml.safe_dump(dict(network=dict(name="net", groups=groups)), sort_keys=False, width=1 << 20)
    with open(net_path, "w") as fh:
        fh.write(head)
        fh.write("  edges:\n" + "\n".join("    " + e for e in edges) + "\n")
        fh.write("mappings:\n" + "\n".join(mappings) + "\n")
    return dict(layers=placed, cores=core, units=units)


def _sparse(pre, post, src, dst, w) -> str:
    pairs = ", ".join(f"[{a}, {b}]" for a, b in zip(np.asarray(src).tolist(), np.asarray(dst).tolist()))
    return f"- {pre} -> {post}: {{type: sparse, source_target_pairs: [{pairs}], weight: {_flat(w)}}}"


def simulate(python: str, arch_path, net_path, steps: int, window: int | None = None, threads: int = 1) -> dict:
    """Run SANA-FE (`python`: an interpreter that has it, e.g. .venv/sanafe/bin/python) on the two
    files for `steps` steps, totals over the first `window`; its JSON report (sanafe_run.py)."""
    script = pathlib.Path(__file__).with_name("sanafe_run.py")
    args = [str(python), str(script), str(arch_path), str(net_path), str(steps), str(window or steps), str(threads)]
    try:
        done = subprocess.run(args, capture_output=True, text=True)
    except OSError as e:
        raise UserError(f"SANA-FE: cannot run {python}: {e.strerror}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"SANA-FE failed ({python}): {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cross_check(graph, frame, steps: int, depth: int, python: str) -> dict:
    """SANA-FE's figures for `graph` on one input `frame` held for `steps` steps (its totals over
    the first `steps` of steps + depth: it delivers each layer one step late), as `mst plan
    --sanafe` reports them beside the plan's."""
    with tempfile.TemporaryDirectory() as tmp:
        info = write(graph, frame, f"{tmp}/arch.yaml", f"{tmp}/net.yaml")
        s = simulate(python, f"{tmp}/arch.yaml", f"{tmp}/net.yaml", steps + depth, steps)
    return {"source": "SANA-FE 2.2.9, its Loihi 1 description (per-event energies and latencies, barrier "
                      "table; no static power): loihi/sanafe.py", "cores": info["cores"],
            "step_seconds": s["step_time_s"], "step_seconds_max": s["step_time_max_s"],
            "throughput_per_second": s["fps"], "dynamic_joules": s["energy_j"]["total"],
            "energy_joules_by_unit": s["energy_j"], "synaptic_events": s["synaptic_events"],
            "spikes": s["neurons_fired"], "spikes_per_layer": s["fired_per_layer"],
            "wall_seconds": s["wall_load_s"] + s["wall_sim_s"], "peak_memory_mb": s["peak_rss_mb"]}

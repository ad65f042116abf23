"""What sinabs, Spyx and Rockpool mean by the NIR they write (docs/interop.md, "Producer
conventions"): all three reset by subtracting the threshold, which NIR's IF / LIF / CubaLIF (v =
v_reset) do not say; sinabs and Rockpool fire several spikes in one step. `read_as` (ir/producers.py)
calls `rewrite` to turn such a file into nodes both backends run as that framework does. Files:
tests/data/producers (each framework's own export, its own outputs; make_fixtures.py cites every
rule's file and line). Torch-free.

- sinabs 3.1.3 (NIR 1.0.4, no v_reset): IAF v += I, LIF v = a v + (1 - a) I with a = e^(-1/tau)
  (`norm_input`); then k = floor(v / thr) spikes (v >= thr), v -= k thr. As a graded ResetSubIF
  (levels M, decay 1 - a), the Affine before it times 1 - a (in float32, as sinabs rounds it: the
  counts stay sinabs's). Its LIF fields are scalars (NIR 1.0.8's type check refuses them).
- Spyx 1.0.0: the spike of step t is decided on the potential of step t - 1 and subtracted after
  the decay: v_t = beta v_{t-1} + I_t - thr [v_{t-1} > thr]; the file writes r = beta beside tau =
  1 / (1 - beta) while its input gain is 1. As snnTorch's subtraction (a CubaLIF whose current is
  the membrane, a recurrent Scale of -thr) and a Delay of one step after it.
- Rockpool 3.1.0 LIFTorch: exact exponential decays in seconds of a dt the file does not write
  (r = tau_mem e^(-dt / tau_mem) / dt gives it back, rounded to 6 digits); isyn = a_s (isyn + I),
  v = a_m v + isyn, k = floor(v / thr) spikes, v -= k thr; its Input and Output types keep the
  sample's batch axis (dropped here). As an LI of the current and a graded ResetSubIF (decay
  1 - a_m); an LI runs in float only.

Several spikes per step are a ResetSubIF's payload, at most M = loihi/widths.LEVELS_MAX (255): a
potential above M thresholds keeps the rest for the next step, where sinabs and Rockpool (up to
2^16) send it at once.
"""
from __future__ import annotations

import math

import nir
import numpy as np

from ..errors import UserError
from . import nodes as X
from .topology import node_shape, one_value
from .validate import shown

LEVELS = 255                    # loihi/widths.LEVELS_MAX: a graded spike's payload bound


def _io(node, shape) -> None:
    node.input_type, node.output_type = {"input": np.asarray(shape)}, {"output": np.asarray(shape)}


def _full(node, field: str, shape) -> np.ndarray:
    return np.broadcast_to(np.asarray(getattr(node, field), np.float64), shape).copy()


def _uniform(name, node, value, what: str, source: str) -> float:
    return one_value(value, f"{source}: node {shown(name)} has a non-uniform {what}, which this reading keeps per layer")


def _shape_of(graph, name) -> tuple:
    """A neuron's shape: the synapse's before it (sinabs's LIF fields are scalars)."""
    preds = [a for a, b in graph.edges if b == name]
    return node_shape(graph.nodes[preds[0]]) if preds else np.shape(graph.nodes[name].v_threshold)


def _graded(shape, threshold, decay: float) -> X.ResetSubIF:
    return X.ResetSubIF(shape=shape, threshold=threshold, v_init=np.zeros(1, np.float32),
                        bias=np.zeros(1, np.float32), levels=LEVELS, decay=decay)


def _before(nodes, edges, name, new: str, node) -> list:
    """Insert `node` (named `new`) on every edge into `name`."""
    nodes[new] = node
    return [(a, new if b == name else b) for a, b in edges] + [(new, name)]


def _sinabs(graph, source):
    nodes, edges = dict(graph.nodes), list(graph.edges)
    for name, node in graph.nodes.items():
        if not isinstance(node, (nir.IF, nir.LIF)):
            continue
        shape = _shape_of(graph, name)
        th = np.broadcast_to(np.asarray(node.v_threshold, np.float32), shape).copy()
        if isinstance(node, nir.IF):
            r = _full(node, "r", shape)
            nodes[name] = _graded(shape, _uniform(name, node, th, "threshold", source), 0.0)
            if np.any(r != 1):
                edges = _before(nodes, edges, name, f"{name}.gain", nir.Scale(scale=r.astype(np.float32)))
            continue
        if np.any(np.asarray(node.v_leak, np.float64) != 0):
            raise UserError(f"{source}: node {shown(name)} has v_leak != 0, which sinabs never writes")
        tau = _uniform(name, node, node.tau, "tau", source)
        a = float(_decay32(1.0, np.array([tau]))[0])          # sinabs: exp(-1 / tau_mem) in float32
        nodes[name] = _graded(shape, _uniform(name, node, th, "threshold", source), 1.0 - a)
        preds = [p for p, b in edges if b == name]
        syn = graph.nodes[preds[0]] if len(preds) == 1 else None
        if not isinstance(syn, nir.Affine):
            raise UserError(f"{source}: node {shown(name)}: a sinabs LIF reads one Affine layer here")
        g = np.float32(1.0 - a)                                # its (1 - a) input factor, in the synapse
        nodes[preds[0]] = nir.Affine(weight=np.asarray(syn.weight, np.float32) * g,
                                     bias=np.asarray(syn.bias, np.float32) * g)
    for name in nodes:
        if name.endswith(".gain"):
            _io(nodes[name], node_shape(nodes[name[:-5]]))
    return nodes, edges


def _spyx(graph, source):
    nodes, edges = dict(graph.nodes), list(graph.edges)
    for name, node in graph.nodes.items():
        if not isinstance(node, (nir.IF, nir.LIF)):
            continue
        shape = node_shape(node)
        full = lambda v: np.broadcast_to(np.asarray(v, np.float64), shape).copy()  # noqa: E731
        if isinstance(node, nir.LIF):
            beta = full(node.r)                                 # spyx writes r = beta; its gain is 1
            tau = np.where(beta < 1, 1.0 / np.maximum(1.0 - beta, 1e-300), np.inf)
        else:
            tau = full(np.inf)
        one, th = full(1.0), full(node.v_threshold)
        nodes[name] = cell = nir.CubaLIF(tau_syn=tau, w_in=tau, tau_mem=one, r=one, v_leak=full(0.0),
                                         v_threshold=th, v_reset=full(0.0))
        _io(cell, shape)
        nodes[f"{name}.reset"] = sub = nir.Scale(scale=-th)
        _io(sub, shape)
        nodes[f"{name}.late"] = late = nir.Delay(delay=full(1.0))          # its spike, one step later
        _io(late, shape)
        edges = [(f"{name}.late" if a == name else a, b) for a, b in edges]
        edges += [(name, f"{name}.late"), (name, f"{name}.reset"), (f"{name}.reset", name)]
    return nodes, edges


def rockpool_dt(r: float, tau: float) -> float:
    """dt from Rockpool's r = tau e^(-dt/tau) / dt: x = dt / tau solves x e^x = 1 / r (Newton),
    rounded to 6 significant digits (Rockpool's dt are round numbers: 1e-3 by default)."""
    y, x = 1.0 / r, 0.05
    for _ in range(100):
        x -= (x * math.exp(x) - y) / ((x + 1.0) * math.exp(x))
    dt = x * tau
    return float(f"{dt:.6g}")


def _decay32(dt: float, tau: np.ndarray) -> np.ndarray:
    """exp(-dt / tau) as Rockpool's float32 torch forms it: (1 / tau) (-dt), exp rounded once."""
    x = (np.float32(1.0) / tau.astype(np.float32)) * np.float32(-dt)
    return np.exp(x.astype(np.float64)).astype(np.float32).astype(np.float64)


def _rockpool(graph, source, dt):
    nodes, edges, dropped = dict(graph.nodes), list(graph.edges), []
    for name, node in graph.nodes.items():
        if isinstance(node, (nir.Input, nir.Output)):          # the batch axis of its sample data
            key = "input" if isinstance(node, nir.Input) else "output"
            shape = np.asarray(list((node.input_type if key == "input" else node.output_type).values())[0])
            kept = shape[np.argmax(shape != 1):] if np.any(shape != 1) else shape[-1:]
            new = nir.Input(input_type={"input": kept}) if key == "input" else nir.Output(output_type={"output": kept})
            nodes[name] = new
            if len(kept) < len(shape):                         # said by `mst inspect` (the metadata)
                dropped.append(f"{name} {tuple(int(v) for v in shape)} -> {tuple(int(v) for v in kept)}")
            continue
        if not isinstance(node, nir.CubaLIF):
            continue
        if np.any(np.asarray(node.v_leak, np.float64) != 0) or np.any(np.asarray(node.w_in, np.float64) != 1):
            raise UserError(f"{source}: node {shown(name)} is not as Rockpool's LIFTorch writes it (w_in 1, v_leak 0)")
        shape = node_shape(node)
        tm, ts = _full(node, "tau_mem", shape), _full(node, "tau_syn", shape)
        step = dt or rockpool_dt(float(np.asarray(node.r).reshape(-1)[0]), float(tm.reshape(-1)[0]))
        a_m, a_s = _decay32(step, tm), _decay32(step, ts)
        tau_c = 1.0 / (1.0 - a_s)                              # the current: y = a_s y + a_s I
        nodes[f"{name}.current"] = cur = nir.LI(tau=tau_c, r=a_s * tau_c, v_leak=np.zeros(shape))
        _io(cur, shape)
        edges = [(a, f"{name}.current" if b == name else b) for a, b in edges] + [(f"{name}.current", name)]
        nodes[name] = _graded(shape, _uniform(name, node, node.v_threshold, "threshold", source),
                              1.0 - _uniform(name, node, a_m, "membrane decay", source))
        graph.metadata = {**(graph.metadata or {}), "producer_dt": step}
    if dropped:
        graph.metadata = {**(graph.metadata or {}), "batch_axis_dropped": "; ".join(dropped)}
    return nodes, edges


def rewrite(graph: nir.NIRGraph, producer: str, dt: float | None, source: str) -> nir.NIRGraph:
    """`graph` (as in the file, type checks off) as `producer` runs it, in steps."""
    if producer == "sinabs":
        nodes, edges = _sinabs(graph, source)
    elif producer == "spyx":
        nodes, edges = _spyx(graph, source)
    else:
        nodes, edges = _rockpool(graph, source, dt)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata or {}), type_check=False)

"""What snnTorch, Norse and SpikingJelly mean by the NIR they write (docs/interop.md, "Producer
conventions"): `read_as` turns a file written by one of them into the stock NIR, in steps, that
our reading (ir/cuba.py) runs exactly as that framework runs it; `guess` names the producer a
file's constants point to. Each rule cites the exporter's code in docs/interop.md. Torch-free.

- snnTorch 1.0.0 (`export_nir.py`): every time constant in seconds of its fixed dt = 1e-4, r = tau
  / dt; its default reset subtracts the threshold after the next step's decay (`_base_sub`:
  mem_t = beta mem_{t-1} + I_t - thr s_{t-1}), which the file does not say and NIR's LIF (v =
  v_reset) does not do. Read as a CubaLIF whose current is that membrane (tau_mem = one step, so
  v_t = u_t and the reset to v_reset is overwritten) with a Scale of -thr from its spikes back
  into it (one step late, as every recurrent edge); a Synaptic layer's current goes first
  through an LI. `reset="zero"` keeps NIR's reading (exact for Leaky).
- Norse 1.1.0 (`utils/export_nir.py`): tau = dt / tau_inv with its dt = 1e-3, so a duration is
  read in steps of dt^2; IF's r = 1 per step; a LIFCell's current jumps by the whole input
  (`i + input`), where NIR lets in w_in / tau_syn of it: w_in = tau_syn.
- SpikingJelly 2.0.0 (`nir_exchange/to_nir.py`): seconds of its dt (1e-4 by default, not
  written), and it fires on v >= threshold: the threshold becomes the float64 just below it.
"""
from __future__ import annotations

import re

import nir
import numpy as np

from ..errors import UserError
from .cuba import LEAKY, per_step
from .subtracting import rewrite
from .timebase import in_steps
from .topology import node_shape
from .validate import shown

PRODUCERS = ("snntorch", "norse", "spikingjelly", "sinabs", "spyx", "rockpool")
NAMES = {"snntorch": "snnTorch", "norse": "Norse", "spikingjelly": "SpikingJelly", "sinabs": "sinabs", "spyx": "Spyx",
         "rockpool": "Rockpool"}
LOOSE = ("sinabs", "rockpool")   # their files fail NIR 1.0.8's type check: read without it, then rewritten
RESETS = ("zero", "subtract")
DT = {"snntorch": 1e-4, "norse": 1e-3, "spikingjelly": 1e-4}   # each exporter's step (s)


def read_as(graph: nir.NIRGraph, producer: str, dt: float | None, reset: str | None, source: str) -> nir.NIRGraph:
    """`graph` (as in the file) in steps, read with `producer`'s conventions; `dt`: the step the
    producer exported with (default its own), `reset`: snnTorch's reset mechanism."""
    if producer not in PRODUCERS:
        raise UserError(f"--from must be one of {', '.join(PRODUCERS)}, got {producer!r}")
    if reset is not None and producer != "snntorch":
        raise UserError(f"--reset goes with --from snntorch (a {producer} file states its reset)")
    if producer in ("sinabs", "spyx", "rockpool"):        # ir/subtracting.py; their time is steps
        graph = rewrite(graph, producer, dt, source)
        graph.metadata = {**graph.metadata, "read_as": producer}
        return graph
    dt = dt or DT[producer]
    if producer == "norse":
        graph = in_steps(graph, dt * dt, rate_dt=1.0)
        graph = _replace(graph, {k: _norse_jump(n) for k, n in graph.nodes.items() if isinstance(n, nir.CubaLIF)})
    elif producer == "spikingjelly":
        graph = in_steps(graph, dt)
        graph = _replace(graph, {k: _at_or_above(n) for k, n in graph.nodes.items()
                                 if isinstance(n, (nir.IF,) + LEAKY)})
    else:
        graph = in_steps(graph, dt)
        if (reset or "subtract") == "subtract":
            graph = _snntorch_subtract(graph, source)
    graph.metadata = {**graph.metadata, "read_as": producer, "producer_dt": dt,
                      **({"reset": reset} if reset else {})}
    return graph


def _replace(graph: nir.NIRGraph, nodes: dict) -> nir.NIRGraph:
    return nir.NIRGraph(nodes={**graph.nodes, **nodes}, edges=list(graph.edges), metadata=dict(graph.metadata),
                        type_check=False)


def _copy(node, **fields):
    kept = {k: v for k, v in vars(node).items() if k not in ("input_type", "output_type", "metadata")}
    out = type(node)(**{**kept, **fields})
    out.input_type, out.output_type = node.input_type, node.output_type
    return out


def _norse_jump(node: nir.CubaLIF) -> nir.CubaLIF:
    """Norse's current jumps by the whole input: g_in = w_in / tau_syn = 1."""
    return _copy(node, w_in=np.asarray(node.tau_syn, np.float64).copy())


def _at_or_above(node):
    """v >= th as v > (the float64 just below th)."""
    th = np.asarray(node.v_threshold, np.float64)
    return _copy(node, v_threshold=np.nextafter(th, -np.inf))


def _snntorch_subtract(graph: nir.NIRGraph, source: str) -> nir.NIRGraph:
    nodes, edges = dict(graph.nodes), list(graph.edges)
    for name, node in graph.nodes.items():
        if not isinstance(node, LEAKY):
            continue
        if np.any(np.asarray(node.v_leak, np.float64) != 0):
            raise UserError(f"{source}: node {shown(name)} has v_leak != 0, which snnTorch never writes: "
                            f"not an snnTorch file, or read it with --reset zero")
        shape = node_shape(node)
        full = lambda a: np.broadcast_to(np.asarray(a, np.float64), shape).copy()  # noqa: E731
        tau, gain = (node.tau, node.r) if isinstance(node, nir.LIF) else (node.tau_mem, node.r)
        th = full(node.v_threshold)
        one = full(1.0)
        nodes[name] = membrane = nir.CubaLIF(tau_syn=full(tau), w_in=full(gain), tau_mem=one, r=one, v_leak=full(0.0),
                                             v_threshold=th, v_reset=full(0.0))
        membrane.input_type, membrane.output_type = node.input_type, node.output_type
        nodes[f"{name}.reset"] = sub = nir.Scale(scale=-th / per_step(full(gain), full(tau)))
        sub.input_type, sub.output_type = {"input": np.asarray(shape)}, {"output": np.asarray(shape)}
        edges += [(name, f"{name}.reset"), (f"{name}.reset", name)]
        if isinstance(node, nir.CubaLIF):       # Synaptic: its current, then the membrane
            nodes[f"{name}.current"] = cur = nir.LI(tau=full(node.tau_syn), r=full(node.w_in), v_leak=full(0.0))
            cur.input_type, cur.output_type = {"input": np.asarray(shape)}, {"output": np.asarray(shape)}
            edges = [(a, f"{name}.current" if b == name and a != f"{name}.reset" else b) for a, b in edges]
            edges.append((f"{name}.current", name))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata), type_check=False)


def guess(graph: nir.NIRGraph) -> tuple[str, str] | None:
    """(producer, why) when the file's constants follow one exporter's pattern (as written, before
    any dt), else None. A hint, not a proof: other writers may follow the same pattern."""
    for node in graph.nodes.values():
        f = lambda v: np.asarray(v, np.float64)  # noqa: E731
        if isinstance(node, nir.CubaLIF):
            tau_s, w_in, tau_m, r = f(node.tau_syn), f(node.w_in), f(node.tau_mem), f(node.r)
            if np.all(w_in == 1) and np.all(r == 1) and np.all(tau_s < 1e-3):
                return "norse", "its CubaLIF has w_in = r = 1 and tau_syn below 1 ms, as Norse's LIFCell writes"
            if _seconds_of(tau_m, r, 1e-4) and _seconds_of(tau_s, w_in, 1e-4):
                return "snntorch", "its CubaLIF has r = tau_mem / 1e-4 and w_in = tau_syn / 1e-4, as snnTorch's Synaptic writes"
        elif isinstance(node, nir.LIF):
            tau, r = f(node.tau), f(node.r)
            if _seconds_of(tau, r, 1e-4):
                return "snntorch", "its LIF has r = tau / 1e-4, as snnTorch's Leaky writes"
            if np.all(r == 1) and np.all(tau < 1e-4):
                return "norse", "its LIF has r = 1 and tau below 0.1 ms, as Norse's LIFBoxCell writes (tau = 1e-3 / tau_mem_inv)"
            if np.all(r < 1) and np.allclose(tau * (1 - r), 1.0, rtol=1e-4):
                return "spyx", ("its LIF has r = beta < 1 beside tau = 1 / (1 - beta), as Spyx writes it (its input gain "
                                "is 1, its spike comes a step late and subtracts)")
        elif isinstance(node, nir.IF) and np.all(f(node.r) == 1e4):
            return "spikingjelly", "its IF has r = 1e4 (1 / its dt of 1e-4), as SpikingJelly's IFNode writes"
    names = set(graph.nodes) - {"input", "output"}
    if names and all(re.fullmatch(r"layer_\d+", n) for n in names) and \
            any(isinstance(n, nir.IF) for n in graph.nodes.values()):
        return "spyx", ("its nodes are named layer_0, layer_1, .. as Spyx's exporter names them, and Spyx's IF fires "
                        "a step late and subtracts its threshold")
    return None


def _seconds_of(tau: np.ndarray, r: np.ndarray, dt: float) -> bool:
    """r = tau / dt (tau = r = inf, beta = 1, beside them), and tau is not already in steps."""
    inf = np.isinf(tau) & np.isinf(r)
    tau, r = np.broadcast_arrays(tau, r)
    finite = ~np.broadcast_to(inf, tau.shape)
    return bool(np.any(finite) and np.all(np.isclose(r[finite] * dt, tau[finite], rtol=1e-4, atol=0))
                and np.all(tau[finite] < 1.0))

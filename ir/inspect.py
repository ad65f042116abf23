"""Human-readable summary of a NIR graph: nodes, edges, shapes, parameters, extensions, host ops,
and each neuron's step as read (so a wrong dt or producer shows before a run)."""
from __future__ import annotations

import nir
import numpy as np

from . import nodes as X
from .cuba import LEAKY, cuba, leaky
from .nodes import EXTENSIONS, HOST_OPS
from .producers import NAMES
from .validate import shown

_PARAM_FIELDS = ("weight", "bias", "scale", "threshold", "v_init", "r", "v_threshold", "v_reset")


def _shape(t) -> str:
    if not t:
        return "?"
    v = list(t.values())[0]
    return "x".join(str(int(s)) for s in np.asarray(v).reshape(-1)) if v is not None else "?"


def param_count(node: nir.NIRNode) -> int:
    return sum(int(np.asarray(getattr(node, f)).size) for f in _PARAM_FIELDS
               if isinstance(getattr(node, f, None), np.ndarray))


def describe(graph: nir.NIRGraph) -> str:
    rows = []
    for name, node in graph.nodes.items():
        kind = "host" if isinstance(node, HOST_OPS) else "ext" if isinstance(node, EXTENSIONS) else "nir"
        rows.append((shown(name), type(node).__name__, kind, _shape(node.input_type), _shape(node.output_type),
                     param_count(node)))
    w = [max(len(str(r[i])) for r in rows + [("node", "type", "kind", "in", "out", "params")]) for i in range(6)]
    lines = ["  ".join(h.ljust(w[i]) for i, h in enumerate(("node", "type", "kind", "in", "out", "params")))]
    lines += ["  ".join(str(v).ljust(w[i]) for i, v in enumerate(r)) for r in rows]
    counts: dict[str, int] = {}
    for _, t, kind, *_ in rows:
        counts[f"{t} ({kind})"] = counts.get(f"{t} ({kind})", 0) + 1
    ext = sum(1 for r in rows if r[2] == "ext")
    host = sum(1 for r in rows if r[2] == "host")
    lines += ["", f"{len(rows)} nodes, {len(graph.edges)} edges, {sum(r[5] for r in rows):,} parameters; "
                  f"{ext} extension nodes, {host} host ops (kinds: nir = stock NIR, ext = mstdeploy "
                  f"extension, host = non-neuromorphic)",
              "node types: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))]
    levels = sorted({int(getattr(n, "levels", 1)) for n in graph.nodes.values() if hasattr(n, "levels")})
    if levels and levels != [1]:
        lines.append("spikes: graded, payloads 0..M with M in " + ", ".join(map(str, levels)))
    lines += as_read(graph)
    lines.append("edges:")
    lines += [f"  {shown(a)} -> {shown(b)}" for a, b in graph.edges]
    meta = {k: v for k, v in (graph.metadata or {}).items() if k != "config"}
    if meta:
        lines.append("metadata: " + ", ".join(f"{shown(k)}={shown(v)}" for k, v in meta.items()))
    return "\n".join(lines)


def _v(a) -> str:
    a = np.asarray(a, np.float64).reshape(-1)
    return f"{a.min():.6g}" if a.min() == a.max() else f"{a.min():.6g}..{a.max():.6g}"


def as_read(graph: nir.NIRGraph) -> list[str]:
    """One line per neuron node: what one step does, as the backends run it (ir/cuba.py)."""
    rows = []
    for name, n in graph.nodes.items():
        if isinstance(n, X.ResetSubIF):
            keep = f"v keeps {1.0 - n.decay:.6g}, " if n.decay else ""
            step = (f"{keep}v += input + {_v(n.bias)}; fires at v >= {_v(n.threshold)}, subtracts it"
                    + (f" (payloads 0..{int(n.levels)})" if int(n.levels) > 1 else ""))
        elif isinstance(n, LEAKY):
            c = cuba(n)
            cur = f"current keeps {_v(1 - c.du)}, input gain {_v(c.g_in)}; " if isinstance(n, nir.CubaLIF) else ""
            step = (f"{cur}v keeps {_v(1 - c.dv)}, {'current' if cur else 'input'} gain {_v(c.g_u)}, bias "
                    f"{_v(c.bias)}; fires at v > {_v(c.threshold)}, v = {_v(c.v_reset)}")
        elif isinstance(n, nir.IF):
            step = f"v keeps 1, input gain {_v(n.r)}; fires at v > {_v(n.v_threshold)}, v = {_v(n.v_reset)}"
        elif isinstance(n, (nir.I, nir.LI)):
            keep, gain, bias = leaky(n)
            step = f"output v keeps {_v(keep)}, input gain {_v(gain)}, bias {_v(bias)}"
        else:
            continue
        rows.append(f"  {shown(name)} ({type(n).__name__}): {step}")
    if not rows:
        return []
    meta = graph.metadata or {}
    how = f"dt = {meta['read_with_dt']:g}" if "read_with_dt" in meta else "in steps (dt = 1)"
    if "read_as" in meta:
        how = f"as {NAMES[meta['read_as']]} runs it, its dt = {meta['producer_dt']:g}"
    return [f"neurons, one step as read ({how}):"] + rows

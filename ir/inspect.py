"""Human-readable summary of a NIR graph: nodes, edges, shapes, parameters, extensions, host ops."""
from __future__ import annotations

import nir
import numpy as np

from .nodes import EXTENSIONS, HOST_OPS
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
    lines.append("edges:")
    lines += [f"  {shown(a)} -> {shown(b)}" for a, b in graph.edges]
    meta = {k: v for k, v in (graph.metadata or {}).items() if k != "config"}
    if meta:
        lines.append("metadata: " + ", ".join(f"{shown(k)}={shown(v)}" for k, v in meta.items()))
    return "\n".join(lines)

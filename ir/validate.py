"""One check of a graph read from a file, before anything runs it: numbers that are numbers
(time constants that are steps: timebase.py)."""
from __future__ import annotations

import nir
import numpy as np

from ..errors import UserError


def shown(name) -> str:
    """A node name as text that is safe to print (control characters escaped)."""
    text = str(name)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


# Time constants that may be infinite (no decay: their limit is finite), each with the gain that
# may be infinite where it is (tau = r = inf: unit gain, ir/cuba.py per_step).
LIMITS = {nir.LIF: {"tau": "r"}, nir.LI: {"tau": "r"}, nir.CubaLIF: {"tau_mem": "r", "tau_syn": "w_in"},
          nir.CubaLI: {"tau_mem": "r", "tau_syn": "w_in"}}


def check_graph(graph: nir.NIRGraph, source: str) -> None:
    """Every numeric field of every node is finite (NaN or infinity would run silently in float and
    overflow in fixed point), except a time constant's +inf and its gain's +inf beside it (their
    limits are finite); nested graphs are refused (we run flat graphs)."""
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise UserError(f"{source}: node {shown(name)} is a nested graph, which is not supported")
        limits = LIMITS.get(type(node), {})
        gains = {g: np.isposinf(np.asarray(getattr(node, tau), np.float64)) for tau, g in limits.items()}
        for field, value in vars(node).items():
            if isinstance(value, (dict, str, bytes)) or value is None:
                continue
            a = np.asarray(value)
            if a.dtype.kind not in "fc":
                continue
            allowed = np.isposinf(a) if field in limits else np.isposinf(a) & gains[field] if field in gains else False
            if not np.all(np.isfinite(a) | allowed):
                raise UserError(f"{source}: node {shown(name)} ({type(node).__name__}) has NaN or infinite "
                                f"values in {field}" + (" (an infinite gain needs its time constant infinite "
                                                        "too)" if field in gains and not np.isnan(a).any() else ""))


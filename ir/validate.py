"""One check of a graph read from a file, before anything runs it: numbers that are numbers, and
time constants that are steps."""
from __future__ import annotations

import nir
import numpy as np

from ..errors import UserError


def shown(name) -> str:
    """A node name as text that is safe to print (control characters escaped)."""
    text = str(name)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def check_graph(graph: nir.NIRGraph, source: str) -> None:
    """Every numeric field of every node is finite (NaN or infinity would run silently in float and
    overflow in fixed point); nested graphs are refused (we run flat graphs)."""
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise UserError(f"{source}: node {shown(name)} is a nested graph, which is not supported")
        for field, value in vars(node).items():
            if isinstance(value, (dict, str, bytes)) or value is None:
                continue
            a = np.asarray(value)
            if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
                raise UserError(f"{source}: node {shown(name)} ({type(node).__name__}) has NaN or infinite "
                                f"values in {field}")
        _check_steps(node, name, source)


# Time constants, read in steps (dt = 1, docs/time-and-randomness.md): below one step, Euler's
# decay exceeds the whole state each step, so such a file was written for time in seconds.
TAUS = {nir.LIF: ("tau",), nir.CubaLIF: ("tau_mem", "tau_syn")}


def _check_steps(node, name, source: str) -> None:
    for field in TAUS.get(type(node), ()):
        tau = np.asarray(getattr(node, field), np.float64)
        if tau.size and float(tau.min()) < 1.0:
            raise UserError(
                f"{source}: node {shown(name)} ({type(node).__name__}) has {field} = {float(tau.min()):g}, less "
                f"than one step: time constants are read in steps (dt = 1), and this file was written for "
                f"time in seconds (snnTorch writes for dt = 1e-4, Norse for dt = 1e-3); reading it with a "
                f"dt is not supported yet")

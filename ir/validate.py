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


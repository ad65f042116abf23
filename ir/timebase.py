"""Time in a NIR file, read as steps (docs/time-and-randomness.md, "Time in seconds").

NIR states continuous-time dynamics (tau dv/dt = ...); every backend here runs Euler steps of
dt = 1. A file written for time in seconds (snnTorch: dt = 1e-4; Norse writes tau = dt / tau_inv
for its dt = 1e-3, so dt = 1e-6 recovers its steps) is read with that dt: time constants and
delays are divided by it, integrators' gains multiplied by it. The dt comes from the caller
(`--dt`), else from the file's metadata "dt", else 1. Torch-free.
"""
from __future__ import annotations

import copy
import math

import nir
import numpy as np

from ..errors import UserError
from .validate import shown

# Fields that are durations (divided by dt) and gains per unit of time (multiplied by dt).
DURATIONS = {nir.LIF: ("tau",), nir.CubaLIF: ("tau_mem", "tau_syn"), nir.LI: ("tau",),
             nir.CubaLI: ("tau_mem", "tau_syn"), nir.Delay: ("delay",)}
RATES = {nir.IF: ("r",), nir.I: ("r",)}


def file_dt(graph: nir.NIRGraph, source: str) -> float | None:
    """The step the file's metadata states ("dt"), if any."""
    value = (graph.metadata or {}).get("dt")
    if value is None:
        return None
    try:
        dt = float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise UserError(f"{source}: metadata dt {value!r} is not a number") from None
    return check_dt(dt, f"{source}: metadata dt")


def check_dt(dt: float, what: str = "--dt") -> float:
    if not (math.isfinite(dt) and dt > 0):
        raise UserError(f"{what} must be a positive finite number of seconds per step, got {dt}")
    return dt


def in_steps(graph: nir.NIRGraph, dt: float, rate_dt: float | None = None) -> nir.NIRGraph:
    """A copy of `graph` with its time in steps of `dt` (the same graph when dt == 1); gains per
    unit of time in steps of `rate_dt` (default dt: a producer may state them in another unit)."""
    rate_dt = dt if rate_dt is None else rate_dt
    if dt == 1.0 and rate_dt == 1.0:
        return graph
    nodes = {}
    for name, node in graph.nodes.items():
        scaled = {f: 1.0 / dt for f in DURATIONS.get(type(node), ())}
        scaled.update({f: rate_dt for f in RATES.get(type(node), ())})
        if scaled:
            node = copy.copy(node)
            for f, k in scaled.items():
                value = np.asarray(getattr(node, f))
                new = value.astype(np.float64) * k
                if isinstance(node, nir.Delay):          # 0.003 / 0.001 is 2.9999999999999996
                    whole = np.round(new)
                    new = np.where(np.isclose(new, whole, rtol=1e-6, atol=0), whole, new)
                setattr(node, f, new.astype(value.dtype) if value.dtype.kind == "f" else new)
        nodes[name] = node
    meta = {**(graph.metadata or {}), "dt": 1.0, "read_with_dt": float(dt)}
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=meta, type_check=False)


def check_steps(graph: nir.NIRGraph, source: str, dt: float | None, hint: tuple[str, str] | None = None) -> None:
    """Time constants below one step: Euler's decay would exceed the whole state each step, so
    the file was written for another time unit; say which dt (or producer, `hint`) to pass."""
    for name, node in graph.nodes.items():
        for field in DURATIONS.get(type(node), ()):
            if isinstance(node, nir.Delay):
                continue
            tau = np.asarray(getattr(node, field), np.float64)
            if tau.size and float(tau.min()) < 1.0:
                read = (f"read with dt = {dt:g}" if dt else "read in steps (dt = 1)")
                fix = (f"{hint[1]}: pass --from {hint[0]}" if hint else
                       "pass the file's step with --dt, or its producer with --from snntorch|norse|spikingjelly|sinabs|spyx|rockpool")
                raise UserError(
                    f"{source}: node {shown(name)} ({type(node).__name__}) has {field} = "
                    f"{float(tau.min()) * (dt or 1):g}, less than one step {read}: {fix} (docs/interop.md)")

"""Reading and writing NIR files with clear errors and atomic writes."""
from __future__ import annotations

import io
import pathlib

import h5py
import nir
import numpy as np

from ..atomic import write_bytes
from ..errors import UserError, caution
from . import nodes  # noqa: F401  (registers the extension node types with nir.read)
from .netx import is_netx, read_netx
from .producers import LOOSE, guess, read_as
from .timebase import check_steps, file_dt, in_steps
from .validate import check_graph


def graph_bytes(graph: nir.NIRGraph) -> bytes:
    """The NIR file of `graph`, made in memory: HDF5 never writes to a disk that may fill up (a
    failed HDF5 write can crash the process when the file is closed later)."""
    buf = io.BytesIO()
    nir.write(buf, graph)
    return buf.getvalue()


def write_graph(graph: nir.NIRGraph, path) -> None:
    write_bytes(path, graph_bytes(graph))


def _node_types(group, out: set, written: dict) -> None:
    """The node types of a file's groups, and in `written` what its writer left out or added:
    IF / LIF without v_reset (NIR <= 1.0.4: sinabs), a leading 1 on the Input's shape (Rockpool's
    batch axis, when the type check then fails at the Input; a one-channel image has it too)."""
    for k in group:
        g = group[k]
        if isinstance(g, h5py.Group) and "type" in g:
            t = g["type"][()]
            t = t.decode() if isinstance(t, bytes) else str(t)
            out.add(t)
            if t in ("IF", "LIF") and "v_reset" not in g:
                written["no_v_reset"] = True
            if t == "Input" and "shape" in g and np.asarray(g["shape"][()]).size > 1 and \
                    int(np.asarray(g["shape"][()]).reshape(-1)[0]) == 1:
                written["batch_axis"] = f"{k}.output"       # as a type-check error names it
            if "nodes" in g:
                _node_types(g["nodes"], out, written)


def _hint(written: dict, type_error: str = "") -> tuple[str, str] | None:
    """(producer, why) from what the file's writer left out or added (_node_types); a leading 1
    on the Input counts where NIR's type check failed at it (`type_error`)."""
    if written.get("batch_axis") and written["batch_axis"] in type_error:
        return "rockpool", "its Input keeps the sample's batch axis, as Rockpool's exporter writes it"
    if written.get("no_v_reset"):
        return "sinabs", ("its IF / LIF have no v_reset (NIR 1.0.4 or older), as sinabs writes them; sinabs resets "
                          "by subtraction and fires several spikes a step")
    return None


def read_graph(path, dt: float | None = None, producer: str | None = None, reset: str | None = None) -> nir.NIRGraph:
    """nir.read, with every failure turned into one clear UserError; time in steps of `dt` (else
    the dt of the file's metadata, else 1: ir/timebase.py); `producer` (snntorch, norse,
    spikingjelly, sinabs, spyx, rockpool): read with that exporter's conventions (ir/producers.py),
    `reset` snnTorch's."""
    p = pathlib.Path(path)
    if not p.is_file():
        raise UserError(f"NIR file not found: {p}")
    try:
        with h5py.File(p, "r") as f:
            if is_netx(f):
                return _netx(p, f, dt, producer, reset)
            if "node" not in f:
                raise UserError(f"{p} is not a NIR file (no 'node' group) nor a lava-dl netx file (no 'layer' group)")
            types: set = set()
            written: dict = {}
            _node_types(f["node"]["nodes"], types, written)
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - h5py raises OSError and friends for broken files
        raise UserError(f"{p} is not a readable NIR file (corrupt or truncated HDF5)") from None
    known = set(getattr(nir.ir, "__all_ir"))
    unknown = sorted(types - known)
    if unknown:
        raise UserError(f"{p}: unknown NIR node type(s): {', '.join(unknown)}")
    try:
        graph = nir.read(p, type_check=producer not in LOOSE)        # theirs fail it: read_as fixes them
    except ValueError as e:                 # an Input with a leading 1 that its consumer lacks: Rockpool's
        hint = _hint(written, str(e))
        why = f" ({hint[1]}: --from {hint[0]} reads it)" if hint and not producer else ""
        raise UserError(f"{p}: invalid graph: {str(e).splitlines()[0]}{why}") from None
    except Exception as e:  # noqa: BLE001
        raise UserError(f"{p}: cannot load the graph ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    check_graph(graph, str(p))
    dt = dt or file_dt(graph, str(p))
    hint = None
    if producer:
        graph = read_as(graph, producer, dt, reset, str(p))
    else:
        if reset:
            raise UserError("--reset goes with --from snntorch")
        hint = _hint(written) or guess(graph)
        if dt:
            graph = in_steps(graph, dt)
    check_steps(graph, str(p), dt, hint)
    if hint:                            # for a run that stays silent (ir/silence.py)
        graph.metadata = {**(graph.metadata or {}), "looks_like": hint[0], "because": hint[1]}
        caution(f"{p}: {hint[1]}; --from {hint[0]} reads it as that framework runs it (docs/interop.md)")
    return graph


def _netx(p: pathlib.Path, f, dt, producer, reset) -> nir.NIRGraph:
    """A lava-dl netx file (ir/netx.py): its time is Loihi's steps, its conventions netx's own."""
    if dt or producer or reset:
        raise UserError(f"{p} is a netx file: its time is in steps and its conventions are netx's "
                        "(--dt, --from and --reset are for NIR files)")
    graph = read_netx(p, f)
    check_graph(graph, str(p))
    return graph

"""Run a NIR graph in Lava from the caller's process: a worker interpreter does the simulation
(worker.py); this side waits with a timeout, turns a failure inside a process model (which makes
Lava hang) into one clear error, and reads the results back."""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from ...atomic import alive
from ...errors import UserError
from ...ir.io import read_graph
from ...ir.topology import Topology, node_shape
from ...loihi.plan import FixedPlan
from ...machine import check_fits
from ...progress import bar as progress_bar
from .netx_job import FLOAT_REFUSED, is_netx_file

# One BLAS thread per process model: a run has one OS process per node on a few cores.
_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SHM_DIR = pathlib.Path("/dev/shm")
PROCESS_BYTES = 8 << 20      # memory of one Lava process model (measured 6-7 MiB, docs/sources.md)
# The worker holds the graph and Lava's compiled network: measured 1.75 GB for random mst-t's
# 46 M weights (~38 bytes per weight); the group process holds each model's weights again.
WORKER_BYTES_PER_WEIGHT = 40
MODEL_BYTES_PER_WEIGHT = 16


def shm_prefix(worker_pid: int) -> str:
    """Name prefix of the shared-memory segments of one worker's Lava run (see worker.py)."""
    return f"/mstlava{worker_pid}_"


@dataclass
class LavaRun:
    logits: np.ndarray                                # (T, images, K) output per logical step
    spikes: dict = field(default_factory=dict)        # neuron node -> (images, T, *shape) bool (graded: uint8)
    saturation: dict = field(default_factory=dict)    # neuron node -> {"high", "low", "wrapped"}
    delivered: dict = field(default_factory=dict)     # gate node -> (images, T, *shape) bool: passed on
    meta: dict = field(default_factory=dict)          # steps, depth, processes, timings, quantization
    raw: np.ndarray | None = None                     # (K, Lava steps) what the output sink received

    @property
    def seconds(self) -> float:
        return self.meta["build_seconds"] + self.meta["compile_seconds"] + self.meta["run_seconds"]

    def predictions(self) -> np.ndarray:
        """(images,) argmax of the logits summed over all T steps."""
        return self.logits.sum(0).argmax(-1)


def _weights(node) -> int:
    return sum(np.size(v) for v in vars(node).values() if isinstance(v, np.ndarray))


def node_bytes(topo: Topology, images: int, steps: int) -> dict[str, int]:
    """Memory of each node's process model in a Lava run: its weights, its state and messages (a
    few float64 copies of its output) and its spike record (a byte per value and step)."""
    return {n: MODEL_BYTES_PER_WEIGHT * _weights(topo.node(n)) + int(np.prod(node_shape(topo.node(n)),
            dtype=np.int64)) * (40 + images * steps) for n in topo.order}


def run_bytes(topo: Topology) -> int:
    """Memory of a Lava run beyond its nodes': the worker (which reads the whole graph) and a few
    processes (the group, the input, the output, constant inputs)."""
    return WORKER_BYTES_PER_WEIGHT * sum(_weights(topo.node(n)) for n in topo.order) + 8 * PROCESS_BYTES


def run_lava(graph_path, images: np.ndarray, steps: int, fixed_point: bool, first_sample: int = 0,
             timeout: float = 900, progress: bool = True, reading: dict | None = None,
             block: list[str] | None = None, feeds: dict | None = None, groups: int | None = None,
             graph=None) -> LavaRun:
    """Run `images` (N, *input shape), each the same every step, or (N, steps, *input shape), one
    frame per step, for `steps` steps each; image i is gating sample first_sample + i. `reading`:
    read_graph's dt, producer and reset (ir/io.py). `block`: only these nodes (ir/blocks.py), each node outside
    that they read played from `feeds[node]` (N, steps, *shape): its recorded output. `groups`: Lava
    processes that run our process models (None: network.GROUPS). `graph`: the file as the caller
    already read it (with `reading`), so that a command reads it once (the worker reads it again)."""
    if steps < 1:
        raise UserError("the number of steps must be >= 1")
    if len(images) == 0:
        raise UserError("no images to run")
    netx = is_netx_file(graph_path)                   # runs in netx's own processes (netx_job.py)
    if netx and not fixed_point:
        raise UserError(FLOAT_REFUSED)
    if graph is None:
        graph = read_graph(graph_path, **(reading or {}))
    topo = Topology(graph)                            # the graph's own size fits
    inputs = int(np.prod(node_shape(topo.node(topo.input), "input")))
    names = topo.order if block is None else block
    cost = node_bytes(topo, len(images), steps)
    check_fits(8 * inputs * len(images) * steps + run_bytes(topo) + sum(cost[n] for n in names),
               f"a Lava run of {len(images)} images x {steps} steps", "-T or -n, or run parity block by block")
    remove_stale_runs()
    with tempfile.TemporaryDirectory(prefix=f"mst-lava-{os.getpid()}-") as out:
        np.save(os.path.join(out, "images.npy"), np.asarray(images, np.float64))
        if block is not None:
            np.savez(os.path.join(out, "feeds.npz"), **(feeds or {}))
        job = {"graph": str(pathlib.Path(graph_path).resolve()), "steps": int(steps), "fixed_point": bool(fixed_point),
               "first_sample": int(first_sample), "out_dir": out, "reading": reading or {},
               "block": None if block is None else list(block), "groups": groups,
               "netx": netx}
        job_path = os.path.join(out, "job.json")
        with open(job_path, "w") as f:
            json.dump(job, f)
        _run_worker(job_path, out, timeout, progress)
        run = _collect(out, steps, len(images))
    if netx and not run.meta.get("readout"):     # its output's spikes in our logits' unit (network.Network.logits)
        plan = FixedPlan(graph, topo)
        run.logits = run.logits * plan.output_unit + plan.output_bias.reshape(-1)
    elif netx:                                  # a readout's sums (W / 64), and its bias
        run.logits = run.logits + FixedPlan(graph, topo).output_bias.reshape(-1)
    return run


def remove_stale_runs() -> None:
    """What runs killed together with their worker (no one left to clean) left: temp folders
    named after a dead caller, shared memory named after a dead worker."""
    pattern = re.compile(r"^mst-lava-(\d+)-")
    for folder in pathlib.Path(tempfile.gettempdir()).glob("mst-lava-*"):
        m = pattern.match(folder.name)
        if m and not alive(int(m.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
    shm = re.compile(r"^" + re.escape(shm_prefix(0).lstrip("/")[:-2]) + r"(\d+)_")
    for seg in SHM_DIR.glob(shm_prefix(0).lstrip("/")[:-2] + "*"):
        m = shm.match(seg.name)
        if m and not alive(int(m.group(1))):
            seg.unlink(missing_ok=True)


def _run_worker(job_path: str, out: str, timeout: float, progress: bool) -> None:
    """Run the worker; stop it (and everything it started) on an error, a timeout or our exit."""
    env = {**os.environ, **_ENV}
    # A pipe the worker watches: when this process dies (even by SIGKILL) its end closes, and the
    # worker removes its processes, shared memory and `out` (worker.py, watch_parent).
    lifeline, keep = os.pipe()
    try:
        with open(os.path.join(out, "stderr.txt"), "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "mstdeploy.backends.lava_nc.worker", job_path,
                                     str(lifeline)], stdout=subprocess.DEVNULL, stderr=err, env=env,
                                    start_new_session=True, pass_fds=(lifeline,))
    finally:
        os.close(lifeline)
    try:
        _wait(proc, out, timeout, progress)
    finally:
        os.close(keep)
    if proc.returncode != 0:
        lines = pathlib.Path(out, "stderr.txt").read_text().strip().splitlines()
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        raise UserError(last[len("error: "):] if last.startswith("error: ") else f"Lava worker failed: {last}")


def _wait(proc: subprocess.Popen, out: str, timeout: float, progress: bool) -> None:
    bar = progress_bar(total=None, desc="lava", unit="step", enabled=progress)
    errors = os.path.join(out, "errors.txt")
    start = time.time()
    try:
        while proc.poll() is None:
            time.sleep(0.2)
            if os.path.exists(errors) and os.path.getsize(errors):
                time.sleep(0.5)                     # let the other failing models write too
                lines = pathlib.Path(errors).read_text().strip().splitlines()
                raise UserError(f"Lava run failed in process model {lines[0]}"
                                + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""))
            if time.time() - start > timeout:
                raise UserError(f"the Lava run did not finish within {timeout:.0f} s and was stopped "
                                "(raise --timeout for long runs)")
            _progress(bar, os.path.join(out, "progress.txt"))
    finally:
        if proc.poll() is None:
            _kill(proc)
        bar.close()


def _progress(bar, path: str) -> None:
    try:
        done, total = map(int, pathlib.Path(path).read_text().split())
    except (OSError, ValueError):
        return
    bar.total = total
    bar.update(done - bar.n)           # redraws at the bar's own rate


def _kill(proc: subprocess.Popen) -> None:
    """Stop the worker and every Lava process model it forked (one process group), and remove the
    shared memory of its channels: the manager process that would have unlinked it is gone too."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    for seg in SHM_DIR.glob(shm_prefix(proc.pid).lstrip("/") + "*"):
        seg.unlink(missing_ok=True)


def _collect(out: str, T: int, n: int) -> LavaRun:
    meta = json.loads(pathlib.Path(out, "meta.json").read_text())
    res = np.load(os.path.join(out, "result.npz"))
    run = LavaRun(res["logits"], meta=meta, raw=res["raw"])
    for index, name in meta["records"].items():
        path = os.path.join(out, f"node{index}.npz")
        if not os.path.exists(path):
            continue
        f = np.load(path)
        for key, into in (("spikes", run.spikes), ("delivered", run.delivered)):
            if key in f:
                shape = tuple(int(v) for v in f["shape"])
                bits = np.unpackbits(f[key], axis=-1)[..., :int(np.prod(shape))]
                into[name] = bits.astype(bool).reshape(n, T, *shape)
        if "values" in f:                         # a sigma-delta neuron's messages (netx_job.py)
            run.spikes[name] = f["values"]
        if "payloads" in f:                       # a graded neuron's payloads (uint8)
            run.spikes[name] = f["payloads"].reshape(n, T, *(int(v) for v in f["shape"]))
        if "saturation" in f:
            high, low, wrapped = (int(v) for v in f["saturation"])
            run.saturation[name] = {"high": high, "low": low, "wrapped": wrapped}
    return run

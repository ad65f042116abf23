"""One Lava simulation in its own interpreter: `python -m mstdeploy.backends.lava_nc.worker JOB.json [FD]`.

A fresh interpreter keeps torch out of the parent of Lava's forked process models (torch there can
deadlock, docs/sources.md, "Lava in practice") and lets the caller stop a run that hangs. Writes result.npz and
meta.json into the job's out_dir; progress.txt says how many steps are done.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
import traceback
import warnings

import numpy as np

from ...errors import Caution, UserError
from ...ir.io import read_graph
from .network import GROUPS, Network
from .run import SHM_DIR, shm_prefix

# Messages a channel holds. Lava's default is 64 (compiler.py), each a full copy of the port's
# array in /dev/shm; under the Loihi protocol a channel holds at most one message between steps.
CHANNEL_SLOTS = 2


def name_shared_memory() -> None:
    """Name the shared-memory segments of Lava's channels after this worker, so that a caller
    that has to kill the run can remove them (a killed run cannot unlink its own). Lava's
    segments are made by a multiprocessing manager forked from here, which inherits this."""
    from multiprocessing import shared_memory
    prefix = shm_prefix(os.getpid())
    shared_memory._make_filename = lambda: prefix + secrets.token_hex(6)


def watch_parent(fd: int, out_dir: str) -> None:
    """When the caller dies (its end of the pipe `fd` closes, whatever killed it), remove this run's
    shared memory and files and kill this worker with every Lava process it started (one group)."""
    def watch():
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        prefix = shm_prefix(os.getpid()).lstrip("/")
        for seg in SHM_DIR.glob(prefix + "*"):
            seg.unlink(missing_ok=True)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.killpg(os.getpgrp(), signal.SIGKILL)
    threading.Thread(target=watch, daemon=True).start()


def run_job(job: dict) -> None:
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    name_shared_memory()
    out = job["out_dir"]
    if job.get("netx"):                            # the file through lava-dl's own loader
        from .netx_job import run_netx
        with open(os.path.join(out, "meta.json"), "w") as f:
            json.dump(run_netx(job), f)
        return
    t0 = time.perf_counter()
    with warnings.catch_warnings():             # the parent has shown them
        warnings.simplefilter("ignore", Caution)
        graph = read_graph(job["graph"], **job["reading"])
    images = np.load(os.path.join(out, "images.npy"))
    block = job.get("block")
    feeds = dict(np.load(os.path.join(out, "feeds.npz"))) if block is not None else None
    net = Network(graph, images, int(job["steps"]), bool(job["fixed_point"]), int(job["first_sample"]), out,
                  block, feeds, GROUPS if job.get("groups") is None else int(job["groups"]))
    t1 = time.perf_counter()
    sink = net.procs.get(net.topo.output)
    src = net.compiled[0]                          # Lava runs every process connected to this one
    cfg = Loihi2SimCfg(select_tag="fixed_pt" if job["fixed_point"] else "floating_pt",
                       exception_proc_model_map=net.models)
    src.create_runtime(run_cfg=cfg, compile_config={"pypy_channel_size": CHANNEL_SLOTS})   # compile and start
    t2 = time.perf_counter()
    done, chunk = 0, max(int(job["steps"]), 1)
    try:
        while done < net.lava_steps:
            n = min(chunk, net.lava_steps - done)
            src.run(condition=RunSteps(num_steps=n))
            done += n
            with open(os.path.join(out, "progress.txt"), "w") as f:
                f.write(f"{done} {net.lava_steps}\n")
        t3 = time.perf_counter()
        data = sink.data.get() if sink is not None else None
    finally:
        src.stop()
    if data is None:                               # a block without the graph's output
        np.savez(os.path.join(out, "result.npz"), logits=np.zeros((net.steps, net.images, 0)), raw=np.zeros((0, 0)))
    else:
        np.savez(os.path.join(out, "result.npz"), logits=net.logits(data), raw=np.asarray(data))
    meta = {"lava_steps": net.lava_steps, "depth": net.sched.depth, "processes": len(net.compiled),
            "groups": len(net.groups),
            "delays_inserted": len(net.delays), "records": {str(k): v for k, v in net.records.items()},
            "build_seconds": t1 - t0, "compile_seconds": t2 - t1, "run_seconds": t3 - t2,
            "quantization": net.plan.report() if net.plan else []}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f)


def main(argv: list[str]) -> int:
    """The last line on stderr is the message for the user (run.py shows it)."""
    try:
        with open(argv[0]) as f:
            job = json.load(f)
        if len(argv) > 1:
            watch_parent(int(argv[1]), job["out_dir"])
        run_job(job)
    except UserError as e:
        message, status = f"error: {e}", 2
    except Exception as e:  # noqa: BLE001 - a bug: full traceback above the one-line message
        traceback.print_exc()
        message, status = f"error: internal error in the Lava worker: {type(e).__name__}: {e}", 1
    else:
        return 0
    print(message, file=sys.stderr, flush=True)
    os._exit(status)          # skip Lava's process finalizers, which print noise after the message


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

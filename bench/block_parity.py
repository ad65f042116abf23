"""`mst parity` of a random-weight mst-t (224x224, one image, T=4, fixed point), block by block,
with the machine's peak memory while it runs.

    .venv/bin/python bench/block_parity.py [-T 4] [--block-nodes K ...] [--whole]

Each run is `mst parity` in a fresh process; memory is the machine's used memory (MemTotal -
MemAvailable, sampled every 0.5 s) minus what was used before the run, since Lava's hundreds of
process models share pages and per-process RSS would count them many times. Default: the
automatic choice (blocks that fit in half the memory available); `--whole` adds a run of the
whole graph at once (on a 24 GB machine it peaked at 22 GB).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np


def used_bytes() -> int:
    info = dict(line.split(":", 1) for line in pathlib.Path("/proc/meminfo").read_text().splitlines())
    return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) * 1024


def peak_while(cmd: list[str]) -> tuple[subprocess.CompletedProcess, int]:
    base, peak, done = used_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], used_bytes() - base)
            time.sleep(0.5)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        done.set()
        t.join()
    return r, peak[0]


def graph(tmp: pathlib.Path) -> pathlib.Path:
    import torch
    from mstdeploy.export.lower import to_nir
    from mstdeploy.ir.io import write_graph
    from mstdeploy.models.config import preset
    from mstdeploy.models.registry import build_model
    torch.manual_seed(0)
    path = tmp / "mst-t.nir"
    write_graph(to_nir(build_model(preset("mst-t", attention="spiking", mask=0.75, num_classes=10)).eval()), path)
    np.save(tmp / "image.npy", np.random.default_rng(0).uniform(0, 1, (1, 3, 224, 224)).astype(np.float32))
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-T", "--steps", type=int, default=4)
    ap.add_argument("--block-nodes", type=int, nargs="*", default=[])
    ap.add_argument("--whole", action="store_true")
    a = ap.parse_args()
    runs = [None] + a.block_nodes + ([10 ** 6] if a.whole else [])
    print("| run | blocks | largest block (processes) | spikes | differ | Lava | total | peak memory |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        path = graph(tmp)
        for k in runs:
            rep = tmp / "parity.json"
            cmd = [sys.executable, "-m", "mstdeploy.cli", "parity", str(path), "--inputs", str(tmp / "image.npy"),
                   "-T", str(a.steps), "--fixed-point", "--no-progress", "--timeout", "3600", "--json", str(rep)]
            cmd += [] if k is None else ["--block-nodes", str(k)]
            t0 = time.perf_counter()
            r, peak = peak_while(cmd)
            total = time.perf_counter() - t0
            if not rep.exists() or r.returncode not in (0, 1):
                print(f"| {k} | failed: {(r.stderr.strip().splitlines() or ['?'])[-1]} |", flush=True)
                continue
            p = json.loads(rep.read_text())
            rep.unlink()
            parts = p["lava"].get("blocks") or [{"processes": p["lava"]["processes"]}]
            label = "automatic" if k is None else ("whole graph" if k == 10 ** 6 else f"--block-nodes {k}")
            print(f"| {label} | {len(parts)} | {max(b['processes'] for b in parts)} | {p['reference_spikes']:,} | "
                  f"{p['mismatched_spikes']} | {p['lava_seconds']:.0f} s | {total:.0f} s | {peak / 2**30:.1f} GiB |",
                  flush=True)


if __name__ == "__main__":
    main()

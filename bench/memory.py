"""Peak memory of the reference simulator against T: mst-t (Swin-T, 224x224, random weights, 75%
gating), one image, whole runs and runs in chunks of time.

    .venv/bin/python bench/memory.py [-T 8,32,128] [--chunk 8] [--whole 8,32] [--device cpu]

Each run is a fresh process (peak RSS is per process; on CUDA, torch's peak allocation), so the
figures do not mix. With `--chunk K`, memory should stay flat once T exceeds K: the simulator
then holds K steps of every layer plus the neurons' state, whatever T is. A whole run holds all
T steps of a layer (about 75 MB per step for mst-t).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
from mstdeploy.export.lower import to_nir
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model
from mstdeploy.simulate.engine import Simulator
T, chunk, device = int(sys.argv[1]), (int(sys.argv[2]) or None), sys.argv[3]
torch.set_grad_enabled(False)
torch.manual_seed(0)
graph = to_nir(build_model(preset("mst-t", attention="spiking", mask=0.75, num_classes=10)).eval())
sim = Simulator(graph, device, chunk=chunk)
x = torch.randn(1, 3, 224, 224)
if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter()
r = sim.run(x, T)
seconds = time.perf_counter() - t0
peak = (torch.cuda.max_memory_allocated() if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps({"T": T, "chunk": sim.chunk_steps(T, 1), "peak_bytes": peak, "before_run_bytes": base,
                  "seconds": seconds, "spikes": sum(r.spike_counts.values())}))
"""


def measure(T: int, chunk: int, device: str) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(T), str(chunk), device], capture_output=True, text=True)
    if r.returncode != 0:
        return {"T": T, "chunk": chunk or "whole", "error": r.stderr.strip().splitlines()[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-T", default="8,32,128", help="steps to measure, in chunks")
    ap.add_argument("--chunk", type=int, default=8, help="steps per chunk")
    ap.add_argument("--whole", default="8,32", help="steps to measure as whole runs (no chunks)")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    rows = []
    for label, steps, chunk in ([("chunks", int(t), a.chunk) for t in a.T.split(",") if t] +
                                [("whole", int(t), 0) for t in a.whole.split(",") if t]):
        row = {"run": label, **measure(steps, chunk, a.device)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nmst-t, 224x224, one image, random weights, {a.device}")
    print("| run | T | steps per chunk | peak memory | before the run | time |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['run']} | {r['T']} | {r['chunk']} | {r['error']} | | |")
            continue
        print(f"| {r['run']} | {r['T']} | {r['chunk']} | {r['peak_bytes'] / 2**30:.2f} GiB | "
              f"{r['before_run_bytes'] / 2**30:.2f} GiB | {r['seconds']:.1f} s |")


if __name__ == "__main__":
    main()

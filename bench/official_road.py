"""docs/results.md: the whole road for official-layout MST checkpoints, command by command.

    .venv/bin/python bench/official_road.py [--out runs/bench-official] [-T 32] [-n 8]

No official checkpoint can be downloaded here, so the files are written in the official key
layout with random weights (tests/official_mst.py, which reads the official forward independently):
a CIFAR configuration (no MLP BN, 10 classes) and an ImageNet configuration (MLP BN), both small
enough for Lava on 2 cores. Their test sets are random images in the CIFAR pickle format and an
ImageNet val folder. Each goes through `mst import`, `mst export` (both LayerNorm readings),
`mst simulate`, `mst parity --fixed-point` and `mst energy`; the commands and their last lines
are printed.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from official_mst import CIFAR, IMAGENET, random_state_dict  # noqa: E402


def fake_cifar(root: pathlib.Path, n: int) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "test_batch", "wb") as f:
        pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                     b"labels": rng.integers(0, 10, n).tolist()}, f)


def fake_imagenet(root: pathlib.Path, n: int) -> None:
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / "val" / f"n{i % 4:02d}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(d / f"{i}.png")


def mst(*args) -> str:
    cmd = ["mst", *map(str, args)]
    print("$", " ".join(cmd), flush=True)
    r = subprocess.run([sys.executable, "-m", "mstdeploy.cli", *map(str, args)], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr)
    tail = r.stdout.strip().splitlines()[-3:]
    print("  " + "\n  ".join(tail), flush=True)
    return r.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/bench-official")
    ap.add_argument("-T", "--steps", type=int, default=32)
    ap.add_argument("-n", "--images", type=int, default=8)
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, arch, dataset, make in (("cifar", CIFAR, "cifar10", fake_cifar),
                                      ("imagenet", IMAGENET, "imagenet", fake_imagenet)):
        src, ck, data = out / f"official-{name}.pth", out / f"{name}.pt", out / f"data-{name}"
        torch.save({"model": random_state_dict(arch)}, src)
        make(data, a.images)
        mst("import", src, "-o", ck, "--mask", "0.75")
        for reading in ("cumulative", "per_step"):
            g = out / f"{name}-{reading}.nir"
            mst("export", ck, "-o", g, "--layernorm", reading)
            run = ("--dataset", dataset, "--data", data, "-T", a.steps, "-n", a.images)
            mst("simulate", g, *run, "--json", out / f"{name}-{reading}-simulate.json", "--no-progress")
            mst("parity", g, *run, "--fixed-point", "--json", out / f"{name}-{reading}-parity.json")
            mst("energy", g, *run, "--out", out / f"energy-{name}-{reading}", "--no-progress")
            p = json.loads((out / f"{name}-{reading}-parity.json").read_text())
            print(f"  -> {name} {reading}: {p.get('mismatched_spikes')} of {p.get('reference_spikes')} spikes "
                  f"differ, passed {p.get('passed')}", flush=True)


if __name__ == "__main__":
    main()

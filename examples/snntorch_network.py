"""An snnTorch network here: build and step it in snnTorch, export it with snnTorch's own exporter,
read the file with snnTorch's conventions, simulate, and check Lava against the reference.

    .venv/bin/python examples/snntorch_network.py [--steps 20] [--samples 24]
"""
import argparse

import nir
import numpy as np
import snntorch as snn
import torch
from sklearn.datasets import load_digits
from snntorch import utils
from snntorch.export_nir import export_to_nir

import mstdeploy

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--samples", type=int, default=24)
ap.add_argument("--out", default="snntorch-digits.nir")
a = ap.parse_args()

x = torch.tensor(load_digits().data[:a.samples] / 16.0, dtype=torch.float32)
torch.manual_seed(1)
beta = lambda n, b: dict(beta=torch.full((n,), b), threshold=torch.ones(n), init_hidden=True)  # noqa: E731
net = torch.nn.Sequential(torch.nn.Linear(64, 32), snn.Leaky(**beta(32, 0.9)),          # default: subtract reset
                          torch.nn.Linear(32, 10), snn.Leaky(output=True, **beta(10, 0.8)))
with torch.no_grad():
    net[0].weight *= 3
    net[2].weight *= 3
    utils.reset(net)
    theirs = sum(net(x)[0] for _ in range(a.steps)).numpy()          # output spikes per sample
    nir.write(a.out, export_to_nir(net, torch.rand(64)))

graph = mstdeploy.read(a.out, producer="snntorch")                    # its dt, its subtract reset
out = next(src for src, dst in graph.edges if dst == "output")
run = mstdeploy.simulate(graph, x, a.steps, record=[out])
ours = run.spikes[out].sum(1)
print(f"output spikes: snnTorch {int(theirs.sum())}, here {int(ours.sum())}; "
      f"equal per sample: {np.array_equal(ours, theirs)}")
report = mstdeploy.parity(graph, x, a.steps, n=6)
print(f"Lava (float): {report['mismatched_spikes']} of {report['reference_spikes']} spikes differ")

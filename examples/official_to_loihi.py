"""An official MST checkpoint to Loihi: import it, export its spiking network with graded spikes,
check Lava's fixed point against the reference spike by spike, and price it against the ANN.

    .venv/bin/python examples/official_to_loihi.py CHECKPOINT.pth [--images 4] [--steps 4] [--levels 4]

CHECKPOINT.pth: a checkpoint of github bic-L/Masked-Spiking-Transformer (CIFAR-10 layout: 32x32
RGB; its images come from --data, CIFAR-10's python batches; without --data, random images show
the road, not an accuracy).
"""
import argparse

import torch

import mstdeploy

ap = argparse.ArgumentParser()
ap.add_argument("checkpoint")
ap.add_argument("--data", help="CIFAR-10 folder (cifar-10-batches-py); default: random images")
ap.add_argument("--images", type=int, default=4)
ap.add_argument("--steps", type=int, default=4)
ap.add_argument("--levels", type=int, default=4, help="graded spikes: payloads 0..M")
ap.add_argument("--mask", type=float, default=0.75, help="Random Spike Masking ratio")
a = ap.parse_args()

model = mstdeploy.import_official(a.checkpoint, mask=a.mask)
graph = mstdeploy.export(model, spike_levels=a.levels, layernorm="per_step")   # the official conversion
size = model.config.img_size
if a.data:
    inputs, labels = "cifar10", None
else:
    inputs = torch.randn(a.images, 3, size, size, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(a.images, dtype=torch.long)

report = mstdeploy.parity(graph, inputs, a.steps, n=a.images, data=a.data, fixed_point=True)
print(f"Lava fixed point: {report['mismatched_spikes']} of {report['reference_spikes']} spikes and payloads "
      f"differ -> {'PASS' if report['passed'] else 'FAIL'}")
energy = mstdeploy.energy(graph, inputs, labels, a.steps, n=a.images, data=a.data)
run = energy["runs"][0]
print(f"T={a.steps}: {run['per_inference']['synaptic_events']:,.0f} synaptic events per image, "
      f"x{run['vs_ann']['45nm-fp32']:.2f} of the fp32 ANN's energy, x{run['vs_ann']['45nm-int8']:.2f} of int8")

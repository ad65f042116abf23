"""Lowering of the QCFS ResNet and VGG baselines (models/resnet.py, models/vgg.py) to NIR.

Spikes are binary; each QCFS threshold lam is folded into the weights of the synapses that read
those spikes. With `standard=True` only stock NIR nodes are used: IF (reset and initial potential
written in metadata, see docs/nir-extensions.md), Conv2d, AvgPool2d, Flatten, Affine, Scale.
"""
from __future__ import annotations

import nir
import numpy as np
from torch import nn

from ..models.qcfs import QCFS
from ..models.resnet import BasicBlock, ResNet
from ..models.rsm import RandomSpikeMask
from ..models.vgg import VGG
from .builder import GraphBuilder, fold_bn, qcfs_lam

# Written into a stock IF's metadata: how our converted neurons differ from NIR's IF.
STANDARD_IF_METADATA = {"mstdeploy_reset": "subtract", "mstdeploy_spike_rule": "v >= threshold",
                        "mstdeploy_v_init": "threshold / 2"}


class _Emitter:
    """Appends layers to a chain: `src` emits spikes of amplitude `amp` with shape `shape`."""

    def __init__(self, b: GraphBuilder, standard: bool, shape: tuple):
        self.b, self.standard = b, standard
        self.src = b.add("input", nir.Input(input_type={"input": np.array(shape)}))
        self.shape = tuple(shape)

    def conv(self, name, src, shape, amp, conv: nn.Conv2d, bn) -> tuple[str, tuple]:
        w, bias = fold_bn(conv.weight, conv.bias, bn)
        node = nir.Conv2d(input_shape=shape[1:], weight=np.float32(w * amp), stride=conv.stride,
                          padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                          bias=np.float32(bias))
        self.b.add(name, node, src)
        return name, tuple(int(v) for v in node.output_type["output"])

    def neuron(self, name, act: QCFS, shape, *inputs) -> str:
        if self.standard:
            lam = qcfs_lam(act)
            meta = {**STANDARD_IF_METADATA, "mstdeploy_v_init_value": lam / 2}
            node = nir.IF(r=np.ones(shape, np.float32), v_threshold=np.full(shape, lam, np.float32),
                          v_reset=np.zeros(shape, np.float32), metadata=meta)
            self.b.add(name, node, *inputs)
        else:
            self.b.neuron(name, act, shape, *inputs)
        return name

    def gate(self, name, src, mask: RandomSpikeMask, shape) -> str:
        if mask.p > 0 and self.standard:
            raise ExtensionNeeded([f"{name} (SynapseGate: masking ratio {mask.p})"])
        return self.b.gate(name, src, mask.p, shape)


class ExtensionNeeded(ValueError):
    def __init__(self, ops: list[str]):
        super().__init__(", ".join(ops))
        self.ops = ops


def lower_vgg(model: VGG, seed: int = 0, standard: bool = False) -> GraphBuilder:
    cfg = model.config
    b = GraphBuilder(seed)
    e = _Emitter(b, standard, (cfg.in_chans, cfg.img_size, cfg.img_size))
    src, shape, amp = e.src, e.shape, 1.0
    mods = list(model.features) + list(model.classifier)
    i = 0
    layer = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, nn.Conv2d):
            layer += 1
            src, shape = e.conv(f"conv{layer}", src, shape, amp, m, mods[i + 1])
            src = e.neuron(f"conv{layer}.if", mods[i + 2], shape, src)
            amp = qcfs_lam(mods[i + 2])
            i += 3
        elif isinstance(m, RandomSpikeMask):
            src = e.gate(f"{src}.gate", src, m, shape)
            i += 1
        elif isinstance(m, nn.AvgPool2d):
            k = int(m.kernel_size)
            node = nir.AvgPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]), padding=np.array([0, 0]))
            src = b.add(f"pool{layer}", node, src)
            shape = (shape[0], shape[1] // k, shape[2] // k)
            i += 1
        elif isinstance(m, nn.Flatten):
            src = b.add("flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1), src)
            shape = (int(np.prod(shape)),)
            i += 1
        elif isinstance(m, nn.Linear):
            layer += 1
            w, bias = fold_bn(m.weight, m.bias, None)
            src = b.add(f"fc{layer}", nir.Affine(weight=np.float32(w * amp), bias=np.float32(bias)), src)
            shape = (w.shape[0],)
            if i + 1 < len(mods) and isinstance(mods[i + 1], QCFS):
                src = e.neuron(f"fc{layer}.if", mods[i + 1], shape, src)
                amp = qcfs_lam(mods[i + 1])
                i += 2
            else:
                i += 1
        else:
            raise ValueError(f"cannot lower VGG module {type(m).__name__}")
    b.add("output", nir.Output(output_type={"output": np.array(shape)}), src)
    return b


def lower_resnet(model: ResNet, seed: int = 0, standard: bool = False) -> GraphBuilder:
    cfg = model.config
    b = GraphBuilder(seed)
    e = _Emitter(b, standard, (cfg.in_chans, cfg.img_size, cfg.img_size))
    conv, bn, act = model.stem
    src, shape = e.conv("stem", e.src, e.shape, 1.0, conv, bn)
    src = e.neuron("stem.if", act, shape, src)
    amp = qcfs_lam(act)
    for k, blk in enumerate(model.layers):
        blk: BasicBlock
        pre = f"block{k}"
        g1 = e.gate(f"{pre}.conv1.gate", src, blk.conv1[0], shape)
        c1, shape1 = e.conv(f"{pre}.conv1", g1, shape, amp, blk.conv1[1], blk.conv1[2])
        s1 = e.neuron(f"{pre}.act1", blk.act1, shape1, c1)
        g2 = e.gate(f"{pre}.conv2.gate", s1, blk.conv2[0], shape1)
        c2, shape2 = e.conv(f"{pre}.conv2", g2, shape1, qcfs_lam(blk.act1), blk.conv2[1], blk.conv2[2])
        if isinstance(blk.shortcut, nn.Identity):
            sc = b.add(f"{pre}.shortcut", nir.Scale(scale=np.full(shape, amp, np.float32)), src)
        else:
            gs = e.gate(f"{pre}.shortcut.gate", src, blk.shortcut[0], shape)
            sc, _ = e.conv(f"{pre}.shortcut", gs, shape, amp, blk.shortcut[1], blk.shortcut[2])
        src = e.neuron(f"{pre}.act2", blk.act2, shape2, c2, sc)
        shape, amp = shape2, qcfs_lam(blk.act2)
    mask, pool, _ = model.pool
    g = e.gate("pool.gate", src, mask, shape)
    c, h, w = shape
    p = b.add("pool", nir.AvgPool2d(kernel_size=np.array([h, w]), stride=np.array([h, w]),
                                    padding=np.array([0, 0])), g)
    f = b.add("flatten", nir.Flatten(input_type={"input": np.array([c, 1, 1])}, start_dim=0, end_dim=-1), p)
    wf, bf = fold_bn(model.fc.weight, model.fc.bias, None)
    fc = b.add("fc", nir.Affine(weight=np.float32(wf * amp), bias=np.float32(bf)), f)
    b.add("output", nir.Output(output_type={"output": np.array([wf.shape[0]])}), fc)
    return b

"""Lowering of the QCFS ResNet and VGG baselines (models/resnet.py, models/vgg.py) to NIR.

Spikes are binary or graded (payloads 0..M); each spike's amplitude lam / M is folded into the weights of the synapses that read
those spikes. With `standard=True` only stock NIR nodes are used, exactly (docs/interop.md): each
neuron as I + Threshold + a recurrent Scale, Conv2d, AvgPool2d, Flatten, Affine, Scale.
"""
from __future__ import annotations

import nir
import numpy as np
from torch import nn

from ..models.qcfs import QCFS
from ..models.resnet import BasicBlock, ResNet
from ..models.rsm import RandomSpikeMask
from ..models.vgg import VGG
from . import portable
from .builder import GraphBuilder, fold_bn



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
        """The converted IF neuron; with `standard`, a CubaLIF and its recurrent reset
        `name.reset` (export/portable.py)."""
        if not self.standard:
            self.b.neuron(name, act, shape, *inputs)
            return name
        cell, reset = portable.neuron(self.b.unit(act), shape)
        self.b.add(name, cell, *inputs)
        self.b.add(f"{name}.reset", reset, name)
        self.b.edges.append((f"{name}.reset", name))
        return name

    def pool(self, name, src, shape, k: int) -> tuple[str, tuple]:
        """Mean over k x k windows (stride k)."""
        node = portable.diagonal(shape, 1.0 / (k * k), k) if self.standard else \
            nir.AvgPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]), padding=np.array([0, 0]))
        return self.b.add(name, node, src), (shape[0], shape[1] // k, shape[2] // k)

    def flatten(self, name, src, shape) -> tuple[str, tuple]:
        """(C, H, W) -> (C*H*W,); standard keeps the shape (the next linear layer is a Conv2d)."""
        if self.standard:
            return src, shape
        return (self.b.add(name, nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1), src),
                (int(np.prod(shape)),))

    def linear(self, name, src, shape, w, bias) -> tuple[str, tuple]:
        if self.standard:
            return self.b.add(name, portable.dense(shape, w, bias), src), (w.shape[0], 1, 1)
        return self.b.add(name, nir.Affine(weight=np.float32(w), bias=np.float32(bias)), src), (w.shape[0],)

    def scale(self, name, src, shape, amp: float) -> str:
        node = portable.diagonal(shape, amp, 1) if self.standard else nir.Scale(scale=np.full(shape, amp, np.float32))
        return self.b.add(name, node, src)

    def output(self, src, shape) -> None:
        self.b.add("output", nir.Output(output_type={"output": np.array(shape)}), src)

    def gate(self, name, src, mask: RandomSpikeMask, shape) -> str:
        if mask.p > 0 and self.standard:
            raise ExtensionNeeded([f"{name} (SynapseGate: masking ratio {mask.p})"])
        return self.b.gate(name, src, mask.p, shape)


class ExtensionNeeded(ValueError):
    def __init__(self, ops: list[str]):
        super().__init__(", ".join(ops))
        self.ops = ops


def lower_vgg(model: VGG, seed: int = 0, standard: bool = False, levels: int = 1) -> GraphBuilder:
    cfg = model.config
    b = GraphBuilder(seed, levels)
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
            amp = b.unit(mods[i + 2])
            i += 3
        elif isinstance(m, RandomSpikeMask):
            src = e.gate(f"{src}.gate", src, m, shape)
            i += 1
        elif isinstance(m, nn.AvgPool2d):
            src, shape = e.pool(f"pool{layer}", src, shape, int(m.kernel_size))
            i += 1
        elif isinstance(m, nn.Flatten):
            src, shape = e.flatten("flatten", src, shape)
            i += 1
        elif isinstance(m, nn.Linear):
            layer += 1
            w, bias = fold_bn(m.weight, m.bias, None)
            src, shape = e.linear(f"fc{layer}", src, shape, w * amp, bias)
            if i + 1 < len(mods) and isinstance(mods[i + 1], QCFS):
                src = e.neuron(f"fc{layer}.if", mods[i + 1], shape, src)
                amp = b.unit(mods[i + 1])
                i += 2
            else:
                i += 1
        else:
            raise ValueError(f"cannot lower VGG module {type(m).__name__}")
    e.output(src, shape)
    return b


def lower_resnet(model: ResNet, seed: int = 0, standard: bool = False, levels: int = 1) -> GraphBuilder:
    cfg = model.config
    b = GraphBuilder(seed, levels)
    e = _Emitter(b, standard, (cfg.in_chans, cfg.img_size, cfg.img_size))
    conv, bn, act = model.stem
    src, shape = e.conv("stem", e.src, e.shape, 1.0, conv, bn)
    src = e.neuron("stem.if", act, shape, src)
    amp = b.unit(act)
    for k, blk in enumerate(model.layers):
        blk: BasicBlock
        pre = f"block{k}"
        g1 = e.gate(f"{pre}.conv1.gate", src, blk.conv1[0], shape)
        c1, shape1 = e.conv(f"{pre}.conv1", g1, shape, amp, blk.conv1[1], blk.conv1[2])
        s1 = e.neuron(f"{pre}.act1", blk.act1, shape1, c1)
        g2 = e.gate(f"{pre}.conv2.gate", s1, blk.conv2[0], shape1)
        c2, shape2 = e.conv(f"{pre}.conv2", g2, shape1, b.unit(blk.act1), blk.conv2[1], blk.conv2[2])
        if isinstance(blk.shortcut, nn.Identity):
            sc = e.scale(f"{pre}.shortcut", src, shape, amp)
        else:
            gs = e.gate(f"{pre}.shortcut.gate", src, blk.shortcut[0], shape)
            sc, _ = e.conv(f"{pre}.shortcut", gs, shape, amp, blk.shortcut[1], blk.shortcut[2])
        src = e.neuron(f"{pre}.act2", blk.act2, shape2, c2, sc)
        shape, amp = shape2, b.unit(blk.act2)
    mask, pool, _ = model.pool
    g = e.gate("pool.gate", src, mask, shape)
    c, h, w = shape
    if e.standard:                                   # the global mean as a Conv2d, the fc as another
        p, shape = e.pool("pool", g, shape, h) if h == w else (None, None)
        if p is None:
            raise ExtensionNeeded([f"pool (a global mean over {h}x{w}, not square)"])
        wf, bf = fold_bn(model.fc.weight, model.fc.bias, None)
        fc, shape = e.linear("fc", p, shape, wf * amp, bf)
        e.output(fc, shape)
        return b
    p = b.add("pool", nir.AvgPool2d(kernel_size=np.array([h, w]), stride=np.array([h, w]),
                                    padding=np.array([0, 0])), g)
    f = b.add("flatten", nir.Flatten(input_type={"input": np.array([c, 1, 1])}, start_dim=0, end_dim=-1), p)
    wf, bf = fold_bn(model.fc.weight, model.fc.bias, None)
    fc = b.add("fc", nir.Affine(weight=np.float32(wf * amp), bias=np.float32(bf)), f)
    b.add("output", nir.Output(output_type={"output": np.array([wf.shape[0]])}), fc)
    return b

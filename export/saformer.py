"""Lowering of a SAFormer (models/saformer.py) to a NIR graph.

Every weight, bias and gain is the trained model's own quantized value (its BatchNorm folded as in
training), so the graph computes the trained network's integers. Neurons are stock NIR LIF /
CubaLIF (GraphBuilder.lif). The residual stream x = s_1 + s_2 + ... is kept as a list of spike
sources; a layer reading x takes one edge from each (NIR sums fan-in). Token tensors are (C, N).
"""
from __future__ import annotations

import nir
import numpy as np

from ..models.saformer import LIF, SAFormer, Unit
from .builder import GraphBuilder, np32
from .mst import spike_product
from ..ir.nodes import Route, ungrouped


def _neuron(b: GraphBuilder, name: str, lif: LIF, shape, inputs, bias=0.0) -> str:
    n = lif.neuron
    bias = np.asarray(bias, np.float64)
    if bias.ndim == 1:                                   # per channel, channel axis first
        bias = bias.reshape(-1, *([1] * (len(shape) - 1)))
    return b.lif(name, shape, float(n.threshold), int(n.cx_current_decay), int(n.cx_voltage_decay),
                 *inputs, bias=bias)


def _unit(b: GraphBuilder, name: str, unit: Unit, inputs, in_shape: tuple, out_shape: tuple) -> str:
    """A quantized conv (2-d on (C, H, W), token-wise on (C, N)) and its LIF neurons."""
    syn = unit.syn
    w, bias = (np32(t) for t in syn.folded())
    a = syn.args
    if w.ndim == 3:
        node = nir.Conv1d(input_shape=in_shape[-1], weight=w, stride=1, padding=0, dilation=1, groups=1,
                          bias=np.zeros(w.shape[0], np.float32))
    else:
        node = nir.Conv2d(input_shape=in_shape[-2:], weight=ungrouped(w, a["groups"]), stride=a["stride"],
                          padding=a["padding"], dilation=1, groups=1, bias=np.zeros(w.shape[0], np.float32))
    s = b.add(f"{name}.syn", node, *inputs)
    if len(out_shape) == 2 and w.ndim == 4:              # conv output (C, H, W) -> tokens (C, N)
        C, H, W = w.shape[0], *_conv_out(in_shape[-2:], w.shape[-1], a["stride"], a["padding"])
        s = b.tokens(f"{name}.flatten", [C, H, W], s)
    return _neuron(b, name, unit.lif, out_shape, [s], bias)


def _conv_out(hw, k: int, stride: int, pad: int) -> tuple:
    return tuple((int(v) + 2 * pad - k) // stride + 1 for v in hw)


def _to_grid(b: GraphBuilder, name: str, srcs, C: int, res: int) -> str:
    """(C, N) tokens -> (C, res, res): an identity Route (fan-in: the streams' sum)."""
    idx = np.arange(C * res * res).reshape(C, res, res)
    return b.add(name, Route(in_shape=(C, res * res), index=idx), *srcs)


def _sasa(b: GraphBuilder, pre: str, m, x: list, C: int, res: int) -> str:
    N, heads, d = res * res, m.heads, m.d
    G2 = m.regions
    q = b.gate(f"{pre}.q.gate", _unit(b, f"{pre}.q", m.q, x, (C, N), (C, N)), m.mask_q.p, (C, N))
    k = b.gate(f"{pre}.k.gate", _unit(b, f"{pre}.k", m.k, x, (C, N), (C, N)), m.mask_k.p, (C, N))
    grid = _to_grid(b, f"{pre}.k.grid", [k], C, res)
    kr = _unit(b, f"{pre}.agg", m.agg, [grid], (C, res, res), (C, G2))
    chan = np.arange(heads)[:, None] * d + np.arange(d)[None, :]               # (heads, d)
    q_map = chan[:, None, :] * N + np.arange(N)[None, :, None]                   # (heads, N, d)
    kr_map = chan[:, None, :] * G2 + np.arange(G2)[None, :, None]                # (heads, G2, d)
    g_a, b_a = (float(v) for v in m.attn.quantized())
    qk = spike_product(b, f"{pre}.qk", (q, (C, N), q_map), (kr, (C, G2), kr_map.transpose(0, 2, 1)), "per_step", g_a)
    a_shape = (heads, N, G2)
    a = _neuron(b, f"{pre}.attn", m.attn.lif, a_shape, [qk], b_a)
    a = b.gate(f"{pre}.attn.gate", a, m.mask_attn.p, a_shape)
    g_o, b_o = (float(v) for v in m.out.quantized())
    a_map = np.arange(int(np.prod(a_shape))).reshape(a_shape)
    ak = spike_product(b, f"{pre}.ak", (a, a_shape, a_map), (kr, (C, G2), kr_map), "per_step", g_o)
    inv = np.empty(C * N, np.int64)
    inv[q_map.reshape(-1)] = np.arange(q_map.size)
    back = b.add(f"{pre}.ak.out", Route(in_shape=q_map.shape, index=inv.reshape(C, N)), ak)
    o = _neuron(b, f"{pre}.out", m.out.lif, (C, N), [back], b_o)
    return _unit(b, f"{pre}.proj", m.proj, [o], (C, N), (C, N))


def _block(b: GraphBuilder, pre: str, blk, x: list, C: int, res: int) -> list:
    N = res * res
    p = _sasa(b, f"{pre}.sasa", blk.sasa, x, C, res)
    grid = _to_grid(b, f"{pre}.dwc.grid", x, C, res)
    dw = _unit(b, f"{pre}.dwc", blk.dwc, [grid], (C, res, res), (C, N))
    x = x + [p, dw]
    hidden = blk.fc1.syn.weight.shape[0]
    g1 = b.gate_sum(f"{pre}.fc1.gate", x, blk.mask_fc1.p, (C, N))
    h1 = _unit(b, f"{pre}.fc1", blk.fc1, g1, (C, N), (hidden, N))
    g2 = [b.gate(f"{pre}.fc2.gate", h1, blk.mask_fc2.p, (hidden, N))]
    return x + [_unit(b, f"{pre}.fc2", blk.fc2, g2, (hidden, N), (C, N))]


def lower_saformer(model: SAFormer, seed: int = 0) -> GraphBuilder:
    cfg = model.config
    b = GraphBuilder(seed)
    S = cfg.img_size
    src = b.add("input", nir.Input(input_type={"input": np.array([cfg.in_chans, S, S])}))
    shape = (cfg.in_chans, S, S)
    for i, unit in enumerate(model.stem):
        a = unit.syn.args
        out = (unit.syn.weight.shape[0], *_conv_out(shape[1:], unit.syn.weight.shape[-1], a["stride"], a["padding"]))
        src = _unit(b, f"stem{i}", unit, [src], shape, out)
        shape = out
    rpe = _unit(b, "rpe", model.rpe, [src], shape, shape)
    C, res = cfg.embed_dim, shape[1]
    N = res * res
    x = [b.tokens(f"{n}.flatten", shape, n) for n in (src, rpe)]
    for i, blk in enumerate(model.blocks):
        x = _block(b, f"block{i}", blk, x, C, res)
    wh = np32(model.head_weight())
    K = wh.shape[0]
    out = b.add("output", nir.Output(output_type={"output": np.array([K, 1])}))
    w = np.repeat(wh[:, :, None] / N, N, 2).astype(np.float32)
    head = b.add("head", nir.Conv1d(input_shape=N, weight=w, stride=1, padding=0, dilation=1, groups=1,
                                    bias=np32(model.head.bias)), *x)
    b.edges.append((head, out))
    return b

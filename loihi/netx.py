"""A graph as a lava-dl netx file (`mstdeploy.write(graph, "x.net")`, `mst export -o x.net`): what
`lava.lib.dl.netx.hdf5.Network` loads into Lava's stock Dense, Conv and LIF, run on a chip as they
are (docs/interop.md, "netx").

netx expresses a chain of layers, each a synapse (dense, conv, dense_rec) and Loihi's CUBA neuron
that resets to zero; ir/netx.py reads such files back, and `mst parity x.net --fixed-point` runs
one against netx's own processes. A layer is written in its own integer units: weights times k
(mixed signs: even values within +-254, slayer's own rounding; one sign: 0..255), the threshold
floor(k theta) (NIR's v > theta on integer sums), bias times k (netx: bias_mant with bias_exp 6),
decays in 1/4096 per step. k fills the weights' 8 bits unless the 17-bit threshold or the 13-bit
bias caps it. Folded where exact: pooling (stride = kernel, no padding, sizes divisible) into the
next synapse's weights; a Conv2d whose kernel covers its whole input is a dense layer.

The input: an Input feeding a neuron (through a Scale, as ir/netx.py reads netx's input layer)
is an input layer with that neuron; an Input feeding a synapse takes integer frames
round(2^q x) (the input layer's `weight`, netx's frame transform, which its users apply:
tutorials' pilotnet_snn/dataset.py) as graded messages: load the file with
`netx.hdf5.Network(..., input_message_bits=24)`. q is the largest (<= 8) that keeps the first
threshold within 2^15, room for sums under Lava's 24-bit current. The readout: a synapse feeding
the Output is a dense layer without a neuron (netx's default, a current integrator): its
synaptic output is the logits.

What netx cannot express is refused with the first such node, nothing written: reset by
subtraction (ResetSubIF: export with --reset zero), graded spikes, fan-in sums (residuals),
fan-out, spike products, gating, host softmax and LayerNorm, a current that remembers beside a
synaptic bias, delays on a convolution (netx ignores them, hdf5.py:527-530).
"""
from __future__ import annotations

import io
import math

import h5py
import nir
import numpy as np

from ..errors import UserError
from ..ir import cuba
from ..ir import nodes as X
from ..ir.netx import DECAY_UNIT
from ..ir.topology import POOLS, Topology, delays, node_shape, one_value, pair, pool_gain
from .widths import BIAS_MANT, VTH_BITS, WEIGHT_MAX, WEIGHT_MAX_MIXED

FRAME_BITS = 8                       # at most 2^8 frame units per input unit
THRESHOLD_ROOM = 1 << 15             # the first layer's threshold at most: sums stay well under 2^17
SYNAPSES = (nir.Conv2d, nir.Linear, nir.Affine)
NEURON_TYPES = (nir.IF, nir.LIF, nir.CubaLIF)


def _refuse(name, node, why: str):
    raise UserError(f"netx cannot express {name} ({type(node).__name__}): {why}; nothing written")


def _neuron_of(name, node) -> cuba.Cuba:
    if isinstance(node, X.ResetSubIF):
        why = "graded spikes (netx's LIF sends binary spikes)" if node.levels > 1 else \
            "it resets by subtraction, netx's LIF to zero (hdf5.py get_neuron_params): export with --reset zero"
        _refuse(name, node, why)
    if not isinstance(node, NEURON_TYPES):
        _refuse(name, node, "netx layers end in Loihi's CUBA neuron")
    c = cuba.cuba(node)
    if np.any(c.v_reset != 0):
        _refuse(name, node, "netx's LIF resets to 0")
    return c


def _one(name, node, value, what: str) -> float:
    return one_value(value, f"netx cannot express {name} ({type(node).__name__}): a non-uniform {what} (one "
                            "register per layer in Lava's LIF); nothing written")


def _ints(w: np.ndarray, k: float) -> np.ndarray:
    """w k as netx keeps it exactly: even values for mixed signs (slayer's quantize_8bit)."""
    x = w * k
    if x.min() < 0 < x.max():
        return (2 * np.round(x / 2)).astype(np.int64)
    return np.round(x).astype(np.int64)


def _fill(w: np.ndarray) -> float:
    """k that puts the largest |w| k at the 8-bit limit."""
    big = float(np.abs(w).max()) if w.size else 0.0
    lim = WEIGHT_MAX_MIXED if w.min() < 0 < w.max() else WEIGHT_MAX
    return lim / big if big else 1.0


def _windows(pool) -> tuple[int, int] | None:
    """The pool's window when its windows tile the input (stride = kernel, no padding), else None."""
    k = pair(pool.kernel_size)
    return k if k == pair(pool.stride) and pair(pool.padding) == (0, 0) else None


def _compose_pool(pool, node, in_shape):
    """(pool, then the synapse `node`) as one synapse on the pool's input, exactly; None if not."""
    k = _windows(pool)
    if k is None or in_shape[1] % k[0] or in_shape[2] % k[1]:
        return None
    area = pool_gain(pool)
    if isinstance(node, nir.Conv2d):
        if pair(node.dilation) != (1, 1) or int(node.groups) != 1:
            return None
        w = np.asarray(node.weight, np.float64)
        w = np.repeat(np.repeat(w, k[0], axis=2), k[1], axis=3) * area
        st, pd = pair(node.stride), pair(node.padding)
        return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=w, stride=(st[0] * k[0], st[1] * k[1]),
                          padding=(pd[0] * k[0], pd[1] * k[1]), dilation=(1, 1), groups=1,
                          bias=np.asarray(node.bias, np.float64))
    return None


def _dense_of(node, in_shape):
    """A Conv2d whose kernel covers its whole (unpadded) input, as (weight (out, C*H*W), bias)."""
    w = np.asarray(node.weight, np.float64)
    if isinstance(node, nir.Conv2d) and int(node.groups) == 1 and pair(node.padding) == (0, 0) \
            and tuple(w.shape[1:]) == tuple(in_shape):
        return w.reshape(w.shape[0], -1), np.asarray(node.bias, np.float64)
    return None


def _pooled_dense(pool, w, in_shape):
    """A dense layer after a pool (and flatten), on the pool's input: each weight spread over its window."""
    k = _windows(pool)
    if k is None:
        return None
    c, h, wd = in_shape
    ho, wo = h // k[0], wd // k[1]
    w4 = w.reshape(w.shape[0], c, ho, wo)
    out = np.zeros((w.shape[0], c, h, wd))
    out[:, :, :ho * k[0], :wo * k[1]] = np.repeat(np.repeat(w4, k[0], axis=2), k[1], axis=3) * pool_gain(pool)
    return out.reshape(w.shape[0], -1)


def _neuron_params(c: cuba.Cuba, name, node, k: float, th: float) -> dict:
    du, dv = (_one(name, node, v, what) for v, what in ((c.du, "current decay"), (c.dv, "voltage decay")))
    vth = math.floor(th * k)
    if vth < 0 or vth >= 1 << VTH_BITS:
        _refuse(name, node, f"its threshold in weight units ({vth}) does not fit vThMant's {VTH_BITS} bits")
    return {"type": "CUBA", "iDecay": round(du * DECAY_UNIT), "vDecay": round(dv * DECAY_UNIT), "vThMant": vth,
            "refDelay": 1, "gradedSpike": 0}


def _scale(k: float, th: float, bias: np.ndarray) -> float:
    """k capped by the 17-bit threshold and the 13-bit bias."""
    big = float(np.abs(bias).max()) if bias.size else 0.0
    return min(k, ((1 << VTH_BITS) - 1) / th if th > 0 else k, BIAS_MANT / big if big else k)


def netx_layers(graph: nir.NIRGraph) -> list[dict]:
    """The netx layers of `graph` (dicts of the datasets each `layer/<i>` holds), or UserError."""
    topo = Topology(graph)
    rec_of = {}
    for a, b in sorted(topo.back):          # neuron -> Linear -> the same neuron: dense_rec
        if not (isinstance(topo.node(a), nir.Linear) and topo.preds[a] == [b]
                and isinstance(topo.node(b), NEURON_TYPES)):
            _refuse(b, topo.node(b), f"a recurrent input from {a}; netx has only a dense layer's own (dense_rec)")
        rec_of[b] = a

    def after(name) -> str:
        fwd = [c for c in topo.consumers[name] if (name, c) not in topo.back and c != rec_of.get(name)]
        if len(fwd) != 1:
            _refuse(name, topo.node(name), f"its output goes to {len(fwd)} nodes; netx layers are a chain")
        preds = [p for p in topo.preds[fwd[0]] if (p, fwd[0]) not in topo.back]
        if len(preds) != 1:
            _refuse(fwd[0], topo.node(fwd[0]), f"it sums {len(preds)} inputs (a residual); netx layers are a chain")
        return fwd[0]

    shape = node_shape(topo.node(topo.input), "input")
    layers: list[dict] = []
    n = after(topo.input)
    node = topo.node(n)
    if isinstance(node, (nir.Scale,) + NEURON_TYPES + (X.ResetSubIF,)):    # netx's input layer with a neuron
        s = 1.0
        if isinstance(node, nir.Scale):
            s, n = _one(n, node, node.scale, "scale"), after(n)
            node = topo.node(n)
        c = _neuron_of(n, node)
        th, k = _one(n, node, c.threshold, "threshold"), 1.0 / (s * _one(n, node, c.gain, "input gain"))
        if np.any(c.bias):
            _refuse(n, node, "an input neuron with a bias (an input layer's bias is netx's frame transform)")
        layers.append({"type": "input", "shape": shape, "neuron": _neuron_params(c, n, node, k, th)})
        cur, frames = n, None
    else:
        layers.append({"type": "input", "shape": shape})
        cur, frames = topo.input, layers[0]
    while True:
        n, pool, flat, pool_in = after(cur), None, False, None
        while True:
            node = topo.node(n)
            if isinstance(node, POOLS) and pool is None:
                pool, pool_in = node, shape
                k = pair(node.kernel_size)
                shape = (shape[0], shape[1] // k[0], shape[2] // k[1])
            elif isinstance(node, nir.Flatten):
                flat = True
            elif isinstance(node, SYNAPSES) or isinstance(node, nir.Output):
                break
            else:
                _refuse(n, node, "netx has no such layer (a chain of conv, dense and flatten layers with CUBA neurons)")
            n = after(n)
        if isinstance(node, nir.Output):
            if not layers[-1].get("neuron"):
                _refuse(n, node, "the output reads no synapse and no neuron")
            return layers
        syn, syn_name = node, n
        bias = np.zeros(0)
        dense = _dense_of(syn, pool_in or shape) if isinstance(syn, nir.Conv2d) else None
        if isinstance(syn, nir.Conv2d) and dense is None:
            if flat:
                _refuse(syn_name, syn, "a convolution after a flatten")
            if pool is not None:
                syn = _compose_pool(pool, syn, pool_in)
                if syn is None:
                    _refuse(syn_name, node, "a pool before it that is not a whole number of windows")
                shape = pool_in
            w = np.asarray(syn.weight, np.float64)
            groups = int(syn.groups)
            out = tuple(int(v) for v in syn.output_type["output"])
            kind, bias = "conv", np.asarray(syn.bias, np.float64).reshape(-1, 1, 1)
            extra = {"stride": np.array(pair(syn.stride)), "padding": np.array(pair(syn.padding)),
                     "dilation": np.array(pair(syn.dilation)), "groups": groups}
        else:
            if dense is not None:
                w, bias = dense
            else:
                w = np.asarray(syn.weight, np.float64)
                bias = np.asarray(getattr(syn, "bias", np.zeros(w.shape[0])), np.float64)
            if pool is not None:
                w = _pooled_dense(pool, w, pool_in)
                if w is None:
                    _refuse(syn_name, syn, "a pool before it that is not a whole number of windows")
                shape = pool_in
            if len(shape) > 1:
                layers.append({"type": "flatten", "shape": shape})
                shape = (int(np.prod(shape)),)
            if w.shape[1] != shape[0]:
                _refuse(syn_name, syn, f"{w.shape[1]} inputs where its input has {shape[0]}")
            out, kind, extra = (w.shape[0],), "dense", {}
        n = after(syn_name)
        node = topo.node(n)
        delay = None
        if isinstance(node, nir.Delay):
            if kind == "conv":
                _refuse(n, node, "a delay after a convolution (netx ignores conv delays, hdf5.py:527-530)")
            delay = np.broadcast_to(delays(n, node), out).reshape(-1)
            if delay.max() > 62:
                _refuse(n, node, "a delay above 62 steps (netx's DelayDense)")
            n = after(n)
            node = topo.node(n)
        if isinstance(node, nir.Output):                      # the readout: netx's default neuron
            if kind == "conv":
                _refuse(syn_name, syn, "a convolution as the readout; netx reads out a dense layer")
            k = _fill(w)
            layer = {"type": "dense", "shape": out, "weight": _ints(w, k)}
            if np.any(bias):
                layer["bias"] = np.round(bias * k)
            if frames is not None:
                frames.update({"weight": 1.0, "bias": 0.0})
            if delay is not None:
                layer["delay"] = delay
            layers.append(layer)
            return layers
        c = _neuron_of(n, node)
        gain, th = _one(n, node, c.gain, "input gain"), _one(n, node, c.threshold, "threshold")
        if np.any(bias) and _one(n, node, c.du, "current decay") < 1:
            _refuse(n, node, "a current that remembers beside a synaptic bias (netx adds the bias to the voltage)")
        v_bias = np.broadcast_to(np.asarray(c.bias, np.float64), out) + gain * np.broadcast_to(
            bias if bias.size else 0.0, out)
        ws = [w * gain]
        if n in rec_of:
            if kind != "dense":
                _refuse(n, node, "a recurrent convolution (netx's dense_rec is dense)")
            kind = "dense_rec"
            ws.append(np.asarray(topo.node(rec_of[n]).weight, np.float64) * gain)
        k = _scale(min(_fill(v) for v in ws), th, v_bias)
        if frames is not None:                                 # graded frames round(2^q x) in
            q = 0
            while q < FRAME_BITS and th * k * 2 ** (q + 1) <= THRESHOLD_ROOM and \
                    _scale(k * 2 ** (q + 1), th, v_bias) == k * 2 ** (q + 1):
                q += 1
            frames.update({"weight": float(2 ** q), "bias": 0.0})
            k_v = k * 2 ** q                                   # threshold and bias per frame unit
        else:
            k_v = k
        layer = {"type": kind, "shape": out, "weight": _ints(ws[0], k), **extra,
                 "neuron": _neuron_params(c, n, node, k_v, th)}
        if kind == "dense_rec":
            layer["weight_rec"] = _ints(ws[1], k)
        if np.any(v_bias):
            b = np.round(v_bias * k_v)
            if kind == "conv":                                 # per channel, else netx's (W, H, C)
                b = b[:, 0, 0] if np.all(b == b[:, :1, :1]) else b.transpose(2, 1, 0)
            layer["bias"] = b
        if delay is not None:
            layer["delay"] = delay
        layers.append(layer)
        cur, shape, frames = n, out, None


def netx_bytes(graph: nir.NIRGraph) -> bytes:
    """The netx file of `graph`, made in memory (datasets as slayer's export_hdf5 writes them)."""
    layers = netx_layers(graph)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for i, layer in enumerate(layers):
            g = f.create_group(f"layer/{i}")
            g.create_dataset("type", (1,), "S10", [layer["type"].encode("ascii")])
            for key, v in layer.items():
                if key == "type":
                    continue
                if key == "neuron":
                    ng = g.create_group("neuron")
                    for nk, nv in v.items():
                        ng.create_dataset(nk, data=nv)
                elif key in ("weight", "weight_rec", "bias", "delay"):
                    g.create_dataset(key, data=np.asarray(v, np.float32))
                else:
                    g.create_dataset(key, data=np.asarray(v, np.int64) if key != "groups" else int(v))
    return buf.getvalue()


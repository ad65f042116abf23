"""lava-dl netx network files (`.net`: HDF5 that slayer's `export_hdf5` writes and
`lava.lib.dl.netx.hdf5.Network` loads) read as a NIR graph that both backends run.

The file (lava-dl 0.6.0): `layer/<i>` groups in order, each with `type` (input, conv, dense,
dense_rec, flatten, ...), `shape` in torch order (C, H, W), integer `weight` (64 x the real weight:
slayer's `quantize_8bit`, w_scale 64), optional `bias` (64 x real), `delay` (per output neuron),
conv `stride`/`padding`/`dilation` (H, W) and `groups`, and `neuron/` (type CUBA or LOIHI:
`iDecay`, `vDecay` in 1/4096 per step, `vThMant` = 64 x threshold). netx builds Lava's LIF with
du = iDecay - 1 (Lava adds 1), dv = vDecay, vth = vThMant, bias_mant = bias, bias_exp = 6
(netx/hdf5.py `get_neuron_params`), so in units of 1/4096 of Lava's integers a layer is:

    u_t = (1 - iDecay/4096) u_{t-1} + (W/64) s_t      v_t = (1 - vDecay/4096) v_{t-1} + u_t + bias/64
    spike when v_t > vThMant/64, then v = 0

which is ir/cuba.node with weights W/64, threshold vThMant/64 and bias bias/64 (docs/interop.md,
"netx"). An input layer with a neuron takes the input into its current as netx's `a_in` does
(a_in << 6: a weight of 1/64); its `weight`/`bias` (the tutorials' frame transform) are not
applied by netx, nor here. A flatten layer reorders (W, H, C) to torch's C-order (hdf5.py:655-660),
which is nir.Flatten of (C, H, W). Delays: netx gives the layer's incoming synapses the delay of
its neurons (DelayDense); a nir.Delay after the synapse. What netx itself cannot load (pool,
average, convT, unpool, concat: NotImplementedError there) or what is not read yet is refused.
"""
from __future__ import annotations

import h5py
import nir
import numpy as np

from ..errors import UserError
from . import cuba
from . import nodes as X
from .nodes import ungrouped

W_SCALE = 64            # slayer's w_scale: weights, biases and thresholds are 64 x real
DECAY_UNIT = 4096       # netx decays: 1/4096 per step
NOT_IN_NETX = ("pool", "average", "convT", "unpool", "concat", "dense_comp")


def is_netx(f: h5py.File) -> bool:
    """A netx file: a `layer` group (NIR files have `node`)."""
    return "layer" in f and "node" not in f


def blocks(f: h5py.File) -> list[tuple[str, int]]:
    """(our neuron node, synapses before it) of each block netx builds, in netx's order
    (hdf5.py `_create`): an input layer with a neuron, then every conv, dense and dense_rec layer;
    the node names are those read_netx gives, "output" for a readout (`readout`)."""
    out, depth = [], 0
    keys = sorted(f["layer"], key=int)
    step = 0 if lagged(f) else 1                # a lagged reading shows Lava's own steps
    for key in keys:
        layer = f["layer"][key]
        kind = _text(layer["type"])
        if kind == "input" and "neuron" in layer:
            out.append(("input.neuron", depth))
        elif kind in ("conv", "dense", "dense_rec"):
            depth += step
            out.append(("output" if readout(layer, key == keys[-1]) else f"layer{key}.neuron", depth))
    return out


def readout(layer, last: bool) -> bool:
    """The last layer, dense without a neuron (netx's default neuron integrates its current and
    never fires, hdf5.py:352-357) or a sigma-delta `sigma_output` (Lava's Sigma: the running sum of
    its input, hdf5.py:178-181): its synaptic output is the network's output, as the Output of a
    NIR graph reads a synapse (loihi/netx.py writes logits so)."""
    if not last or _text(layer["type"]) != "dense":
        return False
    return "neuron" not in layer or (sigma_delta(layer) and "sigma_output" in layer["neuron"])


def sigma_delta(layer) -> bool:
    """A layer of SDNN neurons: Lava's Delta (input), SigmaDelta or Sigma (hdf5.py:164-189)."""
    return "neuron" in layer and _text(layer["neuron"]["type"]) == "SDNN"


def lagged(f: h5py.File) -> bool:
    """A sigma-delta file: netx cannot reset its neurons (hdf5.py:164-168 warns), so a layer runs
    from Lava's first step, its input one step later per synapse; the reading keeps that lag (a
    Delay of one step after each synapse) rather than starting each layer when its input does."""
    return any(sigma_delta(f["layer"][k]) for k in f["layer"])


def frame_transform(graph) -> tuple[float, float] | None:
    """(weight, bias) that turn a data set's images into the file's integer frames,
    round(weight x + bias): an input layer without a neuron that says so (loihi/netx.py)."""
    t = (graph.metadata or {}).get("frame_transform")
    return None if t is None else (float(t[0]), float(t[1]))


def _text(v) -> str:
    v = v[()] if not hasattr(v, "shape") or v.shape == () else v[0]
    return v.decode("ascii") if isinstance(v, bytes) else str(v)


def _array(layer, key, default=None):
    return np.asarray(layer[key][()]) if key in layer else default


def _in_our_layout(bias: np.ndarray, shape) -> np.ndarray:
    """A layer's bias as (C, H, W): per channel on a convolution, or netx's (W, H, C) per neuron
    (blocks/process.py `_neuron`)."""
    if bias.ndim == 1 and len(shape) == 3:
        return bias.reshape(-1, 1, 1)
    return bias.transpose(2, 1, 0) if bias.ndim == 3 else bias


def _neuron(path, i: int, layer, shape, bias):
    """The layer's neuron as stock NIR (module docstring)."""
    if "neuron" not in layer:                  # netx's default: a current integrator (hdf5.py:352-357)
        params = {"type": "CUBA", "iDecay": 0, "vDecay": DECAY_UNIT, "vThMant": 1 << 17}
    else:
        params = {k: (_text(v) if k == "type" else v[()]) for k, v in layer["neuron"].items()}
    kind = params.get("type")
    if kind == "SDNN":                         # messages and state in real units: vThMant and bias as they are
        if "vThMant" not in params:
            raise UserError(f"{path}: layer {i}: its SDNN neuron has no vThMant")
        first = _text(layer["type"]) == "input"
        b = 0.0 if bias is None else _in_our_layout(np.asarray(bias, np.float64), shape)
        return X.SigmaDelta(shape=shape, threshold=float(params["vThMant"]),
                            bias=np.broadcast_to(b, shape).astype(np.float32), sigma=0 if first else 1,
                            relu=0 if first else 1)
    if kind not in ("CUBA", "LOIHI"):
        raise UserError(f"{path}: layer {i} has neuron type {kind!r}: netx files are read with CUBA / LOIHI neurons")
    for key in ("iDecay", "vDecay", "vThMant"):
        if key not in params:
            raise UserError(f"{path}: layer {i}: its CUBA neuron has no {key}")
    du, dv, vth = (int(params[k]) for k in ("iDecay", "vDecay", "vThMant"))
    if not (0 <= du <= DECAY_UNIT and 0 <= dv <= DECAY_UNIT) or vth < 0:
        raise UserError(f"{path}: layer {i}: decays outside 0..4096 or a negative threshold")
    if bias is not None:
        bias = _in_our_layout(np.asarray(bias, np.float64) / W_SCALE, shape)
    try:
        return cuba.node(shape, vth / W_SCALE, du, dv, 0.0 if bias is None else bias, DECAY_UNIT)
    except ValueError as e:
        raise UserError(f"{path}: layer {i}: {e}") from None


def _current_passes(layer) -> bool:
    """iDecay = 4096: the current is this step's input, so a bias on the voltage is a synaptic
    bias (NIR's LIF without voltage decay has no field for one)."""
    return "neuron" in layer and "iDecay" in layer["neuron"] and int(layer["neuron"]["iDecay"][()]) == DECAY_UNIT


def _with_bias(path, key, syn, bias, out):
    """The synapse with the layer's bias (bias / 64) as its own."""
    b = np.asarray(bias, np.float64) / W_SCALE
    if isinstance(syn, nir.Linear):
        return nir.Affine(weight=syn.weight, bias=np.broadcast_to(b.reshape(-1), out).astype(np.float32))
    if b.ndim == 3:
        b = _in_our_layout(b, out)
        if not np.all(b == b[:, :1, :1]):
            raise UserError(f"{path}: layer {key}: a bias per neuron on a convolution without voltage decay "
                            "has no place in NIR (a Conv2d's bias is per channel)")
        b = b[:, 0, 0]
    syn.bias = np.broadcast_to(b.reshape(-1), syn.bias.shape).astype(np.float32)
    return syn


def _pair(layer, key, default):
    v = _array(layer, key, default)
    v = np.asarray(v).reshape(-1)
    return (int(v[0]), int(v[0])) if v.size == 1 else (int(v[0]), int(v[1]))


def _conv_out(hw, k, stride, padding, dilation):
    return tuple((hw[a] + 2 * padding[a] - dilation[a] * (k[a] - 1) - 1) // stride[a] + 1 for a in range(2))


def read_netx(path, f: h5py.File) -> nir.NIRGraph:
    """The graph of an open netx file (module docstring)."""
    group = f["layer"]
    try:
        order = sorted(group, key=int)
    except ValueError:
        raise UserError(f"{path}: netx layers must be named 0, 1, ..; found {sorted(group)}") from None
    if not order:
        raise UserError(f"{path}: a netx file without layers")
    nodes: dict = {}
    edges: list = []
    last, shape, flatten = None, None, False
    metadata = {"source": "lava-dl netx", "file": str(path)}
    lag = 1.0 if lagged(f) else 0.0

    def add(name, node, src):
        nodes[name] = node
        if src is not None:
            edges.append((src, name))
        return name

    for i, key in enumerate(order):
        layer = group[key]
        if "type" not in layer:
            raise UserError(f"{path}: layer {key} has no type")
        kind = _text(layer["type"])
        if kind in NOT_IN_NETX:
            raise UserError(f"{path}: layer {key} is a netx '{kind}' layer, which lava-dl's netx does not load "
                            "(NotImplementedError in netx/hdf5.py)")
        if kind == "input":
            if i:
                raise UserError(f"{path}: an input layer after the first (layer {key})")
            shape = tuple(int(v) for v in _array(layer, "shape"))
            last = add("input", nir.Input(input_type={"input": np.array(shape)}), None)
            if "neuron" not in layer and "weight" in layer:
                metadata["frame_transform"] = [float(_array(layer, "weight")), float(_array(layer, "bias", 0.0))]
            if "neuron" in layer:          # a_in << 6: a weight of 1/64; a Delta takes a_in as it is
                w_in = 1.0 if sigma_delta(layer) else 1 / W_SCALE
                last = add("input.in", nir.Scale(scale=np.full(shape, w_in, np.float32)), last)
                last = add("input.neuron", _neuron(path, i, layer, shape, None), last)
            continue
        if shape is None and kind in ("dense", "dense_rec") and "weight" in layer:     # netx's net.inp: its s_in
            shape = (int(np.prod(layer["weight"].shape[1:])),)
            last = add("input", nir.Input(input_type={"input": np.array(shape)}), None)
        if shape is None:
            raise UserError(f"{path}: layer {key} ({kind}) comes before any input layer: its input shape is "
                            "unknown (netx: 'Input shape could not be inferred')")
        if kind == "flatten":
            flatten = True
            continue
        if kind not in ("dense", "conv", "dense_rec"):
            raise UserError(f"{path}: layer {key} has type {kind!r}, which netx does not read")
        if "weight" not in layer:
            raise UserError(f"{path}: layer {key} ({kind}) has no weight")
        w = np.asarray(layer["weight"][()]).astype(np.int64).astype(np.float64) / W_SCALE   # netx: astype(int)
        if kind == "conv":
            if flatten or len(shape) != 3:
                raise UserError(f"{path}: conv layer {key} needs a (C, H, W) input, not {shape}")
            w = w.reshape(w.shape[:4])
            groups = int(_array(layer, "groups", 1))
            stride, padding = _pair(layer, "stride", 1), _pair(layer, "padding", 0)
            dilation = _pair(layer, "dilation", 1)
            syn = nir.Conv2d(input_shape=shape[1:], weight=ungrouped(w, groups).astype(np.float32), stride=stride,
                             padding=padding, dilation=dilation, groups=1, bias=np.zeros(w.shape[0], np.float32))
            out = (w.shape[0], *_conv_out(shape[1:], w.shape[2:], stride, padding, dilation))
        else:
            if flatten or len(shape) > 1:
                last = add(f"layer{key}.flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0,
                                                              end_dim=-1), last)
                shape, flatten = (int(np.prod(shape)),), False
            n = int(np.prod(_array(layer, "shape")))
            w = w.reshape(n, -1)
            if w.shape[1] != shape[0]:
                raise UserError(f"{path}: dense layer {key} has {w.shape[1]} inputs, its input {shape[0]}")
            syn = nir.Linear(weight=w.astype(np.float32))
            out = (n,)
        declared = tuple(int(v) for v in _array(layer, "shape"))
        if int(np.prod(declared)) != int(np.prod(out)):
            raise UserError(f"{path}: layer {key} ({kind}) gives {out}, its shape says {declared}")
        last_layer = readout(layer, key == order[-1])
        if last_layer and "bias" in layer:
            syn = _with_bias(path, key, syn, layer["bias"][()], out)
        last = add(f"layer{key}.synapse", syn, last)
        delay = _array(layer, "delay")
        d = np.zeros(1)
        if delay is not None and kind != "conv" and np.any(delay):  # netx ignores conv delays (hdf5.py:527-530)
            d = np.clip(np.floor(np.asarray(delay, np.float64)), 0, 62)   # netx clips at 62 (hdf5.py:425-430)
        d = d + lag
        if np.any(d):
            last = add(f"layer{key}.delay", nir.Delay(delay=np.broadcast_to(d.reshape(-1), out).astype(np.float32)),
                       last)
        if last_layer:
            shape = out
            break
        bias = _array(layer, "bias")
        if bias is not None and _current_passes(layer) and kind != "dense_rec":
            nodes[f"layer{key}.synapse"] = _with_bias(path, key, nodes[f"layer{key}.synapse"], bias, out)
            bias = None                                                  # the same drive: u = a_in + bias
        neuron = add(f"layer{key}.neuron", _neuron(path, i, layer, out, bias), last)
        if kind == "dense_rec":
            rec = np.asarray(layer["weight_rec"][()]).astype(np.int64).astype(np.float64) / W_SCALE
            add(f"layer{key}.recurrent", nir.Linear(weight=rec.reshape(out[0], -1).astype(np.float32)), neuron)
            edges.append((f"layer{key}.recurrent", neuron))
        last, shape = neuron, out
    if last == "input":
        raise UserError(f"{path}: a netx file with no layer after its input")
    add("output", nir.Output(output_type={"output": np.array(shape)}), last)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)

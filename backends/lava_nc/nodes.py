"""One NIR node as Lava processes (docs/lava-backend.md, the node table): stock Dense, Sparse,
LIFReset, RingBuffer where they fit, our processes (procs/) for the rest, in float or with the
fixed-point plan's integers. Mixed into Network (network.py), which schedules, wires and groups
the processes. Imports no torch: this runs in the worker process."""
from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np
from scipy.sparse import csr_matrix

from ...errors import UserError
from ...ir import nodes as X
from ...ir.cuba import LEAKY, cuba
from ...ir.topology import POOLS, delay_steps, node_shape, pair
from ...loihi.plan import uniform
from ...loihi.quantize import quantize_input
from ...loihi.widths import GRADED_BITS


def _pad(node) -> tuple:
    p = node.padding
    if isinstance(p, str):
        if p != "valid":
            raise UserError(f"{node}: padding {p!r} is not supported (use explicit integers)")
        return (0, 0)
    return pair(p)


def _one(value, what: str, name: str) -> float:
    return uniform(value, what, name, who="Lava's LIF")


@dataclass(frozen=True)
class Ref:
    """A process's OutPort as its consumers see it: `shape` differs where a Flatten reshaped it."""
    port: object
    shape: tuple


def ref(port) -> Ref:
    return Ref(port, tuple(port.shape))


class NodeBuilders:
    """Per-node builders; the Network provides topo, plan, where, biases, spiking, sched, ports,
    procs, images, steps, lava_steps, fixed_point, _ours, _wire and _link."""

    def _message_bits(self, name: str) -> int:
        """Binary messages only from one spiking source: fan-in sums spikes into counts."""
        preds = self.topo.preds[name]
        return 0 if len(preds) == 1 and preds[0] in self.spiking else GRADED_BITS

    def _weights(self, name: str, w: np.ndarray) -> tuple[np.ndarray, int]:
        """Float weights (times the input gain of the neurons they feed), or the plan's integers
        and exponent (the plan folds the gain into its units)."""
        if self.fixed_point:
            q = self.plan.synapses[name]
            return q.weight, q.exp
        return np.asarray(w, np.float64) * self._gain(name), 0

    def _gain(self, name: str) -> float:
        """Float: the input-to-voltage gain of one step of the stock neurons synaptic node `name`
        feeds (IF: r; LIF, CubaLIF: ir/cuba.py's g_in g_u). Lava's LIF has none (its input enters
        u and v with weight 1), so it is folded into the weights: exact, as u is linear in them."""
        p = self.where[name]
        if p.kind != "neuron":
            return 1.0
        gains = {self._neuron_gain(t) for t in p.targets}
        if len(gains) != 1:
            raise UserError(f"{name} feeds neurons with different input gains ({sorted(gains)})")
        return gains.pop()

    def _neuron_gain(self, name: str) -> float:
        node = self.topo.node(name)
        if isinstance(node, nir.IF):
            return _one(node.r, "r", name)
        if isinstance(node, LEAKY):
            return _one(cuba(node).gain, "input gain (r, w_in)", name)
        return 1.0

    # -- nodes ----------------------------------------------------------------------------
    def _build(self, name: str, images: np.ndarray) -> None:
        from lava.proc.dense.process import Dense
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.lif.process import LIFReset
        from lava.proc.sparse.process import Sparse

        node = self.topo.node(name)
        shape = node_shape(node)
        in_shape = node_shape(node, "input")
        if isinstance(node, nir.Input):
            x = quantize_input(images) if self.fixed_point else np.asarray(images, np.float64)
            data = np.zeros(shape + (self.lava_steps,), np.int32 if self.fixed_point else np.float64)
            varying = x.ndim == len(shape) + 2            # (N, T, *shape): one frame per step
            for i in range(self.images):
                data[..., i * self.steps:(i + 1) * self.steps] = np.moveaxis(x[i], 0, -1) if varying else x[i][..., None]
            proc = Source(data=data)
            self.ports[name] = ref(proc.s_out)
        elif isinstance(node, nir.Output):
            proc = Sink(shape=(int(np.prod(shape)),), buffer=self.lava_steps)
            self._wire(name, proc.a_in)
        elif isinstance(node, nir.Flatten):
            preds = self.topo.preds[name]
            if len(preds) != 1:
                raise UserError(f"{name}: a Flatten with {len(preds)} inputs is not supported in Lava")
            self.ports[name] = Ref(self.ports[preds[0]].port, shape)
            return
        elif isinstance(node, X.ResetSubIF):
            if self.fixed_point:
                q = self.plan.neurons[name]
                th, v0, bias, decay = q.threshold, q.v_init, q.bias, q.dv
            else:
                th, v0 = np.asarray(node.threshold, np.float64), np.asarray(node.v_init, np.float64)
                bias = np.broadcast_to(np.asarray(node.bias, np.float64), shape) + self.biases.get(name, 0.0)
                decay = node.decay
            kind = "IF" if node.levels == 1 else "GradedIF"
            proc = self._ours(kind, name, shape=shape, threshold=th, v_init=v0, bias=bias, levels=node.levels,
                              decay=decay)
            self._wire(name, proc.a_in)
            self.ports[name] = ref(proc.s_out)
        elif isinstance(node, X.Relay):
            proc = self._ours("Relay", name, shape=shape)
            self._wire(name, proc.a_in)
            self.ports[name] = ref(proc.s_out)
        elif isinstance(node, (nir.IF,) + LEAKY):
            proc = self._stock_if(name, node, shape, LIFReset)
        elif isinstance(node, (nir.Affine, nir.Linear)):
            w, e = self._weights(name, node.weight)
            proc = Dense(weights=w, weight_exp=e, num_message_bits=self._message_bits(name))
            self._wire(name, proc.s_in)
            self.ports[name] = ref(proc.a_out)
        elif isinstance(node, nir.Scale):
            w, e = self._weights(name, node.scale)
            diag = np.broadcast_to(w, shape).reshape(-1)
            proc = Sparse(weights=csr_matrix((diag, (np.arange(diag.size), np.arange(diag.size))),
                                             shape=(diag.size, diag.size)),
                          weight_exp=e, num_message_bits=self._message_bits(name))
            self._wire(name, proc.s_in)
            self.ports[name] = ref(proc.a_out)
        elif isinstance(node, nir.Conv1d):
            proc = self._conv1d(name, node, shape, in_shape, Dense)
        elif isinstance(node, (nir.Conv2d,) + POOLS):
            proc = self._conv2d(name, node, shape, in_shape)
        elif isinstance(node, X.SpikeProduct):
            common = dict(in_shape=in_shape, out_shape=shape, a_shape=tuple(node.a_shape),
                          b_shape=tuple(node.b_shape), mode=node.mode)
            if self.fixed_point:
                q = self.plan.synapses[name]
                proc = self._ours("Product", name, weight=int(q.weight), exp=q.exp, **common)
            else:
                proc = self._ours("Product", name, scale=float(node.scale) * self._gain(name), **common)
            self._wire(name, proc.s_in)
            self.ports[name] = ref(proc.a_out)
        elif isinstance(node, (X.Route, X.SynapseGate, nir.Delay)):
            proc = self._mover(name, node, in_shape, shape)
        elif isinstance(node, X.HostSoftmax):
            in_scale = self.plan.scale[self.topo.preds[name][0]] if self.fixed_point else 1.0
            proc = self._ours("Softmax", name, shape=shape, scale=node.scale, bias=node.bias,
                              axis=int(node.axis), in_scale=in_scale)
            self._wire(name, proc.s_in)
            self.ports[name] = ref(proc.s_out)
        elif isinstance(node, X.HostLayerNorm):
            proc = self._ours("LayerNorm", name, shape=shape, weight=node.weight, bias=node.bias,
                              axis=int(node.axis), eps=node.eps, mode=node.mode,
                              in_scale=self.plan.in_scale(name) if self.fixed_point else 1.0)
            self._wire(name, proc.s_in)
            self.ports[name] = ref(proc.s_out)
        else:                                    # check_supported rules this out
            raise UserError(f"{name}: {type(node).__name__} is not supported by the Lava backend")
        self.procs[name] = proc

    def _stock_if(self, name, node, shape, LIFReset):
        """Stock NIR IF, LIF and CubaLIF are Lava's LIFReset (reset to 0, v > threshold), reset every
        T steps at the node's logical step 1; a recorder keeps its spikes. IF: du = 1 (fixed: 4095),
        dv = 0; LIF / CubaLIF: the decays of ir/cuba.py (fixed: the plan's 12-bit registers)."""
        arrival = self.sched.arrival(self.topo, name)
        common = dict(shape=shape, reset_interval=self.steps, reset_offset=(arrival + 1) % self.steps)
        if self.fixed_point:
            q = self.plan.neurons[name]
            proc = LIFReset(du=q.du, dv=q.dv, vth=q.vth, bias_mant=q.bias_mant, bias_exp=q.bias_exp, **common)
            current = q.current_bias
        else:
            params, current = self._float_lif(name, node, shape)
            proc = LIFReset(bias_exp=0, **common, **params)
        self._wire(name, proc.a_in)
        if current is not None:
            self._constant_input(name, current, proc.a_in)
        rec = self._ours("Recorder", name, shape=shape)
        self._link(ref(proc.s_out), rec.a_in)
        self.ports[name] = ref(proc.s_out)
        return proc

    def _float_lif(self, name, node, shape) -> tuple[dict, np.ndarray | None]:
        """du, dv, vth, bias of Lava's float LIF, which resets to 0, and the constant input current
        (None when there is none). The input gain is in the weights that feed the neuron (_gain),
        and so in the synaptic biases moved here: into the voltage bias where the current is one
        step's input, into a constant input where the current remembers (it accumulates there)."""
        if isinstance(node, nir.IF):
            du, dv, th, own, reset = 1.0, 0.0, _one(node.v_threshold, "v_threshold", name), 0.0, node.v_reset
        else:
            c = cuba(node)
            du, dv, th, own, reset = (_one(c.du, "tau_syn", name), _one(c.dv, "tau_mem", name),
                                      _one(c.threshold, "v_threshold", name), c.bias, c.v_reset)
        if np.any(np.asarray(reset) != 0):
            raise UserError(f"{name}: Lava's LIF resets to 0; this neuron resets to {np.unique(reset)}")
        moved = np.broadcast_to(self.biases.get(name, 0.0), shape) * self._neuron_gain(name)
        current = moved.astype(np.float64) if du < 1.0 and np.any(moved) else None
        bias = np.broadcast_to(own, shape) + (0.0 if current is not None else moved)
        return dict(du=du, dv=dv, vth=th, bias_mant=bias.astype(np.float64)), current

    def _constant_input(self, name: str, value: np.ndarray, in_port) -> None:
        """A source that adds `value` to a neuron's input at every step (Lava sums an InPort's
        connections); the neuron's reset at each image's first step clears what came before."""
        from lava.proc.io.source import RingBuffer as Source
        data = np.repeat(np.asarray(value)[..., None], self.lava_steps, axis=-1)
        proc = Source(data=data.astype(np.int32) if self.fixed_point else data)
        self._link(ref(proc.s_out), in_port)
        self.procs[f"{name}.bias"] = proc

    def _conv1d(self, name, node, shape, in_shape, Dense):
        w = np.asarray(node.weight)
        token = w.shape[2] == 1 and int(node.groups) == 1 and int(np.asarray(node.stride).reshape(-1)[0]) == 1 \
            and _pad(node) == (0, 0)
        full = shape[-1] == 1 and w.shape[2] == in_shape[-1] and int(node.groups) == 1 and _pad(node) == (0, 0)
        if token:
            wq, e = self._weights(name, w)
            proc = self._ours("TokenDense", name, in_shape=in_shape, out_shape=shape, weight=wq[:, :, 0], exp=e)
            self._wire(name, proc.s_in)
            self.ports[name] = ref(proc.a_out)
        elif full:                              # one output position: a plain Dense over (C, N)
            wq, e = self._weights(name, w)
            proc = Dense(weights=wq.reshape(wq.shape[0], -1), weight_exp=e,
                         num_message_bits=self._message_bits(name))
            self._wire(name, proc.s_in)
            self.ports[name] = ref(proc.a_out)
        else:
            raise UserError(f"{name}: Conv1d is supported in Lava as a token-wise layer (kernel 1) "
                            f"or a full-length kernel; this one has kernel {w.shape[2]}")
        return proc

    def _conv2d(self, name, node, shape, in_shape):
        if isinstance(node, POOLS):
            k = pair(node.kernel_size)
            C = in_shape[0]
            area = k[0] * k[1]
            if self.fixed_point:
                if self.where[name].kind == "synapse":          # sums integers for the next layer
                    w, e = np.ones((C, 1) + k, np.int64), 0
                else:
                    q = self.plan.synapses[name]
                    w, e = np.full((C, 1) + k, int(q.weight), np.int64), q.exp
            else:
                w = np.full((C, 1) + k, 1.0 / area if isinstance(node, nir.AvgPool2d) else 1.0) * self._gain(name)
                e = 0
            args = dict(stride=pair(node.stride), padding=_pad(node), dilation=(1, 1), groups=C)
        else:
            w, e = self._weights(name, node.weight)
            args = dict(stride=pair(node.stride), padding=_pad(node), dilation=pair(node.dilation),
                        groups=int(node.groups))
        proc = self._ours("Conv", name, in_shape=in_shape, out_shape=shape, weight=w, exp=e, **args)
        self._wire(name, proc.s_in)
        self.ports[name] = ref(proc.a_out)
        return proc

    def _mover(self, name, node, in_shape, shape):
        if isinstance(node, X.Route):
            proc = self._ours("Route", name, in_shape=in_shape, out_shape=shape, index=node.index)
        elif isinstance(node, X.SynapseGate):
            proc = self._ours("Gate", name, in_shape=in_shape, out_shape=shape, p=node.p,
                              seed=int(node.seed), stream=int(node.stream))
        else:
            proc = self._ours("Delay", name, in_shape=in_shape, out_shape=shape, delay=delay_steps(name, node),
                              logical=True)
        self._wire(name, proc.s_in)
        self.ports[name] = ref(proc.s_out)
        return proc

"""Reference simulator: runs a NIR graph (stock + our extension nodes) for T steps on a batch.

Multi-step, layer by layer: every node processes all T steps at once, tensors are (T, B, *shape);
linear ops are one batched matmul/conv over T*B, and only neuron state is scanned over time.
Semantics follow docs/nir-extensions.md and docs/time-and-randomness.md (zero-delay edges, fan-in
summed). Synaptic events are counted exactly at every synaptic node (see `events`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np
import torch
import torch.nn.functional as F

from ..backends import fixed_point as fx
from ..backends.fixed_point import FixedPlan
from ..errors import UserError
from ..export import nodes as X
from ..export import stream
from ..export.cuba import LEAKY, cuba
from ..export.topology import NEURONS, POOLS, ROUTING, SUPPORTED, SYNAPTIC, Topology
from ..export.topology import check_supported as _check_supported
from ..export.topology import node_shape as _shape

# Nodes whose arithmetic differs in fixed point (the others only move or gate values).
FIXED_OWN = SYNAPTIC + NEURONS + (X.HostSoftmax, nir.Output)


def check_supported(graph: nir.NIRGraph) -> None:
    _check_supported(graph, SUPPORTED, "the reference simulator")


@dataclass
class Result:
    logits: torch.Tensor                    # (T, B, K) per-step output
    spikes: dict = field(default_factory=dict)        # node -> (T, B, *shape) bool, if recorded
    spike_counts: dict = field(default_factory=dict)  # node -> total spikes (all steps, images)
    events: dict = field(default_factory=dict)        # synaptic node -> delivered synaptic events
    gated_events: dict = field(default_factory=dict)  # synaptic node -> events removed by gating
    host_macs: dict = field(default_factory=dict)     # node -> MACs done on the host / analog input
    neuron_updates: dict = field(default_factory=dict)
    saturation: dict = field(default_factory=dict)    # fixed point: neuron -> counts of clipped v

    def predictions_by_step(self) -> torch.Tensor:
        """(T, B) argmax of the logits summed over steps 1..t, for every t."""
        return self.logits.cumsum(0).argmax(-1)


class Simulator:
    """Runs a graph in floating point (NIR semantics), or with `fixed_point=True` in the integer
    arithmetic of docs/fixed-point.md (the Lava backend's bit-accurate mode)."""

    def __init__(self, graph: nir.NIRGraph, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, fixed_point: bool = False):
        check_supported(graph)
        topo = Topology(graph)
        # fixed point: integers held exactly in float64 (CUDA has no integer matmul)
        self.plan = FixedPlan(graph, topo) if fixed_point else None
        if fixed_point:
            dtype = torch.float64
        self.graph, self.device, self.dtype = graph, torch.device(device), dtype
        self.order, self.preds, self.consumers = topo.order, topo.preds, topo.consumers
        self.input, self.output = topo.input, topo.output
        self.input_shape = _shape(graph.nodes[self.input], "input")
        self._params: dict[str, dict] = {}
        self._fanout: dict[str, torch.Tensor] = {}
        self._analog = self._analog_sources()
        self._needs_activity = self._activity_needed()

    # -- static analysis ---------------------------------------------------------------------
    def _analog_sources(self) -> set[str]:
        """Nodes whose output is analog (host values): the Input, host ops and what they reach
        through routing. Synapses fed by them count MACs, not events."""
        analog = set()
        for n in self.order:
            node = self.graph.nodes[n]
            if isinstance(node, (nir.Input, X.HostSoftmax)):
                analog.add(n)
            elif isinstance(node, ROUTING) and any(p in analog for p in self.preds[n]):
                analog.add(n)
        return analog

    def _activity_needed(self) -> set[str]:
        """Nodes whose per-element event counts feed an event count: the spiking inputs of
        synaptic nodes and, through routing, the nodes behind them."""
        need = set()
        for n in reversed(self.order):
            node = self.graph.nodes[n]
            if (isinstance(node, SYNAPTIC) and n not in self._analog) or \
                    (isinstance(node, ROUTING) and n in need):
                need.update(self.preds[n])
        return need

    def _t(self, a) -> torch.Tensor:
        return torch.as_tensor(np.array(a), dtype=self.dtype, device=self.device)

    def param(self, name: str, key: str, value) -> torch.Tensor:
        cache = self._params.setdefault(name, {})
        if key not in cache:
            cache[key] = self._t(value)
        return cache[key]

    def fanout(self, name: str) -> torch.Tensor:
        """Per input element, the number of non-zero synapses leaving it (float64, input shape)."""
        if name in self._fanout:
            return self._fanout[name]
        node = self.graph.nodes[name]
        shape = _shape(node, "input")
        f64 = dict(dtype=torch.float64, device=self.device)
        if isinstance(node, (nir.Affine, nir.Linear)):
            w = torch.as_tensor(np.asarray(node.weight) != 0, **f64)
            f = w.sum(-2).reshape(shape)
        elif isinstance(node, nir.Scale):
            f = torch.as_tensor(np.asarray(node.scale) != 0, **f64).reshape(shape)
        elif isinstance(node, nir.Conv1d):
            w = torch.as_tensor(np.asarray(node.weight) != 0, **f64)
            out = torch.ones(1, *_shape(node), **f64)
            f = F.conv_transpose1d(out, w, stride=int(node.stride), padding=_pad(node.padding),
                                   dilation=int(node.dilation), groups=int(node.groups))[0]
            f = _fit(f, shape)
        elif isinstance(node, nir.Conv2d):
            w = torch.as_tensor(np.asarray(node.weight) != 0, **f64)
            out = torch.ones(1, *_shape(node), **f64)
            f = F.conv_transpose2d(out, w, stride=_pair(node.stride), padding=_pair(_pad(node.padding)),
                                   dilation=_pair(node.dilation), groups=int(node.groups))[0]
            f = _fit(f, shape)
        elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            c, h, w_ = _shape(node)
            k = _pair(node.kernel_size)
            out = torch.ones(1, c, h, w_, **f64)
            f = F.conv_transpose2d(out, torch.ones(c, 1, *k, **f64), stride=_pair(node.stride),
                                   padding=_pair(node.padding), groups=c)[0]
            f = _fit(f, shape)
        elif isinstance(node, X.SpikeProduct):
            M, N = int(node.a_shape[-2]), int(node.b_shape[-1])
            na = int(np.prod(node.a_shape))
            f = torch.cat([torch.full((na,), float(N), **f64),
                           torch.full((int(np.prod(node.b_shape)),), float(M), **f64)])
        else:
            raise AssertionError(type(node))
        self._fanout[name] = f
        return f

    # -- execution ---------------------------------------------------------------------------
    @torch.no_grad()
    def run(self, x: torch.Tensor, T: int, sample_offset: int = 0, record: set | None = None,
            count: bool = True, playback: dict | None = None) -> Result:
        """Run T steps on images x (B, *input_shape); image i is sample `sample_offset + i`.

        `playback` (node -> (T, B, *shape) 0/1 tensor) replaces the outputs of those neurons and
        gates by recorded ones (another backend's), so that the event counts are that run's."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise UserError(f"input shape {tuple(x.shape[1:])} does not match the graph's Input "
                            f"{self.input_shape}")
        if T < 1:
            raise UserError("T must be >= 1")
        B = x.shape[0]
        if self.plan is not None:
            x = torch.as_tensor(fx.quantize_input(x.cpu().numpy()), dtype=torch.float64)
        x = x.to(self.device, self.dtype)
        res = Result(logits=torch.empty(0))
        record = record or set()
        samples = torch.arange(sample_offset, sample_offset + B, device=self.device, dtype=torch.int64)
        steps = torch.arange(1, T + 1, device=self.device, dtype=torch.int64)
        outs: dict[str, torch.Tensor] = {}
        dropped: dict[str, torch.Tensor] = {}      # per node: spikes removed by gates upstream
        acts: dict[str, torch.Tensor] = {}         # per node: events per element (all steps, images)
        remaining = {n: len(self.consumers[n]) for n in self.order}
        for name in self.order:
            node = self.graph.nodes[name]
            preds = self.preds[name]
            if isinstance(node, nir.Input):
                y = x.unsqueeze(0).expand(T, *x.shape)
            else:
                if not preds:
                    raise UserError(f"node {name!r} has no input edge")
                inp = outs[preds[0]]
                for p in preds[1:]:
                    inp = inp + outs[p]
                drop_in = _sum_opt(dropped.get(p) for p in preds) if count else None
                act_in = _sum_opt(acts.get(p) for p in preds) if count else None
                if count and isinstance(node, SYNAPTIC):
                    self._count(name, node, act_in, drop_in, res, T, B)
                if playback and name in playback and isinstance(node, NEURONS + (X.SynapseGate,)):
                    y, drop_out = self._playback(node, inp, playback[name], drop_in, count)
                elif self.plan is not None and isinstance(node, FIXED_OWN):
                    y, drop_out = self._step_fixed(name, node, inp, T, B, res), None
                else:
                    y, drop_out = self._step(name, node, inp, drop_in, T, B, samples, steps, count)
                if drop_out is not None:
                    dropped[name] = drop_out
                if isinstance(node, NEURONS):
                    res.neuron_updates[name] = T * B * int(np.prod(_shape(node)))
                    if count:
                        # spike counts per element are < 2^24: exact in the float32 sum
                        acts[name] = y.reshape(T * B, -1).sum(0).double().reshape(y.shape[2:])
                        res.spike_counts[name] = int(acts[name].sum().item())
                    if name in record:
                        res.spikes[name] = y.bool().cpu()
                if count and name in self._needs_activity and name not in acts:
                    acts[name] = self._activity(name, node, y, act_in, drop_out, drop_in, T, B)
                for p in preds:
                    remaining[p] -= 1
                    if remaining[p] == 0 and p != self.output:
                        outs.pop(p, None)
                        dropped.pop(p, None)
                        acts.pop(p, None)
            outs[name] = y
        res.logits = outs[self.output].reshape(T, B, -1).to(torch.float64).cpu()
        return res

    def _playback(self, node, x, rec, drop, count):
        """A recorded neuron's spikes, or a recorded gate's passed spikes (the rest were dropped)."""
        rec = rec.to(self.device, self.dtype)
        if tuple(rec.shape) != tuple(x.shape):
            raise UserError(f"recorded output of shape {tuple(rec.shape)}, the node's is {tuple(x.shape)}")
        if not isinstance(node, X.SynapseGate):
            return rec, None
        y = x * rec
        if not count:
            return y, None
        T, B = x.shape[:2]
        gone = (x * (rec == 0)).reshape(T * B, -1).double().sum(0).reshape(x.shape[2:])
        return y, gone if drop is None else drop + gone

    def _activity(self, name, node, y, act_in, drop_out, drop_in, T, B) -> torch.Tensor:
        """Events per element of a node's output, from its inputs' where the node only moves them."""
        if act_in is not None:
            if isinstance(node, X.Route):
                return _route1(act_in, self._params[name]["index"])
            if isinstance(node, nir.Flatten):
                return act_in.reshape(_shape(node))
            if isinstance(node, X.SynapseGate):
                gone = drop_out if drop_in is None else drop_out - drop_in
                return act_in - gone
        return torch.count_nonzero(y.reshape(T * B, -1), dim=0).to(torch.float64).reshape(y.shape[2:])

    def _count(self, name, node, act_in, drop_in, res: Result, T: int, B: int) -> None:
        fan = self.fanout(name)
        analog = any(p in self._analog for p in self.preds[name])
        if analog:
            if isinstance(node, X.SpikeProduct):
                a, b = node.a_shape, node.b_shape
                res.host_macs[name] = T * B * int(np.prod(a[:-1])) * int(a[-1]) * int(b[-1])
            else:
                res.host_macs[name] = int(T * B * fan.sum().item())
            return
        res.events[name] = int(round((act_in.reshape(fan.shape) * fan).sum().item()))
        if drop_in is not None:
            res.gated_events[name] = int(round((drop_in.reshape(fan.shape) * fan).sum().item()))

    def _step(self, name, node, x, drop, T, B, samples, steps, count):
        """Output (T, B, *shape) of one node, and the routed count of gated-out spikes."""
        TB = T * B
        if isinstance(node, nir.Output):
            return x, None
        if isinstance(node, X.Route):
            y = _route(x, self._route_plan(name, node), T, B)
            return y, (None if drop is None else _route1(drop, self._params[name]["index"]))
        if isinstance(node, nir.Flatten):
            out = _shape(node)
            return x.reshape(T, B, *out), (None if drop is None else drop.reshape(out))
        if isinstance(node, nir.Delay):
            d = np.unique(np.asarray(node.delay))
            if d.size != 1 or d[0] < 0 or d[0] != int(d[0]):
                raise UserError(f"{name}: only one non-negative integer delay per Delay node is supported")
            d = int(d[0])
            y = torch.zeros_like(x)
            if d < T:
                y[d:] = x[:T - d]
            return y, drop
        if isinstance(node, X.SynapseGate):
            y, gone = self._gate(name, node, x, samples, steps)
            if not count:
                return y, None
            return y, gone if drop is None else drop + gone
        if isinstance(node, (nir.Affine, nir.Linear)):
            w = self.param(name, "w", node.weight)
            bias = self.param(name, "b", node.bias) if isinstance(node, nir.Affine) else None
            return F.linear(x, w, bias), None
        if isinstance(node, nir.Scale):
            return x * self.param(name, "s", node.scale), None
        if isinstance(node, nir.Conv1d) and node.weight.shape[2] == 1 and int(node.groups) == 1 \
                and int(node.stride) == 1 and _pad(node.padding) == 0:
            # token-wise linear layer: one batched matmul, (C_out, C_in) @ (T*B, C_in, N)
            w = self.param(name, "w2", np.asarray(node.weight)[:, :, 0])
            b = self.param(name, "b1", np.asarray(node.bias)[:, None])
            y = torch.matmul(w, x.reshape(TB, *x.shape[2:])) + b
            return y.reshape(T, B, *y.shape[1:]), None
        if isinstance(node, nir.Conv1d):
            w, b = self.param(name, "w", node.weight), self.param(name, "b", node.bias)
            y = F.conv1d(x.reshape(TB, *x.shape[2:]), w, b, int(node.stride), _pad(node.padding),
                         int(node.dilation), int(node.groups))
            return y.reshape(T, B, *y.shape[1:]), None
        if isinstance(node, nir.Conv2d):
            w, b = self.param(name, "w", node.weight), self.param(name, "b", node.bias)
            y = F.conv2d(x.reshape(TB, *x.shape[2:]), w, b, _pair(node.stride), _pair(_pad(node.padding)),
                         _pair(node.dilation), int(node.groups))
            return y.reshape(T, B, *y.shape[1:]), None
        if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            k = _pair(node.kernel_size)
            y = F.avg_pool2d(x.reshape(TB, *x.shape[2:]), k, _pair(node.stride), _pair(node.padding),
                             count_include_pad=True)
            if isinstance(node, nir.SumPool2d):
                y = y * (k[0] * k[1])
            return y.reshape(T, B, *y.shape[1:]), None
        if isinstance(node, X.SpikeProduct):
            return self._product(node, x, T, B), None
        if isinstance(node, X.HostSoftmax):
            bias = self.param(name, "b", node.bias)
            return torch.softmax(node.scale * x + bias, dim=int(node.axis)), None
        if isinstance(node, X.ResetSubIF):
            return self._if(x, self.param(name, "th", node.threshold), self.param(name, "v0", node.v_init),
                            self.param(name, "b", node.bias), subtract=True), None
        if isinstance(node, LEAKY):
            return self._cuba(name, node, x), None
        if isinstance(node, nir.IF):
            # stock NIR IF: v += r I; spike when v > threshold; v = v_reset
            r = self.param(name, "r", node.r)
            return self._if(x * r, self.param(name, "th", node.v_threshold), torch.zeros((), dtype=self.dtype,
                            device=self.device), torch.zeros((), dtype=self.dtype, device=self.device),
                            subtract=False, v_reset=self.param(name, "vr", node.v_reset)), None
        raise AssertionError(type(node))

    def _cuba(self, name, node, x) -> torch.Tensor:
        """Stock LIF / CubaLIF in the discrete-time reading of export/cuba.py."""
        cache = self._params.setdefault(name, {})
        if "cuba" not in cache:
            c = cuba(node)
            cache["cuba"] = [self._t(np.broadcast_to(a, _shape(node))) for a in
                             (1.0 - c.du, c.g_in, 1.0 - c.dv, c.g_u, c.bias, c.threshold, c.v_reset)]
            cache["memory"] = bool(np.any(c.du != 1.0))
        keep_u, g_in, keep_v, g_u, bias, th, reset = cache["cuba"]
        drive = x * g_in
        u = torch.zeros_like(x[0])
        v = torch.zeros_like(x[0])
        out = torch.empty_like(x)
        for t in range(x.shape[0]):
            u = u * keep_u + drive[t] if cache["memory"] else drive[t]
            v = v * keep_v + u * g_u + bias
            s = v > th
            out[t] = s
            v = torch.where(s, reset, v)
        return out

    # -- fixed point (docs/fixed-point.md) -------------------------------------------------------
    def _step_fixed(self, name, node, x, T, B, res: Result) -> torch.Tensor:
        """Integer semantics of synapses, neurons, host softmax and output (values exact in float64)."""
        plan, TB = self.plan, T * B
        if isinstance(node, nir.Output):
            return x * plan.output_unit + self.param(name, "ob", plan.output_bias)
        if isinstance(node, NEURONS):
            return self._if_fixed(name, x, plan.neurons[name], res)
        if isinstance(node, X.HostSoftmax):
            in_scale = plan.scale[self.preds[name][0]]
            flat = x.cpu().numpy()
            y = np.empty(flat.shape, np.int64)
            bias = np.broadcast_to(np.asarray(node.bias, np.float64), flat.shape[2:])
            for t in range(T):                      # one step at a time, as Lava does (see softmax_fixed)
                for b in range(B):
                    y[t, b] = fx.softmax_fixed(flat[t, b], in_scale, node.scale, bias, int(node.axis))
            return torch.as_tensor(y, dtype=self.dtype, device=self.device)
        if isinstance(node, POOLS) and plan.placement[name].kind == "synapse":
            return self._pool_sum(node, x, T, B)
        q = plan.synapses[name]
        w = self.param(name, "wq", q.weight)
        if isinstance(node, X.SpikeProduct):
            return self._product_fixed(node, x, T, B, float(q.weight), q.exp)
        if isinstance(node, (nir.Affine, nir.Linear)):
            y = F.linear(x, w)
        elif isinstance(node, nir.Scale):
            y = x * w
        elif isinstance(node, POOLS):
            y = self._pool_sum(node, x, T, B) * w
        elif isinstance(node, nir.Conv1d):
            y = F.conv1d(x.reshape(TB, *x.shape[2:]), w, None, int(node.stride), _pad(node.padding),
                         int(node.dilation), int(node.groups))
            y = y.reshape(T, B, *y.shape[1:])
        else:
            y = F.conv2d(x.reshape(TB, *x.shape[2:]), w, None, _pair(node.stride), _pair(_pad(node.padding)),
                         _pair(node.dilation), int(node.groups))
            y = y.reshape(T, B, *y.shape[1:])
        return _shift(y, q.exp)

    def _pool_sum(self, node, x, T, B) -> torch.Tensor:
        k = _pair(node.kernel_size)
        y = F.avg_pool2d(x.reshape(T * B, *x.shape[2:]), k, _pair(node.stride), _pair(node.padding),
                         count_include_pad=True, divisor_override=1)
        return y.reshape(T, B, *y.shape[1:])

    def _product_fixed(self, node: X.SpikeProduct, x, T, B, m: float, e: int) -> torch.Tensor:
        na = int(np.prod(node.a_shape))
        a = x[..., :na].reshape(T, B, *node.a_shape.tolist())
        b = x[..., na:].reshape(T, B, *node.b_shape.tolist())
        if node.mode == "per_step":
            return _shift(m * (a @ b), e)
        # G_t = floor(m A_t B_t 2^e / t); out_t = G_t - G_{t-1}. Exact: m A_t B_t < 2^52 (checked).
        X_ = m * (a.cumsum(0) @ b.cumsum(0))
        if X_.numel() and float(X_.abs().max()) >= 2.0 ** 52:
            raise UserError("fixed point: a cumulative product overflows 52 bits; use a smaller T")
        t = torch.arange(1, T + 1, dtype=X_.dtype, device=X_.device).reshape(T, *([1] * (X_.dim() - 1)))
        G = torch.floor(X_ * 2.0 ** e / t) if e >= 0 else torch.floor(X_ / (t * 2.0 ** -e))
        G[1:] -= G[:-1].clone()
        return G

    def _if_fixed(self, name, x, q, res: Result) -> torch.Tensor:
        """Lava's bit-accurate LIF datapath: u = (u * (4096 - (du + 1))) >> 12 (toward zero) +
        (a_in << 6), wrapping at 24 bits; v = (v * (4096 - dv)) >> 12 + u + bias, saturating at 24
        bits; with the node's own spike rule and reset (IF nodes: du = 4095, dv = 0)."""
        T = x.shape[0]
        a = x * (1 << fx.ACT_SHIFT)
        keep_u = fx.DECAY_ONE - (q.du + 1)
        if keep_u == 0:
            u_all, wrapped = _wrap(a)
        else:                                          # the current remembers: scan it
            u_all, wrapped, u = torch.empty_like(a), 0, torch.zeros_like(a[0])
            for t in range(T):
                u, w = _wrap(torch.trunc(u * keep_u / fx.DECAY_ONE) + a[t])
                u_all[t], wrapped = u, wrapped + w
        drive = u_all + self.param(name, "qb", q.bias)
        v = (torch.zeros_like(x[0]) + self.param(name, "qv0", q.v_init)).contiguous()
        out = torch.empty_like(x)
        th, lim = float(q.threshold), float(fx.V_LIMIT)
        keep_v = fx.DECAY_ONE - q.dv
        high = low = 0
        for t in range(T):
            if keep_v != fx.DECAY_ONE:
                v = torch.trunc(v * keep_v / fx.DECAY_ONE)
            v.add_(drive[t])
            high += int((v > lim).sum())
            low += int((v < -lim).sum())
            v.clamp_(-lim, lim)
            if q.subtract:
                out[t] = v >= th
                v.sub_(out[t] * th)
            else:
                out[t] = v > th
                v.masked_fill_(out[t].bool(), 0.0)
        sat = res.saturation.setdefault(name, {"high": 0, "low": 0, "wrapped": 0})
        sat["high"] += high
        sat["low"] += low
        sat["wrapped"] += wrapped
        return out

    def _route_plan(self, name, node: X.Route):
        """(positions written, source indices, output shape); positions None when all are written,
        a slice when they are one contiguous run (operand packing). Also caches the full index
        (with -1) for routing count vectors."""
        cache = self._params.setdefault(name, {})
        if "plan" not in cache:
            cache["index"] = torch.as_tensor(node.index, dtype=torch.int64, device=self.device)
            idx = np.asarray(node.index).reshape(-1)
            pos = np.flatnonzero(idx >= 0)
            dev = self.device
            src = torch.as_tensor(idx[pos], device=dev)
            if pos.size == idx.size:
                where = None
            elif pos.size and pos[-1] - pos[0] + 1 == pos.size:
                where = slice(int(pos[0]), int(pos[-1]) + 1)
            else:
                where = torch.as_tensor(pos, device=dev)
            cache["plan"] = (where, src, tuple(node.index.shape))
        return cache["plan"]

    def _gate(self, name, node, x, samples, steps) -> tuple[torch.Tensor, torch.Tensor]:
        """Gated x and the boolean 'spike dropped' tensor. The stream is drawn only where x != 0
        (elsewhere the gate has nothing to drop), which is exact and cheap for sparse spikes."""
        cache = self._params.setdefault(name, {})
        if "imix" not in cache:
            n = int(np.prod(node.shape))
            cache["imix"] = stream.mix32(torch.arange(n, device=self.device, dtype=torch.int64))
            cache["key"] = stream.node_key(int(node.seed), int(node.stream))
        T, B = x.shape[:2]
        flat = x.reshape(T, B, -1)
        skey = stream.step_key(cache["key"], samples[None, :], steps[:, None])          # (T, B)
        t, b, i = flat.nonzero(as_tuple=True)
        drop = ~stream.keep_mask(skey[t, b], cache["imix"][i], float(node.p))
        y = flat.clone()
        y[t[drop], b[drop], i[drop]] = 0
        dropped = torch.zeros(flat.shape[-1], dtype=torch.float64, device=self.device)
        # a gate on a residual sum drops counts, not single spikes: weigh by the value
        dropped.index_add_(0, i[drop], flat[t[drop], b[drop], i[drop]].to(torch.float64))
        return y.reshape(x.shape), dropped.reshape(x.shape[2:])

    def _product(self, node: X.SpikeProduct, x: torch.Tensor, T: int, B: int) -> torch.Tensor:
        na = int(np.prod(node.a_shape))
        a = x[..., :na].reshape(T, B, *node.a_shape.tolist())
        b = x[..., na:].reshape(T, B, *node.b_shape.tolist())
        if node.mode == "per_step":
            return node.scale * (a @ b)
        # cumulative: P_t = A_t B_t / t; out_t = P_t - P_{t-1}. A_t B_t are integer counts, exact
        # in float32 while below 2^24, so float64 is used only past that.
        K = int(node.a_shape[-1])
        dt = self.dtype if T * T * K < 2 ** 24 else torch.float64
        A, Bc = a.to(dt).cumsum(0), b.to(dt).cumsum(0)
        t = torch.arange(1, T + 1, dtype=dt, device=x.device).reshape(T, *([1] * (A.dim() - 1)))
        P = (A @ Bc) / t
        P[1:] -= P[:-1].clone()
        return (node.scale * P).to(self.dtype)

    def _if(self, x, threshold, v_init, bias, subtract: bool, v_reset=None) -> torch.Tensor:
        """Scan the membrane over time; everything else was done for all steps at once."""
        T = x.shape[0]
        drive = x + bias                                     # one op for all steps
        v = (torch.zeros_like(x[0]) + v_init).contiguous()
        out = torch.empty_like(x)
        th = threshold.expand_as(v) if subtract else threshold
        for t in range(T):
            v.add_(drive[t])
            if subtract:
                out[t] = v >= th
                v.sub_(out[t] * th)
            else:
                s = v > th
                out[t] = s
                v = torch.where(s, v_reset.expand_as(v), v)
        return out


def _wrap(u: torch.Tensor) -> tuple[torch.Tensor, int]:
    """24-bit wrap-around of Lava's current u, and how many values wrapped."""
    wrapped = int(((u > fx.U_WRAP) | (u <= -fx.U_WRAP)).sum())
    u = torch.where(u > fx.U_WRAP, u - 2 * fx.U_WRAP, u)
    return torch.where(u <= -fx.U_WRAP, u + 2 * fx.U_WRAP, u), wrapped


def _shift(y: torch.Tensor, e: int) -> torch.Tensor:
    """Integer y * 2^e (floor when e < 0), on integers held exactly in float64."""
    return y * 2.0 ** e if e >= 0 else torch.floor(y / 2.0 ** -e)


def _sum_opt(items):
    items = [i for i in items if i is not None]
    if not items:
        return None
    out = items[0]
    for i in items[1:]:
        out = out + i
    return out


def _route(x, plan, T, B):
    """Gather by a route plan (see Simulator._route_plan): zeros where the index is -1."""
    flat = x.reshape(T, B, -1)
    pos, src, span = plan
    if pos is None:
        return flat[..., src].reshape(T, B, *span)
    out = flat.new_zeros(T, B, int(np.prod(span)))
    out[..., pos] = flat[..., src]                     # pos: a slice or an index tensor
    return out.reshape(T, B, *span)


def _route1(counts, idx):
    flat = torch.cat([counts.reshape(-1), counts.new_zeros(1)])
    gather = torch.where(idx < 0, torch.full_like(idx, flat.shape[0] - 1), idx)
    return flat[gather.reshape(-1)].reshape(idx.shape)


def _pair(v):
    a = np.asarray(v).reshape(-1)
    return (int(a[0]), int(a[-1]))


def _pad(p):
    if isinstance(p, str):
        if p == "valid":
            return 0
        raise UserError(f"padding {p!r} is not supported (use explicit integers)")
    a = np.asarray(p).reshape(-1)
    return int(a[0]) if a.size == 1 else tuple(int(v) for v in a)


def _fit(f: torch.Tensor, shape: tuple) -> torch.Tensor:
    """conv_transpose may come out short of the input by the stride remainder; pad with zeros."""
    if tuple(f.shape) == tuple(shape):
        return f
    out = f.new_zeros(shape)
    sl = tuple(slice(0, min(a, b)) for a, b in zip(f.shape, shape))
    out[sl] = f[sl]
    return out

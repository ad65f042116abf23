"""Reference simulator: runs a NIR graph (stock + our extension nodes) for a number of steps on a
batch of samples.

Multi-step, layer by layer: every node processes all steps at once, tensors are (T, B, *shape);
linear ops are one batched matmul/conv over T*B (ops.py), and only neuron state is scanned over
time (neurons.py; fixed.py in fixed point). Semantics follow docs/nir-extensions.md and
docs/time-and-randomness.md (zero-delay edges, fan-in summed). Synaptic events are counted
exactly at every synaptic node (counting.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import nir
import numpy as np
import torch

from ..errors import UserError
from ..ir import nodes as X
from ..ir import stream
from ..ir.topology import (NEURONS, POOLS, SUPPORTED, SYNAPTIC, Topology, check_supported, delay_steps,
                           node_shape)
from ..loihi.plan import FixedPlan
from ..machine import check_fits
from ..loihi.quantize import quantize_input
from . import counting, fixed, neurons, ops

# Nodes whose arithmetic differs in fixed point (the others only move or gate values).
FIXED_OWN = SYNAPTIC + NEURONS + X.HOST_OPS + (nir.Output,)


@dataclass
class Result:
    logits: torch.Tensor                    # (T, B, K) per-step output
    spikes: dict = field(default_factory=dict)        # node -> (T, B, *shape) bool, if recorded
    spike_counts: dict = field(default_factory=dict)  # node -> total spikes (all steps, samples)
    synaptic_events: dict = field(default_factory=dict)  # synaptic node -> delivered events
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
        check_supported(graph, SUPPORTED, "the reference simulator")
        self.topo = topo = Topology(graph)
        # fixed point: integers held exactly in float64 (CUDA has no integer matmul)
        self.plan = FixedPlan(graph, topo) if fixed_point else None
        if fixed_point:
            dtype = torch.float64
        self.graph, self.device, self.dtype = graph, torch.device(device), dtype
        self.order, self.preds, self.consumers = topo.order, topo.preds, topo.consumers
        self.input, self.output = topo.input, topo.output
        self.input_shape = node_shape(graph.nodes[self.input], "input")
        self._cache: dict[str, dict] = {}
        self._analog = counting.analog_sources(topo)
        self._needs_activity = counting.activity_needed(topo, self._analog)
        self._widest = max(int(np.prod(node_shape(graph.nodes[n]))) for n in self.order)  # for memory checks

    def cached(self, name: str, key: str, make):
        """A per-node value built once (parameters as tensors, plans, fan-outs)."""
        cache = self._cache.setdefault(name, {})
        if key not in cache:
            cache[key] = make()
        return cache[key]

    def tensor(self, value) -> torch.Tensor:
        return torch.as_tensor(np.array(value), dtype=self.dtype, device=self.device)

    def param(self, name: str, key: str, value) -> torch.Tensor:
        return self.cached(name, key, lambda: self.tensor(value))

    def fanout(self, name: str) -> torch.Tensor:
        return self.cached(name, "fanout", lambda: counting.fanout(self.graph.nodes[name], self.device))

    # -- execution ---------------------------------------------------------------------------
    @torch.no_grad()
    def run(self, x: torch.Tensor, steps: int, first_sample: int = 0, record: set | None = None,
            count: bool = True, playback: dict | None = None) -> Result:
        """Run `steps` steps on x (B, *input_shape); x[i] is sample `first_sample + i`.

        `playback` (node -> (T, B, *shape) 0/1 tensor) replaces the outputs of those neurons and
        gates by recorded ones (another backend's), so that the event counts are that run's."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise UserError(f"input shape {tuple(x.shape[1:])} does not match the graph's Input "
                            f"{self.input_shape}")
        if steps < 1:
            raise UserError("the number of steps must be >= 1")
        T, B = steps, x.shape[0]
        check_fits(4 * self._widest * T * B * torch.finfo(self.dtype).bits // 8,
                   f"simulating {B} samples x {T} steps", "-T or the batch size", self.device)
        if self.plan is not None:
            x = torch.as_tensor(quantize_input(x.cpu().numpy()), dtype=torch.float64)
        x = x.to(self.device, self.dtype)
        res = Result(logits=torch.empty(0))
        record = record or set()
        clock = (torch.arange(first_sample, first_sample + B, device=self.device, dtype=torch.int64),
                 torch.arange(1, T + 1, device=self.device, dtype=torch.int64))
        outs: dict[str, torch.Tensor] = {}
        dropped: dict[str, torch.Tensor] = {}      # per node: spikes removed by gates upstream
        acts: dict[str, torch.Tensor] = {}         # per node: events per element (all steps, samples)
        remaining = {n: len(self.consumers[n]) for n in self.order}
        for name in self.order:
            node = self.graph.nodes[name]
            preds = self.preds[name]
            if isinstance(node, nir.Input):
                outs[name] = x.unsqueeze(0).expand(T, *x.shape)
                continue
            inp = outs[preds[0]]
            for p in preds[1:]:
                inp = inp + outs[p]
            drop_in = counting.sum_counts(dropped.get(p) for p in preds) if count else None
            act_in = counting.sum_counts(acts.get(p) for p in preds) if count else None
            if count and isinstance(node, SYNAPTIC):
                self._count(name, node, act_in, drop_in, res, T, B)
            if playback and name in playback and isinstance(node, NEURONS + (X.SynapseGate,)):
                y, drop_out = self._playback(node, inp, playback[name], drop_in, count)
            elif self.plan is not None and isinstance(node, FIXED_OWN):
                y, drop_out = self._fixed(name, node, inp, res), None
            else:
                y, drop_out = self._step(name, node, inp, drop_in, clock, count)
            if drop_out is not None:
                dropped[name] = drop_out
            if isinstance(node, NEURONS):
                res.neuron_updates[name] = T * B * int(np.prod(node_shape(node)))
                if count:
                    acts[name] = counting.spike_counts(y)
                    res.spike_counts[name] = int(acts[name].sum().item())
                if name in record:
                    res.spikes[name] = y.bool().cpu()
            if count and name in self._needs_activity and name not in acts:
                acts[name] = self._activity(name, node, y, act_in, drop_out, drop_in)
            for p in preds:
                remaining[p] -= 1
                if remaining[p] == 0 and p != self.output:
                    for held in (outs, dropped, acts):
                        held.pop(p, None)
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

    def _activity(self, name, node, y, act_in, drop_out, drop_in) -> torch.Tensor:
        """Events per element of a node's output, from its inputs' where the node only moves them."""
        if act_in is not None:
            if isinstance(node, X.Route):
                return counting.route_counts(act_in, self._route(name, node)[1])
            if isinstance(node, nir.Flatten):
                return act_in.reshape(node_shape(node))
            if isinstance(node, X.SynapseGate):
                gone = drop_out if drop_in is None else drop_out - drop_in
                return act_in - gone
        return counting.nonzero_counts(y)

    def _count(self, name, node, act_in, drop_in, res: Result, T: int, B: int) -> None:
        fan = self.fanout(name)
        if any(p in self._analog for p in self.preds[name]):
            res.host_macs[name] = counting.host_macs(node, fan, T, B)
            return
        res.synaptic_events[name] = counting.events(act_in, fan)
        if drop_in is not None:
            res.gated_events[name] = counting.events(drop_in, fan)

    def _route(self, name, node: X.Route):
        """(route plan, full index with -1 for routing count vectors)."""
        return self.cached(name, "route", lambda: (
            ops.route_plan(node, self.device), torch.as_tensor(node.index, dtype=torch.int64, device=self.device)))

    def _step(self, name, node, x, drop, clock, count):
        """Output (T, B, *shape) of one node, and the routed count of gated-out spikes."""
        if isinstance(node, nir.Output):
            return x, None
        if isinstance(node, X.Route):
            plan, index = self._route(name, node)
            return ops.route(x, plan), (None if drop is None else counting.route_counts(drop, index))
        if isinstance(node, nir.Flatten):
            out = node_shape(node)
            return x.reshape(*x.shape[:2], *out), (None if drop is None else drop.reshape(out))
        if isinstance(node, nir.Delay):
            return ops.delay(x, delay_steps(name, node)), drop
        if isinstance(node, X.SynapseGate):
            y, gone = self._gate(name, node, x, clock)
            if not count:
                return y, None
            return y, gone if drop is None else drop + gone
        if isinstance(node, SYNAPTIC):
            return ops.synapse(node, x, lambda key, value: self.param(name, key, value)), None
        if isinstance(node, X.HostSoftmax):
            return ops.softmax(node, x, self.param(name, "b", node.bias)), None
        if isinstance(node, X.HostLayerNorm):
            return ops.layer_norm(node, x, self.param(name, "w", node.weight), self.param(name, "b", node.bias)), None
        if isinstance(node, NEURONS):
            n = self._neuron(name, node)
            return neurons.scan(n.step, n.params, n.init(n.params, x[0]), n.drive(n.params, x))[0], None
        raise AssertionError(type(node))

    def _neuron(self, name, node) -> neurons.Neuron:
        return self.cached(name, "neuron", lambda: neurons.for_node(node, self.tensor))

    def _fixed(self, name, node, x, res: Result) -> torch.Tensor:
        """Integer semantics of synapses, neurons, host ops and output (values exact in float64)."""
        plan = self.plan
        if isinstance(node, nir.Output):
            return x * plan.output_unit + self.param(name, "ob", plan.output_bias)
        if isinstance(node, NEURONS):
            q = plan.neurons[name]
            if q.current_bias is not None:                 # a synaptic bias into a remembering current
                x = x + self.param(name, "qcb", q.current_bias)
            sat = fixed.Saturation(**res.saturation.get(name, {}))
            y = fixed.neuron(q, x, self.param(name, "qb", q.bias), self.param(name, "qv0", q.v_init), sat)
            res.saturation[name] = asdict(sat)
            return y
        if isinstance(node, X.HostSoftmax):
            return fixed.softmax(node, x, plan.scale[self.preds[name][0]])
        if isinstance(node, X.HostLayerNorm):
            return fixed.layer_norm(node, x, plan.in_scale(name))
        if isinstance(node, POOLS) and plan.placement[name].kind == "synapse":
            return fixed.pool_sum(node, x)
        q = plan.synapses[name]
        return fixed.synapse(node, x, self.param(name, "wq", q.weight), q)

    def _gate(self, name, node, x, clock) -> tuple[torch.Tensor, torch.Tensor]:
        """Gated x and the per-element count of dropped spikes. The stream is drawn only where
        x != 0 (elsewhere the gate has nothing to drop), which is exact and cheap for sparse spikes."""
        imix, key = self.cached(name, "gate", lambda: (
            stream.mix32(torch.arange(int(np.prod(node.shape)), device=self.device, dtype=torch.int64)),
            stream.node_key(int(node.seed), int(node.stream))))
        samples, steps = clock
        T, B = x.shape[:2]
        flat = x.reshape(T, B, -1)
        skey = stream.step_key(key, samples[None, :], steps[:, None])          # (T, B)
        t, b, i = flat.nonzero(as_tuple=True)
        drop = ~stream.keep_mask(skey[t, b], imix[i], float(node.p))
        y = flat.clone()
        y[t[drop], b[drop], i[drop]] = 0
        dropped = torch.zeros(flat.shape[-1], dtype=torch.float64, device=self.device)
        # a gate on a residual sum drops counts, not single spikes: weigh by the value
        dropped.index_add_(0, i[drop], flat[t[drop], b[drop], i[drop]].to(torch.float64))
        return y.reshape(x.shape), dropped.reshape(x.shape[2:])

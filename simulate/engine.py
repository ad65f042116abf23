"""Reference simulator: runs a NIR graph (stock + our extension nodes) for a number of steps on a
batch of samples.

Multi-step, layer by layer, in chunks of time: every node processes the K steps of a chunk at
once, tensors are (K, B, *shape), and carries its state into the next chunk; linear ops are one
batched matmul/conv over K*B (ops.py), and only neuron state is scanned over time (neurons.py and
its fused kernels; fixed.py in fixed point). Semantics follow docs/nir-extensions.md and
docs/time-and-randomness.md (zero-delay edges, fan-in summed, chunks). Synaptic events are counted
exactly at every synaptic node (counting.py).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import nir
import numpy as np
import torch

from ..errors import UserError
from ..ir import nodes as X
from ..ir import stream
from ..ir.cuba import leaky
from ..ir.topology import (FLOAT_ONLY, INTEGRATORS, NEURONS, POOLS, SUPPORTED, SYNAPTIC, Topology,
                           check_supported, delay_steps,
                           node_shape)
from ..loihi.plan import FixedPlan
from ..machine import available_memory, check_fits, keep_freed_memory
from ..loihi.quantize import quantize_input
from . import counting, fixed, kernels, neurons, ops

# Nodes whose arithmetic differs in fixed point (the others only move or gate values).
FIXED_OWN = SYNAPTIC + NEURONS + X.HOST_OPS + (nir.Output,)
# Nodes whose output is spikes, counted and recorded as a neuron's.
SPIKERS = NEURONS + (nir.Threshold,)
# Nodes whose output at a step depends only on their input at that step: fed a static input (the
# image, direct input), they are computed for one step and the result is shared by all.
TIME_FREE = tuple(t for t in SYNAPTIC if t is not X.SpikeProduct) + (nir.Flatten, X.Route)


# The count fields of a Result (and an Evaluation), each node -> total.
COUNTS = ("spike_counts", "synaptic_events", "gated_events", "host_macs", "neuron_updates", "spike_messages",
          "synaptic_messages")


@dataclass
class Result:
    logits: torch.Tensor                    # (T, B, K) per-step output
    spikes: dict = field(default_factory=dict)        # node -> (T, B, *shape) bool (uint8 payloads), if recorded
    spike_counts: dict = field(default_factory=dict)  # node -> total spikes (all steps, samples; payloads)
    synaptic_events: dict = field(default_factory=dict)  # synaptic node -> delivered events (payload-weighted)
    gated_events: dict = field(default_factory=dict)  # synaptic node -> events removed by gating
    host_macs: dict = field(default_factory=dict)     # node -> MACs done on the host / analog input
    neuron_updates: dict = field(default_factory=dict)
    saturation: dict = field(default_factory=dict)    # fixed point: neuron -> counts of clipped v
    spike_messages: dict = field(default_factory=dict)     # node -> spikes sent (graded: messages, any payload)
    synaptic_messages: dict = field(default_factory=dict)  # synaptic node -> delivered messages
    at: dict = field(default_factory=dict)   # step t of `marks` -> {count field: its dict after step t}

    def predictions_by_step(self) -> torch.Tensor:
        """(T, B) argmax of the logits summed over steps 1..t, for every t."""
        return self.logits.cumsum(0).argmax(-1)


@dataclass(frozen=True)
class Clock:
    """Where a chunk of time sits: its samples (global indices), its 1-based step numbers and
    the run's total steps (the gate stream and cumulative nodes key on these, not on the chunk)."""
    samples: torch.Tensor
    steps: torch.Tensor
    total: int


@dataclass
class _Held:
    """What a chunk keeps of each node until its last consumer has run: output (k, B, ...),
    spikes dropped by gates upstream and events per element (both summed over steps and samples)."""
    outs: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)
    acts: dict = field(default_factory=dict)
    recorded: dict = field(default_factory=dict)
    static: set = field(default_factory=set)       # outputs equal at every step: computed once

    def keep(self, name, y, drop, act, rec) -> None:
        self.outs[name] = y
        if drop is not None:
            self.dropped[name] = drop
        if act is not None:
            self.acts[name] = act
        if rec is not None:
            self.recorded[name] = rec

    def forget(self, name) -> None:
        for d in (self.outs, self.dropped, self.acts):
            d.pop(name, None)


def _add(counts: dict, key: str, value) -> None:
    counts[key] = counts.get(key, 0) + value


def carried_size(graph: nir.NIRGraph, order) -> int:
    """Values per sample that nodes carry between chunks: neuron state (u and v), delay lines,
    cumulative products' running operands (an upper bound, for the memory check)."""
    n = 0
    for name in order:
        node = graph.nodes[name]
        if isinstance(node, NEURONS):
            n += 2 * int(np.prod(node_shape(node)))
        elif isinstance(node, INTEGRATORS):
            n += int(np.prod(node_shape(node)))
        elif isinstance(node, nir.Delay):
            n += delay_steps(name, node) * int(np.prod(node_shape(node)))
        elif isinstance(node, (X.SpikeProduct, X.HostLayerNorm)):
            n += 2 * int(np.prod(node_shape(node, "input"))) + 2 * int(np.prod(node_shape(node)))
    return n


class Simulator:
    """Runs a graph in floating point (NIR semantics), or with `fixed_point=True` in the integer
    arithmetic of docs/fixed-point.md (the Lava backend's bit-accurate mode)."""

    def __init__(self, graph: nir.NIRGraph, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, fixed_point: bool = False, chunk: int | None = None):
        if fixed_point:
            check_supported(graph, SUPPORTED, "the reference simulator in fixed point")
        else:
            check_supported(graph, SUPPORTED + FLOAT_ONLY, "the reference simulator")
        self.topo = topo = Topology(graph)
        # fixed point: integers held exactly in float64 (CUDA has no integer matmul)
        self.plan = FixedPlan(graph, topo) if fixed_point else None
        if fixed_point:
            dtype = torch.float64
        self.graph, self.device, self.dtype = graph, torch.device(device), dtype
        if self.device.type == "cpu":
            keep_freed_memory()                      # no fresh page faults for every large tensor
        self.order, self.preds, self.consumers = topo.order, topo.preds, topo.consumers
        self.input, self.output = topo.input, topo.output
        self.input_shape = node_shape(graph.nodes[self.input], "input")
        self._cache: dict[str, dict] = {}
        self._analog = counting.analog_sources(topo)
        self._needs_activity = counting.activity_needed(topo, self._analog)
        self._graded = any(getattr(graph.nodes[n], "levels", 1) > 1 for n in self.order)   # complex counts
        sizes = [int(np.prod(node_shape(graph.nodes[n]))) for n in self.order]
        self._live = sum(sizes) + 4 * max(sizes)    # per step and sample: every node's output held, and temporaries
        self._state = carried_size(graph, self.order)
        if chunk is not None and chunk < 1:
            raise UserError("the chunk must be >= 1 steps")
        self.chunk = chunk                          # steps per chunk of time; None: from memory

    def cached(self, name: str, key, make):
        """A per-node value built once (parameters as tensors, plans, fan-outs)."""
        cache = self._cache.setdefault(name, {})
        if key not in cache:
            cache[key] = make()
        return cache[key]

    def tensor(self, value) -> torch.Tensor:
        return torch.as_tensor(np.array(value), dtype=self.dtype, device=self.device)

    def param(self, name: str, key, value) -> torch.Tensor:
        """A node's array as a tensor, made once; `value` may be a function that makes it."""
        return self.cached(name, key, lambda: self.tensor(value() if callable(value) else value))

    def fanout(self, name: str) -> torch.Tensor:
        return self.cached(name, "fanout", lambda: counting.fanout(self.graph.nodes[name], self.device))

    # -- execution ---------------------------------------------------------------------------
    def chunk_steps(self, steps: int, batch: int) -> int:
        """Steps per chunk of time: `self.chunk` if set, else as many as fit in half the memory
        available now (all `steps` when they fit, as for most runs); an error when not one fits."""
        width = torch.finfo(self.dtype).bits // 8
        per_step = self._live * batch * width
        held = 2 * self._state * batch * width       # carried between chunks
        k = self.chunk
        if k is None:
            k = max(1, min(steps, (available_memory(self.device) // 2 - held) // per_step))
        k = min(k, steps)
        check_fits(per_step * k + held, f"simulating {batch} samples x {k} steps at a time",
                   "--chunk or the samples per batch (--batch-size; -n where a command runs one batch)" if self.chunk
                   else "the samples per batch (--batch-size; -n where a command runs one batch)", self.device)
        return k

    @torch.no_grad()
    def run(self, x: torch.Tensor, steps: int, first_sample: int = 0, record: set | None = None,
            count: bool = True, playback: dict | None = None, marks: tuple = ()) -> Result:
        """Run `steps` steps on x (B, *input_shape), the same input every step, or (B, steps,
        *input_shape), one frame per step (event streams); x[i] is sample `first_sample + i`.

        Time runs in chunks of `chunk_steps` steps, every node's state carried from one chunk to
        the next: memory depends on the chunk, not on `steps`, and the result is the same.
        `playback` (node -> (T, B, *shape) 0/1 tensor) replaces the outputs of those neurons and
        gates by recorded ones (another backend's), so that the event counts are that run's.
        `marks`: steps t after which the counts so far are kept in `Result.at` (a chunk ends
        there): the counts of a t-step run, since no step depends on later ones."""
        varying = x.ndim == len(self.input_shape) + 2
        if tuple(x.shape[2 if varying else 1:]) != self.input_shape:
            raise UserError(f"input shape {tuple(x.shape[1:])} does not match the graph's Input "
                            f"{self.input_shape}")
        if steps < 1:
            raise UserError("the number of steps must be >= 1")
        if varying and x.shape[1] != steps:
            raise UserError(f"the inputs have {x.shape[1]} steps, the run {steps}")
        T, B = steps, x.shape[0]
        out = int(np.prod(node_shape(self.graph.nodes[self.output], "input")))
        check_fits(T * (B * out * torch.finfo(self.dtype).bits // 8 + 64), f"the outputs of {T} steps x {B} samples",
                   "-T", self.device)           # kept for every step (accuracy at every t)
        K = self.chunk_steps(T, B)
        if self.plan is not None:
            x = torch.as_tensor(quantize_input(x.cpu().numpy()), dtype=torch.float64)
        x = x.to(self.device, self.dtype)
        res = Result(logits=torch.empty(0))
        samples = torch.arange(first_sample, first_sample + B, device=self.device, dtype=torch.int64)
        state: dict[str, object] = {}              # node -> what it carries into the next chunk
        logits, spikes = [], {}
        ends = sorted(set(range(K, T, K)) | {int(m) for m in marks if 1 <= m < T} | {T})
        for t0, t1 in zip([0] + ends[:-1], ends):
            clock = Clock(samples, torch.arange(t0 + 1, t1 + 1, device=self.device, dtype=torch.int64), T)
            frames = x[:, t0:t1].transpose(0, 1) if varying else None
            part = None if playback is None else {n: v[t0:t1] for n, v in playback.items()}
            out, recorded = self._chunk(x, frames, clock, state, res, record or set(), count, part)
            if t1 in marks:
                res.at[t1] = {f: dict(getattr(res, f)) for f in COUNTS}
            logits.append(out.reshape(out.shape[0], B, -1).to(torch.float64).cpu())
            for n, v in recorded.items():
                spikes.setdefault(n, []).append(v)
        res.logits = torch.cat(logits)
        res.spikes = {k: torch.cat(v) for k, v in spikes.items()}
        return res

    def _chunk(self, x, frames, clock: "Clock", state: dict, res: Result, record: set, count: bool,
               playback: dict | None) -> tuple[torch.Tensor, dict]:
        """The graph over one chunk of steps: the Output's values (k, B, ...) and the chunk's
        recorded spikes; counts are added to `res`. The input is `frames` (k, B, ...) when it
        changes every step, else x (B, ...). Loops (recurrent groups) run one step at a time."""
        k, B = len(clock.steps), x.shape[0]
        held = _Held()
        remaining = Counter(p for n in self.order for p in self.topo.forward_preds[n])
        for item in self.topo.items:
            if isinstance(item, tuple):
                self._loop(item, held, clock, state, res, record, count, playback, B)
            elif isinstance(self.graph.nodes[item], nir.Input):
                held.outs[item] = frames if frames is not None else x.unsqueeze(0).expand(k, *x.shape)
                if frames is None:
                    held.static.add(item)
                continue
            else:
                preds = self.preds[item]
                once = isinstance(self.graph.nodes[item], TIME_FREE) and all(p in held.static for p in preds)
                ins = [(held.outs[p][:1] if once else held.outs[p], held.dropped.get(p), held.acts.get(p))
                       for p in preds]
                y, drop, act, rec = self._node(item, ins, clock, state, res, record, count, playback, B)
                if once:
                    y = ops.dense(y)
                    y = y.expand(k, *y.shape[1:])
                    held.static.add(item)
                held.keep(item, y, drop, act, rec)
            for n in item if isinstance(item, tuple) else (item,):
                for p in self.topo.forward_preds[n]:
                    remaining[p] -= 1
                    if remaining[p] == 0 and p != self.output:
                        held.forget(p)
        return held.outs[self.output], held.recorded

    def _node(self, name, ins: list, clock, state, res: Result, record: set, count: bool, playback, B: int):
        """One node over the steps of `clock`, from its inputs' (output, dropped, events) in
        fan-in order: (output, dropped spikes, events per element, recorded spikes)."""
        node = self.graph.nodes[name]
        k = len(clock.steps)
        inp = ops.fan_in([y_p for y_p, _, _ in ins])
        drop_in = counting.sum_counts(d for _, d, _ in ins) if count else None
        act_in = counting.sum_counts(a for _, _, a in ins) if count else None
        if count and isinstance(node, SYNAPTIC):
            self._count(name, node, act_in, drop_in, res, k, B)
        if playback and name in playback and isinstance(node, NEURONS + (X.SynapseGate,)):
            y, drop_out = self._playback(node, inp, playback[name], drop_in, count)
        elif self.plan is not None and isinstance(node, FIXED_OWN):
            y, drop_out = self._fixed(name, node, inp, res, clock, state), None
        else:
            y, drop_out = self._step(name, node, inp, drop_in, clock, state, count)
        act, rec = None, None
        if isinstance(node, SPIKERS):
            _add(res.neuron_updates, name, k * B * int(np.prod(node_shape(node))))
            if count:
                act = counting.spike_counts(y, self._graded)
                spikes, messages = counting.split(act.sum().item())
                _add(res.spike_counts, name, spikes)
                _add(res.spike_messages, name, messages)
            if name in record:
                rec = y.to(torch.uint8).cpu() if getattr(node, "levels", 1) > 1 else y.bool().cpu()
        if count and act is None and name in self._needs_activity:
            act = self._activity(name, node, y, act_in, drop_out, drop_in)
        return y, drop_out, act, rec

    def _loop(self, group: tuple, held: "_Held", clock, state, res, record, count, playback, B: int) -> None:
        """A recurrent group, one step at a time: inputs from outside at that step, recurrent
        edges' sources as they were one step before (state ("loop", source); 0 at step 1)."""
        k = len(clock.steps)
        per_step: dict[str, list] = {n: [] for n in group}
        for j in range(k):
            tick = Clock(clock.samples, clock.steps[j:j + 1], clock.total)
            part = None if playback is None else {n: v[j:j + 1] for n, v in playback.items()}
            now: dict[str, tuple] = {}
            for name in group:
                ins = []
                for p in self.preds[name]:
                    if (p, name) in self.topo.back:
                        ins.append(self._previous(p, state, B))
                    elif p in now:
                        ins.append(now[p])
                    else:                          # static outputs are expanded over the chunk too
                        ins.append((held.outs[p][j:j + 1], None, None))
                y, drop, act, rec = self._node(name, ins, tick, state, res, record, count, part, B)
                now[name] = (y, drop, act)
                per_step[name].append((y, drop, act, rec))
            for a, b in self.topo.back:
                if a in now:
                    state[("loop", a)] = now[a]
        for name, steps in per_step.items():
            y = torch.cat([ops.dense(v[0]) for v in steps])
            drop = counting.sum_counts(v[1] for v in steps)
            act = counting.sum_counts(v[2] for v in steps)
            rec = torch.cat([v[3] for v in steps]) if steps[0][3] is not None else None
            held.keep(name, y, drop, act, rec)

    def _previous(self, name: str, state: dict, B: int) -> tuple:
        """(output, dropped, events) of `name` one step ago, as a recurrent edge delivers it; at
        step 1 what it makes of zero inputs: 0, or a synapse's bias (as Lava and fixed point,
        where the bias is the target neuron's, and snnTorch's recurrent layers do)."""
        if ("loop", name) in state:
            return state[("loop", name)]
        node = self.graph.nodes[name]
        if isinstance(node, SYNAPTIC) and not isinstance(node, X.SpikeProduct) and self.plan is None:
            zero = torch.zeros((1, B) + node_shape(node, "input"), dtype=self.dtype, device=self.device)
            return ops.synapse(node, zero, lambda key, value: self.param(name, key, value)), None, None
        return torch.zeros((1, B) + node_shape(node), dtype=self.dtype, device=self.device), None, None

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
        dropped = (x * (rec == 0)).reshape(T * B, -1)
        gone = dropped.double().sum(0).reshape(x.shape[2:])
        if self._graded:
            gone = torch.complex(gone, torch.count_nonzero(dropped, dim=0).double().reshape(x.shape[2:]))
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
        return counting.nonzero_counts(ops.dense(y), self._graded)

    def _count(self, name, node, act_in, drop_in, res: Result, T: int, B: int) -> None:
        fan = self.fanout(name)
        if any(p in self._analog for p in self.preds[name]):
            _add(res.host_macs, name, counting.host_macs(node, fan, T, B))
            return
        events, messages = counting.events(act_in, fan)
        _add(res.synaptic_events, name, events)
        _add(res.synaptic_messages, name, messages)
        if drop_in is not None:
            _add(res.gated_events, name, counting.events(drop_in, fan)[0])

    def _route(self, name, node: X.Route):
        """(route plan, index for routing count vectors)."""
        return self.cached(name, "route", lambda: (
            ops.RoutePlan(node, node_shape(node, "input"), self.device),
            counting.count_index(node.index, int(np.prod(node_shape(node, "input"))), self.device)))

    def _step(self, name, node, x, drop, clock, state, count):
        """Output (k, B, *shape) of one node over a chunk, and the routed count of gated-out
        spikes; `state[name]` is what the node carries from chunk to chunk."""
        if isinstance(node, nir.Output):
            return x, None
        if isinstance(node, X.Route):
            plan, index = self._route(name, node)
            return ops.route(x, plan), (None if drop is None else counting.route_counts(drop, index))
        if isinstance(node, nir.Flatten):
            out = node_shape(node)
            return x.reshape(*x.shape[:2], *out), (None if drop is None else drop.reshape(out))
        if isinstance(node, nir.Delay):
            y, state[name] = ops.delay(x, delay_steps(name, node), state.get(name))
            return y, drop
        if isinstance(node, X.SynapseGate):
            y, gone = self._gate(name, node, x, clock)
            if not count:
                return y, None
            return y, gone if drop is None else drop + gone
        if isinstance(node, X.SpikeProduct):
            y, state[name] = ops.product(node, x, clock.steps, clock.total, state.get(name))
            return y, None
        if isinstance(node, SYNAPTIC):
            return ops.synapse(node, x, lambda key, value: self.param(name, key, value)), None
        if isinstance(node, X.HostSoftmax):
            return ops.softmax(node, x, self.param(name, "b", node.bias)), None
        if isinstance(node, X.HostLayerNorm):
            y, state[name] = ops.layer_norm(node, x, self.param(name, "w", node.weight),
                                            self.param(name, "b", node.bias), clock.steps, state.get(name))
            return y, None
        if isinstance(node, nir.Threshold):
            return ops.threshold(x, self.cached(name, "th", lambda: neurons.strict(node.threshold, self.tensor))), None
        if isinstance(node, INTEGRATORS):
            keep, gain, bias = self.cached(name, "leaky", lambda: self._leaky(node))
            y, state[name] = ops.leaky_integrate(x, state.get(name), keep, gain, bias)
            return y, None
        if isinstance(node, NEURONS):
            n = self._neuron(name, node)
            v = state.get(name)
            y, state[name] = n.run(n.init(n.params, x[0]) if v is None else v, x)
            return y, None
        raise AssertionError(type(node))

    def _leaky(self, node) -> tuple:
        """(keep, gain, bias) of a stock I or LI (ops.leaky_integrate)."""
        return tuple(self.tensor(a) for a in leaky(node))

    def _neuron(self, name, node) -> neurons.Neuron:
        return self.cached(name, "neuron", lambda: neurons.for_node(node, self.tensor))

    def _fixed(self, name, node, x, res: Result, clock, state) -> torch.Tensor:
        """Integer semantics of synapses, neurons, host ops and output (values exact in float64)."""
        plan = self.plan
        if isinstance(node, nir.Output):
            return x * plan.output_unit + self.param(name, "ob", plan.output_bias)
        if isinstance(node, NEURONS):
            q = plan.neurons[name]
            if q.current_bias is not None:                 # a synaptic bias into a remembering current
                x = x + self.param(name, "qcb", q.current_bias)
            sat = fixed.Saturation(**res.saturation.get(name, {}))
            y, state[name] = fixed.neuron(q, x, self.param(name, "qb", q.bias), self.param(name, "qv0", q.v_init),
                                          sat, state.get(name))
            res.saturation[name] = asdict(sat)
            return y
        if isinstance(node, X.HostSoftmax):
            return fixed.softmax(node, x, plan.scale[self.preds[name][0]])
        if isinstance(node, X.HostLayerNorm):
            y, state[name] = fixed.layer_norm(node, x, plan.in_scale(name), clock.steps, state.get(name))
            return y
        if isinstance(node, POOLS) and plan.placement[name].kind == "synapse":
            return fixed.pool_sum(node, x)
        q = plan.synapses[name]
        if isinstance(node, X.SpikeProduct):
            y, state[name] = fixed.product(node, x, float(q.weight), q.exp, clock.steps, state.get(name))
            return y
        return fixed.synapse(node, x, self.param(name, "wq", q.weight), q)

    def _gate(self, name, node, x, clock) -> tuple[torch.Tensor, torch.Tensor]:
        """Gated x and the per-element count of dropped spikes. The stream is drawn only where
        x != 0 (elsewhere the gate has nothing to drop), which is exact and cheap for sparse spikes."""
        imix, key = self.cached(name, "gate", lambda: (
            stream.mix32(torch.arange(int(np.prod(node.shape)), device=self.device, dtype=torch.int64)),
            stream.node_key(int(node.seed), int(node.stream))))
        samples, steps = clock.samples, clock.steps
        T, B = x.shape[:2]
        skey = stream.step_key(key, samples[None, :], steps[:, None])          # (T, B)
        if kernels.usable(x):
            order = kernels.layout(x)
            imix_m = self.cached(name, ("gate", order), lambda: torch.from_numpy(
                kernels.in_order(imix.cpu().numpy(), x.shape[2:], order)))
            y, dropped, number = kernels.gate(x, skey, imix_m, float(node.p))
            return y, (torch.complex(dropped, number) if self._graded else dropped)
        flat = x.reshape(T, B, -1)
        t, b, i = flat.nonzero(as_tuple=True)
        drop = ~stream.keep_mask(skey[t, b], imix[i], float(node.p))
        y = flat.clone()
        y[t[drop], b[drop], i[drop]] = 0
        dropped = torch.zeros(flat.shape[-1], dtype=torch.float64, device=self.device)
        # a gate on a residual sum drops counts, not single spikes: weigh by the value
        dropped.index_add_(0, i[drop], flat[t[drop], b[drop], i[drop]].to(torch.float64))
        if self._graded:
            number = torch.zeros_like(dropped).index_add_(0, i[drop], torch.ones_like(dropped[i[drop]]))
            dropped = torch.complex(dropped, number)
        return y.reshape(x.shape), dropped.reshape(x.shape[2:])

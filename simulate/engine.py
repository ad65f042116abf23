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

import nir
import numpy as np
import torch

from ..errors import UserError
from ..ir import nodes as X
from ..ir.topology import FLOAT_ONLY, GRADED_MESSAGES, NEURONS, SUPPORTED, SYNAPTIC, Topology, check_supported, node_shape
from ..loihi.plan import FixedPlan
from ..machine import available_memory, check_fits, keep_freed_memory
from ..loihi.quantize import quantize_input
from . import counting, ops
from .result import COUNTS, Clock, Held, Result, add, carried_size  # noqa: F401  (COUNTS, Result: re-exported)
from .steps import NodeSteps

# Nodes whose arithmetic differs in fixed point (the others only move or gate values).
FIXED_OWN = SYNAPTIC + NEURONS + X.HOST_OPS + (nir.Output,)
# Nodes whose output is spikes, counted and recorded as a neuron's.
SPIKERS = NEURONS + (nir.Threshold,)
# Nodes whose output at a step depends only on their input at that step: fed a static input (the
# image, direct input), they are computed for one step and the result is shared by all.
TIME_FREE = tuple(t for t in SYNAPTIC if t is not X.SpikeProduct) + (nir.Flatten, X.Route)


class Simulator(NodeSteps):
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
            count: bool = True, playback=None, marks: tuple = ()) -> Result:
        """Run `steps` steps on x (B, *input_shape), the same input every step, or (B, steps,
        *input_shape), one frame per step (event streams); x[i] is sample `first_sample + i`.

        Time runs in chunks of `chunk_steps` steps, every node's state carried from one chunk to
        the next: memory depends on the chunk, not on `steps`, and the result is the same.
        `playback` (compare/playback.py) replaces the outputs of some neurons and gates by
        recorded ones (another backend's), so that the event counts are that run's.
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
            part = None if playback is None else playback.window(t0, t1)
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
               playback) -> tuple[torch.Tensor, dict]:
        """The graph over one chunk of steps: the Output's values (k, B, ...) and the chunk's
        recorded spikes; counts are added to `res`. The input is `frames` (k, B, ...) when it
        changes every step, else x (B, ...). Loops (recurrent groups) run one step at a time."""
        k, B = len(clock.steps), x.shape[0]
        held = Held()
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
            if act_in is None:              # a recurrent input at step 1 (no counts yet): what arrives
                act_in = counting.nonzero_counts(ops.dense(inp), self._graded)
            self._count(name, node, act_in, drop_in, res, k, B)
        if playback is not None and name in playback and isinstance(node, NEURONS + (X.SynapseGate,)):
            y, drop_out = playback.output(name, node, inp, drop_in, count)
        elif self.plan is not None and isinstance(node, FIXED_OWN):
            y, drop_out = self._fixed(name, node, inp, res, clock, state), None
        else:
            y, drop_out = self._step(name, node, inp, drop_in, clock, state, count)
        act, rec = None, None
        if isinstance(node, SPIKERS):
            add(res.neuron_updates, name, k * B * int(np.prod(node_shape(node))))
            if count:                                     # a sigma-delta message counts once, any value
                act = counting.nonzero_counts(y, self._graded) if isinstance(node, GRADED_MESSAGES) else \
                    counting.spike_counts(y, self._graded)
                spikes, messages = counting.split(act.sum().item())
                add(res.spike_counts, name, spikes)
                add(res.spike_messages, name, messages)
            if name in record:
                rec = y.double().cpu() if isinstance(node, GRADED_MESSAGES) else \
                    y.to(torch.uint8).cpu() if getattr(node, "levels", 1) > 1 else y.bool().cpu()
        if count and act is None and name in self._needs_activity:
            act = self._activity(name, node, y, act_in, drop_out, drop_in)
        return y, drop_out, act, rec

    def _loop(self, group: tuple, held: Held, clock, state, res, record, count, playback, B: int) -> None:
        """A recurrent group, one step at a time: inputs from outside at that step, recurrent
        edges' sources as they were one step before (state ("loop", source); 0 at step 1)."""
        k = len(clock.steps)
        per_step: dict[str, list] = {n: [] for n in group}
        for j in range(k):
            tick = Clock(clock.samples, clock.steps[j:j + 1], clock.total)
            part = None if playback is None else playback.window(j, j + 1)
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
            add(res.host_macs, name, counting.host_macs(node, fan, T, B))
            return
        events, messages = counting.events(act_in, fan)
        add(res.synaptic_events, name, events)
        add(res.synaptic_messages, name, messages)
        if drop_in is not None:
            add(res.gated_events, name, counting.events(drop_in, fan)[0])

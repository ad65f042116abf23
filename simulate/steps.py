"""What one node does over a chunk of steps, in floating point (`_step`) and in Loihi's fixed
point (`_fixed`), and the gates' random stream (`_gate`): the per-node semantics of
docs/nir-extensions.md, mixed into the Simulator (engine.py), which schedules the nodes, counts
events and carries state between chunks."""
from __future__ import annotations

from dataclasses import asdict

import nir
import numpy as np
import torch

from ..ir import nodes as X
from ..ir import stream
from ..ir.cuba import leaky
from ..ir.topology import INTEGRATORS, NEURONS, POOLS, SYNAPTIC, delays, node_shape
from . import counting, fixed, kernels, neurons, ops
from .result import Result


class NodeSteps:
    """Per-node semantics; the Simulator provides graph, plan, preds, device, dtype, cached,
    param, tensor and _graded."""

    def _delays(self, name, node: nir.Delay):
        """One int when every element waits alike, else the steps per element (a tensor)."""
        d = delays(name, node)
        one = np.unique(d)
        return int(one[0]) if one.size == 1 else torch.as_tensor(d, device=self.device)

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
            y, state[name] = ops.delay(x, self.cached(name, "delay", lambda: self._delays(name, node)),
                                       state.get(name))
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
        if isinstance(node, X.Relay):                       # a partial sum sent on as it is
            return x, None
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
        if isinstance(node, X.Relay):                       # the integer sum, as a 24-bit payload
            sat = fixed.Saturation(**res.saturation.get(name, {}))
            y = fixed.payload(x, sat)
            res.saturation[name] = asdict(sat)
            return y
        if isinstance(node, X.SigmaDelta):
            q = plan.neurons[name]
            y, state[name] = fixed.sigma_delta(q, x, self.param(name, "sdb", q.bias), state.get(name))
            return y
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

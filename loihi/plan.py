"""Loihi-style fixed point for a NIR graph: the integers both backends run (docs/fixed-point.md).

The plan is computed once from the graph, so the reference simulator and the Lava backend start
from identical integers; they implement the dynamics (accumulate, shift, integrate, compare)
independently, which is what the parity check tests. Widths and rounding: widths.py, quantize.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from ..errors import UserError
from ..ir import nodes as X
from ..ir.cuba import LEAKY, cuba
from ..ir.topology import (NEURONS, POOLS, ROUTING, SUPPORTED, SYNAPTIC, Topology, check_supported, node_shape,
                           one_value, pool_gain)
from .placement import Placement, moved_biases, placements
from .quantize import quantize_bias, quantize_weights
from .widths import (ACT_SHIFT, CUBA_SCALE, DECAY_ONE, INPUT_BITS, LAYERNORM_BITS, LEVELS_MAX, PAYLOAD_BITS,
                     SD_SHIFT, SD_STATE_BITS, SOFTMAX_BITS, V_LIMIT, VTH_MANT,
                     WEIGHT_MAX_MIXED)



@dataclass
class SynapseQ:
    """A synaptic node's integers: out = shift(sum(weight * in), exp), in its target's units."""
    weight: np.ndarray        # int64, the node's weight shape (products: a scalar)
    exp: int
    sign: str                 # Lava's sign mode of the integer weights
    unit: float               # float value of one output unit
    in_scale: float           # float value of one input unit (products: of a times b)
    clipped: int              # weights clipped at the mantissa limit or exponent bound
    zeroed: int               # non-zero weights that round to 0
    rel_error: float          # RMS weight error / max |weight|


@dataclass
class NeuronQ:
    """An IF neuron's integers (v in units of unit / 2^ACT_SHIFT)."""
    unit: float               # float value of one synaptic input unit = threshold / VTH_MANT
    vth: int                  # threshold mantissa; the membrane compares with vth << ACT_SHIFT
    v_init: np.ndarray        # int64, broadcast to the neuron's shape
    bias_mant: np.ndarray     # int64, 13-bit
    bias_exp: np.ndarray      # int64, 0..7
    bias_clipped: int
    subtract: bool            # ResetSubIF: v >= th, v -= th; stock IF / LIF / CubaLIF: v > th, v = 0
    du: int = DECAY_ONE - 1   # Lava's du register: u decays by (du + 1) / 4096 (4095: u = input)
    dv: int = 0               # Lava's dv register: v decays by dv / 4096
    gain: float = 1.0         # float input-to-voltage gain of one step (stock neurons' r, w_in)
    own_bias: np.ndarray | float = 0.0   # the node's own constant drive, in voltage terms (float)
    current_bias: np.ndarray | None = None  # int64: synaptic biases added to the input every step,
    #                                         where the current remembers (du < 4095); else in `bias`
    levels: int = 1           # ResetSubIF's M: the spike carries k in 0..M, k thresholds subtracted

    @property
    def remembers(self) -> bool:
        """The current decays slower than one step, so a constant input is not a constant voltage."""
        return self.du < DECAY_ONE - 1

    @property
    def threshold(self) -> int:
        return self.vth << ACT_SHIFT

    @property
    def bias(self) -> np.ndarray:
        return self.bias_mant << self.bias_exp


SD_STATE, SD_MESSAGE = 2.0 ** -SD_STATE_BITS, 2.0 ** -(SD_STATE_BITS - SD_SHIFT)   # Lava's sigma-delta units


@dataclass
class SigmaDeltaQ:
    """A sigma-delta neuron's integers (ir/nodes.py SigmaDelta), in units of SD_STATE."""
    threshold: int
    bias: np.ndarray          # int64, broadcast to the neuron's shape
    sigma: bool
    relu: bool
    unit: float = SD_STATE    # float value of one synaptic input unit
    current_bias = None


@dataclass
class RelayQ:
    """A relay's integers (ir/nodes.py Relay): the partial sum in the units of the neuron it feeds."""
    unit: float
    current_bias = None


def uniform(value, what: str, name: str, who: str = "fixed point") -> float:
    """The one value of a parameter that Loihi keeps per node (a register, not per neuron)."""
    return one_value(value, f"{who}: {name} has a non-uniform {what}; one value per node is needed")


class FixedPlan:
    """The fixed-point integers of every node of `graph` (see the module docstring)."""

    def __init__(self, graph: nir.NIRGraph, topo: Topology | None = None):
        check_supported(graph, SUPPORTED, "fixed point")
        self.topo = topo or Topology(graph)
        self.placement: dict[str, Placement] = placements(self.topo)
        self.neurons: dict[str, NeuronQ] = {}
        self.synapses: dict[str, SynapseQ] = {}
        self.scale: dict[str, float] = {}          # float value of one unit of a value's integer
        self._plan()

    # -- scales of values -------------------------------------------------------------------
    def _value_scale(self, name: str) -> float:
        topo = self.topo
        node = topo.node(name)
        if isinstance(node, nir.Input):
            return 2.0 ** -INPUT_BITS
        if isinstance(node, X.SigmaDelta):
            return SD_MESSAGE
        if isinstance(node, X.Relay):
            return self.neurons[name].unit
        if isinstance(node, NEURONS):
            return 1.0
        if isinstance(node, X.HostSoftmax):
            return 2.0 ** -SOFTMAX_BITS
        if isinstance(node, X.HostLayerNorm):
            return 2.0 ** -LAYERNORM_BITS
        preds = topo.preds[name]
        bad = [p for p in preds if p not in self.scale]
        if bad:
            raise UserError(f"fixed point: {name} ({type(node).__name__}) reads the synaptic current "
                            f"of {bad[0]}; only neurons and the output may integrate currents")
        scales = {self.scale[p] for p in preds}
        if len(scales) != 1:
            raise UserError(f"fixed point: the inputs of {name} have different scales")
        s = scales.pop()
        if isinstance(node, POOLS):                 # a pool feeding a synapse sums integers
            return s * pool_gain(node)
        return s

    def in_scale(self, name: str) -> float:
        """Float value of one unit of the node's (summed) input; for products, of a times b."""
        topo, node = self.topo, self.topo.node(name)
        preds = topo.preds[name]
        for p in preds:
            if p not in self.scale:
                raise UserError(f"fixed point: {name} reads the synaptic current of {p}; "
                                "a neuron must integrate it first")
        if not isinstance(node, X.SpikeProduct):
            scales = {self.scale[p] for p in preds}
            if len(scales) != 1:
                raise UserError(f"fixed point: the inputs of {name} have different scales")
            return scales.pop()
        na = int(np.prod(node.a_shape))
        part = {"a": set(), "b": set()}
        for p in preds:
            pn = topo.node(p)
            pos = np.flatnonzero(np.asarray(pn.index).reshape(-1) >= 0) if isinstance(pn, X.Route) \
                else np.arange(int(np.prod(node_shape(node, "input"))))
            if pos.size and pos.min() < na:
                part["a"].add(self.scale[p])
            if pos.size and pos.max() >= na:
                part["b"].add(self.scale[p])
        if len(part["a"]) > 1 or len(part["b"]) > 1:
            raise UserError(f"fixed point: an operand of {name} mixes inputs of different scales")
        return (part["a"].pop() if part["a"] else 1.0) * (part["b"].pop() if part["b"] else 1.0)

    # -- the plan -------------------------------------------------------------------------
    def _plan(self) -> None:
        topo = self.topo
        for name in topo.order:
            node = topo.node(name)
            if isinstance(node, NEURONS) and not isinstance(node, X.Relay):
                self.neurons[name] = self._neuron_unit(name, node)
        for name in reversed(topo.order):              # a relay takes the units of what it feeds
            if isinstance(topo.node(name), X.Relay):
                self.neurons[name] = self._relay_unit(name)
        current: set[str] = set()                      # nodes that carry a synaptic current
        for name in topo.order:
            node = topo.node(name)
            if isinstance(node, SYNAPTIC):
                if self.placement[name].kind == "synapse":      # a pool feeding a synapse
                    self.scale[name] = self._value_scale(name)
                else:
                    current.add(name)
            elif isinstance(node, ROUTING) and any(p in current for p in topo.preds[name]):
                current.add(name)                              # routes a current to its target
            elif not isinstance(node, nir.Output):
                self.scale[name] = self._value_scale(name)
        # the unit of every synaptic node's output: its target neuron's, or the output's
        out_syn = [n for n, p in self.placement.items() if p.kind == "output"]
        self.output_unit = self._exact_output_unit(out_syn) or \
            max((self._max_weight(n) for n in out_syn), default=1.0) / WEIGHT_MAX_MIXED or 1.0
        for name, p in self.placement.items():
            if p.kind == "synapse":
                continue
            units = {self.output_unit} if p.kind == "output" else {self.neurons[t].unit for t in p.targets}
            if len(units) != 1:
                raise UserError(f"fixed point: {name} feeds neurons with different thresholds")
            self._quantize_synapse(name, units.pop())
        biases = moved_biases(topo, self.placement)
        for name, q in self.neurons.items():
            node = topo.node(name)
            if isinstance(q, RelayQ):
                if np.any(biases.get(name, 0.0)):
                    raise UserError(f"fixed point: {name} (Relay) reads a synaptic bias; a relay has none")
                continue
            if isinstance(q, SigmaDeltaQ):
                if np.any(biases.get(name, 0.0)):
                    raise UserError(f"fixed point: {name} (SigmaDelta) reads a synaptic bias; Lava's sigma-delta "
                                    "neuron has its own bias only")
                continue
            shape = node_shape(node)
            moved = biases.get(name, 0.0)
            if q.remembers and np.any(moved):              # a synaptic bias is a current: it accumulates
                q.current_bias = np.round(np.broadcast_to(moved, shape) / q.unit).astype(np.int64)
                moved = 0.0
            total = np.broadcast_to(q.own_bias, shape) + moved * q.gain
            v = total / (q.unit * q.gain) * (1 << ACT_SHIFT)
            q.bias_mant, q.bias_exp, q.bias_clipped = quantize_bias(np.broadcast_to(v, shape))
        out = topo.node(topo.output)
        self.output_bias = np.broadcast_to(biases.get(topo.output, 0.0), node_shape(out)).astype(np.float64)

    def _relay_unit(self, name: str) -> RelayQ:
        units = {self.neurons[t].unit for c in self.topo.consumers[name] for t in self.placement[c].targets
                 if self.placement[c].kind == "neuron"}
        if len(units) != 1:
            raise UserError(f"fixed point: {name} (Relay) must feed neurons of one threshold")
        return RelayQ(units.pop())

    def _neuron_unit(self, name: str, node) -> NeuronQ | SigmaDeltaQ:
        shape = node_shape(node)
        if isinstance(node, X.SigmaDelta):
            th, bias = node.threshold / SD_STATE, np.broadcast_to(np.asarray(node.bias, np.float64), shape) / SD_STATE
            if th != round(th) or np.any(bias != np.round(bias)):
                raise UserError(f"fixed point: {name} (SigmaDelta): threshold and bias are not whole units of 2^-12")
            return SigmaDeltaQ(int(th), bias.astype(np.int64), bool(node.sigma), bool(node.relu))
        if isinstance(node, LEAKY):
            return self._cuba_unit(name, node, shape)
        if isinstance(node, X.ResetSubIF):
            th = uniform(node.threshold, "threshold", name)
            if th <= 0:
                raise UserError(f"fixed point: {name} has a non-positive threshold")
            if node.levels > LEVELS_MAX:
                raise UserError(f"fixed point: {name} has {node.levels} levels, payloads hold {PAYLOAD_BITS} bits "
                                f"(at most {LEVELS_MAX})")
            unit = th / VTH_MANT
            v0 = np.round(np.broadcast_to(np.asarray(node.v_init, np.float64), shape) / unit * (1 << ACT_SHIFT))
            v0 = np.clip(v0, -V_LIMIT, V_LIMIT).astype(np.int64)
            return NeuronQ(unit, VTH_MANT, v0, None, None, 0, subtract=True,
                           own_bias=np.asarray(node.bias, np.float64), levels=int(node.levels),
                           dv=round(node.decay * DECAY_ONE))
        th = uniform(node.v_threshold, "v_threshold", name)
        if uniform(node.r, "r", name) != 1.0 or np.any(np.asarray(node.v_reset) != 0) or th <= 0:
            raise UserError(f"fixed point: stock IF {name} needs r = 1, v_reset = 0 and a positive threshold")
        return NeuronQ(th / VTH_MANT, VTH_MANT, np.zeros(shape, np.int64), None, None, 0, subtract=False)

    def _cuba_unit(self, name: str, node, shape) -> NeuronQ:
        """LIF / CubaLIF as Lava's LIF: vth = 64 * threshold, 12-bit decays (du with Lava's +1)."""
        c = cuba(node)
        th = uniform(c.threshold, "v_threshold", name)
        gain = uniform(c.gain, "input gain (r, w_in)", name)
        if th <= 0 or gain <= 0 or np.any(c.v_reset != 0):
            raise UserError(f"fixed point: {name} needs a positive threshold and gain and v_reset = 0")
        dv = round(uniform(c.dv, "tau_mem", name) * DECAY_ONE)
        du = round(uniform(c.du, "tau_syn", name) * DECAY_ONE) - 1
        if not (0 <= dv < DECAY_ONE and 0 <= du < DECAY_ONE):
            raise UserError(f"fixed point: {name}: decays (du {du + 1}, dv {dv} of 4096) outside Lava's "
                            "12-bit registers")
        vth = max(1, round(th * CUBA_SCALE))
        return NeuronQ(th / vth / gain, vth, np.zeros(shape, np.int64), None, None, 0, subtract=False,
                       du=du, dv=dv, gain=gain, own_bias=np.broadcast_to(c.bias, shape))

    def _float_weight(self, name: str) -> np.ndarray:
        node = self.topo.node(name)
        if isinstance(node, X.SpikeProduct):
            return np.array(node.scale, np.float64)
        if isinstance(node, nir.Scale):
            return np.asarray(node.scale, np.float64)
        if isinstance(node, POOLS):
            return np.array(pool_gain(node))
        return np.asarray(node.weight, np.float64)

    def _exact_output_unit(self, out_syn: list) -> float | None:
        """The largest power of two in which every output weight is a whole number that the
        weights' 8 bits keep exactly (a netx file's integer weights): its logits carry no rounding."""
        values = [self._float_weight(n) * self.in_scale(n) for n in out_syn]
        flat = np.abs(np.concatenate([v.reshape(-1) for v in values])) if values else np.zeros(0)
        if not flat.size or not flat.max():
            return None
        unit = None
        for k in range(-64, 64):
            if np.all(np.mod(flat, 2.0 ** k) == 0):
                unit = 2.0 ** k
            else:
                break
        if unit is None:
            return None
        for v in values:
            m, e, *_ = quantize_weights(v / unit)
            if not np.array_equal(m * 2.0 ** e, v / unit):
                return None
        return unit

    def _max_weight(self, name: str) -> float:
        return float(np.abs(self._float_weight(name)).max()) * self.in_scale(name)

    def _quantize_synapse(self, name: str, unit: float) -> None:
        in_scale = self.in_scale(name)
        w = self._float_weight(name)
        m, e, sign, clipped, zeroed = quantize_weights(w * in_scale / unit)
        big = float(np.abs(w).max()) or 1.0
        err = float(np.sqrt(np.mean((m * 2.0 ** e * unit / in_scale - w) ** 2))) / big if w.size else 0.0
        self.synapses[name] = SynapseQ(m, e, sign, unit, in_scale, clipped, zeroed, err)

    # -- report ---------------------------------------------------------------------------
    def report(self) -> list[dict]:
        """One row per synaptic node and neuron: the scale choices a user should see."""
        rows = []
        for name in self.topo.order:
            if name in self.synapses:
                s = self.synapses[name]
                rows.append({"node": name, "kind": "synapse", "type": type(self.topo.node(name)).__name__,
                             "weight_exp": s.exp, "sign": s.sign, "max_weight": int(np.abs(s.weight).max()),
                             "unit": s.unit, "clipped": s.clipped, "zeroed": s.zeroed,
                             "rel_error": s.rel_error})
            elif isinstance(self.neurons.get(name), RelayQ):
                rows.append({"node": name, "kind": "neuron", "type": "Relay", "unit": self.neurons[name].unit})
            elif isinstance(self.neurons.get(name), SigmaDeltaQ):
                q = self.neurons[name]
                rows.append({"node": name, "kind": "neuron", "type": "SigmaDelta", "threshold": q.threshold,
                             "unit": q.unit, "bias_max": int(np.abs(q.bias).max(initial=0))})
            elif name in self.neurons:
                q = self.neurons[name]
                rows.append({"node": name, "kind": "neuron", "type": type(self.topo.node(name)).__name__,
                             "vth": q.vth, "threshold": q.threshold, "levels": q.levels, "unit": q.unit,
                             "du": q.du, "dv": q.dv,
                             "bias_exp_max": int(q.bias_exp.max()), "bias_clipped": q.bias_clipped})
        return rows

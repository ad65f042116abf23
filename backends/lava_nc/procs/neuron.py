"""Integrate-and-fire with reset by subtraction (NIR extension ResetSubIF): stock Lava has no
subtractive reset and no initial potential (docs/sources.md, "Loihi fixed point").

Float: v = keep v + a_in + bias; s = v >= threshold; v -= threshold * s (v starts at v_init per
image; keep = 1 - decay). Fixed: Lava's bit-accurate LIF datapath with du = 4095 (u = a_in << 6
wrapping at 24 bits, v = v (4096 - dv) >> 12 toward zero, + u + bias, saturating at 24 bits) with
this node's rule: s = v >= vth << 6, v -= vth << 6.
GradedIF (levels M > 1): the rule M times in turn, the spike a payload k in 0..M sent as a graded
message (loihi/widths.py GRADED_BITS). All record their spikes; the fixed models also count
saturations (docs/fixed-point.md).
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from mstdeploy.backends.lava_nc.procs.base import NodeModel, NodeProcess
from mstdeploy.loihi.widths import ACT_SHIFT, DECAY_BITS, DECAY_ONE, GRADED_BITS, GRADED_LIMIT, U_WRAP, V_LIMIT


class SubtractiveIF(NodeProcess):
    """params: shape, threshold, v_init, bias (floats, or ints in fixed point: threshold is the
    effective vth << 6)."""

    def __init__(self, clock: dict, shape: tuple, threshold, v_init, bias, levels: int = 1, decay=0.0):
        super().__init__(clock, shape=tuple(shape), threshold=threshold, v_init=v_init, bias=bias, levels=int(levels),
                         decay=decay)
        self.a_in = InPort(shape=tuple(shape))
        self.s_out = OutPort(shape=tuple(shape))


class GradedIF(SubtractiveIF):
    """SubtractiveIF with levels M > 1: payloads 0..M on graded messages."""


class _IFModel(NodeModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        shape = tuple(p["shape"])
        self.th = np.broadcast_to(np.asarray(p["threshold"], self.dtype), shape)
        self.v0 = np.broadcast_to(np.asarray(p["v_init"], self.dtype), shape).copy()
        self.bias = np.broadcast_to(np.asarray(p["bias"], self.dtype), shape)
        self.v = self.v0.copy()
        self.levels = int(p["levels"])
        self.decay = p["decay"]                              # float: the fraction lost; fixed: dv of 4096
        self.record = np.zeros((self.images * self.steps, int(np.prod(shape))), bool if self.levels == 1 else np.uint8)
        self.saturation = np.zeros(3, np.int64)             # high, low, wrapped

    def step(self):
        a = self.a_in.recv()
        image, s = self.clock()
        if image < 0:
            self.s_out.send(np.zeros(self.v.shape, self.dtype))
            return
        if s == 1:
            self.v = self.v0.copy()
        spikes = self.integrate(a)
        self.record[image * self.steps + s - 1] = spikes.reshape(-1)
        self.s_out.send(spikes.astype(self.dtype))
        if self.last_step():
            spikes = {"spikes": np.packbits(self.record, axis=-1)} if self.levels == 1 else {"payloads": self.record}
            self.save(**spikes, shape=np.array(self.v.shape), saturation=self.saturation)

    def fire(self, v):
        """The spike rule on v: (payload, v after): `levels` thresholds in turn."""
        k = np.zeros(v.shape, np.int64)
        for _ in range(self.levels):
            s = v >= self.th
            v = v - s * self.th
            k += s
        return k, v


# The float / fixed-point arithmetic is written once (_Float, _Fixed); the models below differ only
# in their port types. They are written out one class each on purpose: Lava's compiler finds
# process models by scanning this module's classes and their @implements/@tag decorators (which
# refuse a subclass of a decorated model), so generated classes would hide what it reads.

class _Float(_IFModel):
    dtype = np.float64

    def integrate(self, a):
        v = self.v if self.decay == 0 else self.v * (1.0 - self.decay)
        spikes, self.v = self.fire(v + (a + self.bias))        # the reference's order: drive = I + bias; v += drive
        return spikes


class _Fixed(_IFModel):
    dtype = np.int64

    def integrate(self, a):
        u = np.left_shift(a.astype(np.int64), ACT_SHIFT)
        wrap = (u > U_WRAP) | (u <= -U_WRAP)
        u = np.where(u > U_WRAP, u - 2 * U_WRAP, u)
        u = np.where(u <= -U_WRAP, u + 2 * U_WRAP, u)
        v = self.v
        if self.decay:                                          # Lava's LIF: sign * (|v (4096 - dv)| >> 12)
            d = v * (DECAY_ONE - int(self.decay))
            v = np.sign(d) * (np.abs(d) >> DECAY_BITS)
        v = v + u + self.bias
        self.saturation += [int((v > V_LIMIT).sum()), int((v < -V_LIMIT).sum()), int(wrap.sum())]
        spikes, self.v = self.fire(np.clip(v, -V_LIMIT, V_LIMIT))
        return spikes


@implements(proc=SubtractiveIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class SubtractiveIFFloat(_Float):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int8, precision=1)


@implements(proc=SubtractiveIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class SubtractiveIFFixed(_Fixed):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int8, precision=1)


@implements(proc=GradedIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class GradedIFFloat(_Float):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=GRADED_BITS)


@implements(proc=GradedIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class GradedIFFixed(_Fixed):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=GRADED_BITS)


class Relay(NodeProcess):
    """A relay neuron of a split fan-in (ir/nodes.py Relay): sends its summed input on as a graded
    message, as Lava's GradedVec with vth = 0 does (which has a fixed-point model only); fixed
    point clips it to the 24-bit payload and counts what it clips. Records its messages."""

    def __init__(self, clock: dict, shape: tuple):
        super().__init__(clock, shape=tuple(shape))
        self.a_in = InPort(shape=tuple(shape))
        self.s_out = OutPort(shape=tuple(shape))


class _RelayModel(NodeModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.shape = tuple(proc_params["shape"])
        self.record = np.zeros((self.images, self.steps) + self.shape, np.float64)
        self.saturation = np.zeros(3, np.int64)             # high, low, wrapped

    def step(self):
        a = self.a_in.recv()
        image, s = self.clock()
        if image < 0:
            self.s_out.send(np.zeros(self.shape, self.dtype))
            return
        if self.dtype is np.int64:
            a = a.astype(np.int64)
            self.saturation += [int((a > GRADED_LIMIT).sum()), int((a < -GRADED_LIMIT).sum()), 0]
            a = np.clip(a, -GRADED_LIMIT, GRADED_LIMIT)
        self.record[image, s - 1] = a
        self.s_out.send(a)
        if self.last_step():
            self.save(values=self.record, shape=np.array(self.shape), saturation=self.saturation)


@implements(proc=Relay, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class RelayFloat(_RelayModel):
    dtype = np.float64
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=Relay, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class RelayFixed(_RelayModel):
    dtype = np.int64
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=GRADED_BITS)

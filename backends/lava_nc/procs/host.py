"""Softmax as a host op (NIR extension HostSoftmax), zero latency, idle outside its images.
Float: softmax(scale * in + bias) in float64. Fixed: backends.fixed_point.softmax_fixed, the one
function the reference simulator calls too, on one step's array as here (docs/fixed-point.md)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from mstdeploy.loihi.quantize import softmax_fixed
from mstdeploy.backends.lava_nc.procs.base import NodeModel, NodeProcess


class Softmax(NodeProcess):
    """params: shape, scale, bias, axis, in_scale (fixed point: float value of an input unit)."""

    def __init__(self, clock: dict, shape: tuple, scale: float, bias, axis: int, in_scale: float = 1.0):
        super().__init__(clock, shape=tuple(shape), scale=float(scale), bias=bias, axis=int(axis),
                         in_scale=float(in_scale))
        self.s_in = InPort(shape=tuple(shape))
        self.s_out = OutPort(shape=tuple(shape))


class _SoftmaxModel(NodeModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self.bias = np.broadcast_to(np.asarray(p["bias"], np.float64), tuple(p["shape"]))
        self.scale, self.axis, self.in_scale = p["scale"], p["axis"], p["in_scale"]

    def step(self):
        x = self.s_in.recv()
        image, _ = self.clock()
        if image < 0:
            self.s_out.send(np.zeros(x.shape, self.dtype))
        else:
            self.s_out.send(self.softmax(x))


# The float / fixed-point model pairs below differ only in their port types. They are written out
# one class each on purpose: Lava's compiler finds process models by scanning this module's
# classes and their @implements/@tag decorators, so generated classes would hide what it reads.

@implements(proc=Softmax, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class SoftmaxFloat(_SoftmaxModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    dtype = np.float64

    def softmax(self, x):
        z = self.scale * x + self.bias
        e = np.exp(z - z.max(axis=self.axis, keepdims=True))
        return e / e.sum(axis=self.axis, keepdims=True)


@implements(proc=Softmax, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class SoftmaxFixed(_SoftmaxModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    dtype = np.int64

    def softmax(self, x):
        return softmax_fixed(x, self.in_scale, self.scale, self.bias, self.axis)

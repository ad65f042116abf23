"""Host ops (NIR extensions HostSoftmax, HostLayerNorm), zero latency, idle outside their images.
Float: in float64. Fixed: loihi.quantize.softmax_fixed / layernorm_fixed, the functions the
reference simulator calls too, on one step's array as here (docs/fixed-point.md)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from mstdeploy.loihi.quantize import layer_norm, layernorm_fixed, softmax_fixed
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
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    dtype = np.int64

    def softmax(self, x):
        return softmax_fixed(x, self.in_scale, self.scale, self.bias, self.axis)


class LayerNorm(NodeProcess):
    """params: shape, weight (K, *shape), bias, axis, eps, mode, in_scale (fixed point)."""

    def __init__(self, clock: dict, shape: tuple, weight, bias, axis: int, eps: float, mode: str,
                 in_scale: float = 1.0):
        weight = np.asarray(weight, np.float64)
        super().__init__(clock, shape=tuple(shape), weight=weight, bias=bias, axis=int(axis), eps=float(eps),
                         mode=str(mode), in_scale=float(in_scale))
        self.s_in = InPort(shape=(weight.shape[0],) + tuple(shape))
        self.s_out = OutPort(shape=tuple(shape))


class _LayerNormModel(NodeModel):
    """Keeps the running sum of its packed input over the image's steps (mode cumulative)."""

    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self.shape = tuple(p["shape"])
        self.weight = np.asarray(p["weight"], np.float64)
        self.bias = np.broadcast_to(np.asarray(p["bias"], np.float64), self.shape)
        self.axis, self.eps, self.mode, self.in_scale = p["axis"], p["eps"], p["mode"], p["in_scale"]
        self.total, self.last = None, None

    def step(self):
        x = self.s_in.recv()
        image, t = self.clock()
        if image < 0:
            self.s_out.send(np.zeros(self.shape, self.dtype))
            return
        if self.mode == "per_step":
            self.s_out.send(self.value(x, 1))
            return
        if t == 1:
            self.total, self.last = np.zeros(x.shape), 0
        self.total = self.total + x
        now = self.value(self.total, t)
        self.s_out.send(now - self.last)
        self.last = now


@implements(proc=LayerNorm, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class LayerNormFloat(_LayerNormModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    dtype = np.float64

    def value(self, total, t):
        """t * norm(mean of the weighted sums up to t)."""
        return t * layer_norm((self.weight * total).sum(axis=0) / t + self.bias, self.axis, self.eps)


@implements(proc=LayerNorm, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class LayerNormFixed(_LayerNormModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    dtype = np.int64

    def value(self, total, t):
        return layernorm_fixed(total, self.in_scale, t, self.weight, self.bias, self.axis, self.eps)

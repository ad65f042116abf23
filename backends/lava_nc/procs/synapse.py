"""Synaptic processes stock Lava lacks or runs too slowly (docs/lava-backend.md).

TokenDense: a token-wise linear layer, NIR Conv1d with kernel 1 on (C, N): out = W @ in.
Conv: NIR Conv2d and pooling, numpy im2col. (Lava's Conv loops scipy over channel pairs and its
fixed-point model ignores weight_exp.)
Product: NIR extension SpikeProduct, cumulative or per step.

Like Lava's Dense, every one of them delivers one step late (Loihi's synaptic stage): it sends the
previous step's result, then reads this step's input. Fixed point: integer weights, the sum shifted
by the layer exponent (left, or arithmetic right = floor), exactly Lava's bit-accurate Dense.
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
from mstdeploy.loihi.quantize import shift


def conv2d(x: np.ndarray, w: np.ndarray, stride, padding, dilation, groups: int) -> np.ndarray:
    """(C, H, W) * (C_out, C/groups, kh, kw) -> (C_out, H', W'), as torch's conv2d (float64)."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    c_out, c_g, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    win = win[:, ::sh, ::sw, ::dh, ::dw]                       # (C, H', W', kh, kw)
    C, Ho, Wo = win.shape[:3]
    out = np.empty((c_out, Ho, Wo), np.float64)
    per = c_out // groups
    for g in range(groups):
        cols = win[g * c_g:(g + 1) * c_g].transpose(0, 3, 4, 1, 2).reshape(c_g * kh * kw, Ho * Wo)
        out[g * per:(g + 1) * per] = (w[g * per:(g + 1) * per].reshape(per, -1) @ cols).reshape(per, Ho, Wo)
    return out


class _Synapse(NodeProcess):
    def __init__(self, clock: dict, in_shape: tuple, out_shape: tuple, **params):
        super().__init__(clock, in_shape=tuple(in_shape), out_shape=tuple(out_shape), **params)
        self.s_in = InPort(shape=tuple(in_shape))
        self.a_out = OutPort(shape=tuple(out_shape))


class _SynapseModel(NodeModel):
    """Send the buffer, read the input, compute the next buffer (zeros when idle)."""

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.buf = np.zeros(tuple(proc_params["out_shape"]), self.dtype)
        self.exp = int(proc_params.get("exp", 0))

    def step(self):
        self.a_out.send(self.buf)
        x = self.s_in.recv()
        image, s = self.clock()
        self.buf = np.zeros_like(self.buf) if image < 0 else self.output(x, s)

    def output(self, x, s):
        """This step's result: the weighted sum, in fixed point shifted by the layer exponent."""
        y = self.compute(x, s)
        return shift(y, self.exp) if self.dtype is np.int64 else y

    def matmul(self, w: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Float64 BLAS product; in fixed point the result is an exact integer (< 2^53)."""
        y = w @ x.astype(np.float64)
        return y.astype(np.int64) if self.dtype is np.int64 else y


class TokenDense(_Synapse):
    """params: weight (C_out, C_in), exp (fixed point)."""


class _TokenDenseModel(_SynapseModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.w = np.asarray(proc_params["weight"], np.float64)

    def compute(self, x, s):
        return self.matmul(self.w, x)


class Conv(_Synapse):
    """params: weight (C_out, C/groups, kh, kw), stride, padding, dilation, groups, exp."""


class _ConvModel(_SynapseModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self.w = np.asarray(p["weight"], np.float64)
        self.args = (tuple(p["stride"]), tuple(p["padding"]), tuple(p["dilation"]), int(p["groups"]))

    def compute(self, x, s):
        y = conv2d(x.astype(np.float64), self.w, *self.args)
        return y.astype(np.int64) if self.dtype is np.int64 else y


class Product(_Synapse):
    """params: a_shape, b_shape, mode ('cumulative' or 'per_step'), scale (float) or
    weight + exp (fixed point); the input is the packed vector [a, b]."""


class _ProductModel(_SynapseModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self.a_shape, self.b_shape = tuple(p["a_shape"]), tuple(p["b_shape"])
        self.na = int(np.prod(self.a_shape))
        self.cumulative = p["mode"] == "cumulative"
        self.A = self.B = self.prev = None

    def compute(self, x, s):
        a = x[:self.na].reshape(self.a_shape)
        b = x[self.na:].reshape(self.b_shape)
        if not self.cumulative:
            return self.per_step(a, b)
        if s == 1:
            self.A, self.B = np.zeros(self.a_shape, a.dtype), np.zeros(self.b_shape, b.dtype)
            self.prev = 0
        self.A = self.A + a
        self.B = self.B + b
        now = self.running(self.A @ self.B, s)
        out = now - self.prev
        self.prev = now
        return out


# The float / fixed-point model pairs below differ only in their port types. They are written out
# one class each on purpose: Lava's compiler finds process models by scanning this module's
# classes and their @implements/@tag decorators, so generated classes would hide what it reads.

@implements(proc=TokenDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class TokenDenseFloat(_TokenDenseModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    dtype = np.float64


@implements(proc=TokenDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class TokenDenseFixed(_TokenDenseModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    dtype = np.int64


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class ConvFloat(_ConvModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    dtype = np.float64


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class ConvFixed(_ConvModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    dtype = np.int64


@implements(proc=Product, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class ProductFloat(_ProductModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    dtype = np.float64

    def per_step(self, a, b):
        return self.proc_params["scale"] * (a @ b)

    def running(self, AB, s):
        return AB / s                               # out_t = scale (P_t - P_{t-1}), as the reference

    def compute(self, x, s):
        out = super().compute(x, s)
        return out if not self.cumulative else self.proc_params["scale"] * out


@implements(proc=Product, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class ProductFixed(_ProductModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    dtype = np.int64

    def output(self, x, s):                          # the shift is inside running()/per_step()
        return self.compute(x.astype(np.int64), s)

    def per_step(self, a, b):
        return shift(int(self.proc_params["weight"]) * (a @ b), self.exp)

    def running(self, AB, s):
        """G_t = floor(m A_t B_t 2^e / t): the sum of outputs to t is exactly G_t."""
        X = int(self.proc_params["weight"]) * AB
        return (X << self.exp) // s if self.exp >= 0 else X // (s << -self.exp)

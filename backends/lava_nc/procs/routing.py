"""Zero-latency processes that move values: Route (NIR extension), SynapseGate (NIR extension,
the counter-based stream of docs/time-and-randomness.md) and Delay (a NIR Delay node, or a delay
inserted to balance paths, docs/lava-backend.md). The same models serve float and fixed point."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from mstdeploy.backends.lava_nc.procs.base import NodeModel, NodeProcess
from mstdeploy.ir import stream


class _Mover(NodeProcess):
    def __init__(self, clock: dict, in_shape: tuple, out_shape: tuple, **params):
        super().__init__(clock, in_shape=tuple(in_shape), out_shape=tuple(out_shape), **params)
        self.s_in = InPort(shape=tuple(in_shape))
        self.s_out = OutPort(shape=tuple(out_shape))


class Route(_Mover):
    """params: index (the node's index map; -1 gives 0)."""


class Gate(_Mover):
    """params: p, seed, stream."""


class Delay(_Mover):
    """params: delay, logical (a NIR Delay: zeros for the first `delay` steps of every image;
    otherwise a pure pipeline delay), recurrent (a recurrent edge: zeros at each image's first
    step, where the clock is its consumer's, so one image's last step does not reach the next)."""


class _RouteModel(NodeModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        idx = np.asarray(proc_params["index"], np.int64)
        n_in = int(np.prod(proc_params["in_shape"]))
        self.idx = np.where(idx < 0, n_in, idx)                  # -1 reads an appended zero

    def step(self):
        x = self.s_in.recv()
        flat = np.concatenate([x.reshape(-1), np.zeros(1, x.dtype)])
        self.s_out.send(flat[self.idx])


class _GateModel(NodeModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        n = int(np.prod(p["in_shape"]))
        self.imix = stream.mix32(np.arange(n, dtype=np.int64))
        self.key = stream.node_key(int(p["seed"]), int(p["stream"]))
        self.p = float(p["p"])
        self.shape = tuple(p["in_shape"])
        self.delivered = np.zeros((self.images * self.steps, n), bool)     # recorded for event counts

    def step(self):
        x = self.s_in.recv()
        image, s = self.clock()
        if image < 0:
            self.s_out.send(np.zeros_like(x))
            return
        skey = stream.step_key(self.key, self.first_sample + image, s)
        keep = stream.keep_mask(skey, self.imix, self.p).reshape(x.shape)
        out = np.where(keep, x, 0)
        self.delivered[image * self.steps + s - 1] = out.reshape(-1) != 0
        self.s_out.send(out)
        if self.last_step():
            self.save(delivered=np.packbits(self.delivered, axis=-1), shape=np.array(self.shape))


class _DelayModel(NodeModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.k = int(proc_params["delay"])
        self.logical = bool(proc_params["logical"])
        self.recurrent = bool(proc_params.get("recurrent", False))
        self.line = None
        self.pos = 0

    def step(self):
        x = self.s_in.recv()
        if self.k:
            if self.line is None:
                self.line = np.zeros((self.k,) + x.shape, x.dtype)
            x, self.line[self.pos] = self.line[self.pos].copy(), x
            self.pos = (self.pos + 1) % self.k
        if self.logical or self.recurrent:
            image, s = self.clock()
            if image < 0 or s <= (self.k if self.logical else 1):   # nothing delayed yet in this image
                x = np.zeros_like(x)
        self.s_out.send(x)


# The float / fixed-point model pairs below differ only in their port types. They are written out
# one class each on purpose: Lava's compiler finds process models by scanning this module's
# classes and their @implements/@tag decorators, so generated classes would hide what it reads.

@implements(proc=Route, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class RouteFloat(_RouteModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=Route, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class RouteFixed(_RouteModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)


@implements(proc=Gate, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class GateFloat(_GateModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=Gate, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class GateFixed(_GateModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)


@implements(proc=Delay, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class DelayFloat(_DelayModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=Delay, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class DelayFixed(_DelayModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)

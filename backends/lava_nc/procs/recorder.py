"""Records the binary spikes of a stock Lava neuron (our own neurons record themselves). Reading
a Lava Var back sends it one value at a time, far too slow for spike trains, so results are
written to a file by the process itself."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from mstdeploy.backends.lava_nc.procs.base import NodeModel, NodeProcess


class SpikeRecorder(NodeProcess):
    def __init__(self, clock: dict, shape: tuple):
        super().__init__(clock, shape=tuple(shape))
        self.a_in = InPort(shape=tuple(shape))


class _RecorderModel(NodeModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.record = np.zeros((self.images * self.steps, int(np.prod(proc_params["shape"]))), bool)

    def step(self):
        a = self.a_in.recv()
        image, s = self.clock()
        if image >= 0:
            self.record[image * self.steps + s - 1] = a.reshape(-1) != 0
        if self.last_step():
            self.save(spikes=np.packbits(self.record, axis=-1), shape=np.array(self.proc_params["shape"]),
                      saturation=np.zeros(3, np.int64))


# The float / fixed-point model pairs below differ only in their port types. They are written out
# one class each on purpose: Lava's compiler finds process models by scanning this module's
# classes and their @implements/@tag decorators, so generated classes would hide what it reads.

@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class SpikeRecorderFloat(_RecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class SpikeRecorderFixed(_RecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

"""Several process models (ours and stock ones) in one Lava process: fewer OS processes and channels.

Lava runs one OS process per process model and synchronises every one of them at every step,
so its time per step grows with the number of processes (docs/lava-backend.md, "Groups"). A
Group holds process models in a topological order of the whole run's connections (network.py,
`_in_order`): each step it runs them in that order, passing values between them through wires in
memory, and through its own ports to and from what is outside. A wire keeps Lava's message
semantics exactly: what is sent is cast to the sending port's type (the channel's), what is
received is a zeros array of the receiving port's type plus every incoming message (Lava's
InPort), reshaped in C order as Lava's virtual reshape ports do. Each member keeps its own
clock, results and error report.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from mstdeploy.backends.lava_nc.procs.base import NodeModel, report


class Group(AbstractProcess):
    """params: members [(model class, proc_params, {var: (shape, initial value)}, label)];
    ins {member: {port: (shape, [source])}}, a source ("wire", member, port) or ("port", k) (this
    process's InPort i<k>); outs {member: {port: (shape, [k])}}, the OutPorts o<k> that forward what
    the member sends there; inputs, outputs: the shapes of i<k> and o<k>."""

    def __init__(self, members: list, ins: dict, outs: dict, inputs: list, outputs: list, out_dir: str):
        super().__init__(members=members, ins=ins, outs=outs, out_dir=out_dir)
        for k, shape in enumerate(inputs):
            setattr(self, f"i{k}", InPort(shape=tuple(shape)))
        for k, shape in enumerate(outputs):
            setattr(self, f"o{k}", OutPort(shape=tuple(shape)))


class _Out:
    """A member's OutPort: keeps the last message, cast to the port's type, and forwards it."""

    def __init__(self, dtype, shape, forward):
        self.dtype, self.shape, self.forward, self.value = np.dtype(dtype), tuple(shape), forward, None

    def send(self, data):
        self.value = np.array(np.broadcast_to(data, self.shape), dtype=self.dtype)
        for port in self.forward():
            port.send(self.value)


class _In:
    """A member's InPort: zeros of its type plus each source's message of this step."""

    def __init__(self, dtype, shape, sources):
        self.dtype, self.shape, self.sources = np.dtype(dtype), tuple(shape), sources

    def recv(self):
        total = np.zeros(self.shape, self.dtype)
        for source in self.sources:
            total = total + np.reshape(source(), self.shape)
        return total


class GroupModel(PyLoihiProcessModel):
    """Runs its members' steps in order; concrete classes (model_class) declare the ports."""

    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self.members = [_model(cls, params, variables) for cls, params, variables, _ in p["members"]]
        self.labels = [label for *_, label in p["members"]]
        for i, m in enumerate(self.members):
            cls = p["members"][i][0]
            for name, (shape, ks) in p["outs"].get(i, {}).items():
                setattr(m, name, _Out(getattr(cls, name).d_type, shape,
                                      lambda ks=ks: [getattr(self, f"o{k}") for k in ks]))
        for i, m in enumerate(self.members):
            cls = p["members"][i][0]
            for name, (shape, sources) in p["ins"].get(i, {}).items():
                setattr(m, name, _In(getattr(cls, name).d_type, shape, [self._source(s) for s in sources]))

    def _source(self, s):
        if s[0] == "wire":
            member, name = self.members[s[1]], s[2]
            return lambda: getattr(member, name).value
        k = s[1]
        return lambda: getattr(self, f"i{k}").recv()

    def run_spk(self):
        for m, label in zip(self.members, self.labels):
            m.time_step = self.time_step
            try:
                m.run_spk()
            except Exception:  # noqa: BLE001 - ours report their own; a stock model's is reported here
                if not isinstance(m, NodeModel):
                    report(self.proc_params["out_dir"], label)
                raise


def _model(cls, params, variables: dict):
    """A process model built as Lava's builder does (py_builder.py: model, then its Vars)."""
    m = cls(params)
    for name, (shape, value) in variables.items():
        lt = getattr(cls, name)
        if issubclass(lt.cls, np.ndarray):
            var = np.ndarray(shape, lt.d_type)
            var[:] = value
        else:
            var = value
        setattr(m, name, var)
        setattr(m, f"_{name}_p", lt.precision)
    return m


def model_class(index: int, ports: dict, fixed_point: bool) -> type:
    """The process model of one Group: its ports' types are those of the member ports they serve
    (Lava's compiler reads a port's type from the model class); `ports` maps i<k> / o<k> to them."""
    cls = type(f"Group{index}Model", (GroupModel,), dict(ports))
    return implements(proc=Group, protocol=LoihiProtocol)(requires(CPU)(tag("fixed_pt" if fixed_point else
                                                                             "floating_pt")(cls)))

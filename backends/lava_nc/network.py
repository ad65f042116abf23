"""Compile a NIR graph into a Lava process network (docs/lava-backend.md has the node table).

Stock Lava where it fits: RingBuffer source (the image every step, or
its frames) and sink (the output), Dense
(Affine, Linear, the head's full-kernel Conv1d), Sparse (Scale, as a diagonal), LIFReset (stock
NIR IF), virtual reshape ports (Flatten). Our processes (procs/) for the rest. The images of a run
are laid end to end in time, T steps each: a process at offset d works on image i during Lava steps
i*T + d + 1 .. i*T + d + T, so layers work on successive images like a pipeline and a run takes
images * T + D steps. Imports no torch: this runs in the worker process (worker.py).
"""
from __future__ import annotations

import nir
import numpy as np

from ...errors import UserError
from ...ir import blocks
from ...ir import nodes as X
from ...ir.topology import SUPPORTED as IR_NODES
from ...ir.topology import Topology, check_supported, node_shape, walk
from ...loihi.placement import moved_biases, placements
from ...loihi.plan import FixedPlan
from .nodes import NodeBuilders, Ref, ref
from .schedule import schedule

SUPPORTED = tuple(t for t in IR_NODES if t is not X.SigmaDelta)   # sigma-delta: netx's own (netx_job.py)
GROUPS = 1                           # Lava processes that hold our process models (docs/lava-backend.md)


def _connect(port, in_port) -> None:
    """Connect, reshaping (a virtual port, no process; C order) where only the shapes differ."""
    if tuple(port.shape) != tuple(in_port.shape):
        port = port.reshape(tuple(in_port.shape))
    port.connect(in_port)


class Network(NodeBuilders):
    """The process network of `graph` for `images` (N, *input shape), float or fixed point."""

    def __init__(self, graph: nir.NIRGraph, images: np.ndarray, steps: int, fixed_point: bool,
                 first_sample: int, out_dir: str, block: list[str] | None = None, feeds: dict | None = None,
                 groups: int = GROUPS):
        """`block`: build only these nodes (ir/blocks.py), with each node outside it that they read
        replaced by a source playing `feeds[node]` (images, T, *shape), its recorded spikes.
        `groups`: how many Lava processes run the process models (procs/group.py); 0: one process
        per model, as Lava builds a network by default."""
        check_supported(graph, SUPPORTED, "the Lava backend")
        self.topo = topo = Topology(graph)
        self.plan = FixedPlan(graph, topo) if fixed_point else None
        self.fixed_point, self.steps, self.images = fixed_point, steps, len(images)
        self.first_sample, self.out_dir = first_sample, out_dir
        self.where = self.plan.placement if fixed_point else placements(topo)
        self.biases = moved_biases(topo, self.where)
        self.members = topo.order if block is None else self._members(block)
        self.feeds = {n: feeds[n] for n in blocks.feeds(topo, self.members)} if block is not None else {}
        self.sched = schedule(topo).starting_at(self.members, topo)
        self.lava_steps = self.images * steps + self.sched.depth
        self.spiking = topo.spiking()
        self.ports: dict[str, object] = {}        # node -> OutPort carrying its output
        self.procs: dict[str, object] = {}        # node -> its main process
        self.models: dict[object, type] = {}      # our process instances -> model class
        self.records: dict[int, str] = {}         # result file index -> node name
        self.delays: dict[tuple, object] = {}     # (source, steps) -> balancing Delay process
        self.pending: list = []                   # recurrent edges: wired once both ends exist
        self.links: list = []                     # (Ref, InPort): connections, made by _realize
        self.ours: list = []                      # our processes in build order
        self.alone: set = set()                   # ids of ours that stay processes of their own
        self.recurrent: set = set()               # ids of the recurrent edges' Delay processes
        self._import_procs()
        for name, frames in self.feeds.items():
            self._play(name, frames)
        self.in_loop = {n for loop in topo.loops for n in loop}
        for name in self.members:
            self._building = name
            self._build(name, images)
        self._building = None
        for pred, name, in_port in self.pending:
            self._link(self._recurrent_port(pred, name), in_port)
        self._realize(groups)

    def _members(self, block: list[str]) -> list[str]:
        """The block's nodes in run order, and the Input when they read the images."""
        inside = set(block)
        for p, n in self.topo.back:
            if (p in inside) != (n in inside):
                raise UserError(f"a block cuts the recurrent edge {p} -> {n}")
        if any(self.topo.input in self.topo.preds[n] for n in inside):
            inside.add(self.topo.input)
        return [n for n in self.topo.order if n in inside]

    def _play(self, name: str, frames: np.ndarray) -> None:
        """A source that sends node `name`'s recorded output (images, T, *shape) on its schedule."""
        from lava.proc.io.source import RingBuffer as Source
        frames = np.asarray(frames)
        shape = node_shape(self.topo.node(name))
        if frames.shape != (self.images, self.steps) + shape:
            raise UserError(f"the recorded input of {name} has shape {frames.shape}, the block needs "
                            f"{(self.images, self.steps) + shape}")
        data = np.zeros(shape + (self.lava_steps,), np.int32 if self.fixed_point else np.float64)
        o = self.sched.offset[name]
        for i in range(self.images):
            data[..., i * self.steps + o:(i + 1) * self.steps + o] = np.moveaxis(frames[i], 0, -1)
        proc = Source(data=data)
        self.ports[name] = ref(proc.s_out)
        self.procs[name] = proc

    # -- helpers ----------------------------------------------------------------------------
    def _import_procs(self) -> None:
        """Our processes by kind, and the model each instance gets (float or fixed point). Lava
        imports stay inside the worker: the parent of a run never needs them."""
        from .procs import host, neuron, recorder, routing, synapse
        pairs = {
            "IF": (neuron.SubtractiveIF, neuron.SubtractiveIFFloat, neuron.SubtractiveIFFixed),
            "GradedIF": (neuron.GradedIF, neuron.GradedIFFloat, neuron.GradedIFFixed),
            "Relay": (neuron.Relay, neuron.RelayFloat, neuron.RelayFixed),
            "Recorder": (recorder.SpikeRecorder, recorder.SpikeRecorderFloat, recorder.SpikeRecorderFixed),
            "TokenDense": (synapse.TokenDense, synapse.TokenDenseFloat, synapse.TokenDenseFixed),
            "Conv": (synapse.Conv, synapse.ConvFloat, synapse.ConvFixed),
            "Product": (synapse.Product, synapse.ProductFloat, synapse.ProductFixed),
            "Route": (routing.Route, routing.RouteFloat, routing.RouteFixed),
            "Gate": (routing.Gate, routing.GateFloat, routing.GateFixed),
            "Delay": (routing.Delay, routing.DelayFloat, routing.DelayFixed),
            "Softmax": (host.Softmax, host.SoftmaxFloat, host.SoftmaxFixed),
            "LayerNorm": (host.LayerNorm, host.LayerNormFloat, host.LayerNormFixed),
        }
        self.P = {kind: proc for kind, (proc, _, _) in pairs.items()}
        from lava.proc.dense.models import PyDenseModelBitAcc, PyDenseModelFloat
        from lava.proc.dense.process import Dense
        from lava.proc.lif.models import PyLifResetModelBitAcc, PyLifResetModelFloat
        from lava.proc.lif.process import LIFReset
        from lava.proc.sparse.models import PySparseModelBitAcc, PySparseModelFloat
        from lava.proc.sparse.process import Sparse
        # Stock processes a Group may hold: their (float, fixed point) models, as run_cfg picks them
        self._stock_models = {Dense: (PyDenseModelFloat, PyDenseModelBitAcc), Sparse: (PySparseModelFloat,
                              PySparseModelBitAcc), LIFReset: (PyLifResetModelFloat, PyLifResetModelBitAcc)}
        self._model_of = {proc: fixed if self.fixed_point else flt for proc, flt, fixed in pairs.values()}

    def _clock(self, name: str, arrival: int) -> dict:
        index = len(self.records)
        self.records[index] = name
        return {"node": name, "record": index, "arrival": arrival, "steps": self.steps, "images": self.images,
                "first_sample": self.first_sample, "out_dir": self.out_dir}

    def _ours(self, kind: str, name: str, **params):
        proc = self.P[kind](self._clock(name, self.sched.arrival(self.topo, name)), **params)
        self.models[proc] = self._model_of[self.P[kind]]
        self._add(proc)
        return proc

    def _add(self, proc, alone: bool = False) -> None:
        """One of our processes. A cycle's processes stay processes of their own: in a cycle, a
        synapse receives in a step what the nodes after it send in that step, which a group, running
        its members one whole step after the other, cannot give it (procs/group.py)."""
        self.ours.append(proc)
        if alone or self._building in self.in_loop:
            self.alone.add(id(proc))

    def _source_port(self, pred: str, name: str):
        """The output port of `pred` as node `name` must see it (through a balancing delay)."""
        k = self.sched.delays.get((pred, name), 0)
        if not k:
            return self.ports[pred]
        if (pred, k) not in self.delays:
            self.delays[(pred, k)] = self._delay(pred, f"{pred}.delay{k}", self.sched.offset[pred], k)
        return ref(self.delays[(pred, k)].s_out)

    def _delay(self, pred: str, label: str, arrival: int, k: int, recurrent: bool = False):
        """A pipeline Delay process of k steps fed by `pred`'s output (routing.Delay)."""
        shape = tuple(self.ports[pred].shape)
        proc = self.P["Delay"](self._clock(label, arrival), in_shape=shape, out_shape=shape, delay=k, logical=False,
                               recurrent=recurrent)
        self.models[proc] = self._model_of[self.P["Delay"]]
        self._add(proc, alone=recurrent)
        if recurrent:
            self.recurrent.add(id(proc))
        self._link(self.ports[pred], proc.s_in)
        return proc

    def _wire(self, name: str, in_port) -> None:
        for p in self.topo.preds[name]:
            if (p, name) in self.topo.back:
                self.pending.append((p, name, in_port))
            else:
                self._link(self._source_port(p, name), in_port)

    def _link(self, source: Ref, in_port) -> None:
        self.links.append((source, in_port))

    def _realize(self, groups: int) -> None:
        """Make the connections, with the process models (ours, and stock Dense, Sparse and LIFReset;
        not those of a cycle) in `groups` Groups of consecutive ones in a topological order
        (procs/group.py): a connection inside a group becomes a wire, one across its boundary a port
        of the group. The input and output stay processes: the caller reads the output's record."""
        from .procs.group import Group, model_class
        stock = [p for n, p in self.procs.items() if type(p) in self._stock_models and n not in self.in_loop]
        ours = self._in_order([p for p in self.ours if id(p) not in self.alone] + stock)

        def model_of(p):
            return self.models[p] if p in self.models else self._stock_models[type(p)][self.fixed_point]
        label = {id(p): n for n, p in self.procs.items()}
        size = -(-len(ours) // groups) if ours and groups > 0 else 1
        chunks = [ours[i:i + size] for i in range(0, len(ours), size)] if size > 1 else []
        at = {id(p): (g, i) for g, chunk in enumerate(chunks) for i, p in enumerate(chunk)}
        specs = [{"ins": {i: {q.name: (tuple(q.shape), []) for q in p.in_ports.members} for i, p in enumerate(c)},
                  "outs": {i: {q.name: (tuple(q.shape), []) for q in p.out_ports.members} for i, p in enumerate(c)},
                  "inputs": [], "outputs": [], "ports": {}, "out_index": {}} for c in chunks]
        pairs = []                                   # (source end, destination end) across processes

        def out_end(port):
            if id(port.process) not in at:
                return port
            g, i = at[id(port.process)]
            spec, key = specs[g], (i, port.name)
            if key not in spec["out_index"]:
                k = spec["out_index"][key] = len(spec["outputs"])
                spec["outputs"].append(tuple(port.shape))
                spec["outs"][i][port.name][1].append(k)
                spec["ports"][f"o{k}"] = getattr(model_of(port.process), port.name)
            return ("o", g, spec["out_index"][key])

        for source, in_port in self.links:
            src, dst = at.get(id(source.port.process)), at.get(id(in_port.process))
            if src is not None and dst is not None and src[0] == dst[0]:
                specs[dst[0]]["ins"][dst[1]][in_port.name][1].append(("wire", src[1], source.port.name))
                continue
            end = in_port
            if dst is not None:
                spec = specs[dst[0]]
                k = len(spec["inputs"])
                spec["inputs"].append(tuple(in_port.shape))
                spec["ins"][dst[1]][in_port.name][1].append(("port", k))
                spec["ports"][f"i{k}"] = getattr(model_of(in_port.process), in_port.name)
                end = ("i", dst[0], k)
            pairs.append((out_end(source.port), end))
        self.groups = []
        for g, (chunk, spec) in enumerate(zip(chunks, specs)):
            members = [(model_of(p), p.proc_params, {v.name: (tuple(v.shape), v.init) for v in p.vars.members},
                        label.get(id(p), type(p).__name__)) for p in chunk]
            self.groups.append(Group(members=members, ins=spec["ins"], outs=spec["outs"], inputs=spec["inputs"],
                                     outputs=spec["outputs"], out_dir=self.out_dir))
        for chunk in chunks:
            for p in chunk:
                self.models.pop(p, None)
        for g, (proc, spec) in enumerate(zip(self.groups, specs)):
            self.models[proc] = model_class(g, spec["ports"], self.fixed_point)

        def port_of(end):
            return getattr(self.groups[end[1]], f"{end[0]}{end[2]}") if isinstance(end, tuple) else end
        for a, b in pairs:
            _connect(port_of(a), port_of(b))
        grouped = {id(p) for c in chunks for p in c}
        self.compiled = [p for p in self.models] + [p for p in self._stock() if id(p) not in grouped]

    def _in_order(self, procs: list) -> list:
        """`procs` in a topological order of the whole run's connections (a recurrent delay's
        output aside, which closes each cycle): a group runs its members in this order, so that
        a member waiting on another process waits only on what comes before it, through any path
        (a balancing delay is built after its consumer, a stock synapse after our neurons)."""
        after = {id(p): [] for p in procs}                  # process -> those it reads from
        for source, in_port in self.links:
            a, b = id(source.port.process), id(in_port.process)
            after.setdefault(a, [])
            after.setdefault(b, [])
            if a not in self.recurrent:
                after[b].append(a)
        order = walk(list(after), after)
        members = {id(p): p for p in procs}
        return [members[n] for n in order if n in members]

    def _stock(self) -> list:
        """Stock Lava processes of the run (every one of ours is in self.models)."""
        ours = {id(p) for p in self.ours}
        return [p for p in self.procs.values() if id(p) not in ours]

    def _recurrent_port(self, pred: str, name: str):
        """`pred`'s output through a Delay on the consumer's clock that holds it the schedule's
        steps and gives 0 at each image's first step (the reference's recurrent edge)."""
        proc = self._delay(pred, f"{pred}.recurrent", self.sched.arrival(self.topo, name),
                           self.sched.recurrent[(pred, name)], recurrent=True)
        self.delays[(pred, name, "recurrent")] = proc
        return ref(proc.s_out)

    # -- results ----------------------------------------------------------------------------
    def logits(self, sink_data: np.ndarray) -> np.ndarray:
        """(T, images, K) output per logical step, from the sink's (K, steps) record."""
        D, T = self.sched.offset[self.topo.output], self.steps
        raw = np.asarray(sink_data, np.float64)[:, D:D + self.images * T]     # (K, images * T)
        raw = raw.reshape(raw.shape[0], self.images, T).transpose(2, 1, 0)
        bias = self.plan.output_bias.reshape(-1) if self.fixed_point else \
            np.broadcast_to(self.biases.get(self.topo.output, 0.0), node_shape(self.topo.node(self.topo.output))).reshape(-1)
        unit = self.plan.output_unit if self.fixed_point else 1.0
        return raw * unit + bias

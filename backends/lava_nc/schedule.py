"""When each node's output appears in Lava, and the delays that keep every join aligned.

Every synaptic process delivers one step late (Lava's Dense, and ours, like Loihi's synaptic
stage); neurons, routes, gates and host ops are zero-latency. A node's offset d(n) is the Lava
step at which its output for logical step s appears, minus s:

    d(input) = 0,  d(n) = max over inputs p of d(p) + latency(n).

Where two paths of different latency meet (residual sums, attention's A @ V, the head's several
input streams), a Delay of d_max - d(p) steps is inserted on every shorter edge, so each node sees
all its inputs for the same logical step together. Then node n's Lava output at step s + d(n)
equals the reference simulator's at step s, and the graph's outputs are the reference's shifted
by its depth D = d(output). A NIR Delay node is a logical delay (same offset as its input, its
own buffer). No torch: this runs in the Lava worker.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import UserError
from ...ir.topology import SYNAPTIC, Topology
from ...ir.validate import shown


def latency(node) -> int:
    return 1 if isinstance(node, SYNAPTIC) else 0


@dataclass
class Schedule:
    offset: dict = field(default_factory=dict)       # node -> d(n)
    delays: dict = field(default_factory=dict)       # (pred, node) -> inserted delay in steps
    recurrent: dict = field(default_factory=dict)    # recurrent edge (pred, node) -> its delay in steps
    depth: int = 0                                   # D = d(output)

    def arrival(self, topo: Topology, name: str) -> int:
        """The Lava step, minus s, at which node `name` receives its input for logical step s."""
        return self.offset[name] - latency(topo.node(name))

    def starting_at(self, members: list[str], topo: Topology) -> "Schedule":
        """The schedule of a block (ir/blocks.py) run on its own: the same offsets, less the
        earliest offset of what feeds it (its Input, or the nodes whose recorded outputs are
        played into it), so its first input arrives at Lava step 1; depth = its last offset."""
        inside = set(members)
        sources = [p for n in members for p in topo.preds[n] if p not in inside]
        sources += [n for n in members if not topo.forward_preds[n]]
        base = min(self.offset[n] for n in sources)
        keep = inside | set(sources)
        return Schedule(offset={n: d - base for n, d in self.offset.items() if n in keep},
                        delays={e: k for e, k in self.delays.items() if e[1] in inside},
                        recurrent={e: k for e, k in self.recurrent.items() if e[1] in inside},
                        depth=max(self.offset[n] for n in members) - base)


def schedule(topo: Topology) -> Schedule:
    """Offsets over the forward edges; a recurrent edge p -> n (ir/topology.py) must bring p's
    output for step s to n's input for step s + 1: a delay of 1 + arrival(n) - d(p) >= 0 steps
    (0 for the usual cycle through one synaptic node)."""
    s = Schedule()
    for n in topo.order:
        preds = topo.forward_preds[n]
        if not preds:
            s.offset[n] = 0
            continue
        top = max(s.offset[p] for p in preds)
        for p in preds:
            if s.offset[p] < top:
                s.delays[(p, n)] = top - s.offset[p]
        s.offset[n] = top + latency(topo.node(n))
    for p, n in topo.back:
        k = 1 + s.arrival(topo, n) - s.offset[p]
        if k < 0:
            raise UserError(f"the recurrent edge {shown(p)} -> {shown(n)} closes a cycle through {1 - k} synaptic "
                            f"nodes; Lava delivers each one step late, so a cycle may hold at most one")
        s.recurrent[(p, n)] = k
    s.depth = s.offset[topo.output]
    return s

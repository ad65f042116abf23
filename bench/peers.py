"""Our reference simulator against the peers on one stock NIR graph, in one interleaved run.

    .venv/bin/python bench/peers.py [--ckpt runs/bench-fixed/vgg-tiny.pt] [-n 64] [-T 32] [--repeats 7]

The graph is vgg-tiny's export with each converted neuron as a stock NIR IF (r = 1, reset to 0, v
from 0; `stock_if`): Conv2d, AvgPool2d, Flatten, Affine, IF, on a batch of digits test images fed
at every step. Each peer runs the same layers with its own neuron model for stock IF: Norse
`IAFCell`, snnTorch `Leaky` (beta 1, reset to zero), SpikingJelly `IFNode` (v_reset 0) in
single-step and multi-step mode, built from the graph's own arrays: the fastest form of each
framework (their importers run `mst export --standard`'s exact form step by step through
nirtorch, tests/test_interop.py). A check first: every framework's summed output gives the
same predictions as ours.
Timings: best of `--repeats`, the frameworks taking turns, torch on every core of this machine.
Ours is timed as `mst simulate` runs it (counting every synaptic event) and without counting.
Peers come from `make peers` (requirements-peers.txt); a missing one is reported, not fatal.
sinabs 3.1.3 is not run: it requires nir <= 1.0.4 (see requirements-peers.txt).
"""
from __future__ import annotations

import argparse
import pathlib
import time

import nir
import numpy as np
import torch

from mstdeploy.data import datasets
from mstdeploy.export.lower import to_nir
from mstdeploy.ir.topology import Topology
from mstdeploy.models import checkpoint
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model
from mstdeploy.simulate.engine import Simulator


def stock_if(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The graph with every ResetSubIF replaced by a stock IF of the same threshold (reset to 0,
    v from 0): the same layers, a neuron every framework has."""
    from mstdeploy.ir.nodes import ResetSubIF
    nodes = {k: nir.IF(r=np.ones(n.shape, np.float32), v_threshold=np.broadcast_to(n.threshold, n.shape).astype(np.float32),
                       v_reset=np.zeros(n.shape, np.float32)) if isinstance(n, ResetSubIF) else n
             for k, n in graph.nodes.items()}
    return nir.NIRGraph(nodes=nodes, edges=graph.edges, metadata=graph.metadata)


def chain(graph: nir.NIRGraph) -> list:
    """The graph's nodes in order (a chain: Input, ..., Output), as (name, node)."""
    topo = Topology(graph)
    return [(n, graph.nodes[n]) for n in topo.order if not isinstance(graph.nodes[n], (nir.Input, nir.Output))]


def threshold(node: nir.IF) -> float:
    th = np.unique(np.asarray(node.v_threshold))
    assert th.size == 1 and np.allclose(node.r, 1.0) and np.allclose(node.v_reset, 0.0), "stock IF, r = 1, reset 0"
    return float(th[0])


def two(v) -> tuple:
    """A NIR size field (scalar or pair) as a pair of ints."""
    return tuple(int(i) for i in np.broadcast_to(np.asarray(v).reshape(-1), 2))


def torch_layer(node, sj_layer=None):
    """A synapse, pool or flatten node as a torch module (SpikingJelly's layer module if given)."""
    t = (lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32))  # noqa: E731
    lib = sj_layer or torch.nn
    if isinstance(node, nir.Conv2d):
        w = t(node.weight)
        m = lib.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=two(node.stride), padding=two(node.padding),
                       dilation=two(node.dilation), groups=int(node.groups), bias=True)
        m.weight.data, m.bias.data = w, t(node.bias)
        return m
    if isinstance(node, nir.AvgPool2d):
        return lib.AvgPool2d(two(node.kernel_size), two(node.stride), two(node.padding))
    if isinstance(node, nir.Flatten):
        return lib.Flatten(1, -1)
    if isinstance(node, nir.Affine):
        w = t(node.weight)
        m = lib.Linear(w.shape[1], w.shape[0])
        m.weight.data, m.bias.data = w, t(node.bias)
        return m
    raise TypeError(type(node).__name__)


def norse_runner(graph):
    from norse.torch import IAFCell, IAFParameters
    mods = [IAFCell(IAFParameters(v_th=torch.tensor(threshold(n)), v_reset=torch.tensor(0.0)))
            if isinstance(n, nir.IF) else torch_layer(n) for _, n in chain(graph)]

    def run(x, T):
        state, total = [None] * len(mods), 0
        for _ in range(T):
            h = x
            for i, m in enumerate(mods):
                if isinstance(m, IAFCell):
                    h, state[i] = m(h, state[i])
                else:
                    h = m(h)
            total = total + h
        return total
    return run


def snntorch_runner(graph):
    import snntorch as snn
    mods = [snn.Leaky(beta=1.0, threshold=threshold(n), reset_mechanism="zero", reset_delay=False)
            if isinstance(n, nir.IF) else torch_layer(n) for _, n in chain(graph)]

    def run(x, T):
        mem = [m.init_leaky() if isinstance(m, snn.Leaky) else None for m in mods]
        total = 0
        for _ in range(T):
            h = x
            for i, m in enumerate(mods):
                if isinstance(m, snn.Leaky):
                    h, mem[i] = m(h, mem[i])
                else:
                    h = m(h)
            total = total + h
        return total
    return run


def spikingjelly_runner(graph, multi: bool):
    from spikingjelly.activation_based import functional, layer, neuron
    net = torch.nn.Sequential(*[neuron.IFNode(v_threshold=threshold(n), v_reset=0.0)
                                if isinstance(n, nir.IF) else torch_layer(n, layer) for _, n in chain(graph)])
    functional.set_step_mode(net, "m" if multi else "s")

    def run(x, T):
        functional.reset_net(net)
        if multi:
            return net(x.unsqueeze(0).expand(T, *x.shape)).sum(0)
        total = 0
        for _ in range(T):
            total = total + net(x)
        return total
    return run


def ours_runner(graph, count: bool):
    sim = Simulator(graph)

    def run(x, T):
        return sim.run(x, T, count=count).logits.sum(0)
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="runs/bench-fixed/vgg-tiny.pt", help="vgg-tiny checkpoint (else random)")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-T", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    if pathlib.Path(a.ckpt).exists():
        model, _ = checkpoint.load(a.ckpt)
        src = a.ckpt
    else:
        torch.manual_seed(0)
        model, src = build_model(preset("vgg-tiny", in_chans=1)), "random weights"
    graph = stock_if(to_nir(model.eval()))
    x = datasets.load("digits", "test", model.config.img_size).tensors[0][:a.n]
    runners = {"ours (mst simulate: events counted)": ours_runner(graph, True),
               "ours (no counting)": ours_runner(graph, False)}
    for name, make in (("Norse 1.1.0", lambda: norse_runner(graph)), ("snnTorch 1.0.0", lambda: snntorch_runner(graph)),
                       ("SpikingJelly 2.0.0, single-step", lambda: spikingjelly_runner(graph, False)),
                       ("SpikingJelly 2.0.0, multi-step", lambda: spikingjelly_runner(graph, True))):
        try:
            runners[name] = make()
        except ImportError as e:
            print(f"{name}: not installed ({e}); `make peers` installs it")
    print(f"vgg-tiny with stock IF neurons ({src}), batch {len(x)} digits, T={a.T}, {torch.get_num_threads()} torch threads")
    ref = runners["ours (no counting)"](x, a.T).argmax(-1)
    for name, run in runners.items():
        agree = (run(x, a.T).argmax(-1) == ref).float().mean().item()     # also the warm-up
        print(f"  {name}: predictions equal to ours on {100 * agree:.1f}% of the images")
    times = {k: [] for k in runners}
    for _ in range(a.repeats):
        for name, run in runners.items():
            t0 = time.perf_counter()
            run(x, a.T)
            times[name].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}
    peers = {k: v for k, v in best.items() if not k.startswith("ours")}
    fastest = min(peers.values()) if peers else float("nan")
    print(f"\n| framework | best of {a.repeats} | / fastest peer |")
    print("|---|---|---|")
    for name, t in sorted(best.items(), key=lambda kv: kv[1]):
        print(f"| {name} | {t:.3f} s | {t / fastest:.2f}x |")


if __name__ == "__main__":
    main()

"""Time in chunks: a run of K steps at a time, every node's state carried between chunks, equals
the run in one chunk bit for bit (float64, fixed point, and float32: a float32 synaptic op is one
call per step whatever the chunk, ops.per_step), counts included; memory then depends on K, not
on T, and no result on the memory free."""
import json

import nir
import numpy as np
import pytest
import torch

from conftest import SMALL, calibrated, one_line_error, run_mst
from mstdeploy.errors import UserError
from mstdeploy.export.lower import to_nir
from mstdeploy.ir import nodes as X
from mstdeploy.ir.io import write_graph
from mstdeploy.simulate.engine import Simulator
from test_saformer import images, saformer

COUNTS = ("spike_counts", "synaptic_events", "gated_events", "host_macs", "neuron_updates", "saturation")


def same_run(graph, x, steps, chunk, **kw):
    """Run `graph` whole and in chunks of `chunk` steps; assert every output and count agree."""
    record = set(Simulator(graph).order)
    whole = Simulator(graph, **kw).run(x, steps, first_sample=5, record=record)
    part = Simulator(graph, chunk=chunk, **kw).run(x, steps, first_sample=5, record=record)
    assert part.logits.shape == whole.logits.shape
    assert torch.equal(part.logits, whole.logits)
    assert whole.spikes.keys() == part.spikes.keys()
    for k in whole.spikes:
        assert torch.equal(part.spikes[k], whole.spikes[k]), k
    for f in COUNTS:
        assert getattr(part, f) == getattr(whole, f), f
    assert sum(whole.spike_counts.values()) > 0
    return whole


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("arith", ["float64", "float32", "fixed"])
def test_converted_networks_in_chunks_equal_the_whole_run(name, arith):
    m = calibrated(name, mask=0.5)
    layernorm = {"layernorm": "per_step"} if name == "mst-softmax" else {}
    g = to_nir(m, seed=1, **layernorm)
    dtype = torch.float32 if arith == "float32" else torch.float64
    x = torch.randn(3, 1, 8, 8, dtype=dtype)
    for chunk in (1, 4):                            # 11 = 4 + 4 + 3: a short last chunk
        r = same_run(g, x, 11, chunk, dtype=dtype, fixed_point=arith == "fixed")
    assert sum(r.gated_events.values()) > 0         # the gate stream is keyed by the global step


@pytest.fixture
def rounding_by_shape(monkeypatch):
    """Float kernels that round by the batch they are given, as oneDNN's and MKL's do on some CPUs
    (AVX-512: a ResNet's logits differed in the last bits between a chunk of 1 step and 11): each
    result scaled by 1 + N * 2^-20 for a call on N samples. Here every CPU behaves like that one."""
    def by_shape(op):
        def call(x, *args, **kw):
            y = op(x, *args, **kw)
            return y * (1 + x.shape[0] * 2.0 ** -20) if y.dtype == torch.float32 else y
        return call
    for module, name in ((torch.nn.functional, "conv1d"), (torch.nn.functional, "conv2d"),
                         (torch.nn.functional, "linear"), (torch.nn.functional, "avg_pool2d"), (torch, "matmul")):
        monkeypatch.setattr(module, name, by_shape(getattr(module, name)))


@pytest.mark.parametrize("name", list(SMALL))
def test_float32_chunks_equal_where_kernels_round_by_shape(name, rounding_by_shape):
    m = calibrated(name, mask=0.5).float()
    layernorm = {"layernorm": "per_step"} if name == "mst-softmax" else {}
    g = to_nir(m, seed=1, **layernorm)
    x = torch.randn(3, 1, 8, 8)
    for chunk in (1, 4):
        same_run(g, x, 11, chunk, dtype=torch.float32)


@pytest.mark.parametrize("kw", [{}, {"current_decay": 0.25}])
def test_stock_lif_and_cuba_lif_in_chunks(kw):
    g = to_nir(saformer(mask=0.5, **kw))
    for fixed in (False, True):
        same_run(g, images(2), 7, 3, dtype=torch.float64, fixed_point=fixed)


@pytest.mark.parametrize("per_neuron", [False, True])
def test_a_delay_longer_than_the_chunk(per_neuron):
    f = np.float64
    d = np.array([5.0, 0.0, 2.0, 7.0]) if per_neuron else np.full(4, 5.0)     # netx: one per neuron
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}),
             "w": nir.Linear(weight=np.eye(4, dtype=f) * 0.7),
             "delay": nir.Delay(delay=d),
             "if": X.ResetSubIF(shape=(4,), threshold=1.0, v_init=0.5, bias=0.0),
             "output": nir.Output(output_type={"output": np.array([4])})}
    chain = ["input", "w", "delay", "if", "output"]
    g = nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])))
    x = torch.rand(2, 4, dtype=torch.float64)
    r = same_run(g, x, 13, 2, dtype=torch.float64)
    nodes["delay"] = nir.Delay(delay=np.zeros(4))
    now = Simulator(nir.NIRGraph(nodes=nodes, edges=g.edges), dtype=torch.float64).run(x, 13, record={"if"}).spikes["if"]
    for i, k in enumerate(d.astype(int)):                  # each neuron's spikes, k steps later
        assert r.spikes["if"][:k, :, i].sum() == 0
        assert torch.equal(r.spikes["if"][k:, :, i], now[:13 - k, :, i])
    assert r.spikes["if"].sum() > 0


def test_chunk_is_chosen_from_memory_and_checked(monkeypatch):
    from mstdeploy import machine
    from mstdeploy.simulate import engine

    def memory(n):
        for module in (engine, machine):
            monkeypatch.setattr(module, "available_memory", lambda device=None: n)
    g = to_nir(calibrated("vgg"))
    sim = Simulator(g)
    assert sim.chunk_steps(64, 8) == 64                           # it fits: one chunk
    per_step = sim._live * 8 * 4
    held = 2 * sim._state * 8 * 4
    memory(2 * (held + 10 * per_step))
    assert sim.chunk_steps(64, 8) == 10                           # half the memory, 10 steps
    memory(held)
    with pytest.raises(UserError, match="lower the samples per batch"):
        sim.chunk_steps(64, 8)
    with pytest.raises(UserError, match="chunk"):
        Simulator(g, chunk=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["vgg", "resnet"])
def test_cli_chunk_gives_the_same_report(tmp_path, name, dtype):
    g = tmp_path / "g.nir"
    write_graph(to_nir(calibrated(name).float()), g)
    reports = []
    for extra in ([], ["--chunk", "1"], ["--chunk", "3"]):
        out = tmp_path / f"r{len(reports)}.json"
        r = run_mst("simulate", g, "-n", 8, "-T", 10, "--dtype", dtype, "--json", out, "--no-progress", *extra)
        assert r.returncode == 0, r.stderr
        rep = json.loads(out.read_text())
        reports.append({k: rep[k] for k in ("accuracy", "per_inference", "per_node")})
    assert reports[0]["per_inference"]["spikes"] > 0
    assert reports[0] == reports[1] == reports[2]
    assert "--chunk" in one_line_error(run_mst("simulate", g, "--chunk", "0"))

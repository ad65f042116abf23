"""Parity block by block (ir/blocks.py, compare/parity.py): cuts only where spikes cross, each
block run in Lava on the reference's recorded spikes gives the same spikes as the whole run, and
a block fed other spikes differs (the feeds are really used)."""
import json

import numpy as np
import pytest
import torch

from conftest import calibrated, one_line_here, recurrent_graph, run_mst
from mstdeploy.backends.lava_nc.run import run_lava
from mstdeploy.compare.parity import compare_spikes, run_parity
from mstdeploy.export.lower import to_nir
from mstdeploy.ir.blocks import blocks, connected, feeds
from mstdeploy.ir.io import read_graph, write_graph
from mstdeploy.ir.topology import NEURONS, Topology
from mstdeploy.simulate.engine import Simulator


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    d = tmp_path_factory.mktemp("blocks")
    out = {"mst": d / "mst.nir", "recurrent": d / "recurrent.nir"}
    write_graph(to_nir(calibrated("mst-spiking", levels=16, mask=0.75).float()), out["mst"])
    write_graph(recurrent_graph(), out["recurrent"])
    return out


def _x(n=2, seed=0):
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["mst", "recurrent"])
def test_blocks_are_cut_where_only_spikes_cross(graphs, name):
    topo = Topology(read_graph(graphs[name]))
    parts = blocks(topo, {n: 1 for n in topo.order}, 6)
    flat = [n for p in parts for n in p]
    assert sorted(flat) == sorted(n for n in topo.order if n != topo.input) and len(set(flat)) == len(flat)
    if name == "mst":
        assert len(parts) > 5 and max(map(len, parts)) <= 12
    done = {topo.input}
    for p in parts:
        assert connected(topo, p)
        for f in feeds(topo, p):
            assert f in done and (f == topo.input or isinstance(topo.node(f), NEURONS)), f
        done |= set(p)
        inside = set(p)
        assert all((a in inside) == (b in inside) for a, b in topo.back)


def test_a_residual_sum_does_not_stop_the_cuts():
    """A neuron summing synapses from every stage of a chain (a Swin patch merge of the residual
    stream): placed late, the synapses leave a cut after every chain neuron."""
    import nir
    from mstdeploy.ir import nodes as X
    n, w = 8, np.ones((4, 4), np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}),
             "merge": X.ResetSubIF(shape=(4,), threshold=1.0, v_init=0.5, bias=0.0),
             "output": nir.Output(output_type={"output": np.array([4])})}
    edges, prev = [], "input"
    for i in range(n):
        nodes[f"fc{i}"], nodes[f"if{i}"], nodes[f"sum{i}"] = nir.Linear(weight=w), \
            X.ResetSubIF(shape=(4,), threshold=1.0, v_init=0.5, bias=0.0), nir.Linear(weight=w)
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"if{i}"), (f"if{i}", f"sum{i}"), (f"sum{i}", "merge")]
        prev = f"if{i}"
    edges += [("merge", "output")]
    topo = Topology(nir.NIRGraph(nodes=nodes, edges=edges))
    parts = blocks(topo, {k: 1 for k in topo.order}, 4)
    assert len(parts) >= n // 2 and max(map(len, parts)) <= n + 2, [len(p) for p in parts]


def test_block_by_block_parity_equals_the_whole_run(graphs):
    x = _x()
    whole = run_parity(graphs["mst"], x, 8, True, progress=False, timeout=300)
    parts = run_parity(graphs["mst"], x, 8, True, progress=False, timeout=300, block_nodes=12)
    assert "blocks" not in whole["lava"] and len(parts["lava"]["blocks"]) > 3
    assert whole["passed"] and parts["passed"] and parts["mismatched_spikes"] == 0
    assert parts["logits_max_abs_diff"] == 0.0 and parts["reference_spikes"] > 1000
    assert {k: v["spikes_lava"] for k, v in parts["per_node"].items()} == \
        {k: v["spikes_lava"] for k, v in whole["per_node"].items()}
    rec = run_parity(graphs["recurrent"], x, 8, False, progress=False, timeout=300, block_nodes=2)
    assert rec["passed"] and rec["mismatched_spikes"] == 0 and len(rec["lava"]["blocks"]) > 1


def test_a_block_fed_other_spikes_differs(graphs):
    g = read_graph(graphs["mst"])
    topo = Topology(g)
    x, T = _x(), 8
    neurons = {k for k, v in g.nodes.items() if isinstance(v, NEURONS)}
    ref = Simulator(g, dtype=torch.float64, fixed_point=True).run(x, T, record=neurons)
    part = next(p for p in blocks(topo, {n: 1 for n in topo.order}, 12)
                if any(f != topo.input for f in feeds(topo, p)) and set(p) & neurons)
    played = {f: ref.spikes[f].numpy().swapaxes(0, 1) for f in feeds(topo, part) if f != topo.input}
    own = [n for n in part if n in neurons]
    right = run_lava(graphs["mst"], x.numpy(), T, True, progress=False, timeout=300, block=part, feeds=played)
    wrong = run_lava(graphs["mst"], x.numpy(), T, True, progress=False, timeout=300, block=part,
                     feeds={f: np.roll(s, 1, axis=1) for f, s in played.items()})
    assert set(right.spikes) == set(own)
    for n in own:
        assert compare_spikes(ref.spikes[n].numpy().swapaxes(0, 1), right.spikes[n])["mismatched"] == 0
    assert sum(compare_spikes(ref.spikes[n].numpy().swapaxes(0, 1), wrong.spikes[n])["mismatched"] for n in own) > 0


def test_cli_parity_by_blocks(graphs, tmp_path):
    np.save(tmp_path / "x.npy", _x().numpy())
    r = run_mst("parity", graphs["mst"], "--inputs", tmp_path / "x.npy", "-T", "6", "--fixed-point",
                "--block-nodes", "20", "--no-progress", "--json", tmp_path / "p.json", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "blocks, up to" in r.stdout and "PASS" in r.stdout
    rep = json.loads((tmp_path / "p.json").read_text())
    assert rep["mismatched_spikes"] == 0 and len(rep["lava"]["blocks"]) > 1
    assert sum(b["nodes"] for b in rep["lava"]["blocks"]) == len(read_graph(graphs["mst"]).nodes) - 1


def test_bad_block_nodes_is_one_line(graphs, capsys):
    for bad in ("0", "-3", "two"):
        line = one_line_here(capsys, "parity", graphs["mst"], "-n", "1", "-T", "2", "--block-nodes", bad)
        assert "--block-nodes" in line

"""The Lava backend: spike-exact parity with the reference simulator on small graphs of every kind
we export, the timing (outputs shifted by the graph depth), clear errors, and no silent hangs."""
import json
import os
import pathlib
import threading
import time

import nir
import numpy as np
import pytest
import torch

from conftest import run_mst
from mstdeploy.backends.lava_nc import run as lava_run
from mstdeploy.backends.lava_nc.procs.base import NodeModel
from mstdeploy.backends.lava_nc.run import run_lava
from mstdeploy.backends.lava_nc.schedule import schedule
from mstdeploy.errors import UserError
from mstdeploy.ir import nodes as X
from mstdeploy.ir.io import write_graph
from mstdeploy.export.lower import to_nir
from mstdeploy.ir.topology import NEURONS, Topology
from mstdeploy.simulate.engine import Simulator
from mstdeploy.compare.parity import compare
from conftest import calibrated, recurrent_graph

GRAPHS = {"mst-spiking": dict(mask=0.75), "mst-softmax": dict(mask=0.75), "vgg": dict(mask=0.5), "resnet": {}}


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    d = tmp_path_factory.mktemp("lava")
    out = {}
    for name, kw in GRAPHS.items():
        out[name] = d / f"{name}.nir"
        write_graph(to_nir(calibrated(name, levels=16, **kw).float()), out[name])
    out["recurrent"] = d / "recurrent.nir"                # stock IF, LIF and a recurrent edge
    write_graph(recurrent_graph(), out["recurrent"])
    return out


def _parity(path, fixed: bool, n=3, T=8, seed=0):
    from mstdeploy.ir.io import read_graph
    g = read_graph(path)
    x = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    neurons = {k for k, v in g.nodes.items() if isinstance(v, NEURONS)}
    ref = Simulator(g, dtype=torch.float64, fixed_point=fixed).run(x, T, record=neurons)
    lava = run_lava(path, x.numpy(), T, fixed, progress=False, timeout=300)
    return compare(ref, lava, fixed), ref, lava


@pytest.mark.parametrize("name", ["mst-spiking", "mst-softmax", "vgg", "resnet", "recurrent"])
def test_fixed_point_parity_is_spike_exact(graphs, name):
    res, ref, lava = _parity(graphs[name], fixed=True)
    assert res["reference_spikes"] > 1000                           # alive
    assert res["mismatched_spikes"] == 0, {k: v for k, v in res["per_node"].items() if v["mismatched"]}
    assert res["logits_max_abs_diff"] == 0.0 and res["passed"]
    if name.startswith("mst"):                # each gate passes a subset, about 1 - p, of its spikes
        from mstdeploy.ir.io import read_graph
        g = read_graph(graphs[name])
        assert lava.delivered
        for gate, passed in lava.delivered.items():
            (src,) = [a for a, b in g.edges if b == gate]
            spikes = lava.spikes[src]
            assert not (passed & ~spikes).any()
            n, p = int(spikes.sum()), float(g.nodes[gate].p)      # binomial: within 4 sigma
            assert abs(int(passed.sum()) - (1 - p) * n) <= 4 * (n * p * (1 - p)) ** 0.5 + 1, (gate, n)


@pytest.mark.parametrize("fixed", [True, False])
def test_groups_run_the_same_network_in_fewer_processes(graphs, fixed):
    """procs/group.py: the process models in one or three Lava processes, or one each (groups=0),
    give the same spikes, gate outputs and logits, bit for bit."""
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3)).numpy()
    runs = {g: run_lava(graphs["mst-spiking"], x, 6, fixed, progress=False, timeout=300, groups=g) for g in (0, 1, 3)}
    assert runs[1].meta["processes"] <= 4 < 50 < runs[0].meta["processes"]
    assert runs[1].meta["groups"] == 1 and runs[3].meta["groups"] == 3 and runs[0].meta["groups"] == 0
    for g in (1, 3):
        assert np.array_equal(runs[g].logits, runs[0].logits)
        for kind in ("spikes", "delivered"):
            a, b = getattr(runs[g], kind), getattr(runs[0], kind)
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert sum(int(s.sum()) for s in runs[0].spikes.values()) > 500


@pytest.mark.parametrize("name", ["mst-softmax", "resnet", "recurrent"])
def test_float_parity(graphs, name):
    res, _, _ = _parity(graphs[name], fixed=False)
    assert res["predictions_equal"] and res["passed"], res["mismatched_spikes"]


def test_lava_output_is_the_reference_shifted_by_the_graph_depth(graphs):
    # ResNet has residual joins: paths of 1 and 2 synaptic hops meet at act2 and need a delay.
    from mstdeploy.ir.io import read_graph
    g = read_graph(graphs["resnet"])
    s = schedule(Topology(g))
    assert s.delays and all(k >= 1 for k in s.delays.values())
    # stem, then per block conv1 + conv2, then pool and fc: every hop one step
    assert s.depth == 1 + 2 * 2 + 2
    T, n = 6, 2
    x = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    ref = Simulator(g, dtype=torch.float64, fixed_point=True).run(x, T)
    lava = run_lava(graphs["resnet"], x.numpy(), T, True, progress=False)
    assert lava.meta["depth"] == s.depth and lava.raw.shape[1] == n * T + s.depth
    raw = lava.raw.astype(np.float64)
    assert not raw[:, :s.depth].any()                               # nothing arrives before D
    sim = Simulator(g, fixed_point=True)
    want = (ref.logits.numpy() - sim.plan.output_bias) / sim.plan.output_unit    # (T, n, K) integers
    assert np.abs(want - np.round(want)).max() < 1e-6
    want = np.round(want)
    for i in range(n):
        got = raw[:, s.depth + i * T: s.depth + (i + 1) * T].T
        assert np.array_equal(got, want[:, i]), i


def test_cli_lava_and_parity(graphs, tmp_path):
    r = run_mst("lava", graphs["mst-spiking"], "-n", "2", "-T", "6", "--fixed-point", "--no-progress",
                "--json", tmp_path / "lava.json", timeout=300)
    assert r.returncode == 0, r.stderr
    assert "image  label  prediction  spikes" in r.stdout and "steps/s" in r.stdout
    assert "fixed-point scales" in r.stdout and "saturation" in r.stdout
    rep = json.loads((tmp_path / "lava.json").read_text())
    assert rep["mode"] == "fixed_point" and len(rep["predictions"]) == 2 and rep["quantization"]
    r = run_mst("parity", graphs["vgg"], "-n", "2", "-T", "6", "--fixed-point", "--no-progress",
                "--json", tmp_path / "parity.json", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads((tmp_path / "parity.json").read_text())
    for key in ("mode", "images", "steps", "mismatched_spikes", "per_node", "lava_seconds", "reference_seconds"):
        assert key in rep
    assert rep["mismatched_spikes"] == 0 and rep["images"] == 2 and rep["steps"] == 6
    assert set(rep["per_node"]) == {"conv1.if", "conv2.if", "conv3.if", "conv4.if", "fc5.if", "fc6.if"}


def test_unsupported_nodes_are_named(tmp_path):
    f = np.float32
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}),
             "fc": nir.Linear(weight=np.ones((3, 4), f)),
             "leaky": nir.LI(tau=np.ones(3, f), r=np.ones(3, f), v_leak=np.zeros(3, f)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    path = tmp_path / "lif.nir"
    write_graph(nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "leaky"), ("leaky", "output")]), path)
    r = run_mst("lava", path, "--dataset", "digits", "-n", "1")
    assert r.returncode == 2 and "leaky (LI)" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    conv = {"input": nir.Input(input_type={"input": np.array([2, 6])}),
            "c": nir.Conv1d(input_shape=6, weight=np.ones((2, 2, 3), f), stride=1, padding=0, dilation=1,
                            groups=1, bias=np.zeros(2, f)),
            "if": X.ResetSubIF(shape=(2, 4), threshold=1.0, v_init=0.5, bias=0.0),
            "output": nir.Output(output_type={"output": np.array([2, 4])})}
    g = nir.NIRGraph(nodes=conv, edges=[("input", "c"), ("c", "if"), ("if", "output")])
    with pytest.raises(UserError, match="c: Conv1d is supported in Lava as a token-wise layer"):
        run_lava(_write(g, tmp_path), np.zeros((1, 2, 6)), 4, False, progress=False)


def test_a_failing_process_model_is_reported_not_hung(tmp_path):
    # 1. a model's exception lands in errors.txt (and is re-raised, as Lava expects)
    class Boom(NodeModel):
        def step(self):
            raise ValueError("boom")

    params = {"node": "n1", "record": 0, "arrival": 0, "steps": 1, "images": 1, "first_sample": 0, "out_dir": str(tmp_path)}
    with pytest.raises(ValueError):
        Boom(params).run_spk()
    assert (tmp_path / "errors.txt").read_text().strip() == "n1: ValueError: boom"
    # 2. the caller stops a live run as soon as errors.txt appears, with that message
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "if": X.ResetSubIF(shape=(2,), threshold=1.0, v_init=0.5, bias=0.0),
             "output": nir.Output(output_type={"output": np.array([2])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "if"), ("if", "output")])
    real = lava_run._run_worker

    def spy(job_path, out, timeout, progress):
        def fail_soon():
            time.sleep(3)
            pathlib.Path(out, "errors.txt").write_text("if: ValueError: injected\n")
        threading.Thread(target=fail_soon, daemon=True).start()
        return real(job_path, out, timeout, progress)

    lava_run._run_worker = spy
    try:
        t0 = time.time()
        with pytest.raises(UserError, match="failed in process model if: ValueError: injected"):
            run_lava(_write(g, tmp_path), np.ones((400, 2)), 2000, False, progress=False, timeout=300)
        assert time.time() - t0 < 60
    finally:
        lava_run._run_worker = real
    # 3. a run past its timeout is stopped with a clear message
    with pytest.raises(UserError, match="did not finish within 2 s"):
        run_lava(_write(g, tmp_path), np.ones((400, 2)), 2000, False, progress=False, timeout=2)
    # 4. the killed runs left no shared memory behind (their manager could not unlink it)
    assert not list(lava_run.SHM_DIR.glob("mstlava*"))


def _write(g, tmp_path):
    path = tmp_path / "g.nir"
    write_graph(g, path)
    return path


def test_worker_imports_no_torch():
    import subprocess
    import sys
    code = ("import sys, mstdeploy.backends.lava_nc.worker, mstdeploy.backends.lava_nc.procs.host, "
            "mstdeploy.backends.lava_nc.procs.neuron, mstdeploy.backends.lava_nc.procs.synapse, "
            "mstdeploy.backends.lava_nc.procs.routing, mstdeploy.backends.lava_nc.procs.recorder; "
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ})
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_parity_reports_the_first_difference_in_step_order():
    from mstdeploy.compare.parity import compare_spikes
    ref = np.zeros((2, 5, 3, 4), bool)                   # (images, T, *shape)
    lava = ref.copy()
    lava[0, 3, 2, 1] = True                              # image 0, step 4
    lava[1, 1, 0, 3] = True                              # image 1, step 2: earlier in time
    out = compare_spikes(ref, lava)
    assert out["mismatched"] == 2 and out["spikes_lava"] == 2 and out["spikes_reference"] == 0
    assert out["first"] == {"step": 2, "image": 1, "index": [0, 3]}
    assert compare_spikes(ref, ref)["first"] is None


@pytest.mark.parametrize("fixed", [True, False])
def test_event_counts_from_lava_equal_the_reference(graphs, fixed):
    from mstdeploy.ir.io import read_graph
    from mstdeploy.compare.playback import lava_counts
    _, ref, lava = _parity(graphs["mst-spiking"], fixed=fixed)
    g = read_graph(graphs["mst-spiking"])
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))     # _parity's images
    got = lava_counts(g, x, lava, fixed)
    for key in ("spike_counts", "synaptic_events", "gated_events", "host_macs", "neuron_updates"):
        assert getattr(got, key) == getattr(ref, key), key
    assert sum(ref.gated_events.values()) > 0 and sum(ref.host_macs.values()) > 0
    # the counts are the recording's: one spike fewer through a gate is one more gated spike
    gate = next(iter(lava.delivered))
    where = np.argwhere(lava.delivered[gate])[0]
    lava.delivered[gate][tuple(where)] = False
    changed = lava_counts(g, x, lava, fixed)
    assert sum(changed.gated_events.values()) > sum(ref.gated_events.values())


def test_stock_lif_with_r_1_runs_in_float_lava_with_parity(tmp_path):
    # the reading snnTorch and Norse write (r = 1, so the input gain is 1 / tau): float Lava folds
    # the gain into the weights that feed the neuron, fixed point into its units
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
             "flat": nir.Flatten(input_type={"input": np.array([1, 8, 8])}, start_dim=0),
             "fc1": nir.Affine(weight=rng.normal(0, 0.6, (16, 64)).astype(np.float32),
                               bias=np.full(16, 0.05, np.float32)),
             "lif": nir.LIF(tau=np.full(16, 5.0, np.float32), r=np.ones(16, np.float32),
                            v_leak=np.zeros(16, np.float32), v_threshold=np.full(16, 0.3, np.float32),
                            v_reset=np.zeros(16, np.float32)),
             "fc2": nir.Linear(weight=rng.normal(0, 0.5, (10, 16)).astype(np.float32)),
             "output": nir.Output(output_type={"output": np.array([10])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "flat"), ("flat", "fc1"), ("fc1", "lif"), ("lif", "fc2"),
                                         ("fc2", "output")])
    write_graph(g, tmp_path / "lif.nir")
    for fixed in (False, True):
        res, _, _ = _parity(tmp_path / "lif.nir", fixed=fixed, T=16)
        assert res["reference_spikes"] > 50 and res["passed"], (fixed, res["failed"])
        assert res["mismatched_spikes"] == 0


def test_a_parity_failure_says_why(graphs):
    res, ref, lava = _parity(graphs["vgg"], fixed=True, n=2)
    assert res["passed"] and res["failed"] == []
    node = next(iter(lava.saturation))
    lava.saturation[node] = {**lava.saturation[node], "high": lava.saturation[node]["high"] + 1}
    res = compare(ref, lava, True)
    assert not res["passed"] and res["mismatched_spikes"] == 0
    assert res["failed"] == [f"{node}: saturation counts differ (reference {ref.saturation[node]}, "
                             f"Lava {lava.saturation[node]})"]
    lava.spikes[node][0, 0].flat[0] ^= True
    assert compare(ref, lava, True)["failed"][0] == "1 spikes differ"


def test_a_synaptic_bias_into_a_remembering_current_is_a_current(tmp_path):
    # CubaLIF with tau_syn = 4: the Affine's bias accumulates in u (ir/cuba.py); Lava and fixed
    # point add it to the input every step (before, it went to the voltage: 132 of 658 spikes
    # differed in float Lava, and fixed point fired 21% less than the float reference)
    rng = np.random.default_rng(0)
    n = 16
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
             "flat": nir.Flatten(input_type={"input": np.array([1, 8, 8])}, start_dim=0),
             "fc1": nir.Affine(weight=rng.normal(0, 0.1, (n, 64)).astype(np.float32),
                               bias=rng.normal(0.2, 0.1, n).astype(np.float32)),
             "lif": nir.CubaLIF(tau_syn=np.full(n, 4.0, np.float32), tau_mem=np.full(n, 2.0, np.float32),
                                r=np.full(n, 2.0, np.float32), v_leak=np.zeros(n, np.float32),
                                v_threshold=np.full(n, 1.0, np.float32), v_reset=np.zeros(n, np.float32),
                                w_in=np.full(n, 4.0, np.float32)),
             "fc2": nir.Linear(weight=rng.normal(0, 0.5, (10, n)).astype(np.float32)),
             "output": nir.Output(output_type={"output": np.array([10])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "flat"), ("flat", "fc1"), ("fc1", "lif"), ("lif", "fc2"),
                                         ("fc2", "output")])
    write_graph(g, tmp_path / "cuba.nir")
    flt, ref, _ = _parity(tmp_path / "cuba.nir", fixed=False, n=4, T=32)
    fix, ref_q, _ = _parity(tmp_path / "cuba.nir", fixed=True, n=4, T=32)
    assert flt["passed"] and flt["mismatched_spikes"] == 0, flt["failed"]
    assert fix["passed"] and fix["mismatched_spikes"] == 0, fix["failed"]
    f, q = ref.spike_counts["lif"], ref_q.spike_counts["lif"]
    assert f > 300 and abs(f - q) <= 0.03 * f, (f, q)          # fixed point follows the float reading


@pytest.mark.parametrize("command", [["simulate"], ["energy"], ["lava"], ["parity", "--fixed-point"]])
def test_a_command_reads_its_graph_once(graphs, command, capsys, monkeypatch, tmp_path):
    """In its own process (Lava's worker reads its copy): a 186 MB Swin-T graph costs 2.7 s a read."""
    from conftest import mst_here
    calls = []
    read = nir.read
    monkeypatch.setattr(nir, "read", lambda *a, **k: (calls.append(a[0]), read(*a, **k))[1])
    out = ["--out", tmp_path] if command == ["energy"] else ["--json", tmp_path / "r.json"]
    code, _, err = mst_here(capsys, *command, graphs["vgg"], "-n", 2, "-T", 3, "--no-progress", *out)
    assert code == 0, err
    assert calls == [graphs["vgg"]]

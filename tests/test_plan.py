"""`mst plan` (loihi/chip.py): cores with weight sharing, fan-in split on relays, the busiest core's
time, latency, throughput, static energy and EDP, checked on graphs whose loads are known."""
import json
import math

import nir
import numpy as np
import pytest

from conftest import mst_here, one_line_here, vgg_files
from mstdeploy.ir.topology import Topology
import torch

from mstdeploy.errors import UserError
from mstdeploy.ir import nodes as X
from mstdeploy.loihi.chip import CHIPS, Chip, place, plan
from mstdeploy.loihi.split import split


def _if(n):
    return nir.IF(r=np.ones(n, np.float32), v_threshold=np.ones(n, np.float32), v_reset=np.zeros(n, np.float32))


def chain():
    """Input 4 -> Linear 4x3 -> IF 3 -> Linear 3x2 -> IF 2 -> Output (all weights non-zero)."""
    f = np.float32
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([4])}),
        "l1": nir.Linear(weight=np.ones((3, 4), f)), "n1": _if(3),
        "l2": nir.Linear(weight=np.ones((2, 3), f)), "n2": _if(2),
        "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "l1"), ("l1", "n1"), ("n1", "l2"), ("l2", "n2"), ("n2", "output")])


TOY = Chip("toy", neurons=2, synapses=100, in_axons=3, cores_per_chip=128, t_synop=1.0, t_neuron=10.0,
           t_spike=100.0, t_barrier=1000.0, static_w=1.0, source="hand-made")


def test_a_hand_computed_plan():
    """n1's fan-in 4 exceeds 3 inputs: split.py cuts l1 into two column blocks of 2 on two relay
    layers of 3 neurons, each sent on by an identity Scale (n1's fan-in is now 2). Cores of 2
    neurons: 2 per relay layer, 2 for n1, 1 for n2. Per step (T = 2): a relay layer takes 6 input
    MACs, updates 3 neurons, sends 3 messages: (6 + 30 + 300) / 2 cores = 168; n1: 3 + 3 relay
    sums, 3 updates, 2 spikes: (6 + 30 + 200) / 2 = 118; n2: 3 ops, 2 updates, 1 spike: 123.
    Step: 168 + the 1000 barrier; depth 3 (l1's parts, the relays' Scale, l2)."""
    g, relays = split(chain(), TOY.in_axons)
    assert relays == {"n1": ["n1.relay0", "n1.relay1"]}
    layers, host = place(Topology(g), TOY)
    assert [(L.layer, L.cores, L.fan_in, L.weights, L.relay_of) for L in layers] == \
        [("n1.relay0", 2, 2, 6, "n1"), ("n1.relay1", 2, 2, 6, "n1"), ("n1", 2, 2, 6, None), ("n2", 1, 3, 6, None)]
    assert host == {"input": 4}
    activity = {"synaptic_events": {"n1.relay0.sum": 6.0, "n1.relay1.sum": 6.0, "l2": 6.0},
                "host_macs": {"l1.part0": 12.0, "l1.part1": 12.0},
                "spike_messages": {"n1.relay0": 6.0, "n1.relay1": 6.0, "n1": 4.0, "n2": 2.0}}
    rep = plan(g, TOY, activity, steps=2, dynamic_j=5.0)
    assert [L["core_seconds"] for L in rep["layers"]] == pytest.approx([168.0, 168.0, 118.0, 123.0])
    step = 168.0 + 1000.0
    assert rep["bottleneck"] == "n1.relay0" and rep["step_seconds"] == pytest.approx(step)
    assert rep["cores"] == 7 and rep["chips"] == 1 and rep["depth"] == 3
    assert rep["latency_seconds"] == pytest.approx((2 + 3) * step)
    assert rep["throughput_per_second"] == pytest.approx(1 / (2 * step))
    e = rep["energy_joules"]
    assert e["static"] == pytest.approx(1.0 * 1 * 2 * step) and e["total"] == pytest.approx(5.0 + 2 * step)
    assert rep["edp_joule_seconds"] == pytest.approx((5.0 + 2 * step) * 5 * step)
    assert rep["placed"]["microcode"] == [] and rep["placed"]["host"] == []
    assert sorted(rep["placed"]["wiring"]) == ["input", "l1.cols0", "l1.cols1", "output"]
    with pytest.raises(UserError, match="n1: fan-in 4 exceeds 3"):       # unsplit, it does not fit
        plan(chain(), TOY, activity, steps=2, dynamic_j=5.0)


def _sums_exactly(g, x, steps, in_axons, relayed):
    """The split graph's spikes and logits equal the graph's at every step, in float32 (the test's
    weights and inputs are multiples of 1/16, so every sum is exact in any order) and in fixed point."""
    from mstdeploy.simulate.engine import Simulator
    s, relays = split(g, in_axons)
    assert relays == relayed
    record = {n for n, node in g.nodes.items() if isinstance(node, (nir.IF, X.ResetSubIF))}
    for fixed in (False, True):
        a = Simulator(g, "cpu", torch.float32, fixed_point=fixed).run(x, steps, record=record)
        b = Simulator(s, "cpu", torch.float32, fixed_point=fixed).run(x, steps, record=record)
        for n in record:
            assert torch.equal(a.spikes[n], b.spikes[n]), (fixed, n)
            assert a.spikes[n].any() and not a.spikes[n].all(), n           # the test means something
        assert torch.equal(a.logits, b.logits), fixed
    return s


def split_example():
    f, rng = np.float32, np.random.default_rng(0)
    grid = lambda *shape: (rng.integers(-8, 9, shape) / 16).astype(f)
    sub = lambda n: X.ResetSubIF(shape=np.array([n]), threshold=np.full(n, 0.5, f), v_init=np.full(n, 0.25, f),
                                 bias=np.zeros(n, f))
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([6])}),
        "l1": nir.Affine(weight=grid(4, 6), bias=grid(4)), "n1": sub(4),
        "a": nir.Linear(weight=grid(3, 4)), "b": nir.Linear(weight=grid(3, 4)), "c": nir.Affine(weight=grid(3, 2),
                                                                                                 bias=grid(3)),
        "pick": X.Route(in_shape=np.array([4]), index=np.array([1, 2])), "n2": sub(3),
        "l3": nir.Linear(weight=grid(2, 3)), "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "l1"), ("l1", "n1"), ("n1", "a"), ("n1", "b"), ("n1", "pick"), ("pick", "c"),
               ("a", "n2"), ("b", "n2"), ("c", "n2"), ("n2", "l3"), ("l3", "output")])
    return g, torch.as_tensor(rng.integers(0, 17, (6, 6)) / 16, dtype=torch.float32)


def test_a_split_neuron_fires_as_before():
    """A dense layer with a bias cut by columns (the bias on a zero-weight twin), and a neuron fed
    by three synaptic nodes packed into relay groups: spikes identical, float and fixed point."""
    g, x = split_example()
    s = _sums_exactly(g, x, 12, 4, {"n1": ["n1.relay0", "n1.relay1"],              # l1: columns 0-2, 3-5
                                    "n2": ["n2.relay0", "n2.relay1", "n2.relay2"]})  # a (4), b (4), c (2)
    assert ("l1.bias", "n1") in s.edges and ("c.bias", "n2") in s.edges and "l1" not in s.nodes
    assert np.count_nonzero(s.nodes["c.bias"].weight) == 0 and isinstance(s.nodes["c"], nir.Linear)
    with pytest.raises(UserError, match="n1 still takes 3 inputs on relays"):
        split(g, 2)


def test_a_convolution_keeps_one_copy_of_its_kernel_per_core():
    f = np.float32
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "c": nir.Conv2d(input_shape=(8, 8), weight=np.ones((4, 2, 3, 3), f), stride=1, padding=1, dilation=1,
                        groups=1, bias=np.zeros(4, f)),
        "n": _if((4, 8, 8)), "output": nir.Output(output_type={"output": np.array([4, 8, 8])})},
        edges=[("input", "c"), ("c", "n"), ("n", "output")])
    small = Chip("small", neurons=100, synapses=100, in_axons=64, cores_per_chip=4, t_synop=1.0, t_neuron=1.0,
                 t_spike=1.0, t_barrier=0.0, static_w=None, source="hand-made")
    (layer,), _ = place(Topology(g), small)
    assert layer.weights == 72 and layer.cores == 3                       # 256 neurons / 100; 72 weights fit
    rep = plan(g, small, {"synaptic_events": {}, "spike_messages": {}}, steps=1, dynamic_j=None)
    assert rep["layers"][0]["per_core"]["weights"] == 72 and rep["energy_joules"]["static"] is None
    small2 = Chip("small2", 100, 50, 64, 4, 1.0, 1.0, 1.0, 0.0, None, "")
    (layer,), _ = place(Topology(g), small2)
    assert layer.cores == 3 and layer.relay_of is None                     # kernel over a core: split channels


def test_mst_plan_on_a_converted_network(tmp_path, capsys):
    _, graph, _ = vgg_files(tmp_path)
    out = tmp_path / "plan.json"
    code, text, err = mst_here(capsys, "plan", graph, "-T", 4, "-n", 2, "--no-progress", "--json", out,
                               "--plot", tmp_path / "plan.png")
    assert code == 0, err
    assert (tmp_path / "plan.png").read_bytes()[:4] == b"\x89PNG"
    assert "step" in text and "static" in text
    rep = json.loads(out.read_text())
    assert rep["chips"] >= 1 and rep["step_seconds"] > CHIPS["loihi2"].t_barrier
    for L in rep["layers"]:
        c = L["per_core"]
        assert c["neurons"] <= c["neuron_limit"] and c["weights"] <= c["weight_limit"] and c["inputs"] <= c["input_limit"]
    e = rep["energy_joules"]
    assert e["dynamic"] > 0 and e["static"] > 0 and e["total"] == pytest.approx(e["dynamic"] + e["static"])
    from mstdeploy import api
    from mstdeploy.errors import UserError
    with pytest.raises(UserError, match="profile must be one of"):
        api.plan(str(graph), "digits", 2, n=1, profile="loihi9")
    assert one_line_here(capsys, "plan", graph, "-T", 2, "-n", 1, "--no-progress", "--json", tmp_path).startswith(
        "error: ")


def test_the_official_swin_t_layout_fits():
    """The official Swin-T layout (224 x 224, official-format random weights, as the official-import
    tests build it), --spike-levels 4, one image: every layer within its cores' limits, the
    fan-in of merge2 (19,968) split on two relay layers, every node placed, the chip's time and energy."""
    import torch
    from official_mst import random_state_dict
    from test_exactness import SWIN_T
    from mstdeploy.compare.energy import MODELS, energy, per_inference
    from mstdeploy.export.lower import to_nir
    from mstdeploy.models.official import import_official
    from mstdeploy.simulate.engine import Simulator
    torch.manual_seed(0)
    g, relays = split(to_nir(import_official({"model": random_state_dict(SWIN_T)}, mask=0.0), spike_levels=4),
                      CHIPS["loihi2"].in_axons)
    assert list(relays) == ["merge2"] and len(relays["merge2"]) == 2
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    r = Simulator(g, "cpu", torch.float32).run(x, 1)
    act = {"synaptic_events": dict(r.synaptic_events), "spike_messages": dict(r.spike_messages),
           "host_macs": dict(r.host_macs)}
    rep = plan(g, CHIPS["loihi2"], act, 1, energy(per_inference(r, 1), MODELS["loihi2"])["total"])
    for L in rep["layers"]:
        c = L["per_core"]
        assert c["neurons"] <= c["neuron_limit"] and c["weights"] <= c["weight_limit"], L
        assert L["fan_in"] <= c["input_limit"], L
    assert [L["layer"] for L in rep["layers"] if L["relay_of"]] == relays["merge2"]
    assert sum(len(v) for v in rep["placed"].values()) == len(g.nodes)
    assert len(rep["placed"]["host"]) == 13                                 # 12 softmax, 1 LayerNorm
    assert rep["chips"] == math.ceil(rep["cores"] / 128) and rep["chips"] > 1
    e = rep["energy_joules"]
    assert e["dynamic"] > 0 and e["static"] > 0 and rep["edp_joule_seconds"] > 0
    assert rep["latency_seconds"] > rep["depth"] * rep["step_seconds"]


@pytest.mark.parametrize("fixed", [True, False])
def test_lava_runs_the_split_graph_as_the_reference(tmp_path, fixed):
    """The relays as Lava processes (procs/neuron.py Relay): fixed point gives every spike, relay
    message and logit of the reference; float passes the float criterion."""
    from mstdeploy.compare.parity import run_parity
    from mstdeploy.ir.io import write_graph
    g, x = split_example()
    s, _ = split(g, 4)
    write_graph(s, tmp_path / "split.nir")
    rep = run_parity(tmp_path / "split.nir", x, 12, fixed, progress=False, timeout=300)
    assert rep["passed"], rep["failed"]
    relays = [n for n in rep["per_node"] if ".relay" in n]
    assert len(relays) == 5 and all(rep["per_node"][n]["spikes_reference"] > 0 for n in relays), rep["per_node"]
    if fixed:
        assert rep["mismatched_spikes"] == 0 and rep["logits_max_abs_diff"] == 0.0


def test_mst_plan_writes_the_placed_graph(tmp_path, capsys):
    """A dense layer of 5,000 inputs on Loihi 1 cores (4,096 axons): `mst plan --placed` writes the
    split graph, which reads back with its relays and fires as the graph does."""
    from conftest import mst_here
    from mstdeploy.ir.io import read_graph, write_graph
    from mstdeploy.simulate.engine import Simulator
    rng = np.random.default_rng(0)
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([5000])}),
        "fc": nir.Linear(weight=(rng.integers(-4, 5, (20, 5000)) / 64).astype(np.float32)),
        "if": X.ResetSubIF(shape=(20,), threshold=1.0, v_init=0.5, bias=0.0),
        "output": nir.Output(output_type={"output": np.array([20])})},
        edges=[("input", "fc"), ("fc", "if"), ("if", "output")])
    write_graph(g, tmp_path / "g.nir")
    x = (rng.integers(0, 9, (2, 5000)) / 8).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code, out, err = mst_here(capsys, "plan", tmp_path / "g.nir", "--profile", "loihi1", "--inputs", tmp_path / "x.npy",
                              "-T", 4, "--no-progress", "--placed", tmp_path / "placed.nir")
    assert code == 0, err
    assert "2 relay layers carry the partial sums of if" in out and "placed graph ->" in out
    s = read_graph(tmp_path / "placed.nir")
    assert [n for n, node in s.nodes.items() if isinstance(node, X.Relay)] == ["if.relay0", "if.relay1"]
    a = Simulator(g, "cpu", torch.float32, fixed_point=True).run(torch.as_tensor(x), 4, record={"if"})
    b = Simulator(s, "cpu", torch.float32, fixed_point=True).run(torch.as_tensor(x), 4, record={"if"})
    assert torch.equal(a.spikes["if"], b.spikes["if"]) and a.spikes["if"].any()


def test_the_demo_kind_of_graph_is_placed_and_priced():
    """A graded spiking MST (the demo's kind: subtractive graded neurons, spike products, gates, a
    host op), via mstdeploy.plan on digits: every layer within its limits, every node placed
    (microcode for what stock Loihi lacks), chips, latency, throughput, dynamic and static energy,
    EDP."""
    from conftest import calibrated
    from mstdeploy import api
    from mstdeploy.export.lower import to_nir
    g = to_nir(calibrated("mst-softmax", levels=8).float(), spike_levels=4)
    rep = api.plan(g, "digits", 2, n=2)
    for L in rep["layers"]:
        c = L["per_core"]
        assert c["neurons"] <= c["neuron_limit"] and c["weights"] <= c["weight_limit"] and c["inputs"] <= c["input_limit"]
    placed = rep["placed"]
    assert sum(len(v) for v in placed.values()) == len(g.nodes)
    assert placed["microcode"] and placed["host"] and placed["stock"]
    assert rep["chips"] == 1 and rep["latency_seconds"] > rep["depth"] * rep["step_seconds"]
    e = rep["energy_joules"]
    assert e["dynamic"] > 0 and e["static"] > 0 and rep["edp_joule_seconds"] == pytest.approx(e["total"] *
                                                                                             rep["latency_seconds"])
    assert rep["throughput_per_second"] == pytest.approx(1 / (2 * rep["step_seconds"]))

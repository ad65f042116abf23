"""SANA-FE's files (loihi/sanafe.py): written by us with numpy and yaml, run by SANA-FE's own
interpreter in a process of its own (`make sanafe`: .venv/sanafe; SANA-FE is GPL-3.0)."""
import pathlib

import nir
import numpy as np
import pytest
import torch
import yaml

from mstdeploy.errors import UserError
from mstdeploy.loihi import sanafe
from mstdeploy.simulate.engine import Simulator

SANAFE = pathlib.Path(__file__).resolve().parents[1] / ".venv" / "sanafe" / "bin" / "python"
F = np.float32


def _lif(shape):
    """netx's LIF as read (ir/netx.py): tau 4 steps, r 4 (Lava's dv 1024), threshold 25 / 64."""
    full = lambda v: np.full(shape, v, F)
    return nir.LIF(tau=full(4.0), r=full(4.0), v_leak=full(0.0), v_threshold=full(25 / 64), v_reset=full(0.0))


def net():
    """A netx-shaped graph: the frame as the input layer's bias, a padded Conv2d, a dense layer."""
    rng = np.random.default_rng(0)
    w1 = (rng.integers(-6, 12, (2, 1, 3, 3)) / 64).astype(F)
    w2 = (rng.integers(-8, 16, (3, 2 * 3 * 3)) / 64).astype(F)
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1, 6, 6])}),
        "input.in": nir.Scale(scale=np.full((1, 6, 6), 1 / 64, F)), "input.neuron": _lif((1, 6, 6)),
        "c": nir.Conv2d(input_shape=(6, 6), weight=w1, stride=2, padding=1, dilation=1, groups=1, bias=np.zeros(2, F)),
        "c.neuron": _lif((2, 3, 3)), "flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0),
        "d": nir.Affine(weight=w2, bias=np.array([0.0, 1 / 64, 0.0], F)), "d.neuron": _lif((3,)),
        "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "input.in"), ("input.in", "input.neuron"), ("input.neuron", "c"), ("c", "c.neuron"),
               ("c.neuron", "flat"), ("flat", "d"), ("d", "d.neuron"), ("d.neuron", "output")])


def frame():
    return np.arange(36, dtype=F).reshape(1, 6, 6) % 9 * 3


def test_the_files_say_what_the_graph_says(tmp_path):
    info = sanafe.write(net(), frame(), tmp_path / "arch.yaml", tmp_path / "net.yaml", per_core=8)
    arch = yaml.safe_load((tmp_path / "arch.yaml").read_text())
    text = (tmp_path / "net.yaml").read_text()
    doc = yaml.safe_load(text)
    groups = {gr["name"]: gr for gr in doc["network"]["groups"]}
    assert list(groups) == ["input_neuron", "c_neuron", "d_neuron"]
    assert info["layers"] == {"input_neuron": (0, 5), "c_neuron": (5, 3), "d_neuron": (8, 1)} and info["cores"] == 9
    soma = groups["c_neuron"]["attributes"][-1]["soma"]
    assert soma["threshold"] == 25 and soma["leak_decay"] == 0.75 and soma["reset_mode"] == "hard"
    bias = {k: v[0]["bias"] for entry in groups["input_neuron"]["neurons"] for k, v in entry.items()}
    assert bias["1"] == 3                                    # pixel 3 / 64 x r dt / tau (1), in units of 1/64
    mapped = []
    for m in doc["mappings"]:
        for key in m:
            group, _, span = key.partition(".")
            first, _, last = span.partition("..")
            mapped += list(range(int(first), int(last or first) + 1)) if group == "c_neuron" else []
    assert sorted(mapped) == list(range(18))                 # every neuron on exactly one core
    (conv,) = [e for e in doc["network"]["edges"] if "input_neuron -> c_neuron" in e]
    pairs = conv["input_neuron -> c_neuron"]["source_target_pairs"]
    assert len(pairs) == 2 * 8 * 8        # in-bounds taps per axis: 2 + 3 + 3 (stride 2, padding 1)
    tiles = arch["architecture"]["tile"][0]["name"]
    assert tiles == "loihi_tile[0..3]"                       # 9 cores: 3 tiles, a mesh 4 high
    with pytest.raises(UserError, match="input from a"):
        g = net()                                            # a Scale between two layers
        g.nodes["e.neuron"] = _lif((3,))
        g.nodes["e"] = nir.Scale(scale=np.ones(3, F))
        g.edges[-1:] = [("d.neuron", "e"), ("e", "e.neuron"), ("e.neuron", "output")]
        sanafe.write(g, frame(), tmp_path / "a.yaml", tmp_path / "n.yaml")
    g = net()                                                # not silently dropped: a neuron it cannot map
    g.nodes["d.neuron"] = nir.IF(r=np.ones(3, F), v_threshold=np.ones(3, F), v_reset=np.zeros(3, F))
    with pytest.raises(UserError, match=r"SANA-FE: d.neuron \(IF\) is not mapped"):
        sanafe.write(g, frame(), tmp_path / "a.yaml", tmp_path / "n.yaml")
    g = net()                                                # a layer fed by two synaptic nodes
    g.nodes["d2"] = nir.Affine(weight=np.ones((3, 18), F), bias=np.zeros(3, F))
    g.edges += [("flat", "d2"), ("d2", "d.neuron")]
    with pytest.raises(UserError, match=r"SANA-FE: d.neuron \(LIF\) is not mapped"):
        sanafe.write(g, frame(), tmp_path / "a.yaml", tmp_path / "n.yaml")


@pytest.mark.skipif(not SANAFE.exists(), reason="SANA-FE's venv: make sanafe (make test makes it)")
def test_sanafe_runs_the_files_and_the_input_layer_fires_as_ours(tmp_path):
    g, T = net(), 12
    sanafe.write(g, frame(), tmp_path / "arch.yaml", tmp_path / "net.yaml", per_core=8)
    rep = sanafe.simulate(SANAFE, tmp_path / "arch.yaml", tmp_path / "net.yaml", T)
    assert rep["energy_j"]["total"] > 0 and rep["sim_time_s"] > 0 and rep["synaptic_events"] > 0
    ours = Simulator(g, "cpu", torch.float32, fixed_point=True).run(torch.as_tensor(frame())[None], T)
    assert rep["fired_per_layer"]["input_neuron"] == ours.spike_counts["input.neuron"] > 0
    with pytest.raises(UserError, match="SANA-FE failed"):
        sanafe.simulate(SANAFE, tmp_path / "net.yaml", tmp_path / "arch.yaml", T)


@pytest.mark.skipif(not SANAFE.exists(), reason="SANA-FE's venv: make sanafe (make test makes it)")
def test_mst_plan_runs_sanafe_beside_the_plan(tmp_path, capsys):
    import json
    from conftest import mst_here
    from mstdeploy.ir.io import write_graph
    write_graph(net(), tmp_path / "net.nir")
    np.save(tmp_path / "x.npy", frame()[None])
    code, out, err = mst_here(capsys, "plan", tmp_path / "net.nir", "--inputs", tmp_path / "x.npy", "-T", 8,
                              "--sanafe", SANAFE, "--no-progress", "--json", tmp_path / "plan.json",
                              "--plot", tmp_path / "plan.png")
    assert code == 0, err
    assert "SANA-FE (Loihi 1, first input): 3 cores" in out            # 1,024 neurons a core, a layer each
    assert (tmp_path / "plan.png").read_bytes()[:4] == b"\x89PNG"
    rep = json.loads((tmp_path / "plan.json").read_text())
    sf = rep["sanafe"]
    assert sf["step_seconds"] > 0 and sf["dynamic_joules"] > 0 and sf["spikes_per_layer"]["input_neuron"] > 0
    assert sf["throughput_per_second"] == pytest.approx(1 / (8 * sf["step_seconds"]))
    from conftest import one_line_here
    line = one_line_here(capsys, "plan", tmp_path / "net.nir", "--inputs", tmp_path / "x.npy", "-T", 2,
                         "--sanafe", tmp_path / "no-python", "--no-progress")
    assert line.startswith("error: SANA-FE: cannot run"), line

"""Energy and hardware reports: the arithmetic, the sweep, the plots, Lava's counts, core mapping."""
import json

import nir
import numpy as np
import pytest

from conftest import one_line_here, run_mst
from mstdeploy.loihi.chip import CHIPS
from mstdeploy.loihi.resources import resources
from mstdeploy.errors import UserError
from mstdeploy.ir import nodes as X
from mstdeploy.ir.gating import with_ratio
from mstdeploy.ir.io import write_graph
from mstdeploy.export.lower import to_nir
from mstdeploy.compare.energy import MODELS, ann_macs, energy
from conftest import calibrated


@pytest.fixture(scope="module")
def mst(tmp_path_factory):
    path = tmp_path_factory.mktemp("energy") / "mst.nir"
    write_graph(to_nir(calibrated("mst-spiking", levels=16, mask=0.75).float()), path)
    return path


def test_energy_models_add_up():
    c = {"spikes": 10, "synaptic_events": 1000, "neuron_updates": 100, "host_macs": 50, "gated_events": 7}
    e = energy(c, MODELS["loihi1"])
    assert e["synaptic"] == pytest.approx(1000 * 23.6e-12)
    assert e["neuron"] == pytest.approx(10 * 81e-12 + 90 * 52e-12)
    assert e["total"] == pytest.approx(e["synaptic"] + e["neuron"] + 10 * 1.7e-12 + 50 * 4.6e-12)
    assert energy(c, MODELS["45nm-fp32"])["total"] == pytest.approx(1000 * 0.9e-12 + 50 * 4.6e-12)


def test_ann_macs_count_nonzero_synapses_and_products():
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "fc": nir.Linear(weight=np.array([[1, 0], [2, 3], [0, 0]], np.float32)),
             "if": X.ResetSubIF(shape=(3,), threshold=1.0, v_init=0.5, bias=0.0),
             "output": nir.Output(output_type={"output": np.array([3])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "if"), ("if", "output")])
    assert ann_macs(g) == {"fc": 3}
    with pytest.raises(UserError, match="no SynapseGate"):
        with_ratio(g, 0.5)


def test_energy_cli_sweep_writes_report_and_plots(mst, tmp_path):
    out = tmp_path / "en"
    r = run_mst("energy", mst, "-T", "8", "-n", "12", "--sweep", "0,0.75", "--out", out, timeout=300)
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "energy.json").read_text())
    assert [run["ratio"] for run in rep["runs"]] == [0.0, 0.75] and rep["images"] == 12
    free, masked = rep["runs"]
    assert free["per_inference"]["gated_events"] == 0 < masked["per_inference"]["gated_events"]
    assert masked["masked_site_events"] < free["masked_site_events"]
    assert rep["masked_sites"] and rep["ann"]["macs"] > 0
    for run in rep["runs"]:
        assert set(run["energy_uJ"]) == set(MODELS) and run["energy_uJ"]["loihi1"]["total"] > 0
        assert 0 <= run["accuracy"] <= 1 and len(run["accuracy_by_step"]) == 8
        chip, dynamic = run["chip"]["loihi2"], run["energy_uJ"]["loihi2"]["total"]
        assert chip["static_uJ"] > 0 and chip["total_uJ"] == pytest.approx(dynamic + chip["static_uJ"])
        assert chip["step_us"] > 0 and chip["latency_ms"] > 8 * chip["step_us"] / 1e3
        assert run["chip"]["loihi1"]["static_uJ"] is None and run["chip"]["loihi1"]["step_us"] > 0
    assert "on Loihi 2 (1 chip(s)): step" in r.stdout
    for png in ("events_per_layer.png", "accuracy_vs_T.png", "sweep.png", "raster.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    r = run_mst("energy", mst, "-n", "2", "--sweep", "0.5,1.0", "--out", out)
    assert r.returncode == 2 and "[0, 1)" in r.stderr


def test_energy_counts_from_lava_equal_the_reference(mst, tmp_path):
    reps = {}
    for backend in ("reference", "lava"):
        r = run_mst("energy", mst, "-T", "6", "-n", "2", "--fixed-point", "--backend", backend,
                    "--out", tmp_path / backend, timeout=300)
        assert r.returncode == 0, r.stderr
        reps[backend] = json.loads((tmp_path / backend / "energy.json").read_text())["runs"][0]
    assert reps["lava"]["per_inference"] == reps["reference"]["per_inference"]
    assert reps["lava"]["per_node"] == reps["reference"]["per_node"]
    assert reps["lava"]["accuracy_by_step"] == reps["reference"]["accuracy_by_step"]


def test_resources_counts_cores_and_splits_a_fan_in_beyond_a_core(mst):
    """5,000 inputs into each of 3,000 neurons on Loihi 1 cores (4,096 axons): two column blocks
    of 2,500 on two relay layers (7.5M weights each: 58 cores of 128 KiB), the neurons take 2
    relayed inputs; what the plan places, without a run."""
    w = np.ones((3000, 5000), np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([5000])}),
             "fc": nir.Linear(weight=w),
             "if": X.ResetSubIF(shape=(3000,), threshold=1.0, v_init=0.5, bias=0.0),
             "output": nir.Output(output_type={"output": np.array([3000])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "if"), ("if", "output")])
    rep = resources(g, CHIPS["loihi1"])
    assert [(L["layer"], L["neurons"], L["synapses"], L["fan_in"], L["cores"], L["relay_of"], L["fits"])
            for L in rep["layers"]] == [("if.relay0", 3000, 7_500_000, 2500, 58, "if", True),
                                        ("if.relay1", 3000, 7_500_000, 2500, 58, "if", True),
                                        ("if", 3000, 6000, 2, 3, None, True)]
    assert not rep["does_not_fit"] and rep["cores"] == 119 and rep["chips"] == 1
    r = run_mst("resources", mst)
    assert r.returncode == 0 and "stochastic synapse gating" in r.stdout and "does not fit: nothing" in r.stdout


def test_bad_input_to_the_new_commands_is_one_line_and_exit_2(mst, tmp_path, capsys):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"junk")
    vgg = tmp_path / "vgg.nir"
    write_graph(to_nir(calibrated("vgg", levels=16).float()), vgg)
    cases = [(("parity", tmp_path / "none.nir"), "not found"),
             (("lava", mst, "-T", "0"), "-T/--steps: 0 is not >= 1"),
             (("energy", mst, "-n", "2", "--raster", "nope"), "not a neuron node"),
             (("resources", bad), "not a readable NIR file"),
             (("parity", mst, "-n", "2", "--dataset", "cifar10", "--data", tmp_path / "nowhere"), "does not exist"),
             (("energy", vgg, "-n", "2", "--sweep", "0.5"), "no SynapseGate")]
    for args, message in cases:
        assert message in one_line_here(capsys, *args), args

"""Graded, multi-level spikes (ResetSubIF levels M, `mst export --spike-levels M`)."""
import nir
import numpy as np
import pytest
import torch

from conftest import SMALL, calibrated, mst_here, one_line_here
from mstdeploy.export.lower import to_nir
from mstdeploy.ir import nodes as X
from mstdeploy.ir.io import read_graph, write_graph
from mstdeploy.simulate import neurons
from mstdeploy.simulate.engine import Simulator


@pytest.mark.parametrize("name,layernorm", [(n, "cumulative") for n in SMALL] + [("mst-softmax", "per_step")])
def test_one_step_with_levels_equal_to_L_is_the_quantized_ann(name, layernorm):
    # M = L: one step of each neuron is its QCFS (threshold lam / L from lam / (2L)), products and
    # softmax are exact at t = 1: the SNN's first step is the ANN to rounding error.
    m = calibrated(name, levels=4)
    x = torch.randn(16, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        ann = m(x)
    g = to_nir(m, layernorm=layernorm, spike_levels=4)
    assert {n.levels for n in g.nodes.values() if isinstance(n, X.ResetSubIF)} == {4}
    r = Simulator(g, dtype=torch.float64).run(x, 1, record={k for k, n in g.nodes.items()
                                                             if isinstance(n, X.ResetSubIF)})
    assert ann.abs().mean() > 0.01 and ann.std(0).mean() > 0.001
    assert torch.allclose(r.logits[0], ann, atol=1e-6), (r.logits[0] - ann).abs().max()
    payloads = torch.cat([s.reshape(-1).float() for s in r.spikes.values()])
    assert payloads.max() > 1 and payloads.max() <= 4 and torch.equal(payloads, payloads.round())


def test_one_level_is_todays_binary_graph():
    m = calibrated("mst-spiking", levels=16, mask=0.5).float()
    a, b = to_nir(m), to_nir(m, spike_levels=1)
    assert list(a.nodes) == list(b.nodes) and a.edges == b.edges
    for k in a.nodes:
        for f, v in vars(a.nodes[k]).items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(v, getattr(b.nodes[k], f)), (k, f)
    x = torch.randn(4, 1, 8, 8)
    ra, rb = Simulator(a).run(x, 8), Simulator(b).run(x, 8)
    assert torch.equal(ra.logits, rb.logits) and ra.synaptic_events == rb.synaptic_events


def _node(levels, threshold=1.0):
    return X.ResetSubIF(shape=(5,), threshold=threshold, v_init=0.0, bias=0.0, levels=levels)


def test_graded_neuron_is_m_binary_steps_and_the_kernel_agrees():
    # One step of an M-level neuron = M binary subtractions in turn (the node's rule); the fused
    # CPU kernel does the same arithmetic as the torch step, and the payload never exceeds M.
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(12, 3, 5, generator=g) * 7 - 1).double()
    for M in (2, 4, 7):
        n = neurons.for_node(_node(M, 0.75), lambda v: torch.as_tensor(np.asarray(v, np.float64)))
        fused, v_fused = n.run(n.init(n.params, x[0]), x)
        looped, v_looped = neurons.scan(n.step, n.params, n.init(n.params, x[0]), x)
        assert torch.equal(fused, looped) and torch.equal(v_fused, v_looped)
        v = torch.zeros(3, 5, dtype=torch.float64)
        for t in range(12):
            v = v + x[t]
            k = torch.clamp(torch.floor(v / 0.75), 0, M)
            assert torch.equal(fused[t], k)
            v = v - k * 0.75
        assert fused.max() == M


def test_levels_round_trip_and_old_files_read_as_binary(tmp_path):
    m = calibrated("vgg", levels=4).float()
    write_graph(to_nir(m, spike_levels=3), tmp_path / "g.nir")
    g = read_graph(str(tmp_path / "g.nir"))
    assert {n.levels for n in g.nodes.values() if isinstance(n, X.ResetSubIF)} == {3}
    fields = {k: v for k, v in vars(_node(1)).items() if k in ("shape", "threshold", "v_init", "bias")}
    assert X.ResetSubIF.from_dict(fields).levels == 1              # written before the field existed


def test_spike_levels_refused_where_it_cannot_be_said(tmp_path, capsys):
    for bad in ("0", "256", "two"):
        assert "--spike-levels" in one_line_here(capsys, "export", tmp_path / "none.pt", "-o", tmp_path / "g.nir",
                                                  "--spike-levels", bad)
    with pytest.raises(ValueError, match="levels"):
        _node(0)


@pytest.mark.parametrize("name,kw,fixed", [("mst-spiking", dict(mask=0.75), True),
                                           ("mst-softmax", dict(mask=0.75), True), ("vgg", dict(mask=0.5), True),
                                           ("mst-spiking", dict(mask=0.75), False)])
def test_graded_parity_is_exact(tmp_path, name, kw, fixed):
    # Lava's GradedIF against the reference: every payload of every neuron and the logits identical
    # (fixed point: and the saturation counts; float in float64 here, so no reordering either);
    # payloads above 1 do occur, gates drop them whole.
    from mstdeploy.backends.lava_nc.run import run_lava
    from mstdeploy.compare.parity import compare
    path = tmp_path / "g.nir"
    write_graph(to_nir(calibrated(name, levels=8, **kw).float(), spike_levels=4), path)
    g = read_graph(str(path))
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    neurons = {k for k, v in g.nodes.items() if isinstance(v, X.ResetSubIF)}
    ref = Simulator(g, dtype=torch.float64, fixed_point=fixed).run(x, 3, record=neurons)
    lava = run_lava(path, x.numpy(), 3, fixed, progress=False, timeout=300)
    res = compare(ref, lava, fixed)
    assert res["mismatched_spikes"] == 0 and res["passed"], res["failed"]
    assert res["logits_max_abs_diff"] <= (0.0 if fixed else 1e-9)
    top = max(int(s.max()) for s in lava.spikes.values())
    assert 1 < top <= 4 and res["reference_spikes"] > 100
    for gate, passed in lava.delivered.items():
        (src,) = [a for a, b in g.edges if b == gate]
        assert not (passed & (lava.spikes[src] == 0)).any()


def _chain(tail: bool):
    """Input -> Affine -> ResetSubIF (M = 4) -> SynapseGate [-> Affine of ones (3 x 6)] -> Output."""
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(input_type={"input": np.array([5])}),
             "fc": nir.Affine(weight=rng.normal(0, 1.5, (6, 5)).astype(np.float32), bias=np.zeros(6, np.float32)),
             "if": X.ResetSubIF(shape=(6,), threshold=0.5, v_init=0.25, bias=0.0, levels=4),
             "gate": X.SynapseGate(shape=(6,), p=0.5, seed=3, stream=1)}
    chain = ["input", "fc", "if", "gate"]
    if tail:
        nodes["read"] = nir.Affine(weight=np.ones((3, 6), np.float32), bias=np.zeros(3, np.float32))
        chain.append("read")
    nodes["output"] = nir.Output(output_type={"output": np.array([3 if tail else 6])})
    chain.append("output")
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])))


def test_graded_events_weigh_payloads_and_messages_count_them_once():
    # The gate's output, read directly, tells what the synapse after it receives: each payload k
    # delivered is k events and one message to each of its 3 targets; a dropped spike is neither.
    x = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    seen = Simulator(_chain(False), dtype=torch.float64).run(x, 6).logits          # (T, B, 6) gate output
    r = Simulator(_chain(True), dtype=torch.float64).run(x, 6)
    assert seen.max() > 1                                                           # graded payloads pass
    assert r.synaptic_events["read"] == 3 * int(seen.sum())
    assert r.synaptic_messages["read"] == 3 * int((seen != 0).sum()) < r.synaptic_events["read"]
    assert r.spike_counts["if"] >= r.spike_messages["if"] > 0
    assert r.gated_events["read"] > 0


def test_counts_at_a_mark_are_those_of_a_run_that_long():
    g = to_nir(calibrated("mst-spiking", levels=8, mask=0.5).float(), spike_levels=2)
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    sim = Simulator(g, chunk=3)                       # marks also cut chunks that do not end there
    long = sim.run(x, 7, marks=(1, 2, 4, 7))
    assert sorted(long.at) == [1, 2, 4, 7]
    for t in (1, 2, 4):
        short = sim.run(x, t)
        for f in ("spike_counts", "synaptic_events", "synaptic_messages", "gated_events", "neuron_updates"):
            assert long.at[t][f] == getattr(short, f), (t, f)
    assert long.at[7]["synaptic_events"] == long.synaptic_events
    assert torch.equal(long.logits[:4], sim.run(x, 4).logits)


def test_energy_report_prices_every_marked_step_against_the_ann(tmp_path, capsys):
    # A graded graph of a checkpoint: the report carries messages, the Loihi 2 view, ratios to
    # the fp32 and int8 ANN at 1, 2, 4 and 6 steps, and the first of them within tolerance of the
    # ANN's accuracy on the same images (M = L: the first step is the quantized ANN).
    import json
    from mstdeploy.compare.energy import ANN_MAC
    from mstdeploy.models import checkpoint
    m = calibrated("vgg", levels=4).float()
    m.config = m.config.replace(img_size=8, in_chans=1)
    ck, nir_path, out = tmp_path / "c.pt", tmp_path / "g.nir", tmp_path / "en"
    checkpoint.save(str(ck), m, {"dataset": "digits"})
    write_graph(to_nir(m, spike_levels=4), nir_path)
    x = torch.randn(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        labels = m(x).argmax(1).numpy()                 # the ANN is right on every image
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", labels)
    code, printed, err = mst_here(capsys, "energy", nir_path, "--inputs", tmp_path / "x.npy", "--labels",
                                  tmp_path / "y.npy", "-T", "6", "--ann", ck, "--out", out, "--no-progress")
    assert code == 0, err
    rep = json.loads((out / "energy.json").read_text())
    run = rep["runs"][0]
    assert rep["ann"]["accuracy"] == 1.0 and rep["ann"]["tolerance"] == 0.005
    assert list(run["by_step"]) == ["1", "2", "4", "6"]
    c = run["per_inference"]
    assert c["synaptic_messages"] < c["synaptic_events"] and c["spike_messages"] < c["spikes"]
    assert run["energy_uJ"]["loihi2"]["synaptic"] < run["energy_uJ"]["loihi1"]["synaptic"]
    ann = rep["ann"]["energy_uJ"]
    assert ann["45nm-int8"] == pytest.approx(rep["ann"]["macs"] * ANN_MAC["45nm-int8"] * 1e6)
    assert run["vs_ann"]["45nm-fp32"] == pytest.approx(run["energy_uJ"]["45nm-fp32"]["total"] / ann["45nm-fp32"])
    six = run["by_step"]["6"]
    assert six["per_inference"] == c and six["accuracy"] == run["accuracy"]
    assert run["by_step"]["1"]["per_inference"]["synaptic_events"] < c["synaptic_events"]
    assert run["within_tolerance"]["steps"] == 1 and run["within_tolerance"]["accuracy"] == 1.0
    assert "within tolerance of the ANN from T=1" in printed and "of the int8 ANN" in printed
    assert (out / "energy_vs_T.png").read_bytes()[:4] == b"\x89PNG"


def test_resources_name_the_payload_width_and_loihi1_refuses_graded_spikes(tmp_path, capsys):
    path = tmp_path / "g.nir"
    write_graph(to_nir(calibrated("mst-spiking", levels=8).float(), spike_levels=5), path)
    code, out, _ = mst_here(capsys, "resources", path, "--profile", "loihi2")
    assert code == 0 and "graded, payloads 0..5 (3 bits of at most 8, in 24-bit graded messages)" in out
    assert "does not fit: nothing" in out
    code, out, _ = mst_here(capsys, "resources", path, "--profile", "loihi1")
    assert "need a chip with graded spikes" in out


def test_graded_parity_of_an_imported_official_checkpoint(tmp_path):
    # The official layout (softmax attention, LayerNorm head read per step, 75% masking), imported
    # from a state dict of the official code's names, exported with graded spikes: Lava fixed point
    # gives every payload and logit of the reference.
    from official_mst import CIFAR, random_state_dict
    from mstdeploy.backends.lava_nc.run import run_lava
    from mstdeploy.compare.parity import compare
    from mstdeploy.models.official import import_official
    torch.manual_seed(0)
    model = import_official({"model": random_state_dict(CIFAR)}, mask=0.75)
    path = tmp_path / "official.nir"
    write_graph(to_nir(model, layernorm="per_step", spike_levels=4), path)
    g = read_graph(str(path))
    x = torch.randn(1, 3, CIFAR["img"], CIFAR["img"], generator=torch.Generator().manual_seed(0))
    neurons = {k for k, v in g.nodes.items() if isinstance(v, X.ResetSubIF)}
    ref = Simulator(g, dtype=torch.float64, fixed_point=True).run(x, 2, record=neurons)
    lava = run_lava(path, x.numpy(), 2, True, progress=False, timeout=600)
    res = compare(ref, lava, True)
    assert res["mismatched_spikes"] == 0 and res["logits_max_abs_diff"] == 0.0 and res["passed"], res["failed"]
    assert max(int(s.max()) for s in lava.spikes.values()) > 1 and res["reference_spikes"] > 100


def test_energy_ann_that_cannot_read_the_inputs_is_one_line(tmp_path, capsys):
    from mstdeploy.models import checkpoint
    from mstdeploy.models.config import preset
    from mstdeploy.models.registry import build_model
    g = tmp_path / "g.nir"
    write_graph(to_nir(calibrated("vgg", levels=4).float(), spike_levels=2), g)          # 8 x 8 input
    ck = tmp_path / "big.pt"
    checkpoint.save(str(ck), build_model(preset("vgg-tiny", in_chans=3, levels=4)).eval(), {})  # 16 x 16 RGB
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 8, 8), np.float32))
    np.save(tmp_path / "y.npy", np.zeros(2, np.int64))
    line = one_line_here(capsys, "energy", g, "--inputs", tmp_path / "x.npy", "--labels", tmp_path / "y.npy",
                         "-T", "2", "--ann", ck, "--out", tmp_path / "en")
    assert "--ann" in line and "cannot read these inputs" in line
    assert not (tmp_path / "en" / "energy.json").exists()

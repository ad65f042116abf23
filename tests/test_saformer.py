"""SAFormer: trained neurons are Lava's LIF, the exported graph computes the trained network's
integers, stock LIF / CubaLIF semantics, Lava parity, gating on residual sums, the CLI."""
import json

import nir
import numpy as np
import pytest
import torch

from conftest import run_mst
from mstdeploy.backends.lava_nc.run import run_lava
from mstdeploy.errors import UserError
from mstdeploy.ir.io import read_graph, write_graph
from mstdeploy.export.lower import to_nir
from mstdeploy.ir.topology import NEURONS
from mstdeploy.models import checkpoint
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model
from mstdeploy.models.saformer import LIF
from mstdeploy.simulate.engine import Simulator
from mstdeploy.compare.parity import compare


def saformer(**kw):
    """saformer-tiny with BatchNorm statistics from a few training passes (no training)."""
    torch.manual_seed(0)
    m = build_model(preset("saformer-tiny", in_chans=1, num_classes=10, **kw))
    x = torch.randn(32, 1, 16, 16)
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(x)
    return m.eval()


def images(n, seed=1):
    return torch.randn(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


def lif_counts(model, x, T):
    """Spikes of every LIF layer of the torch model, as a sorted list of totals."""
    counts = []
    hooks = [m.register_forward_hook(lambda mod, i, o: counts.append(int(o.sum())))
             for m in model.modules() if isinstance(m, LIF)]
    with torch.no_grad():
        logits = model.step_logits(x, T)
    for h in hooks:
        h.remove()
    return sorted(counts), logits


@pytest.mark.parametrize("kw", [{}, {"current_decay": 0.25}])
def test_exported_graph_in_fixed_point_is_the_trained_network(kw):
    m = saformer(**kw)
    g = to_nir(m)
    kinds = {type(n).__name__ for n in g.nodes.values() if isinstance(n, NEURONS)}
    assert kinds == ({"CubaLIF"} if kw else {"LIF"})                     # stock NIR neurons only
    x, T = images(16), 6
    counts, logits = lif_counts(m, x, T)
    r = Simulator(g, fixed_point=True).run(x, T)
    assert sum(counts) > 5000
    assert counts == sorted(r.spike_counts.values())                      # every layer, every spike
    assert torch.equal(logits.double().sum(0).argmax(-1), r.logits.sum(0).argmax(-1))
    assert torch.allclose(logits.double(), r.logits, atol=1e-4)
    assert not any(v["high"] or v["low"] or v["wrapped"] for v in r.saturation.values())
    # floating point reads the same graph without Loihi's rounding: close, not equal
    f = Simulator(g).run(x, T)
    diff = sum(abs(a - b) for a, b in zip(counts, sorted(f.spike_counts.values())))
    assert 0 < diff < 0.1 * sum(counts)


def _lif_graph(node, w):
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                               "syn": nir.Linear(weight=np.asarray(w, np.float32)),
                               "lif": node, "out_syn": nir.Linear(weight=np.eye(3, dtype=np.float32)),
                               "output": nir.Output(output_type={"output": np.array([3])})},
                        edges=[("input", "syn"), ("syn", "lif"), ("lif", "out_syn"), ("out_syn", "output")])


def test_stock_lif_and_cubalif_follow_the_documented_discrete_time_reading():
    full = lambda v: np.full(3, v, np.float32)  # noqa: E731
    w = np.array([[0.6, 0.0], [0.3, 0.2], [-0.4, 0.9]], np.float32)
    lif = nir.LIF(tau=full(4.0), r=full(2.0), v_leak=full(0.4), v_threshold=full(1.0), v_reset=full(0.1))
    cub = nir.CubaLIF(tau_syn=full(2.0), tau_mem=full(4.0), r=full(4.0), v_leak=full(0.0),
                      v_threshold=full(1.0), v_reset=full(0.0), w_in=full(3.0))
    x = torch.tensor([[1.0, 0.5], [0.2, 1.5]])
    T = 12
    for node in (lif, cub):
        out = Simulator(_lif_graph(node, w), dtype=torch.float64).run(x, T, record={"lif"}).spikes["lif"]
        I = x.double() @ torch.tensor(w, dtype=torch.float64).T
        u = v = torch.zeros(2, 3, dtype=torch.float64)
        for t in range(T):
            if isinstance(node, nir.LIF):        # v += (v_leak - v + r I) / tau
                v = v + (0.4 - v + 2.0 * I) / 4.0
            else:                                # u += (-u + w_in I) / tau_syn; v += (-v + r u) / tau_mem
                u = u + (-u + 3.0 * I) / 2.0
                v = v + (-v + 4.0 * u) / 4.0
            s = v > 1.0
            assert torch.equal(out[t], s), (type(node).__name__, t)
            v = torch.where(s, torch.tensor(0.1 if isinstance(node, nir.LIF) else 0.0, dtype=torch.float64), v)
        assert out.any() and not out.all()


def test_graph_round_trips_through_hdf5(tmp_path):
    m = saformer(mask=0.5)
    path = tmp_path / "saf.nir"
    write_graph(to_nir(m, seed=3), path)
    g = read_graph(path)
    assert g.metadata["arch"] == "saformer" and int(g.metadata["steps"]) == 4
    x = images(4)
    a = Simulator(to_nir(m, seed=3), fixed_point=True).run(x, 4)
    b = Simulator(g, fixed_point=True).run(x, 4)
    assert torch.equal(a.logits, b.logits) and a.spike_counts == b.spike_counts


def test_lava_fixed_point_parity_and_cuba_decay(tmp_path):
    from mstdeploy.compare.playback import lava_counts
    for kw in ({"mask": 0.5, "mask_sites": ["q", "k", "attn", "mlp"]}, {"current_decay": 0.5}):
        path = tmp_path / "saf.nir"
        write_graph(to_nir(saformer(**kw)), path)
        g = read_graph(path)
        x, T = images(2), 5
        neurons = {k for k, v in g.nodes.items() if isinstance(v, NEURONS)}
        ref = Simulator(g, dtype=torch.float64, fixed_point=True).run(x, T, record=neurons)
        lava = run_lava(path, x.numpy(), T, True, progress=False, timeout=300)
        res = compare(ref, lava, True)
        assert res["reference_spikes"] > 1000 and res["mismatched_spikes"] == 0 and res["passed"], kw
        got = lava_counts(g, x, lava, True)            # energy from Lava: gates on residual sums too
        for key in ("spike_counts", "synaptic_events", "gated_events"):
            assert getattr(got, key) == getattr(ref, key), key


def test_lava_float_parity(tmp_path):
    path = tmp_path / "saf.nir"
    write_graph(to_nir(saformer()), path)
    g = read_graph(path)
    x, T = images(2), 5
    neurons = {k for k, v in g.nodes.items() if isinstance(v, NEURONS)}
    ref = Simulator(g, dtype=torch.float64).run(x, T, record=neurons)
    res = compare(ref, run_lava(path, x.numpy(), T, False, progress=False, timeout=300), False)
    assert res["passed"] and res["mismatched_spikes"] == 0


def test_a_gate_on_a_residual_sum_counts_the_events_it_removes():
    x, T = images(8), 4
    full = Simulator(to_nir(saformer())).run(x, T)
    gated = Simulator(to_nir(saformer(mask=0.5, mask_sites=["mlp"]))).run(x, T)
    syn = "block0.fc1.syn"                 # the first gate: everything upstream is identical
    assert gated.gated_events[syn] > 0
    assert gated.synaptic_events[syn] + gated.gated_events[syn] == full.synaptic_events[syn]


def test_bad_configs_are_one_line_errors():
    with pytest.raises(UserError, match="12-bit decay"):
        preset("saformer-tiny", voltage_decay=0.3)
    with pytest.raises(UserError, match="regions"):
        preset("saformer-tiny", agg_grid=3)
    with pytest.raises(UserError, match="unknown saformer config field"):
        preset("saformer-tiny", attention="spiking")
    r = run_mst("train", "--model", "saformer-tiny", "--attention", "spiking", "--epochs", "1")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_trains_evaluates_and_exports_saformer(tmp_path):
    ck, graph = tmp_path / "saf.pt", tmp_path / "saf.nir"
    r = run_mst("train", "--model", "saformer-tiny", "--epochs", "1", "--steps", "2", "--out", ck,
                "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "SNN (T=2) top-1 accuracy" in r.stdout
    meta = checkpoint.read(ck)["meta"]
    assert 0.0 <= meta["snn_accuracy"] <= 1.0 and "ann_accuracy" not in meta
    r = run_mst("eval", ck, "--json", tmp_path / "e.json")
    assert r.returncode == 0 and json.loads((tmp_path / "e.json").read_text())["snn_accuracy"] == meta["snn_accuracy"]
    assert run_mst("export", ck, "-o", graph).returncode == 0
    r = run_mst("simulate", graph, "-T", "2", "-n", "16", "--fixed-point", "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr


def test_cifar_preset_builds_runs_and_exports():
    m = build_model(preset("saformer-cifar")).eval()
    assert m.config.token_grid() == 8 and m.config.img_size == 32
    with torch.no_grad():
        assert m.step_logits(torch.randn(1, 3, 32, 32), 1).shape == (1, 1, 10)
    g = to_nir(m)
    assert sum(isinstance(n, nir.LIF) for n in g.nodes.values()) == 3 + 1 + 4 * 9
    assert tuple(g.nodes["input"].input_type["input"]) == (3, 32, 32)

"""lava-dl netx files (.net) read as NIR (ir/netx.py) and run by netx's own loader in Lava
(backends/lava_nc/netx_job.py): networks made here with lava-dl's slayer and its export_hdf5, our
reference in fixed point against Intel's stock processes, spike by spike."""
import h5py
import numpy as np
import pytest
import torch

from conftest import one_line_here
from mstdeploy.compare.parity import run_parity
from mstdeploy.ir.io import read_graph
from mstdeploy.simulate.engine import Simulator

slayer = pytest.importorskip("lava.lib.dl.slayer")

CUBA = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03}


def export(blocks, path, x):
    """slayer's blocks run once on x (so that Flatten knows its shape), written as netx writes."""
    with torch.no_grad():
        for b in blocks:
            x = b(x)
    with h5py.File(path, "w") as h:
        layer = h.create_group("layer")
        for i, b in enumerate(blocks):
            b.export_hdf5(layer.create_group(f"{i}"))
    return path


def conv_net(path, delays=False):
    torch.manual_seed(0)
    blocks = [slayer.block.cuba.Input(CUBA),
              slayer.block.cuba.Conv(CUBA, 2, 4, 3, stride=2, padding=1, weight_scale=2),
              slayer.block.cuba.Flatten(),
              slayer.block.cuba.Dense(CUBA, 64, 10, weight_scale=2, delay=delays),
              slayer.block.cuba.Dense({**CUBA, "current_decay": 1.0}, 10, 5, weight_scale=2, delay=delays)]
    export(blocks, path, torch.rand(1, 2, 8, 8, 4))
    if delays:                                   # per-neuron axonal delays, as a trained slayer delay writes them
        rng = np.random.default_rng(0)
        with h5py.File(path, "r+") as f:
            for k in ("3", "4"):
                d = f["layer"][k]["delay"]
                d[...] = rng.integers(0, 4, d.shape).astype(np.float32)
    return path


@pytest.mark.parametrize("delays", [False, True])
def test_reference_equals_netx_in_lava(tmp_path, delays):
    path = conv_net(tmp_path / "net.net", delays)
    g = read_graph(path)
    assert any(type(n).__name__ == "Delay" for n in g.nodes.values()) == delays
    x = torch.as_tensor(np.random.default_rng(1).integers(0, 200, (3, 2, 8, 8)), dtype=torch.float64)
    rep = run_parity(path, x, 12, True, progress=False, timeout=300)
    assert rep["passed"], rep["failed"]
    assert rep["mismatched_spikes"] == 0 and rep["logits_max_abs_diff"] == 0.0
    assert all(v["spikes_reference"] > 0 for v in rep["per_node"].values()), rep["per_node"]
    assert set(rep["per_node"]) == {"input.neuron", "layer1.neuron", "layer3.neuron", "layer4.neuron"}


def test_dense_first_file_and_the_commands(tmp_path, capsys):
    from conftest import mst_here
    torch.manual_seed(0)
    path = export([slayer.block.cuba.Dense(CUBA, 20, 12, weight_scale=3),
                   slayer.block.cuba.Dense(CUBA, 12, 4, weight_scale=3)], tmp_path / "d.net", torch.rand(1, 20, 4))
    g = read_graph(path)
    assert Simulator(g).input_shape == (20,)
    x = (np.random.default_rng(0).random((4, 16, 20)) < 0.5).astype(np.float32)     # spikes, one frame a step
    np.save(tmp_path / "x.npy", x)
    code, out, err = mst_here(capsys, "parity", path, "--inputs", tmp_path / "x.npy", "--fixed-point",
                              "--no-progress", "--json", tmp_path / "p.json")
    assert code == 0, err
    assert "PASS" in out
    code, out, _ = mst_here(capsys, "inspect", path)
    assert code == 0 and "layer0.synapse" in out and "Linear" in out


def test_what_netx_cannot_load_is_one_line(tmp_path, capsys):
    path = conv_net(tmp_path / "net.net")
    with h5py.File(path, "r+") as f:
        f["layer"]["1"]["type"][...] = [b"pool"]
    assert "'pool' layer, which lava-dl's netx does not load" in one_line_here(capsys, "inspect", path)
    torch.manual_seed(0)
    sd = export([slayer.block.sigma_delta.Input({"threshold": 0.1, "activation": torch.relu}),
                 slayer.block.sigma_delta.Dense({"threshold": 0.1, "activation": torch.relu}, 8, 4)],
                tmp_path / "sd.net", torch.rand(1, 8, 4))
    assert "sigma-delta (SDNN)" in one_line_here(capsys, "simulate", sd)
    assert "--dt, --from and --reset are for NIR files" in one_line_here(capsys, "inspect", path, "--from", "norse")
    ok = conv_net(tmp_path / "ok.net")
    np.save(tmp_path / "x.npy", np.ones((1, 2, 8, 8), np.float32))
    assert "add --fixed-point" in one_line_here(capsys, "lava", ok, "--inputs", tmp_path / "x.npy", "-T", 2,
                                                "--no-progress")

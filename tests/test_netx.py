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
    with h5py.File(path, "r+") as f:
        f["layer"]["1"]["type"][...] = [b"conv"]
        f["layer"]["1"]["neuron"]["type"][...] = "RF"
    assert "neuron type 'RF'" in one_line_here(capsys, "inspect", path)
    assert "--dt, --from and --reset are for NIR files" in one_line_here(capsys, "inspect", path, "--from", "norse")
    ok = conv_net(tmp_path / "ok.net")
    np.save(tmp_path / "x.npy", np.ones((1, 2, 8, 8), np.float32))
    assert "add --fixed-point" in one_line_here(capsys, "lava", ok, "--inputs", tmp_path / "x.npy", "-T", 2,
                                                "--no-progress")


# -- writing: our graphs as netx files (loihi/netx.py) --------------------------------------

def test_our_vgg_written_to_netx_runs_there_as_here(tmp_path):
    """A converted VGG with --reset zero (stock IF), pools folded into the next weights, written
    to .net: netx's own loader in Lava equals our reference of the file, spike by spike."""
    from conftest import calibrated
    from mstdeploy import api
    from mstdeploy.export.lower import to_nir
    path = tmp_path / "vgg.net"
    api.write(to_nir(calibrated("vgg").float(), reset="zero"), path)
    with h5py.File(path, "r") as f:
        kinds = [f["layer"][k]["type"][0].decode() for k in sorted(f["layer"], key=int)]
        assert kinds == ["input", "conv", "conv", "conv", "conv", "flatten", "dense", "dense", "dense"]
        assert f["layer/3/weight"].shape[2:] == (6, 6)             # the pool inside conv3's kernel, stride 2
        assert "neuron" not in f["layer/8"]                         # the readout
    g = read_graph(path)
    assert g.metadata["frame_transform"][0] >= 1
    frames = np.round(np.random.default_rng(0).random((2, 1, 8, 8)) * g.metadata["frame_transform"][0])
    rep = run_parity(path, torch.as_tensor(frames), 6, True, progress=False, timeout=300)
    assert rep["passed"], rep["failed"]
    assert rep["mismatched_spikes"] == 0 and rep["logits_max_abs_diff"] == 0.0
    assert rep["reference_spikes"] > 0 and np.any(rep["lava_predictions"])


def test_a_data_set_reaches_a_written_file_as_its_integer_frames(tmp_path):
    from conftest import calibrated
    from mstdeploy import api
    from mstdeploy.export.lower import to_nir
    path = tmp_path / "vgg.net"
    api.write(to_nir(calibrated("vgg").float(), reset="zero"), path)
    ds, _ = api.samples(str(path), "digits", n=4)
    w, b = read_graph(path).metadata["frame_transform"]
    x, _ = ds[0]
    assert torch.equal(x, torch.round(x)) and float(x.max()) > 1     # round(w x + b), not the image
    r = api.simulate(str(path), "digits", steps=4, n=4, fixed_point=True)
    assert r.logits.shape == (4, 4, 10)


def test_what_netx_cannot_express_is_one_line_and_nothing_written(tmp_path, capsys):
    from conftest import calibrated, vgg_files
    from mstdeploy import api
    from mstdeploy.errors import UserError
    from mstdeploy.export.lower import to_nir
    _, _, ck = vgg_files(tmp_path)
    out = tmp_path / "x.net"
    err = one_line_here(capsys, "export", str(ck), "-o", str(out))       # the converted neuron subtracts
    assert "resets by subtraction" in err and "--reset zero" in err and not out.exists()
    with pytest.raises(UserError, match="stem.if .*netx layers are a chain"):
        api.write(to_nir(calibrated("resnet").float(), reset="zero"), out)
    with pytest.raises(UserError, match="graded spikes"):
        api.write(to_nir(calibrated("vgg").float(), spike_levels=4), out)
    assert not out.exists()
    out.write_bytes(b"keep")                                           # a refused write leaves a file alone
    with pytest.raises(UserError):
        api.write(to_nir(calibrated("resnet").float(), reset="zero"), out)
    assert out.read_bytes() == b"keep"


def test_reset_zero_calibration_lowers_the_error(tmp_path):
    """--reset zero --calibrate: each layer's threshold scale is the one nearest the ANN."""
    from conftest import calibrated
    from mstdeploy.compare.calibrate import SCALES, _outputs, calibrate_thresholds
    from mstdeploy.export.lower import to_nir
    m = calibrated("vgg").float()
    g = to_nir(m, reset="zero")
    ref = to_nir(m, spike_levels=m.config.levels)
    x = torch.rand(32, 1, 8, 8)
    c = calibrate_thresholds(g, ref, x, 8, progress=False)
    names = [n for n, v in g.nodes.items() if type(v).__name__ == "IF"]
    scales = [float(c.nodes[n].v_threshold.flat[0] / g.nodes[n].v_threshold.flat[0]) for n in names]
    assert all(min(abs(s - a) for a in SCALES) < 1e-6 for s in scales) and min(scales) < 1.0
    first = names[0]
    target = _outputs(ref, x, 1, {first}, 64)[first] * (float(ref.nodes[first].threshold.flat[0])
                                                          / float(g.nodes[first].v_threshold.flat[0]))
    err = lambda graph: float(((_outputs(graph, x, 8, {first}, 64)[first] - target) ** 2).mean())  # noqa: E731
    assert err(c) <= err(g)


def test_the_rest_of_the_road_on_a_netx_file(tmp_path, capsys):
    """inspect, resources and energy (reference and netx's Lava) on a file slayer wrote."""
    import json
    from conftest import mst_here
    path = conv_net(tmp_path / "net.net")
    x = np.random.default_rng(1).integers(0, 200, (2, 2, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array([1, 3]))
    code, out, err = mst_here(capsys, "inspect", path)
    assert code == 0 and "layer1.synapse" in out and "Conv2d" in out, err
    code, out, err = mst_here(capsys, "resources", path, "--json", tmp_path / "r.json")
    assert code == 0, err
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["neurons"] == 2 * 8 * 8 + 4 * 4 * 4 + 10 + 5 and not r["does_not_fit"], r
    for backend in ("reference", "lava"):
        out_dir = tmp_path / backend
        code, out, err = mst_here(capsys, "energy", path, "--inputs", tmp_path / "x.npy", "--labels",
                                  tmp_path / "y.npy", "-T", 4, "--fixed-point",
                                  "--backend", backend, "--no-progress", "--out", out_dir)
        assert code == 0, err
        e = json.loads((out_dir / "energy.json").read_text())
        assert e["backend"] == backend and e["runs"][0]["per_inference"]["synaptic_events"] > 0, e["runs"][0]


# -- sigma-delta (SDNN) files ---------------------------------------------------------------

SD = {"threshold": 0.1, "activation": torch.relu}


def sd_net(path, delays=False):
    """slayer's sigma-delta Input, Conv, Flatten, Dense and Output (a Sigma), with biases set."""
    torch.manual_seed(0)
    export([slayer.block.sigma_delta.Input(SD),
            slayer.block.sigma_delta.Conv(SD, 2, 4, 3, stride=2, padding=1, weight_scale=2),
            slayer.block.sigma_delta.Flatten(),
            slayer.block.sigma_delta.Dense(SD, 64, 10, weight_scale=2),
            slayer.block.sigma_delta.Output(SD, 10, 5, weight_scale=2)], path, torch.rand(1, 2, 8, 8, 4))
    with h5py.File(path, "r+") as f:                      # biases, as a trained PilotNet SDNN has them
        f["layer/1"].create_dataset("bias", data=np.array([3.0, -2.0, 0.0, 5.0], np.float32))
        f["layer/3"].create_dataset("bias", data=np.arange(-5, 5).astype(np.float32))
        if delays:                                        # per-neuron axonal delays on the dense layers
            rng = np.random.default_rng(0)
            for k, n in (("3", 10), ("4", 5)):
                f[f"layer/{k}"].create_dataset("delay", data=rng.integers(0, 4, n).astype(np.float32))
    return path


@pytest.mark.parametrize("delays", [False, True])
def test_sigma_delta_reference_equals_netx_in_lava(tmp_path, delays):
    """Delta input, SigmaDelta hidden layers with biases, Sigma output: every message, by value,
    and the output equal netx's fixed-point run, with Lava's one step per synapse."""
    path = sd_net(tmp_path / "sd.net", delays)
    g = read_graph(path)
    assert [type(g.nodes[n]).__name__ for n in ("input.neuron", "layer1.delay", "layer1.neuron")] == \
        ["SigmaDelta", "Delay", "SigmaDelta"]
    rng = np.random.default_rng(3)
    frames = rng.integers(-40, 64, (2, 10, 2, 8, 8)).astype(np.float64)
    frames[:, 6:] = frames[:, 5:6]                                   # then held: the deltas stop
    rep = run_parity(path, torch.as_tensor(frames), 10, True, progress=False, timeout=300)
    assert rep["passed"], rep["failed"]
    assert rep["mismatched_spikes"] == 0 and rep["logits_max_abs_diff"] == 0.0
    assert all(v["spikes_reference"] > 0 for v in rep["per_node"].values()), rep["per_node"]


def test_pilotnet_sdnn_gives_intels_recorded_output():
    """Intel's PilotNet SDNN test network and frame (lava-dl's netx tests, tests/data/netx): our
    reading in fixed point gives the output layer's Sigma that lava-dl recorded, step by step."""
    import pathlib
    d = pathlib.Path(__file__).parent / "data" / "netx" / "pilotnet_sdnn"
    g = read_graph(d / "network.net")
    frame = np.load(d / "input.npy")[..., 0].transpose(2, 1, 0)[None]          # (W, H, C) -> (C, H, W)
    r = Simulator(g, "cpu", torch.float64, fixed_point=True).run(torch.as_tensor(frame, dtype=torch.float64), 9)
    sigma = np.cumsum(r.logits[:, 0, 0].numpy()) * 4096                          # Sigma's state, in 2^-12
    assert np.array_equal(sigma, np.load(d / "output.npy")[0]), sigma

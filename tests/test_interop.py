"""NIR both ways (docs/interop.md): our stock export is read by snnTorch, Norse and SpikingJelly
as the converted network; their exports run here, with --dt, as in their own framework;
recurrent graphs and time-varying inputs run in both backends with parity. The peers are pinned
in requirements-peers.txt and installed by `make test`."""
import json
import warnings

import h5py
import nir
import numpy as np
import pytest
import torch

from conftest import calibrated, recurrent_graph
from conftest import mst_here as mst
from mstdeploy.export.lower import to_nir
from mstdeploy.ir.io import read_graph, write_graph
from mstdeploy.ir.topology import NEURONS
from mstdeploy.simulate.engine import Simulator

T = 12


@pytest.fixture(scope="module")
def vgg_graphs(tmp_path_factory):
    d = tmp_path_factory.mktemp("interop")
    model = calibrated("vgg", levels=16).float()
    paths = {"standard": d / "standard.nir", "extension": d / "extension.nir"}
    write_graph(to_nir(model, standard=True), paths["standard"])
    write_graph(to_nir(model), paths["extension"])
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2
    return paths, x


def test_standard_export_is_the_converted_network(vgg_graphs):
    """Stock nodes only, and in float64 the same spikes as our extension nodes, one by one."""
    paths, x = vgg_graphs
    std, ext = read_graph(paths["standard"]), read_graph(paths["extension"])
    kinds = {type(n).__name__ for n in std.nodes.values()}
    assert kinds == {"Input", "Conv2d", "CubaLIF", "Output"}, kinds
    names = [k for k, n in ext.nodes.items() if isinstance(n, NEURONS)]
    a = Simulator(std, dtype=torch.float64).run(x, T, record=set(names))
    b = Simulator(ext, dtype=torch.float64).run(x, T, record=set(names))
    assert sum(int(v.sum()) for v in b.spikes.values()) > 2000
    for k in names:
        assert torch.equal(a.spikes[k].reshape(b.spikes[k].shape), b.spikes[k]), k
    assert np.allclose(a.logits.reshape(b.logits.shape), b.logits, rtol=0, atol=1e-9)


def _peer_logits(peer: str, graph: nir.NIRGraph, x: torch.Tensor, steps: int) -> torch.Tensor:
    """(steps, B, K) outputs of `graph` imported by a peer's own NIR importer, stepped in its framework."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if peer == "norse":
            import norse.torch as norse
            model = norse.from_nir(graph, dt=1e-4)
        elif peer == "snntorch":
            from snntorch.import_nir import import_from_nir
            model = import_from_nir(graph)
        else:
            from spikingjelly.activation_based.nir_exchange.from_nir import import_from_nir
            model = import_from_nir(graph, dt=1e-4)
        outs, state = [], None
        with torch.no_grad():
            for _ in range(steps):
                y, state = model(x, state) if state is not None else model(x)
                outs.append(y.reshape(len(x), -1))
    return torch.stack(outs)


@pytest.mark.parametrize("peer", ["norse", "snntorch", "spikingjelly"])
def test_peers_import_the_standard_export_as_our_network(vgg_graphs, peer):
    paths, x = vgg_graphs
    ours = Simulator(read_graph(paths["standard"])).run(x, T).logits.float()
    ext = Simulator(read_graph(paths["extension"])).run(x, T).logits.float()
    theirs = _peer_logits(peer, nir.read(paths["standard"]), x, T)
    assert theirs.shape == ours.shape
    assert float((theirs - ours).abs().max()) <= 1e-5, peer              # step by step
    assert torch.equal(theirs.sum(0).argmax(-1), ext.sum(0).argmax(-1))   # the extension export's predictions


def _snntorch_export(tmp_path, x: torch.Tensor, steps: int):
    """An snnTorch network with a recurrent LIF layer (RLeaky: its export is a cycle through the
    recurrent Affine) and a LIF output, reset to zero as its export states, and its spike counts."""
    import snntorch as snn
    from snntorch import utils
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(1)
    common = dict(reset_mechanism="zero", init_hidden=True)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 32),
        snn.RLeaky(beta=torch.full((32,), 0.9), threshold=torch.ones(32), linear_features=32, reset_delay=False, **common),
        torch.nn.Linear(32, 10),
        snn.Leaky(beta=torch.full((10,), 0.8), threshold=torch.ones(10), output=True, **common))
    with torch.no_grad():
        net[0].weight *= 3
        utils.reset(net)
        counts = sum(net(x)[0] for _ in range(steps))
        path = tmp_path / "snntorch.nir"
        nir.write(path, export_to_nir(net, torch.rand(64)))
    return path, counts.numpy()


def _norse_export(tmp_path, x: torch.Tensor, steps: int):
    import norse.torch as norse
    from norse.torch.functional.lif_box import LIFBoxParameters
    torch.manual_seed(2)
    cell = lambda n, inv: norse.LIFBoxCell(LIFBoxParameters(  # noqa: E731
        tau_mem_inv=torch.full((n,), inv), v_th=torch.ones(n), v_leak=torch.zeros(n), v_reset=torch.zeros(n)))
    net = norse.SequentialState(torch.nn.Linear(64, 32), cell(32, 100.0), torch.nn.Linear(32, 10), cell(10, 200.0))
    with torch.no_grad():
        net[0].weight *= 30
        net[2].weight *= 10
        state, counts = None, 0
        for _ in range(steps):
            y, state = net(x, state)
            counts = counts + y
        path = tmp_path / "norse.nir"
        nir.write(path, norse.to_nir(net, torch.rand(64)))
    return path, counts.numpy()


def _spikingjelly_export(tmp_path, x: torch.Tensor, steps: int):
    """A SpikingJelly IF + LIF network (hard reset, as its export states) and its spike counts."""
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange.to_nir import export_to_nir
    torch.manual_seed(3)
    net = torch.nn.Sequential(layer.Linear(64, 32), neuron.IFNode(v_threshold=1.0, v_reset=0.0), layer.Linear(32, 10),
                              neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0))
    with torch.no_grad():
        net[0].weight *= 3
        net[2].weight *= 6
        functional.reset_net(net)
        counts = sum(net(x) for _ in range(steps))
        path = tmp_path / "spikingjelly.nir"
        nir.write(path, export_to_nir(net, x[:1], dt=1e-4))
    return path, counts.numpy()


EXPORTS = {"snntorch": _snntorch_export, "norse": _norse_export, "spikingjelly": _spikingjelly_export}


@pytest.mark.parametrize("peer,dt", [("snntorch", "1e-4"), ("norse", "1e-6"), ("spikingjelly", "1e-4")])
def test_their_export_simulates_here_as_there(tmp_path, capsys, peer, dt):
    from sklearn.datasets import load_digits
    x = torch.tensor(load_digits().data[:24] / 16.0, dtype=torch.float32)
    steps = 20
    path, counts = EXPORTS[peer](tmp_path, x, steps)
    assert counts.sum() > 100
    np.save(tmp_path / "x.npy", x.numpy())
    out_node = read_graph(path, float(dt)).edges
    (last,) = [a for a, b in out_node if b == "output"]
    code, _, err = mst(capsys, "simulate", path, "--inputs", tmp_path / "x.npy", "-T", steps, "--no-progress",
                       "--json", tmp_path / "s.json")
    assert code == 2 and "--dt" in err and "less than one step" in err and len(err.splitlines()) == 1
    code, out, err = mst(capsys, "simulate", path, "--inputs", tmp_path / "x.npy", "-T", steps, "--dt", dt,
                         "--no-progress", "--json", tmp_path / "s.json", "--record", last, "--spikes-out",
                         tmp_path / "s.h5")
    assert code == 0, err
    assert "no labels" in out and json.loads((tmp_path / "s.json").read_text())["accuracy"] is None
    with h5py.File(tmp_path / "s.h5") as f:
        ours = f[last][()].sum(1)                                  # (samples, neurons) over the steps
    assert np.array_equal(ours, counts), (ours.sum(), counts.sum())
    if peer == "snntorch":                                          # and on Loihi's integers
        code, out, err = mst(capsys, "parity", path, "--inputs", tmp_path / "x.npy", "-n", 6, "-T", steps, "--dt", dt,
                             "--fixed-point", "--no-progress", "--json", tmp_path / "p.json")
        assert code == 0, out + err
        rep = json.loads((tmp_path / "p.json").read_text())
        assert rep["passed"] and rep["mismatched_spikes"] == 0 and rep["reference_spikes"] > 50


def _numpy_recurrent(g: nir.NIRGraph, frames: np.ndarray) -> dict:
    """conftest.recurrent_graph stepped by hand in float64: frames (T, B, *in) -> spikes (B, T, n)."""
    N = {k: v for k, v in g.nodes.items()}
    Tn, B = frames.shape[:2]
    v1 = np.zeros((B, N["if1"].r.size))
    v2, s2 = np.zeros_like(v1), np.zeros_like(v1)
    keep = 1 - 1 / np.float64(N["lif"].tau[0])
    gain = np.float64(N["lif"].r[0]) / np.float64(N["lif"].tau[0])
    out = {"if1": [], "lif": []}
    for t in range(Tn):
        x = frames[t].reshape(B, -1)
        v1 = v1 + (x @ N["fc1"].weight.T.astype(np.float64) + N["fc1"].bias)
        s1 = (v1 > 1.0).astype(float)
        v1 = np.where(s1 > 0, 0.0, v1)
        i2 = s1 @ N["fc2"].weight.T.astype(np.float64) + N["fc2"].bias + s2 @ N["rec"].weight.T.astype(np.float64)
        v2 = keep * v2 + gain * i2
        s2 = (v2 > 1.0).astype(float)
        v2 = np.where(s2 > 0, 0.0, v2)
        out["if1"].append(s1)
        out["lif"].append(s2)
    return {k: np.stack(v, 1) for k, v in out.items()}


def test_recurrent_graph_on_an_event_stream_in_both_backends(tmp_path, capsys):
    g = recurrent_graph()
    path = tmp_path / "rec.nir"
    write_graph(g, path)
    steps = 10
    rng = np.random.default_rng(3)
    frames = (rng.random((steps, 5, 1, 8, 8)) < 0.3).astype(np.float32)      # events: (T, B, ...)
    with h5py.File(tmp_path / "events.h5", "w") as f:
        f["inputs"] = frames
        f["labels"] = np.arange(5)
    # the reference simulator: what the recurrence means, in chunks of any size
    want = _numpy_recurrent(g, frames.astype(np.float64))
    x = torch.as_tensor(frames).transpose(0, 1)
    for chunk in (None, 3):
        r = Simulator(g, dtype=torch.float64, chunk=chunk).run(x, steps, record={"if1", "lif"})
        for k in want:
            assert np.array_equal(r.spikes[k].transpose(0, 1).numpy(), want[k]), (k, chunk)
    assert want["lif"].sum() > 50
    # Lava, fixed point and float, through the CLI (the file's steps set T)
    for fixed in (True, False):
        code, out, err = mst(capsys, "parity", path, "--inputs", tmp_path / "events.h5", "--no-progress",
                             "--json", tmp_path / "p.json", *(["--fixed-point"] if fixed else []))
        assert code == 0, out + err
        rep = json.loads((tmp_path / "p.json").read_text())
        assert rep["steps"] == steps and rep["images"] == 5
        assert rep["mismatched_spikes"] == 0 and rep["reference_spikes"] > 100, fixed


def test_bad_input_files_and_time_bases(tmp_path, capsys):
    g = tmp_path / "rec.nir"
    write_graph(recurrent_graph(), g)
    np.save(tmp_path / "bad_shape.npy", np.zeros((3, 2, 8, 8), np.float32))
    np.save(tmp_path / "nan.npy", np.full((3, 1, 8, 8), np.nan, np.float32))
    np.save(tmp_path / "frames.npy", np.zeros((4, 3, 1, 8, 8), np.float32))
    np.save(tmp_path / "labels.npy", np.zeros(2))
    (tmp_path / "text.npy").write_text("not numpy")
    cases = [(("--inputs", tmp_path / "bad_shape.npy"), "must be (samples, 1, 8, 8)"),
             (("--inputs", tmp_path / "nan.npy"), "NaN"),
             (("--inputs", tmp_path / "missing.npy"), "not found"),
             (("--inputs", tmp_path / "text.npy"), "not a readable"),
             (("--inputs", tmp_path / "frames.npy", "-T", "6"), "has 4 steps"),
             (("--inputs", tmp_path / "frames.npy", "--labels", tmp_path / "labels.npy"), "3 whole numbers"),
             (("--inputs", tmp_path / "frames.npy", "--dataset", "digits"), "replaces --dataset"),
             (("--labels", tmp_path / "labels.npy"), "--labels goes with --inputs"),
             (("--dt", "0"), "positive"), (("--dt", "nan"), "positive")]
    for extra, words in cases:
        code, _, err = mst(capsys, "simulate", g, *extra, "--no-progress", "--json", tmp_path / "s.json")
        err = err.strip().splitlines()
        assert code == 2 and len(err) == 1 and words in err[0], (extra, err)
    assert not (tmp_path / "s.json").exists()

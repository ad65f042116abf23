"""NIR both ways (docs/interop.md): our stock export is read by snnTorch, Norse and SpikingJelly
as the converted network (their exports read here: test_producers.py); recurrent graphs and
time-varying inputs run in both backends with parity. The peers are pinned in
requirements-peers.txt and installed by `make test`."""
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

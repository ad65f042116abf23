"""Their networks as they run them (docs/interop.md, "Producer conventions"): small networks built
in snnTorch 1.0.0, Norse 1.1.0 and SpikingJelly 2.0.0, stepped there, exported by their own
exporters and read here with --from: the output layer's spikes, sample by sample, equal theirs.
A run that stays silent, or a file read without its producer, says so."""
import json
import pathlib
import warnings

import nir
import numpy as np
import pytest
import torch

from conftest import mst_here as mst
from mstdeploy.errors import Caution
from mstdeploy.ir.io import read_graph, write_graph
from mstdeploy.simulate.engine import Simulator

STEPS = 20


def _digits(n: int = 24) -> torch.Tensor:
    from sklearn.datasets import load_digits
    return torch.tensor(load_digits().data[:n] / 16.0, dtype=torch.float32)


def _snntorch(kind: str, x: torch.Tensor):
    """(graph, output spikes (B, 10) summed over the steps) of Linear -> hidden -> Linear -> Leaky."""
    import snntorch as snn
    from snntorch import utils
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(1)
    reset = {"reset_mechanism": "zero"} if kind == "zero" else {}          # else snnTorch's default: subtract
    v = lambda n, beta: dict(beta=torch.full((n,), beta), threshold=torch.ones(n), init_hidden=True, **reset)  # noqa: E731
    hidden = {"leaky": lambda: snn.Leaky(**v(32, 0.9)),
              "beta1": lambda: snn.Leaky(**v(32, 1.0)),                        # its integrate-and-fire
              "synaptic": lambda: snn.Synaptic(alpha=torch.full((32,), 0.8), **v(32, 0.9)),
              "rleaky": lambda: snn.RLeaky(linear_features=32, **v(32, 0.9)),
              "zero": lambda: snn.RLeaky(linear_features=32, reset_delay=False, **v(32, 0.9))}[kind]()
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), hidden, torch.nn.Linear(32, 10),
                              snn.Leaky(output=True, **v(10, 0.8)))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")                                       # beta = 1: its 1 / 0
        net[0].weight *= 3
        net[2].weight *= 3
        utils.reset(net)
        counts = sum(net(x)[0] for _ in range(STEPS))
        return export_to_nir(net, torch.rand(64)), counts.numpy()


def _norse(kind: str, x: torch.Tensor):
    """(graph, output (B, 10): spike counts, or an LI readout's voltages (T, B, 10))."""
    import norse.torch as norse
    from norse.torch.functional.iaf import IAFParameters
    from norse.torch.functional.leaky_integrator_box import LIBoxParameters
    from norse.torch.functional.lif import LIFParameters
    from norse.torch.functional.lif_box import LIFBoxParameters
    torch.manual_seed(2)
    full = lambda n, v: torch.full((n,), float(v))  # noqa: E731
    cell = {"lif": lambda n: norse.LIFCell(LIFParameters(tau_mem_inv=full(n, 100), tau_syn_inv=full(n, 200),
                                                         v_th=full(n, 1), v_leak=full(n, 0), v_reset=full(n, 0))),
            "lifbox": lambda n: norse.LIFBoxCell(LIFBoxParameters(tau_mem_inv=full(n, 100), v_th=full(n, 1),
                                                                  v_leak=full(n, 0), v_reset=full(n, 0))),
            "iaf": lambda n: norse.IAFCell(IAFParameters(v_th=full(n, 1), v_reset=full(n, 0)))}
    readout = kind == "li"
    net = norse.SequentialState(torch.nn.Linear(64, 32), cell["lif" if readout else kind](32), torch.nn.Linear(32, 10),
                                norse.LIBoxCell(LIBoxParameters(tau_mem_inv=full(10, 200), v_leak=full(10, 0)))
                                if readout else cell[kind](10))
    with torch.no_grad():
        gain = {"iaf": 3, "lif": 8, "li": 8, "lifbox": 20}[kind]
        net[0].weight *= gain
        net[2].weight *= gain
        state, outs = None, []
        for _ in range(STEPS):
            y, state = net(x, state)
            outs.append(y)
        outs = torch.stack(outs).numpy()
        return norse.to_nir(net, torch.rand(64)), (outs if readout else outs.sum(0))


def _spikingjelly(kind: str, x: torch.Tensor):
    """An IF + LIF network; "tie": weights of 1/8 on 0/1 inputs, so membranes land exactly on the
    threshold, where SpikingJelly (v >= threshold) and NIR (v > threshold) part."""
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange.to_nir import export_to_nir
    torch.manual_seed(3)
    net = torch.nn.Sequential(layer.Linear(64, 32), neuron.IFNode(v_threshold=1.0, v_reset=0.0), layer.Linear(32, 10),
                              neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0))
    with torch.no_grad():
        net[0].weight *= 3
        net[2].weight *= 6
        if kind == "tie":
            for lin in (net[0], net[2]):
                lin.weight.copy_(torch.randint(-2, 4, lin.weight.shape) / 8.0)
                lin.bias.zero_()
            x = (x > 0.3).float()
        functional.reset_net(net)
        counts = sum(net(x) for _ in range(STEPS))
        return export_to_nir(net, x[:1], dt=1e-4), counts.numpy(), x


def _ours(path, x, **reading) -> tuple[nir.NIRGraph, torch.Tensor, np.ndarray]:
    """Our run of the file: (graph, per-step outputs (T, B, K), output layer's spikes (B, K))."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Caution)
        g = read_graph(path, **reading)
    (last,) = [a for a, b in g.edges if isinstance(g.nodes[b], nir.Output)]
    r = Simulator(g).run(x, STEPS, record={last})
    spikes = r.spikes.get(last)                              # None for a non-spiking readout
    return g, r.logits, None if spikes is None else spikes.sum(0).reshape(len(x), -1).numpy()


SNNTORCH = ["leaky", "beta1", "synaptic", "rleaky"]


@pytest.mark.parametrize("kind", SNNTORCH + ["zero"])
def test_snntorch_networks_run_here_as_there(tmp_path, kind):
    x = _digits()
    graph, theirs = _snntorch(kind, x)
    nir.write(tmp_path / "g.nir", graph)
    _, _, ours = _ours(tmp_path / "g.nir", x, producer="snntorch", reset="zero" if kind == "zero" else None)
    assert theirs.sum() > 100 and np.array_equal(ours, theirs), (ours.sum(), theirs.sum())
    if kind == "leaky":                   # NIR's reading of the same file (reset to zero) is not snnTorch's
        _, _, plain = _ours(tmp_path / "g.nir", x, dt=1e-4)
        assert not np.array_equal(plain, theirs)


@pytest.mark.parametrize("kind", ["lif", "lifbox", "iaf", "li"])
def test_norse_networks_run_here_as_there(tmp_path, kind):
    x = _digits()
    graph, theirs = _norse(kind, x)
    nir.write(tmp_path / "g.nir", graph)
    _, logits, ours = _ours(tmp_path / "g.nir", x, producer="norse")
    if kind == "li":                        # the readout's voltages, step by step
        assert np.abs(theirs).max() > 0.1
        assert np.allclose(logits.numpy(), theirs, rtol=1e-5, atol=1e-6)
    else:
        assert theirs.sum() > 100 and np.array_equal(ours, theirs), (ours.sum(), theirs.sum())


@pytest.mark.parametrize("kind", ["plain", "tie"])
def test_spikingjelly_networks_run_here_as_there(tmp_path, kind):
    graph, theirs, x = _spikingjelly(kind, _digits())
    nir.write(tmp_path / "g.nir", graph)
    _, _, ours = _ours(tmp_path / "g.nir", x, producer="spikingjelly")
    assert theirs.sum() > 100 and np.array_equal(ours, theirs), (ours.sum(), theirs.sum())
    if kind == "tie":                       # read as NIR says (v > threshold), the ties go the other way
        _, _, strict = _ours(tmp_path / "g.nir", x, dt=1e-4)
        assert not np.array_equal(strict, theirs)


def test_norse_files_are_never_silently_wrong(tmp_path, capsys):
    """The two silent cases of a Norse file read with the old advice (--dt 1e-6): warnings that
    name the cause, in the JSON too; with --from norse the right result, in Lava's integers too."""
    x = _digits()
    np.save(tmp_path / "x.npy", x.numpy())
    common = ("--inputs", tmp_path / "x.npy", "-T", STEPS, "--no-progress", "--json", tmp_path / "s.json")
    for kind in ("iaf", "lif"):
        graph, theirs = _norse(kind, x)
        path = tmp_path / f"{kind}.nir"
        nir.write(path, graph)
        if kind == "lif":                     # in steps: refused, with the cause
            code, _, err = mst(capsys, "simulate", path, *common)
            assert code == 2 and "less than one step" in err and "--from norse" in err, err
            assert len(err.strip().splitlines()) == 1
        code, _, err = mst(capsys, "simulate", path, *common, "--dt", "1e-6")
        warned = [line for line in err.splitlines() if line.startswith("warning: ")]
        report = json.loads((tmp_path / "s.json").read_text())
        assert code == 0 and warned, err
        if kind == "iaf":                     # nothing fires: the run says so, and why
            assert report["per_inference"]["synaptic_events"] == 0
            assert report["warnings"] and "no neuron fired" in report["warnings"][0]
            assert "dt = 1e-06" in report["warnings"][0] and "--from" in report["warnings"][0]
        else:                                 # it fires, wrongly: the file's constants name Norse
            assert "Norse's LIFCell" in warned[0] and "--from norse" in warned[0]
        code, out, err = mst(capsys, "inspect", path, "--dt", "1e-6")
        assert code == 0 and ("input gain 1e-06" if kind == "iaf" else "input gain 0.2") in out
        code, out, err = mst(capsys, "inspect", path, "--from", "norse")
        assert code == 0 and "input gain 1;" in out and "as Norse runs it" in out
        code, _, err = mst(capsys, "simulate", path, *common, "--from", "norse", "--record", "3",
                           "--spikes-out", tmp_path / "s.h5")
        assert code == 0 and "warning" not in err, err
        assert json.loads((tmp_path / "s.json").read_text())["warnings"] == []
        import h5py
        with h5py.File(tmp_path / "s.h5") as f:
            assert np.array_equal(f["3"][()].sum(1), theirs)
    code, out, err = mst(capsys, "parity", tmp_path / "lif.nir", "--from", "norse", "--inputs", tmp_path / "x.npy",
                         "-n", 6, "-T", STEPS, "--fixed-point", "--no-progress", "--json", tmp_path / "p.json")
    rep = json.loads((tmp_path / "p.json").read_text())
    assert code == 0 and rep["mismatched_spikes"] == 0 and rep["reference_spikes"] > 50, out + err


def test_snntorch_zero_reset_in_lava_fixed_point(tmp_path, capsys):
    """RLeaky (reset_delay=False) and Leaky with reset to zero: exact, and on Loihi's integers."""
    x = _digits()
    graph, _ = _snntorch("zero", x)
    nir.write(tmp_path / "g.nir", graph)
    np.save(tmp_path / "x.npy", x.numpy())
    code, out, err = mst(capsys, "parity", tmp_path / "g.nir", "--from", "snntorch", "--reset", "zero", "--inputs",
                         tmp_path / "x.npy", "-n", 6, "-T", STEPS, "--fixed-point", "--no-progress",
                         "--json", tmp_path / "p.json")
    rep = json.loads((tmp_path / "p.json").read_text())
    assert code == 0 and rep["passed"] and rep["mismatched_spikes"] == 0 and rep["reference_spikes"] > 50, out + err


def _lif(tau, r) -> nir.NIRGraph:
    n = 4
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([n])}),
                               "fc": nir.Affine(weight=np.eye(n, dtype=np.float32) * 0.3, bias=np.zeros(n, np.float32)),
                               "lif": nir.LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.zeros(n),
                                              v_threshold=np.ones(n)),
                               "output": nir.Output(output_type={"output": np.array([n])})},
                        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])


def test_infinite_time_constants_are_their_limit(tmp_path, capsys):
    """tau = r = inf: v += input (snnTorch's beta = 1); NaN, or an infinite gain beside a finite
    tau, stays one line and exit 2; --reset without --from snntorch too."""
    write_graph(_lif(np.inf, np.inf), tmp_path / "inf.nir")
    g = read_graph(tmp_path / "inf.nir")
    r = Simulator(g, dtype=torch.float64).run(torch.ones(1, 4), 10, record={"lif"})
    assert r.spikes["lif"][:, 0, 0].int().tolist() == [0, 0, 0, 1, 0, 0, 0, 1, 0, 0]   # 0.3 a step, reset to 0
    np.save(tmp_path / "x.npy", np.ones((2, 4), np.float32))
    for tau, r_, words in [(np.nan, 1.0, "NaN or infinite values in tau"),
                           (5.0, np.inf, "infinite gain needs its time constant infinite too")]:
        write_graph(_lif(tau, r_), tmp_path / "bad.nir")
        code, _, err = mst(capsys, "simulate", tmp_path / "bad.nir", "--inputs", tmp_path / "x.npy", "--no-progress",
                           "--json", tmp_path / "s.json")
        assert code == 2 and len(err.strip().splitlines()) == 1 and words in err, err
    code, _, err = mst(capsys, "simulate", tmp_path / "inf.nir", "--inputs", tmp_path / "x.npy", "--reset", "zero",
                       "--no-progress", "--json", tmp_path / "s.json")
    assert code == 2 and "--reset goes with --from snntorch" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.json").exists()


# -- sinabs, Spyx, Rockpool: files their own exporters wrote (tests/data/producers) -----------

PRODUCED = pathlib.Path(__file__).parent / "data" / "producers"
CASES = ["sinabs_iaf", "sinabs_lif", "spyx_lif", "spyx_if", "rockpool_lif"]


def _produced(case):
    z = np.load(PRODUCED / f"{case}.npz")
    return PRODUCED / f"{case}.nir", torch.tensor(z["inputs"]), z["counts"]


@pytest.mark.parametrize("case", CASES)
def test_their_files_with_from_give_their_counts(case):
    """Trained there on digits, exported by their own exporter: with --from, the output spike
    counts of all 64 samples at T = 32 equal the framework's own run."""
    path, x, counts = _produced(case)
    g = read_graph(path, producer=case.split("_")[0])
    ours = Simulator(g, "cpu", torch.float32).run(x, 32).logits.sum(0).numpy()
    assert int((ours == counts).all(1).sum()) == 64, np.abs(ours - counts).sum(1)


@pytest.mark.parametrize("case", CASES)
def test_a_plain_read_of_their_files_names_the_flag(case):
    """Without --from: a warning (or, where NIR's type check refuses the file, the error) names
    the flag, and the counts a plain read gives are not theirs."""
    from mstdeploy.errors import UserError
    path, x, counts = _produced(case)
    flag = f"--from {case.split('_')[0]}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            g = read_graph(path)
        except UserError as e:
            assert flag in str(e)
            return
    assert any(flag in str(w.message) for w in caught), [str(w.message) for w in caught]
    ours = Simulator(g, "cpu", torch.float32).run(x, 32).logits.sum(0).numpy()
    assert int((ours == counts).all(1).sum()) < 64


def test_their_files_in_fixed_point(tmp_path, capsys):
    """sinabs (graded payloads, a leak) runs in Lava's fixed point spike for spike; what Loihi
    cannot hold is one line: Spyx's per-neuron decays, Rockpool's synaptic current (an LI)."""
    from conftest import one_line_here
    from mstdeploy.compare.parity import run_parity
    for case in ("sinabs_iaf", "sinabs_lif"):
        path, x, _ = _produced(case)
        rep = run_parity(path, x[:2].double(), 32, True, progress=False, timeout=300,
                         reading={"producer": "sinabs"})
        assert rep["passed"] and rep["mismatched_spikes"] == 0 and rep["reference_spikes"] > 0, rep["failed"]
    np.save(tmp_path / "x.npy", _produced("spyx_lif")[1][:2].numpy())
    err = one_line_here(capsys, "simulate", PRODUCED / "spyx_lif.nir", "--from", "spyx", "--inputs",
                        tmp_path / "x.npy", "-T", 4, "--fixed-point")
    assert "non-uniform tau_syn" in err
    err = one_line_here(capsys, "simulate", PRODUCED / "rockpool_lif.nir", "--from", "rockpool", "--inputs",
                        tmp_path / "x.npy", "-T", 4, "--fixed-point")
    assert "(LI)" in err

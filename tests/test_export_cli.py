"""mst export / inspect / simulate as a user runs them."""
import json

import h5py
import pytest
import torch

from conftest import mst_here, one_line_here, run_mst
from mstdeploy.models import checkpoint
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    torch.manual_seed(0)
    out = {}
    for name, kw in [("mst", dict(attention="spiking", mask=0.75)), ("vgg", {})]:
        m = build_model(preset("mst-tiny" if name == "mst" else "vgg-tiny", in_chans=1, **kw))
        m.train()
        with torch.no_grad():
            m(torch.randn(32, 1, 16, 16))
        out[name] = d / f"{name}.pt"
        checkpoint.save(out[name], m, {"dataset": "digits"})
    return out


def test_export_inspect_simulate(ckpts, tmp_path):
    g = tmp_path / "m.nir"
    r = run_mst("export", ckpts["mst"], "-o", g, "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "12 gated synapse groups" in r.stdout
    r = run_mst("inspect", g)
    assert r.returncode == 0 and "SpikeProduct (ext)" in r.stdout and "ResetSubIF (ext)" in r.stdout
    assert "seed=3" in r.stdout
    out, spikes = tmp_path / "sim.json", tmp_path / "spikes.h5"
    r = run_mst("simulate", g, "-T", "8", "-n", "10", "--json", out, "--record", "patch_embed.if",
                "--spikes-out", spikes, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "    8 " in r.stdout
    res = json.loads(out.read_text())
    assert res["images"] == 10 and sorted(map(int, res["accuracy"])) == list(range(1, 9))
    assert res["per_inference"]["gated_events"] > 0 and res["per_inference"]["synaptic_events"] > 0
    with h5py.File(spikes) as f:
        assert f["patch_embed.if"].shape == (10, 8, 32, 64)
    # no masking: the same weights gate nothing and deliver more events
    g0 = tmp_path / "m0.nir"
    assert run_mst("export", ckpts["mst"], "-o", g0, "--mask", "0").returncode == 0
    r = run_mst("simulate", g0, "-T", "8", "-n", "10", "--json", tmp_path / "s0.json", "--no-progress")
    res0 = json.loads((tmp_path / "s0.json").read_text())
    assert res0["per_inference"]["gated_events"] == 0
    assert res0["per_inference"]["synaptic_events"] > res["per_inference"]["synaptic_events"]


def test_simulation_is_independent_of_batch_size(ckpts, tmp_path):
    g = tmp_path / "m.nir"
    run_mst("export", ckpts["mst"], "-o", g)
    res = []
    for bs in ("3", "64"):
        out = tmp_path / f"b{bs}.json"
        r = run_mst("simulate", g, "-T", "6", "-n", "7", "--batch-size", bs, "--json", out, "--no-progress")
        assert r.returncode == 0, r.stderr
        res.append(json.loads(out.read_text()))
    assert res[0]["accuracy"] == res[1]["accuracy"]
    assert res[0]["per_node"] == res[1]["per_node"]


def test_standard_export(ckpts, tmp_path):
    g = tmp_path / "v.nir"
    r = run_mst("export", ckpts["vgg"], "-o", g, "--standard")
    assert r.returncode == 0, r.stderr
    r = run_mst("inspect", g)
    assert "(ext)" not in r.stdout.split("node types:")[1] and "0 extension nodes" in r.stdout
    r = run_mst("export", ckpts["mst"], "-o", tmp_path / "x.nir", "--standard")
    assert r.returncode == 2 and "ResetSubIF" in r.stderr and "SpikeProduct" in r.stderr
    r = run_mst("export", ckpts["vgg"], "-o", tmp_path / "x.nir", "--standard", "--mask", "0.5")
    assert r.returncode == 2 and "SynapseGate" in r.stderr
    assert not (tmp_path / "x.nir").exists()


def test_bad_inputs(ckpts, tmp_path, capsys):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"\x89HDF\r\n garbage")
    for args in (("inspect", bad), ("simulate", bad), ("simulate", tmp_path / "none.nir"),
                 ("export", ckpts["mst"], "-o", tmp_path / "y.nir", "--mask", "1.0")):
        one_line_here(capsys, *args)
    g = tmp_path / "m.nir"
    assert mst_here(capsys, "export", ckpts["mst"], "-o", g)[0] == 0
    assert "expected file" in one_line_here(capsys, "simulate", g, "--dataset", "cifar10", "--data", tmp_path)
    assert "no such node" in one_line_here(capsys, "simulate", g, "--record", "nope", "--spikes-out", tmp_path / "s.h5",
                                           "-n", "2")

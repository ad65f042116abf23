"""Fuzzing the NIR reader and the checkpoint loader (hypothesis): a mutated file gives exit 0 with a
run, or exit 2 with one line, never a traceback, a hang or a write."""
import pathlib
import shutil

import nir
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import calibrated
from mstdeploy.cli import main
from mstdeploy.export.lower import to_nir
from mstdeploy.ir.io import write_graph
from mstdeploy.models import checkpoint
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ODD = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e30, -1e30, 1e-30, 3.5, 2.0 ** 40])
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True),
                 st.text(max_size=8), st.lists(st.integers(-3, 300), max_size=5), st.binary(max_size=8))


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    g = d / "g.nir"
    write_graph(to_nir(calibrated("vgg", levels=16, mask=0.5).float()), g)
    ck = d / "c.pt"
    torch.manual_seed(0)
    checkpoint.save(ck, build_model(preset("vgg-tiny", in_chans=1, img_size=8, layers=[4, "M"], hidden=8)),
                    {"dataset": "digits"})
    return g, ck


def _run(capsys, *argv, out: pathlib.Path) -> None:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert not out.exists(), "a failed run wrote its output"


def _flip(data: bytes, where: list, values: list) -> bytes:
    b = bytearray(data)
    for w, v in zip(where, values):
        b[w % len(b)] = v
    return bytes(b)


@SETTINGS
@given(node=st.integers(0, 10 ** 6), field=st.integers(0, 10 ** 6), index=st.integers(0, 10 ** 6), value=ODD,
       edge=st.sampled_from(["keep", "drop", "reverse", "self"]))
@example(node=184, field=129, index=425947, value=3.5, edge="self")      # a conv reading itself: its first step
def test_mutated_graphs(originals, tmp_path, capsys, node, field, index, value, edge):
    g = nir.read(originals[0])
    names = list(g.nodes)
    n = g.nodes[names[node % len(names)]]
    arrays = [k for k, v in vars(n).items() if isinstance(v, np.ndarray) and v.size and v.dtype.kind == "f"]
    if arrays:
        a = getattr(n, arrays[field % len(arrays)])
        a.reshape(-1)[index % a.size] = value
    edges = list(g.edges)
    k = index % len(edges)
    if edge == "drop":
        edges.pop(k)
    elif edge == "reverse":
        edges[k] = edges[k][::-1]
    elif edge == "self":
        edges.append((edges[k][1], edges[k][1]))
    path = tmp_path / "m.nir"
    write_graph(nir.NIRGraph(nodes=g.nodes, edges=edges, type_check=False), path)
    out = tmp_path / "r.json"
    out.unlink(missing_ok=True)
    _run(capsys, "simulate", path, "-n", "2", "-T", "3", "--no-progress", "--json", out, out=out)
    out.unlink(missing_ok=True)
    _run(capsys, "simulate", path, "-n", "2", "-T", "3", "--no-progress", "--fixed-point", "--json", out, out=out)


@SETTINGS
@given(where=st.lists(st.integers(0, 10 ** 7), min_size=1, max_size=6),
       values=st.lists(st.integers(0, 255), min_size=6, max_size=6))
def test_corrupted_graph_files(originals, tmp_path, capsys, where, values):
    path = tmp_path / "c.nir"
    path.write_bytes(_flip(originals[0].read_bytes(), where, values))
    out = tmp_path / "r.json"
    out.unlink(missing_ok=True)
    _run(capsys, "inspect", path, out=out)
    _run(capsys, "simulate", path, "-n", "2", "-T", "2", "--no-progress", "--json", out, out=out)


@SETTINGS
@given(key=st.integers(0, 10 ** 6), value=JUNK, weight=st.integers(0, 10 ** 6), odd=ODD,
       part=st.sampled_from(["config", "weights", "shape"]))
def test_mutated_checkpoints(originals, tmp_path, capsys, key, value, weight, odd, part):
    ck = torch.load(originals[1], weights_only=False)
    if part == "config":
        keys = sorted(ck["config"])
        ck["config"][keys[key % len(keys)]] = value
    else:
        names = sorted(ck["state_dict"])
        name = names[weight % len(names)]
        t = ck["state_dict"][name]
        if part == "shape":
            ck["state_dict"][name] = torch.zeros(t.numel() + 1)
        elif t.is_floating_point() and t.numel():
            t.reshape(-1)[key % t.numel()] = float(odd)
    path = tmp_path / "m.pt"
    torch.save(ck, path)
    out = tmp_path / "m.nir"
    out.unlink(missing_ok=True)
    _run(capsys, "export", path, "-o", out, out=out)
    _run(capsys, "eval", path, "--batch-size", "64", out=tmp_path / "none")


@SETTINGS
@given(where=st.lists(st.integers(0, 10 ** 7), min_size=1, max_size=6),
       values=st.lists(st.integers(0, 255), min_size=6, max_size=6))
def test_corrupted_checkpoint_files(originals, tmp_path, capsys, where, values):
    path = tmp_path / "c.pt"
    path.write_bytes(_flip(originals[1].read_bytes(), where, values))
    out = tmp_path / "m.nir"
    out.unlink(missing_ok=True)
    _run(capsys, "export", path, "-o", out, out=out)
    shutil.rmtree(tmp_path / "none", ignore_errors=True)

"""Our NIR files: every node type round-trips through nir.write/nir.read; bad files fail clearly."""
import h5py
import nir
import numpy as np
import pytest

from mstdeploy.errors import UserError
from mstdeploy.ir import nodes as X
from mstdeploy.ir.io import read_graph, write_graph


def every_node_graph() -> nir.NIRGraph:
    f = np.float32
    n = {
        "input": nir.Input(input_type={"input": np.array([2, 4, 4])}),
        "conv": nir.Conv2d(input_shape=(4, 4), weight=np.ones((3, 2, 2, 2), f), stride=2, padding=0,
                           dilation=1, groups=1, bias=np.zeros(3, f)),
        "flat": nir.Flatten(input_type={"input": np.array([3, 2, 2])}, start_dim=1, end_dim=2),
        "if": X.ResetSubIF(shape=(3, 4), threshold=1.5, v_init=0.75, bias=np.arange(12, dtype=f).reshape(3, 4)),
        "gate": X.SynapseGate(shape=(3, 4), p=0.25, seed=5, stream=2),
        "lin": nir.Conv1d(input_shape=4, weight=np.ones((3, 3, 1), f), stride=1, padding=0, dilation=1,
                          groups=1, bias=np.zeros(3, f)),
        "scale": nir.Scale(scale=np.full((3, 4), 2.0, f)),
        "ra": X.Route(in_shape=(3, 4), index=np.concatenate([np.arange(12), -np.ones(12, np.int64)])),
        "rb": X.Route(in_shape=(3, 4), index=np.concatenate([-np.ones(12, np.int64), np.arange(12)])),
        "prod": X.SpikeProduct(a_shape=(3, 4), b_shape=(4, 3),
                               mode="cumulative", scale=0.5),
        "soft": X.HostSoftmax(shape=(3, 3), scale=2.0, bias=np.eye(3, dtype=f), axis=-1),
        "rl": X.Route(in_shape=(3, 3), index=np.arange(9).reshape(1, 3, 3)),
        "ln": X.HostLayerNorm(shape=(3, 3), weight=np.full((1, 3, 1), 0.5, f), bias=np.ones((3, 1), f), axis=0,
                              eps=1e-5, mode="per_step"),
        "delay": nir.Delay(delay=np.ones((3, 3), f)),
        "fl2": nir.Flatten(input_type={"input": np.array([3, 3])}, start_dim=0, end_dim=1),
        "aff": nir.Affine(weight=np.ones((2, 9), f), bias=np.ones(2, f)),
        "sif": nir.IF(r=np.ones(2, f), v_threshold=np.ones(2, f), v_reset=np.zeros(2, f)),
        "sd": X.SigmaDelta(shape=(2,), threshold=0.5, bias=np.array([1.0, -2.0], f), sigma=1, relu=0),
        "relay": X.Relay(shape=(2,)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    e = [("input", "conv"), ("conv", "flat"), ("flat", "if"), ("if", "gate"), ("gate", "lin"),
         ("lin", "scale"), ("scale", "ra"), ("if", "rb"), ("ra", "prod"), ("rb", "prod"), ("prod", "soft"),
         ("soft", "rl"), ("rl", "ln"), ("ln", "delay"), ("delay", "fl2"), ("fl2", "aff"), ("aff", "sif"), ("sif", "sd"), ("sd", "relay"),
         ("relay", "output")]
    return nir.NIRGraph(nodes=n, edges=e, metadata={"format": "test"})


def _fields(node):
    d = node.to_dict()
    d.pop("metadata", None)
    return d


def test_every_node_type_round_trips(tmp_path):
    g = every_node_graph()
    path = tmp_path / "g.nir"
    write_graph(g, path)
    h = nir.read(path)                     # plain nir.read: our types are registered
    assert set(h.nodes) == set(g.nodes) and sorted(h.edges) == sorted(g.edges)
    for k in g.nodes:
        assert type(h.nodes[k]) is type(g.nodes[k]), k
        a, b = _fields(g.nodes[k]), _fields(h.nodes[k])
        assert a.keys() == b.keys(), k
        for f in a:
            if f in ("nodes", "type"):
                continue
            assert np.array_equal(np.asarray(a[f]), np.asarray(b[f])), (k, f)
    assert h.nodes["gate"].seed == 5 and isinstance(h.nodes["gate"].seed, int)
    assert h.nodes["prod"].mode == "cumulative" and h.metadata["format"] == "test"
    assert {type(n).__name__ for n in h.nodes.values()} >= {c.__name__ for c in X.EXTENSIONS}


def test_corrupt_truncated_unknown_and_mismatched_files(tmp_path):
    path = tmp_path / "g.nir"
    write_graph(every_node_graph(), path)
    data = path.read_bytes()
    (tmp_path / "trunc.nir").write_bytes(data[: len(data) // 3])
    with pytest.raises(UserError, match="corrupt or truncated"):
        read_graph(tmp_path / "trunc.nir")
    (tmp_path / "junk.nir").write_bytes(b"hello")
    with pytest.raises(UserError, match="corrupt or truncated"):
        read_graph(tmp_path / "junk.nir")
    with pytest.raises(UserError, match="not found"):
        read_graph(tmp_path / "missing.nir")
    with h5py.File(path, "r+") as f:
        del f["node/nodes/soft/type"]
        f["node/nodes/soft/type"] = "Teleport"
    with pytest.raises(UserError, match="unknown NIR node type.*Teleport"):
        read_graph(path)
    write_graph(every_node_graph(), path)
    with h5py.File(path, "r+") as f:        # Affine now expects 5 inputs, gets 9
        del f["node/nodes/aff/weight"]
        f["node/nodes/aff/weight"] = np.ones((2, 5), np.float32)
    with pytest.raises(UserError, match="invalid graph.*mismatch"):
        read_graph(path)


def test_import_mstdeploy_lets_nir_read_our_nodes(tmp_path):
    # a user's script: `import mstdeploy` alone, then nir.read of an extension file
    import subprocess
    import sys
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([4])}),
                            "gate": X.SynapseGate(shape=(4,), p=0.5, seed=1, stream=2),
                            "output": nir.Output(output_type={"output": np.array([4])})},
                     edges=[("input", "gate"), ("gate", "output")])
    write_graph(g, tmp_path / "g.nir")
    code = f"import mstdeploy, nir; print(type(nir.read({str(tmp_path / 'g.nir')!r}).nodes['gate']).__name__)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "SynapseGate", r.stderr[-2000:]

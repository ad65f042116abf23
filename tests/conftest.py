"""Shared fixtures: small models and data files made on the fly (no downloads)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model


def run_mst(*args, timeout=300, **kw) -> subprocess.CompletedProcess:
    """Run the `mst` CLI in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "mstdeploy.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, **kw)


def mst_here(capsys, *args) -> tuple[int, str, str]:
    """The CLI in this process, (exit status, stdout, stderr): a fresh interpreter per call costs
    seconds of imports; use run_mst where the process itself matters."""
    from mstdeploy.cli import main
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_here(capsys, *args) -> str:
    """one_line_error for the CLI run in this process (mst_here)."""
    code, _, err = mst_here(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    return lines[0]


def one_line_error(r: subprocess.CompletedProcess) -> str:
    """The run failed as bad input must: exit 2, one line on stderr, no traceback."""
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


# Small random models of every architecture family that converts (name -> preset, overrides).
SMALL = {
    "mst-spiking": ("mst-tiny", dict(attention="spiking", img_size=8, patch_size=2, embed_dim=16,
                                     depths=[2, 1], num_heads=[2, 2], window_size=2)),
    "mst-softmax": ("mst-tiny", dict(attention="softmax", img_size=8, patch_size=2, embed_dim=16,
                                     depths=[2, 1], num_heads=[2, 2], window_size=2, mlp_bn=True)),
    "vgg": ("vgg-tiny", dict(img_size=8)),
    "resnet": ("resnet18", dict(img_size=8, width=4, blocks=[1, 1])),
}


def calibrated(name, **kw):
    """A random model with BatchNorm statistics and QCFS thresholds that make neurons fire."""
    base, cfg = SMALL[name]
    torch.manual_seed(0)
    m = build_model(preset(base, in_chans=1, **{**cfg, **kw}))
    for mod in m.modules():
        if hasattr(mod, "lam"):
            mod.lam.data.fill_(1.0)
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.momentum = None                       # running statistics = exact batch averages
        if isinstance(mod, torch.nn.Linear):          # pre-activations of order 1: neurons fire
            mod.weight.data.normal_(0, 2.0 / mod.in_features ** 0.5)
    m.train()
    with torch.no_grad():
        for _ in range(4):
            m(torch.randn(64, 1, 8, 8))
    return m.eval().double()


def vgg_files(d):
    """(folder, a small VGG's NIR file, a vgg-tiny checkpoint of digits) written into folder d."""
    from mstdeploy.export.lower import to_nir
    from mstdeploy.ir.io import write_graph
    from mstdeploy.models import checkpoint
    g = d / "vgg.nir"
    write_graph(to_nir(calibrated("vgg", levels=16).float()), g)
    ck = d / "vgg.pt"
    torch.manual_seed(0)
    checkpoint.save(ck, build_model(preset("vgg-tiny", in_chans=1, img_size=8)), {"dataset": "digits"})
    return d, g, ck


def product_graph(M: int, K: int, N: int, scale: float, neuron: bool = False):
    """Input -> SpikeProduct (cumulative, a (M, K) @ b (K, N)) [-> ResetSubIF] -> Output."""
    import nir
    import numpy as np
    from mstdeploy.ir import nodes as X
    nodes = {"input": nir.Input(input_type={"input": np.array([M * K + K * N])}),
             "prod": X.SpikeProduct(a_shape=(M, K), b_shape=(K, N), mode="cumulative", scale=scale),
             "output": nir.Output(output_type={"output": np.array([M, N])})}
    chain = ["input", "prod", "output"]
    if neuron:
        nodes["if"] = X.ResetSubIF(shape=(M, N), threshold=1.0, v_init=0.5, bias=0.0)
        chain.insert(2, "if")
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def recurrent_graph(in_shape=(1, 8, 8), hidden: int = 64, seed: int = 0):
    """Stock nodes with a recurrent layer: Input -> Flatten -> Affine -> IF -> Affine -> LIF, whose
    spikes return through a Linear (a cycle: one step late) -> Affine -> Output."""
    import nir
    import numpy as np
    rng = np.random.default_rng(seed)
    n_in = int(np.prod(in_shape))
    full = lambda v, n=hidden: np.full(n, v, np.float32)  # noqa: E731
    w = lambda *s: rng.normal(0, 1.5 / s[-1] ** 0.5, s).astype(np.float32)  # noqa: E731
    nodes = {"input": nir.Input(input_type={"input": np.array(in_shape)}),
             "flat": nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1),
             "fc1": nir.Affine(weight=w(hidden, n_in), bias=full(0.1)),
             "if1": nir.IF(r=full(1.0), v_threshold=full(1.0), v_reset=full(0.0)),
             "fc2": nir.Affine(weight=w(hidden, hidden) * 2, bias=full(0.0)),
             "lif": nir.LIF(tau=full(4.0), r=full(4.0), v_leak=full(0.0), v_threshold=full(1.0), v_reset=full(0.0)),
             "rec": nir.Linear(weight=w(hidden, hidden)),
             "fc3": nir.Affine(weight=w(10, hidden), bias=full(0.0, 10)),
             "output": nir.Output(output_type={"output": np.array([10])})}
    edges = [("input", "flat"), ("flat", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "lif"),
             ("lif", "rec"), ("rec", "lif"), ("lif", "fc3"), ("fc3", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)

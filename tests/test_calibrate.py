"""Calibration for few steps (compare/calibrate.py, mst export --calibrate)."""
import numpy as np
import pytest
import torch

from conftest import calibrated, mst_here, one_line_here
from mstdeploy.compare.calibrate import _neurons, _outputs, calibrate
from mstdeploy.export.lower import to_nir
from mstdeploy.ir import nodes as X


def _mean_error(graph, reference, x, steps, node):
    """Mean over elements of |mean over images of (ANN activation - SNN mean output)|, in thresholds."""
    target = _outputs(reference, x, 1, {node}, 64)[node] * (float(reference.nodes[node].threshold[0])
                                                              / float(graph.nodes[node].threshold[0]))
    return float((target - _outputs(graph, x, steps, {node}, 64)[node]).mean(0).abs().mean())


@pytest.mark.parametrize("method", ["potential", "bias", "both"])
def test_calibration_moves_the_mean_error_into_the_neurons(method):
    # Layer by layer, each neuron's mean error against the ANN on the calibration images shrinks
    # (measured on this random VGG at T = 2: 0.021 -> 0.009 thresholds on average, potentials;
    # 0.012 with biases). Quantization keeps it from vanishing: a payload is a whole number.
    m = calibrated("vgg", levels=8).float()
    g, ref = to_nir(m), to_nir(m, spike_levels=8)
    x = torch.randn(96, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    c = calibrate(g, ref, x, 2, method, progress=False)
    before = np.mean([_mean_error(g, ref, x, 2, n) for n in _neurons(g)])
    after = np.mean([_mean_error(c, ref, x, 2, n) for n in _neurons(g)])
    assert before > 0.015 and after < 0.7 * before, (before, after)
    for n in _neurons(g):                     # only potentials and biases move; the input graph stays
        assert np.array_equal(c.nodes[n].threshold, g.nodes[n].threshold)
        assert np.all(g.nodes[n].v_init == g.nodes[n].threshold / 2)
    moved = [n for n in _neurons(g) if not np.array_equal(np.broadcast_to(c.nodes[n].v_init, c.nodes[n].shape),
                                                           np.broadcast_to(g.nodes[n].v_init, c.nodes[n].shape))]
    assert bool(moved) == (method != "bias")
    assert "calibrated" in c.metadata


def test_export_calibrate_cli(tmp_path, capsys):
    from mstdeploy.ir.io import read_graph
    from mstdeploy.models import checkpoint
    from mstdeploy.models.config import preset
    from mstdeploy.models.registry import build_model
    m = build_model(preset("vgg-tiny", in_chans=1, levels=8)).eval()       # digits-sized, 16 x 16
    ck = tmp_path / "c.pt"
    checkpoint.save(str(ck), m, {"dataset": "digits"})
    code, out, err = mst_here(capsys, "export", ck, "-o", tmp_path / "g.nir", "--calibrate", "32",
                              "--calibrate-steps", "2")
    assert code == 0, err
    g = read_graph(str(tmp_path / "g.nir"))
    assert g.metadata["calibrated"] == "both, T=2, 32 images"
    assert "--standard" in one_line_here(capsys, "export", ck, "-o", tmp_path / "s.nir", "--calibrate", "8",
                                         "--standard")

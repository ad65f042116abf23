"""The fixed-point plan (docs/fixed-point.md): integers Lava keeps as they are, widths and rounding
as specified, and a reference simulator whose integer mode stays close to floating point."""
import nir
import numpy as np
import pytest
import torch
from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

from mstdeploy.loihi import quantize, widths
from mstdeploy.loihi.plan import FixedPlan
from mstdeploy.errors import UserError
from mstdeploy.ir import nodes as X
from mstdeploy.export.lower import to_nir
from mstdeploy.simulate import fixed
from mstdeploy.simulate.engine import Simulator
from conftest import calibrated, product_graph


@pytest.mark.parametrize("kind", ["mixed", "positive", "negative", "tiny", "huge", "one"])
def test_weights_are_what_lavas_dense_keeps(kind):
    g = np.random.default_rng(0)
    w = {"mixed": g.normal(0, 3, (40, 30)), "positive": g.uniform(0, 2, (40, 30)),
         "negative": -g.uniform(0, 2, (40, 30)), "tiny": g.normal(0, 1e-6, (8, 8)),
         "huge": g.normal(0, 1e6, (8, 8)), "one": np.array(37.0)}[kind]
    m, e, sign, clipped, _ = quantize.quantize_weights(w)
    assert widths.WEIGHT_EXP[0] <= e <= widths.WEIGHT_EXP[1]
    mode = determine_sign_mode(m)
    kept = truncate_weights(clip_weights(m, mode, num_bits=8), mode, num_weight_bits=8)
    assert np.array_equal(kept, m), "Lava's bit-accurate Dense would change these weights"
    if kind in ("tiny", "huge"):                         # beyond the exponent range: clamped, reported
        assert (kind == "huge") == (clipped > 0)
        return
    assert clipped == 0
    assert np.abs(m).max() > 127                         # the smallest exponent that fits: 8 bits used
    step = 2.0 ** e * (2 if sign == "mixed" else 1)
    assert np.abs(m * 2.0 ** e - w).max() <= step / 2 + 1e-12


def test_bias_mantissa_and_exponent():
    b = np.array([0.0, 1.4, -3000.6, 4095.4, 4096.0, -1e5, 5e5, 1e9])
    mant, exp, clipped = quantize.quantize_bias(b)
    assert np.all(np.abs(mant) <= widths.BIAS_MANT) and np.all((exp >= 0) & (exp <= widths.BIAS_EXP))
    val = mant << exp
    assert list(val[:4]) == [0, 1, -3001, 4095]
    assert np.all(np.abs(val[4:7] - b[4:7]) <= 2.0 ** exp[4:7] / 2)
    assert clipped == 1 and val[7] == widths.BIAS_MANT << widths.BIAS_EXP      # 1e9 is beyond 13+7 bits


def test_shift_floors_and_input_rounds_half_up():
    assert list(quantize.shift(np.array([5, -5, 7]), -1)) == [2, -3, 3]
    assert list(quantize.shift(np.array([5, -5]), 2)) == [20, -20]
    assert list(quantize.quantize_input(np.array([0.5 / 256, -0.5 / 256, 1.0, 1e9]))) == [1, 0, 256, widths.GRADED_LIMIT]


def test_neuron_units_thresholds_and_initial_potential():
    g = to_nir(calibrated("mst-spiking", levels=16).float())
    plan = FixedPlan(g)
    for name, q in plan.neurons.items():
        lam = float(np.asarray(g.nodes[name].threshold).reshape(-1)[0])
        assert q.threshold == widths.VTH_MANT << widths.ACT_SHIFT and q.unit == lam / widths.VTH_MANT
        assert np.all(q.v_init == q.threshold // 2)             # lam / 2 exactly
    for name, s in plan.synapses.items():                       # every synapse lands in a neuron's units
        assert s.rel_error < 0.01, (name, s.rel_error)


def test_bias_of_a_synapse_moves_into_its_neuron():
    w = np.array([[1.0, -0.5]], np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "fc": nir.Affine(weight=w, bias=np.array([0.25], np.float32)),
             "if": X.ResetSubIF(shape=(1,), threshold=2.0, v_init=1.0, bias=0.5),
             "output": nir.Output(output_type={"output": np.array([1])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "if"), ("if", "output")])
    plan = FixedPlan(g)
    q = plan.neurons["if"]
    # (0.5 + 0.25) / (2 / 1024) * 64 = 24576 v units
    assert int(q.bias[0]) == 24576 and int(q.v_init[0]) == 32768


def test_a_current_through_a_gate_is_refused():
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "fc": nir.Linear(weight=np.ones((1, 2), np.float32)),
             "gate": X.SynapseGate(shape=(1,), p=0.5, seed=0, stream=1),
             "if": X.ResetSubIF(shape=(1,), threshold=1.0, v_init=0.5, bias=0.0),
             "output": nir.Output(output_type={"output": np.array([1])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "gate"), ("gate", "if"), ("if", "output")])
    with pytest.raises(UserError, match="fc .* feeds gate"):
        FixedPlan(g)


def test_fixed_point_simulation_tracks_float():
    m = calibrated("mst-spiking", levels=16, mask=0.5)
    g = to_nir(m.float())
    x = torch.randn(8, 1, 8, 8)
    rf = Simulator(g, dtype=torch.float64).run(x, 32)
    rq = Simulator(g, fixed_point=True).run(x, 32)
    for k, v in rf.spike_counts.items():                 # same rates to within a few percent
        assert abs(rq.spike_counts[k] - v) <= 0.03 * v + 64, (k, v, rq.spike_counts[k])
    assert set(rq.saturation) == {k for k, n in g.nodes.items() if isinstance(n, X.ResetSubIF)}


def test_cumulative_product_in_integers():
    T, M, K, N = 12, 2, 3, 2
    gen = torch.Generator().manual_seed(3)
    a = (torch.rand(T, 1, M, K, generator=gen) < 0.5).double()
    b = (torch.rand(T, 1, K, N, generator=gen) < 0.5).double()
    g = product_graph(M, K, N, 0.3, neuron=True)
    sim = Simulator(g, fixed_point=True)
    q = sim.plan.synapses["prod"]
    out, _ = fixed.product(g.nodes["prod"], torch.cat([a.reshape(T, 1, -1), b.reshape(T, 1, -1)], -1),
                           float(q.weight), q.exp, torch.arange(1, T + 1), None)
    out = out.numpy()
    A, B = np.cumsum(a.numpy(), 0).astype(np.int64), np.cumsum(b.numpy(), 0).astype(np.int64)
    G = []
    for t in range(1, T + 1):                            # G_t = floor(m A_t B_t 2^e / t), in integers
        X_ = int(q.weight) * (A[t - 1] @ B[t - 1])
        G.append(np.floor_divide(X_ << q.exp, t) if q.exp >= 0 else np.floor_divide(X_, t << -q.exp))
    G = np.array(G)
    assert np.array_equal(out.sum(0), G[-1])            # the running sum is exactly G_T
    assert np.array_equal(out, np.diff(np.concatenate([np.zeros((1,) + G.shape[1:]), G]), axis=0))

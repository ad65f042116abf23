"""The fused CPU kernels (simulate/kernels.py) give the torch step functions' spikes and states
exactly: float32, float64 and fixed point, ties at the threshold, negative drive, saturation and
wrap-around included."""
from types import SimpleNamespace

import nir
import numpy as np
import pytest
import torch

from conftest import calibrated
from mstdeploy.export.lower import to_nir
from mstdeploy.ir import nodes as X
from mstdeploy.simulate import fixed, kernels, neurons
from mstdeploy.simulate.engine import Simulator
from test_saformer import images, saformer


def torch_loop(monkeypatch):
    monkeypatch.setattr(kernels, "usable", lambda drive: False)


def drives(dtype, T=40, shape=(3, 5, 4)):
    """Random drive with exact ties: multiples of 1/8 hit a threshold of 1 exactly."""
    g = torch.Generator().manual_seed(0)
    d = torch.randint(-6, 14, (T, *shape), generator=g).to(dtype) / 8
    return d + (torch.rand(d.shape, generator=g, dtype=dtype) < 0.3) * torch.rand(d.shape, generator=g, dtype=dtype)


NODES = [
    X.ResetSubIF(shape=(5, 4), threshold=np.linspace(0.5, 1.5, 20).reshape(5, 4), v_init=0.5, bias=0.125),
    nir.IF(r=np.full((5, 4), 0.9), v_threshold=np.ones((5, 4)), v_reset=np.full((5, 4), -0.25)),
    nir.LIF(tau=np.full((5, 4), 3.0), r=np.full((5, 4), 2.0), v_leak=np.full((5, 4), 0.1),
            v_threshold=np.ones((5, 4)), v_reset=np.zeros((5, 4))),
    nir.CubaLIF(tau_mem=np.full((5, 4), 4.0), tau_syn=np.full((5, 4), 2.5), r=np.full((5, 4), 4.0),
                v_leak=np.zeros((5, 4)), v_threshold=np.full((5, 4), 0.75), w_in=np.full((5, 4), 2.5),
                v_reset=np.zeros((5, 4))),
]


@pytest.mark.parametrize("node", NODES, ids=lambda n: type(n).__name__)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float_neurons_fused_equal_the_step_functions(node, dtype):
    tensor = lambda v: torch.as_tensor(np.array(v), dtype=dtype)  # noqa: E731
    n = neurons.for_node(node, tensor)
    d = drives(dtype)
    state0 = n.init(n.params, d[0])
    assert kernels.usable(d)
    s_fused, st_fused = n.run(state0, d)
    s_loop, st_loop = neurons.scan(n.step, n.params, state0, n.drive(n.params, d))
    assert 0 < s_loop.sum() < s_loop.numel()
    assert torch.equal(s_fused, s_loop)
    for a, b in zip(st_fused if isinstance(st_fused, tuple) else (st_fused,),
                    st_loop if isinstance(st_loop, tuple) else (st_loop,)):
        assert torch.equal(a, b)
    if not isinstance(state0, tuple):
        assert torch.equal(state0, n.init(n.params, d[0]))   # the caller's state is untouched


@pytest.mark.parametrize("subtract,levels", [(True, 1), (False, 1), (True, 3)])
@pytest.mark.parametrize("du,dv", [(4095, 0), (4095, 700), (1000, 300)])
def test_fixed_point_neuron_fused_equals_the_loop(monkeypatch, subtract, levels, du, dv):
    q = SimpleNamespace(threshold=1 << 14, du=du, dv=dv, subtract=subtract, levels=levels)   # what fixed.neuron reads
    g = torch.Generator().manual_seed(1)
    # inputs that saturate v both ways and wrap a remembering u; some land exactly on the threshold
    x = torch.randint(-60000, 80000, (50, 2, 30), generator=g).double()
    x[:, :, 20:] -= 90000
    x[:, 0, :5] = 256.0
    bias = torch.zeros(30, dtype=torch.float64)
    v0 = torch.full((2, 30), 100.0, dtype=torch.float64)
    sat_f = fixed.Saturation()
    out_f, (u_f, v_f) = fixed.neuron(q, x, bias, v0, sat_f)
    torch_loop(monkeypatch)
    sat_l = fixed.Saturation()
    out_l, (u_l, v_l) = fixed.neuron(q, x, bias, v0, sat_l)
    assert torch.equal(out_f, out_l) and torch.equal(v_f, v_l)
    assert (u_f is None and u_l is None) or torch.equal(u_f, u_l)
    assert sat_f == sat_l and 0 < (out_l > 0).sum() < out_l.numel() and out_l.max() == levels
    assert sat_l.low > 0 and sat_l.wrapped > 0 and (sat_l.high > 0 or not subtract)


@pytest.mark.parametrize("arith", ["float32", "fixed"])
def test_whole_networks_fused_equal_the_torch_loop(monkeypatch, arith):
    kw = dict(fixed_point=True) if arith == "fixed" else dict(dtype=torch.float32)
    graphs = [(to_nir(calibrated("mst-spiking", mask=0.5).float(), seed=1), torch.randn(3, 1, 8, 8)),
              (to_nir(saformer(current_decay=0.25)), images(2))]
    runs = []
    for g, x in graphs:
        runs.append(Simulator(g, **kw).run(x, 9, record=set(Simulator(g).order)))
    torch_loop(monkeypatch)
    for (g, x), fused in zip(graphs, runs):
        loop = Simulator(g, **kw).run(x, 9, record=set(Simulator(g).order))
        assert torch.equal(fused.logits, loop.logits)
        assert all(torch.equal(fused.spikes[k], loop.spikes[k]) for k in loop.spikes)
        assert fused.saturation == loop.saturation and fused.spike_counts == loop.spike_counts


def test_gate_kernel_equals_the_torch_gate(monkeypatch):
    # counts on a residual sum (values > 1) and spikes; the dropped totals weigh by the value
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([6, 5])}),
                            "gate": X.SynapseGate(shape=(6, 5), p=0.6, seed=7, stream=3),
                            "output": nir.Output(output_type={"output": np.array([6, 5])})},
                     edges=[("input", "gate"), ("gate", "output")])
    gen = torch.Generator().manual_seed(4)
    x = torch.randint(0, 3, (9, 4, 6, 5), generator=gen).float() * (torch.rand(9, 4, 6, 5, generator=gen) < 0.5)
    sim = Simulator(g)
    clock = type("C", (), dict(samples=torch.arange(3, 7), steps=torch.arange(5, 14)))()
    y_k, d_k = sim._gate("gate", g.nodes["gate"], x, clock)
    torch_loop(monkeypatch)
    y_t, d_t = sim._gate("gate", g.nodes["gate"], x, clock)
    assert torch.equal(y_k, y_t) and torch.equal(d_k, d_t)
    assert 0 < (y_t == 0).sum() - (x == 0).sum() < (x != 0).sum()       # some dropped, not all


@pytest.mark.parametrize("subtract", [True, False])
@pytest.mark.parametrize("shape,stored", [((4, 5, 7), (1, 2, 0)), ((6, 9), (1, 0))], ids=["channels-last", "tokens-last"])
def test_an_input_stored_permuted_scans_to_the_same_spikes_in_its_layout(subtract, shape, stored):
    """A convolution's channels-last output and a token-wise layer's tokens-last one (ops.py) are
    scanned in their own memory order: the same spikes and state as the scan of the contiguous
    tensor, the spikes come back in the input's layout; the gate and the spike and non-zero
    counts read either layout the same."""
    from mstdeploy.simulate import counting
    g = torch.Generator().manual_seed(5)
    T, B, n = 6, 3, int(np.prod(shape))
    x = torch.randn(T, B, *shape, generator=g)
    v = torch.rand(B, *shape, generator=g)
    params = [np.random.default_rng(i).uniform(0.5, 1.5, n).astype(np.float32) for i in range(3)]
    axes = (0, 1) + tuple(d + 2 for d in stored)
    xl = x.permute(*axes).contiguous().permute(*np.argsort(axes).tolist())       # same values, stored permuted
    natural = tuple(range(len(shape)))
    assert kernels.layout(x) == natural and kernels.layout(xl) == stored and torch.equal(x, xl)
    s0, v0 = kernels.if_scan(x, v, natural, *params, subtract)
    s1, v1 = kernels.if_scan(xl, v, stored, *(kernels.in_order(p, shape, stored) for p in params), subtract)
    assert kernels.layout(s1) == stored and kernels.layout(v1, lead=1) == stored and 0 < s0.sum() < s0.numel()
    assert torch.equal(s0, s1) and torch.equal(v0, v1)
    assert torch.equal(counting.spike_counts(s0), counting.spike_counts(s1))
    assert torch.equal(counting.nonzero_counts(x), counting.nonzero_counts(xl))
    skey = torch.arange(T * B, dtype=torch.int64).reshape(T, B) * 7919
    imix = torch.arange(n, dtype=torch.int64) * 104729
    y0, d0, _ = kernels.gate(x, skey, imix, 0.5)
    y1, d1, _ = kernels.gate(xl, skey, torch.from_numpy(kernels.in_order(imix.numpy(), shape, stored)), 0.5)
    assert torch.equal(y0, y1) and torch.equal(d0, d1) and kernels.layout(y1) == stored

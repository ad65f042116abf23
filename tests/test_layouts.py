"""The simulator's memory layouts and packed runs (docs/simulator-speed.md) change no value: a
Route, a Scale and a token-wise linear layer give the same result whatever order their input is
stored in, fan-in sums of placed runs equal the sums in fan-in order to the last bit, and the
simulator keeps freed memory instead of page-faulting on every large tensor."""
import resource

import nir
import numpy as np
import pytest
import torch

from mstdeploy import machine
from mstdeploy.ir import nodes as X
from mstdeploy.simulate import kernels, ops

T, B, C, N = 3, 2, 5, 7


def tokens_last(x: torch.Tensor) -> torch.Tensor:
    """x (T, B, C, N) with the same values, stored (T, B, N, C)."""
    return x.transpose(2, 3).contiguous().transpose(2, 3)


def reference_route(x: torch.Tensor, index: np.ndarray) -> torch.Tensor:
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    idx = index.reshape(-1)
    out = torch.zeros(x.shape[0], x.shape[1], idx.size, dtype=x.dtype)
    out[:, :, idx >= 0] = flat[:, :, idx[idx >= 0]]
    return out.reshape(x.shape[0], x.shape[1], *index.shape)


ROUTES = {
    "permutation to (C, N)": np.random.default_rng(0).permutation(C * N).reshape(C, N),
    "one run of a packed vector": np.concatenate([np.full(4, -1), np.arange(C * N)[::-1], np.full(6, -1)]),
    "scattered with holes": np.where(np.random.default_rng(1).random(40) < 0.3, -1,
                                     np.random.default_rng(2).integers(0, C * N, 40)),
}


@pytest.mark.parametrize("index", ROUTES.values(), ids=ROUTES.keys())
def test_a_route_reads_any_input_layout(index):
    node = X.Route(in_shape=(C, N), index=index)
    plan = ops.RoutePlan(node, (C, N), "cpu")
    x = torch.randn(T, B, C, N, generator=torch.Generator().manual_seed(3))
    want = reference_route(x, index)
    for stored in (x, tokens_last(x)):
        got = ops.dense(ops.route(stored, plan))
        assert torch.equal(got, want)
    if index.ndim == 2:                                     # a full (C, N) output comes out tokens-last
        assert kernels.layout(ops.route(x, plan)) == (1, 0)
    if (index < 0).any() and (index >= 0).sum() == np.ptp(np.flatnonzero(index >= 0)) + 1:
        assert isinstance(ops.route(x, plan), ops.Placed)


def test_fan_in_of_placed_runs_equals_the_sum_in_order():
    g = torch.Generator().manual_seed(4)
    n = 30
    runs = [ops.Placed(torch.randn(T, B, 10, generator=g), slice(0, 10), (n,)),
            ops.Placed(torch.randn(T, B, 12, generator=g), slice(15, 27), (n,))]
    full = torch.randn(T, B, n, generator=g)
    overlapping = ops.Placed(torch.randn(T, B, 10, generator=g), slice(5, 15), (n,))

    def in_order(values):
        out = ops.dense(values[0])
        for v in values[1:]:
            out = out + ops.dense(v)
        return out

    for values in (runs, runs[::-1], [runs[0], full, runs[1]], [full, *runs], [runs[0], overlapping],
                   [full, runs[0], full + 1]):
        got = ops.fan_in(values)
        assert torch.equal(got, in_order(values)) and got.shape == (T, B, n)
    assert torch.equal(ops.fan_in(runs)[:, :, 10:15], torch.zeros(T, B, 5))    # the gaps are zeros
    assert ops.fan_in([full]) is full


def test_token_linear_and_scale_give_the_same_values_in_either_layout():
    rng = np.random.default_rng(5)
    w = rng.integers(-3, 4, (4, C, 1)).astype(np.float32)           # integers: products and sums exact
    conv = nir.Conv1d(input_shape=N, weight=w, stride=1, padding=0, dilation=1, groups=1,
                      bias=rng.integers(-2, 3, 4).astype(np.float32))
    scale = nir.Scale(scale=rng.uniform(0.5, 2.0, (C, N)).astype(np.float32))
    cache = {}

    def param(key, value):
        if key not in cache:
            cache[key] = torch.as_tensor(np.array(value() if callable(value) else value))
        return cache[key]

    x = (torch.rand(T, B, C, N, generator=torch.Generator().manual_seed(6)) < 0.4).float()
    y0, y1 = ops.synapse(conv, x, param), ops.synapse(conv, tokens_last(x), param)
    assert torch.equal(y0, y1) and kernels.layout(y1) == (1, 0) and y0.shape == (T, B, 4, N)
    s0, s1 = ops.synapse(scale, x, param), ops.synapse(scale, tokens_last(x), param)
    assert torch.equal(s0, s1) and torch.equal(s0, x * torch.as_tensor(scale.scale)) and kernels.layout(s1) == (1, 0)


def test_freed_memory_is_reused_without_new_page_faults():
    """Rounds of large tensors, as a simulation's chunks make them: after a few rounds the heap
    holds them all and a round faults no new page (without keep_freed_memory every round
    faults all of its 49,152 pages afresh: glibc maps and unmaps each block over 32 MiB)."""
    assert machine.keep_freed_memory() and machine.keep_freed_memory()      # glibc here; once is enough
    n = 64 << 18                                                             # 64 MiB of float32

    def round_of_tensors():
        a, b = torch.ones(n), torch.ones(n // 2)
        return (a + 1)[: n // 2] * b

    def faults() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        round_of_tensors()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    counts = [faults() for _ in range(8)]
    assert counts[-1] < 1000, counts

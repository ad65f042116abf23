import numpy as np
import torch

from mstdeploy.ir import stream


def _mix_uint64(x: np.ndarray) -> np.ndarray:
    """lowbias32 in numpy uint64 arithmetic, whose wrap-around is defined: the reference."""
    x = x.astype(np.uint64) & np.uint64(0xFFFFFFFF)
    m = np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & m
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & m
    return x ^ (x >> np.uint64(16))


def test_mix32_matches_uint32_reference_in_numpy_and_torch():
    x = np.random.default_rng(0).integers(0, 2 ** 32, 200_000, dtype=np.int64)
    ref = _mix_uint64(x).astype(np.int64)
    assert np.array_equal(stream.mix32(x), ref)
    assert np.array_equal(stream.mix32(torch.from_numpy(x)).numpy(), ref)
    assert stream.mix32(12345) == int(_mix_uint64(np.array([12345]))[0])


def test_keep_rate_and_independence():
    key = stream.node_key(7, 3)
    idx = stream.mix32(np.arange(50_000, dtype=np.int64))
    masks = {}
    for sample, t in [(0, 1), (0, 2), (1, 1)]:
        masks[sample, t] = stream.keep_mask(stream.step_key(key, sample, t), idx, 0.75)
        assert abs(masks[sample, t].mean() - 0.25) < 0.01
    # different steps and samples give (nearly) independent masks: overlap ~ 0.25^2
    assert abs((masks[0, 1] & masks[0, 2]).mean() - 0.0625) < 0.01
    assert abs((masks[0, 1] & masks[1, 1]).mean() - 0.0625) < 0.01
    other = stream.keep_mask(stream.step_key(stream.node_key(7, 4), 0, 1), idx, 0.75)
    assert abs((masks[0, 1] & other).mean() - 0.0625) < 0.01
    assert stream.keep_mask(stream.step_key(key, 0, 1), idx, 0.0).all()

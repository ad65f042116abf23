"""The counter-based random stream behind SynapseGate (specified in docs/time-and-randomness.md).

keep(seed, stream, sample, t, i) is a pure function: a chain of 32-bit `lowbias32` mixes over the
key, compared with floor(p * 2^32). No RNG state, so a reference simulator on a GPU and a Lava
process model in a forked worker draw the same bits. Written with int64 operations only (xor,
shift, and, multiply of values < 2^48), so numpy and torch compute it identically.
"""
from __future__ import annotations

M32 = 0xFFFFFFFF


def _mul32(x, c: int):
    """(x * c) mod 2^32 for 0 <= x < 2^32 without overflowing int64."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & M32


def mix32(x):
    """lowbias32 (C. Wellons): a bijective 32-bit integer hash. `x` is an int or int64 array/tensor."""
    x = x & M32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def node_key(seed: int, stream: int) -> int:
    return mix32(mix32((seed & M32) ^ 0x9E3779B9) ^ (stream & M32))


def step_key(key: int, sample, t):
    """Key of (sample, step); `sample`, `t` may be ints or broadcastable int64 arrays/tensors."""
    return mix32(mix32(key ^ sample) ^ t)


def drop_threshold(p: float) -> int:
    """An element is dropped when its 32-bit draw is below this: P(drop) = floor(p 2^32) / 2^32."""
    return int(p * 4294967296.0)


def keep_mask(skey, index_mix, p: float):
    """Boolean keep mask: `skey` from step_key (broadcast), `index_mix` = mix32(flat index)."""
    return mix32(skey ^ index_mix) >= drop_threshold(p)

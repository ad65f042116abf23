"""The counter-based random stream behind SynapseGate (specified in docs/time-and-randomness.md).

keep(seed, stream, sample, t, i) is a pure function: a chain of 32-bit `lowbias32` mixes over the
key, compared with floor(p * 2^32). No RNG state, so a reference simulator on a GPU and a Lava
process model in a forked worker draw the same bits. The arithmetic is uint32; it runs on int64
arrays (numpy or torch), whose multiplication wraps modulo 2^64, so masking to 32 bits gives the
exact uint32 product (tests check this against a numpy uint64 reference).
"""
from __future__ import annotations

M32 = 0xFFFFFFFF


def mix32(x):
    """lowbias32 (C. Wellons): a bijective 32-bit integer hash. `x` is an int or int64 array/tensor."""
    x = x & M32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & M32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & M32
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

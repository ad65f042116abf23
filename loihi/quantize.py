"""Loihi's integer rounding rules, numpy only: the weights, biases and analog input of a graph as
Lava's bit-accurate models keep them, shifts, and the host softmax both backends round alike.

Process models import this module (numpy only, no nir, no torch)."""
from __future__ import annotations

import math

import numpy as np

from .widths import (BIAS_EXP, BIAS_MANT, GRADED_LIMIT, INPUT_BITS, LAYERNORM_BITS, SOFTMAX_BITS, WEIGHT_EXP,
                     WEIGHT_MAX, WEIGHT_MAX_MIXED)


def shift(x, e: int):
    """x * 2^e for an integer array: left shift, or arithmetic right shift (floor) when e < 0."""
    return x << e if e >= 0 else x >> (-e)


def quantize_input(x: np.ndarray) -> np.ndarray:
    """Analog input as graded spikes: round(x * 2^INPUT_BITS), half up, clipped to 24 bits."""
    q = np.floor(np.asarray(x, np.float64) * (1 << INPUT_BITS) + 0.5)
    return np.clip(q, -GRADED_LIMIT, GRADED_LIMIT).astype(np.int64)


def softmax_fixed(x: np.ndarray, in_scale: float, scale: float, bias: np.ndarray, axis: int) -> np.ndarray:
    """A host softmax on one step's integer input, returned as graded spikes of SOFTMAX_BITS
    fraction bits. Call it on exactly one step's array (the node's shape): numpy's vectorised exp
    may round differently with the array's length, and both backends must round alike."""
    z = float(scale) * (float(in_scale) * np.asarray(x, np.float64)) + bias
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    y = e / e.sum(axis=axis, keepdims=True)
    return np.floor(y * (1 << SOFTMAX_BITS) + 0.5).astype(np.int64)


def layer_norm(x: np.ndarray, axis: int, eps: float) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) over `axis`, biased variance (torch's LayerNorm without affine)."""
    d = x - x.mean(axis=axis, keepdims=True)
    return d / np.sqrt((d * d).mean(axis=axis, keepdims=True) + eps)


def layernorm_fixed(total: np.ndarray, in_scale: float, t: int, weight: np.ndarray, bias: np.ndarray,
                    axis: int, eps: float) -> np.ndarray:
    """A host layer norm on one image's packed integer input summed over steps 1..t (K, *shape):
    round(t * norm(sum_k weight_k in_scale total_k / t + bias)) with LAYERNORM_BITS fraction bits. The caller
    differences successive results (mode cumulative) or passes one step's input with t = 1
    (per_step). One image's array at a time, in both backends, so numpy rounds alike."""
    x = (np.asarray(weight, np.float64) * (float(in_scale) * np.asarray(total, np.float64))).sum(axis=0) / t + bias
    y = t * layer_norm(x, axis, eps)
    return np.floor(y * (1 << LAYERNORM_BITS) + 0.5).astype(np.int64)


def quantize_weights(w: np.ndarray) -> tuple[np.ndarray, int, str, int, int]:
    """Float weights in output units per input unit -> (ints, exponent, sign mode, clipped, zeroed).

    Ints are what Lava's bit-accurate Dense keeps unchanged through its clip-and-truncate: for
    mixed signs even values in [-254, 254] (7-bit magnitude, sign, dropped LSB), for one sign
    [0, 255] or [-255, 0]. The exponent is the smallest that fits the largest weight.
    """
    w = np.asarray(w, np.float64)
    big = float(np.abs(w).max()) if w.size else 0.0
    if big == 0.0:
        return np.zeros(w.shape, np.int64), 0, "excitatory", 0, 0
    mixed = w.min() < 0 < w.max()
    lim, step = (WEIGHT_MAX_MIXED, 2) if mixed else (WEIGHT_MAX, 1)
    fits = lim * (1 + 1e-6)     # float noise (weights stored in float32) must not cost a bit
    e = math.ceil(math.log2(big / lim))
    while big / 2.0 ** e > fits:
        e += 1
    while big / 2.0 ** (e - 1) <= fits:
        e -= 1
    e_clamped = min(max(e, WEIGHT_EXP[0]), WEIGHT_EXP[1])
    m = np.round(w / (2.0 ** e_clamped * step)) * step
    lo, hi = (-lim, lim) if mixed else ((0, lim) if w.max() > 0 else (-lim, 0))
    clipped = int(np.sum((m < lo) | (m > hi)))
    m = np.clip(m, lo, hi).astype(np.int64)
    zeroed = int(np.sum((m == 0) & (w != 0)))
    sign = "mixed" if (m.min() < 0 < m.max()) else ("inhibitory" if m.min() < 0 else "excitatory")
    return m, e_clamped, sign, clipped, zeroed


def quantize_bias(b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-element 13-bit mantissa and 3-bit exponent (mant << exp), rounding to nearest."""
    b = np.asarray(b, np.float64)
    mag = np.abs(b)
    exp = np.zeros(b.shape, np.int64)
    with np.errstate(divide="ignore"):      # smallest exponent that rounds to |mant| <= BIAS_MANT
        need = np.where(mag >= BIAS_MANT + 0.5, np.ceil(np.log2(np.maximum(mag, 1.0) / (BIAS_MANT + 0.5))), 0)
    exp = np.clip(need, 0, BIAS_EXP).astype(np.int64)
    mant = np.round(b / 2.0 ** exp)
    over = np.abs(mant) > BIAS_MANT                      # rounding up to 4096
    exp = np.where(over & (exp < BIAS_EXP), exp + 1, exp)
    mant = np.round(b / 2.0 ** exp)
    clipped = int(np.sum(np.abs(mant) > BIAS_MANT))
    return np.clip(mant, -BIAS_MANT, BIAS_MANT).astype(np.int64), exp, clipped

"""NIR extension nodes: what NIR 1.0 lacks, with the semantics in the fields (docs/nir-extensions.md).

Every node is a dataclass registered with `nir` so that `nir.read` loads it. Time is discrete,
t = 1..T, and every node maps its input at step t to its output at step t (edges have no delay;
use nir.Delay for delays). Arrays broadcast to the node's `shape` by numpy rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict

import nir
import nir.ir
import numpy as np
from nir.ir.node import NIRNode


def _shape(x) -> tuple:
    return tuple(int(v) for v in np.asarray(x).reshape(-1))


def _arr(x, dtype=np.float32) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=dtype))  # HDF5 cannot compress 0-d datasets


class _Extension(NIRNode):
    """Shared (de)serialisation: HDF5 returns numpy scalars and arrays; fields are re-typed here."""

    _ints: tuple = ()
    _strs: tuple = ()

    @classmethod
    def from_dict(cls, kwargs: Dict[str, Any]) -> "NIRNode":
        kwargs = dict(kwargs)
        kwargs.pop("type", None)
        for k in cls._ints:
            if k in kwargs:                 # absent: the field's default (files written before it)
                kwargs[k] = int(kwargs[k])
        for k in cls._strs:
            v = kwargs[k]
            kwargs[k] = v.decode() if isinstance(v, bytes) else str(v)
        return cls(**kwargs)

    def _io(self, shape_in, shape_out=None) -> None:
        self.input_type = {"input": np.array(shape_in)}
        self.output_type = {"output": np.array(shape_in if shape_out is None else shape_out)}


@dataclass(eq=False)
class ResetSubIF(_Extension):
    """Integrate-and-fire with reset by subtraction, initial potential, a constant bias current,
    `levels` M (graded, multi-level spikes; 1: binary) and a leak `decay` (0: none).

    v_0 = v_init;  v_t = (1 - decay) v_{t-1} + I_t + bias;  then M times in turn: if v_t >= threshold,
    v_t -= threshold and k_t += 1 (k_t starts at 0).  Output: the payload k_t in 0..M (binary
    when M = 1: s_t = 1 if v_t >= threshold); its amplitude is folded into the consumers. One step
    of an M-level neuron is M steps of a binary one on the same input (LM-HT, NeurIPS 2024, Lemma 4.1).
    A converted QCFS(lam) is threshold = lam / M, v_init = threshold / 2 (docs/sources.md, "MST"):
    T x M >= L steps carry its L levels; M = L at T = 1 is the quantized ANN exactly.
    """
    shape: np.ndarray
    threshold: np.ndarray
    v_init: np.ndarray
    bias: np.ndarray
    levels: int = 1
    decay: float = 0.0
    _ints = ("levels",)

    def __post_init__(self):
        self.shape = np.asarray(_shape(self.shape), dtype=np.int64)
        self.threshold, self.v_init, self.bias = map(_arr, (self.threshold, self.v_init, self.bias))
        self.levels = int(self.levels)
        self.decay = float(np.asarray(self.decay).reshape(-1)[0])
        if self.levels < 1:
            raise ValueError(f"ResetSubIF levels must be >= 1, got {self.levels}")
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"ResetSubIF decay must be in [0, 1), got {self.decay}")
        for name in ("threshold", "v_init", "bias"):
            np.broadcast_to(getattr(self, name), tuple(self.shape))  # raises on a bad shape
        self._io(self.shape)


@dataclass(eq=False)
class SigmaDelta(_Extension):
    """A sigma-delta neuron (Loihi 2's, as Lava's Delta / SigmaDelta processes run it; lava-dl's
    SDNN): it sends the change of an activation, once the change is worth sending.

    sigma_t = sigma_{t-1} + I_t (I_t alone when `sigma` is 0: a delta encoder);
    a_t = relu(sigma_t + bias) (sigma_t + bias when `relu` is 0);
    d_t = a_t - a_{t-1} + r_{t-1};  out_t = d_t if |d_t| >= threshold else 0;  r_t = d_t - out_t.
    Output: out_t, a graded message (any sign); all state starts at 0. Fixed point (Lava's
    PyDeltaModelFixed, PySigmaDeltaModelFixed): sigma, a, d, r and threshold in units of 2^-12,
    messages in 2^-6 (d >> 6: the bits below are not sent, nor kept in r).
    """
    shape: np.ndarray
    threshold: float
    bias: np.ndarray
    sigma: int = 1
    relu: int = 1
    _ints = ("sigma", "relu")

    def __post_init__(self):
        self.shape = np.asarray(_shape(self.shape), dtype=np.int64)
        self.threshold = float(np.asarray(self.threshold).reshape(-1)[0])
        self.bias = _arr(self.bias)
        self.sigma, self.relu = int(self.sigma), int(self.relu)
        np.broadcast_to(self.bias, tuple(self.shape))
        self._io(self.shape)


@dataclass(eq=False)
class Relay(_Extension):
    """A relay neuron of a split fan-in: out_t = I_t, the step's summed synaptic input (a partial
    sum of the neuron it relays to), sent on as a graded message of any sign; no state, no bias.
    Loihi 2: a graded neuron (Lava's GradedVec with vth = 0) on a core of its own, so a neuron
    whose inputs exceed a core's axons takes them through relays (loihi/split.py). Fixed point:
    the integer sum, in the units of the neuron it relays to."""
    shape: np.ndarray

    def __post_init__(self):
        self.shape = np.asarray(_shape(self.shape), dtype=np.int64)
        self._io(self.shape)


@dataclass(eq=False)
class SpikeProduct(_Extension):
    """Product of two spike streams: out = scale * (a @ b), batched over leading axes.

    The input is one packed vector [a.ravel(), b.ravel()] (operands arrive through Route nodes
    that place them; NIR sums fan-in), a of shape a_shape (..., M, K), b of b_shape (..., K, N).
    mode "cumulative" (exact for rate coding): with A_t, B_t the running sums of a, b,
        out_t = scale * (A_t B_t / t - A_{t-1} B_{t-1} / (t - 1))   (second term 0 at t = 1),
    so sum_{s<=t} out_s = scale * t * mean(a) mean(b) exactly (ECMT's expectation compensation of
    docs/sources.md, "Exact spike products"; event form: a_t B_t + A_{t-1} b_t updates the integer A_t B_t).
    mode "per_step" (the official MST code): out_t = scale * a_t b_t.
    """
    a_shape: np.ndarray
    b_shape: np.ndarray
    mode: str
    scale: float
    _strs = ("mode",)

    def __post_init__(self):
        self.a_shape = np.asarray(_shape(self.a_shape), dtype=np.int64)
        self.b_shape = np.asarray(_shape(self.b_shape), dtype=np.int64)
        self.scale = float(self.scale)
        if self.mode not in ("cumulative", "per_step"):
            raise ValueError(f"SpikeProduct mode must be cumulative or per_step, got {self.mode!r}")
        a, b = tuple(self.a_shape), tuple(self.b_shape)
        if len(a) < 2 or a[:-2] != b[:-2] or a[-1] != b[-2]:
            raise ValueError(f"SpikeProduct operand shapes do not multiply: {a} @ {b}")
        packed = int(np.prod(a)) + int(np.prod(b))
        self._io((packed,), a[:-1] + (b[-1],))

    @property
    def out_shape(self) -> tuple:
        return tuple(self.a_shape[:-1]) + (int(self.b_shape[-1]),)


@dataclass(eq=False)
class SynapseGate(_Extension):
    """Stochastic synapse gating (Random Spike Masking on an edge).

    out_t[i] = in_t[i] * keep(seed, stream, sample, t, i), keep = 1 with probability 1 - p, drawn
    from the counter-based stream of docs/time-and-randomness.md (no RNG state; any backend
    reproduces it bit for bit). `sample` is the image's index in the evaluated set.
    """
    shape: np.ndarray
    p: float
    seed: int
    stream: int
    _ints = ("seed", "stream")

    def __post_init__(self):
        self.shape = np.asarray(_shape(self.shape), dtype=np.int64)
        self.p = float(self.p)
        if not 0.0 <= self.p < 1.0:
            raise ValueError(f"SynapseGate p must be in [0, 1), got {self.p}")
        self._io(self.shape)


@dataclass(eq=False)
class HostSoftmax(_Extension):
    """Softmax as a host (non-neuromorphic) op, per step: out_t = softmax(scale * in_t + bias, axis)."""
    shape: np.ndarray
    scale: float
    bias: np.ndarray
    axis: int
    _ints = ("axis",)

    def __post_init__(self):
        self.shape = np.asarray(_shape(self.shape), dtype=np.int64)
        self.scale = float(self.scale)
        self.bias = _arr(self.bias)
        np.broadcast_to(self.bias, tuple(self.shape))
        self._io(self.shape)


@dataclass(eq=False)
class HostLayerNorm(_Extension):
    """LayerNorm on the host of a weighted sum of K spike streams (MST's head norm).

    The input is K packed streams of `shape` (in: (K, *shape); each arrives through a Route into
    its slice, NIR sums them): x_t = sum_k weight[k] * in_t[k] + bias. With
    norm(x) = (x - mean(x)) / sqrt(var(x) + eps) over `axis` of `shape` (biased variance, torch's
    LayerNorm; its affine is folded into the consumer):
    mode "cumulative" (exact readout): m_t = mean of x_1..x_t, out_t = t norm(m_t) - (t-1) norm(m_{t-1}),
        so the outputs up to t sum to t norm(m_t): the head reads the norm of the mean, as the ANN;
    mode "per_step" (the official snn_validate): out_t = norm(x_t).
    """
    shape: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    axis: int
    eps: float
    mode: str
    _ints = ("axis",)
    _strs = ("mode",)

    def __post_init__(self):
        self.shape = np.asarray(_shape(self.shape), dtype=np.int64)
        shape = tuple(self.shape)
        self.weight, self.bias, self.eps = _arr(self.weight), _arr(self.bias), float(self.eps)
        if self.mode not in ("cumulative", "per_step"):
            raise ValueError(f"HostLayerNorm mode must be cumulative or per_step, got {self.mode!r}")
        if self.weight.ndim != len(shape) + 1:
            raise ValueError(f"HostLayerNorm weight must be (K, *shape) for shape {shape}")
        np.broadcast_to(self.weight, (self.weight.shape[0],) + shape)
        np.broadcast_to(self.bias, shape)
        if not -len(shape) <= int(self.axis) < len(shape) or not self.eps > 0:
            raise ValueError(f"HostLayerNorm needs an axis of {shape} and eps > 0")
        self._io((self.streams,) + shape, shape)

    @property
    def streams(self) -> int:
        return int(self.weight.shape[0])


@dataclass(eq=False)
class Route(_Extension):
    """Pure routing by an index map: out.flat[j] = in.flat[index.flat[j]], or 0 where index < 0.

    Covers reshape, permutation, window partition/reverse with cyclic shift, channel concat, and
    placing an operand into a packed SpikeProduct input. No synapses, no events.
    """
    in_shape: np.ndarray
    index: np.ndarray

    def __post_init__(self):
        self.in_shape = np.asarray(_shape(self.in_shape), dtype=np.int64)
        self.index = np.asarray(self.index, dtype=np.int64)
        if self.index.size and self.index.max() >= int(np.prod(self.in_shape)):
            raise ValueError("Route index points outside its input")
        self._io(self.in_shape, self.index.shape)


EXTENSIONS = (ResetSubIF, SpikeProduct, SynapseGate, HostSoftmax, HostLayerNorm, Route, SigmaDelta, Relay)
HOST_OPS = (HostSoftmax, HostLayerNorm)


def register() -> None:
    """Make `nir.read` know our node types (its registry is a static list in nir.ir)."""
    names = getattr(nir.ir, "__all_ir")
    for cls in EXTENSIONS:
        setattr(nir.ir, cls.__name__, cls)
        if cls.__name__ not in names:
            names.append(cls.__name__)


register()


def ungrouped(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped kernel (C_out, C_in / groups, ...) as an ordinary one (zeros between groups): NIR
    1.0's Conv2d infers its input channels from the kernel and ignores `groups`, so a depthwise conv
    would not type-check. Zero weights are no synapses: event counts and resources stay the
    grouped conv's."""
    if groups == 1:
        return w
    cout, cin_g = w.shape[:2]
    full = np.zeros((cout, cin_g * groups, *w.shape[2:]), w.dtype)
    per = cout // groups
    for o in range(cout):
        g = o // per
        full[o, g * cin_g:(g + 1) * cin_g] = w[o]
    return full

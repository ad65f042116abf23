"""The exact stock form of a converted CNN (`mst export --standard`, docs/interop.md): only nodes
that snnTorch, Norse and SpikingJelly all import, with NIR's own semantics.

- The converted IF neuron (v_0 = lam / 2, v += x, spike on v >= lam, v -= lam) is a CubaLIF whose
  current integrates without loss (tau_syn = w_in = 2^100 steps: decay 1 - 2^-100 = 1 in floating
  point, input gain w_in / tau_syn = 1) and whose voltage is that current (tau_mem = r = 1 step),
  a threshold just below lam / 2 and a recurrent 1x1 Conv2d of -lam from its spikes into its
  input, which NIR delivers one step late. The current is w = v - lam / 2: w_t = w_{t-1} - lam
  s_{t-1} + x_t, s_t = [w_t >= lam / 2]; the voltage's reset to 0 is overwritten by the next step.
- Pooling (mean of k x k spikes, exact) and linear layers are Conv2d, the identity shortcut a
  diagonal 1x1 Conv2d: no AvgPool2d (Norse lacks it), no Flatten (importers disagree about its
  batch axis), no Scale (none imports it); every layer is (C, H, W), the logits (K, 1, 1).
- Time in seconds of DT = 1e-4 (snnTorch's fixed dt, SpikingJelly's default), stated in the
  metadata ("dt"), which our reader and ir/timebase.py use.
"""
from __future__ import annotations

import nir
import numpy as np

DT = 1e-4
ENDLESS = np.float32(2.0 ** 100)          # steps: a current that never decays in float arithmetic


def seconds(steps) -> np.float32:
    """`steps` steps as float32 seconds, no shorter than steps * DT (SpikingJelly refuses a time
    constant below its dt), that read back (ir/timebase.py) as exactly `steps`."""
    s = np.float32(np.float64(steps) * DT)
    if np.float64(s) < np.float64(steps) * DT:
        s = np.nextafter(s, np.float32(np.inf))
    if np.float32(np.float64(s) / DT) != np.float32(steps):
        raise AssertionError(f"no float32 seconds read back as {steps} steps")
    return s


def tie_threshold(lam: float) -> np.float64:
    """The float64 just below lam / 2: NIR fires on v > threshold, the converted neuron on
    w >= lam / 2, so ties at lam / 2 fire (a reader in float32 rounds it to lam / 2 and fires on
    v > lam / 2: ties are then lost, see docs/interop.md)."""
    return np.nextafter(np.float64(np.float32(lam)) / 2, -np.inf)


def neuron(lam: float, shape: tuple) -> tuple[nir.CubaLIF, nir.Conv2d]:
    """The neuron and its recurrent reset (shape (C, H, W))."""
    full = lambda v, dtype=np.float32: np.full(shape, v, dtype)  # noqa: E731
    cell = nir.CubaLIF(tau_syn=full(seconds(ENDLESS)), tau_mem=full(seconds(1)), r=full(1.0), v_leak=full(0.0),
                       v_threshold=full(tie_threshold(lam), np.float64), v_reset=full(0.0), w_in=full(ENDLESS))
    return cell, diagonal(shape, -np.float32(lam), 1)


def diagonal(shape: tuple, value, k: int) -> nir.Conv2d:
    """A Conv2d with `value` on the channel diagonal of a k x k kernel and stride k: a per-channel
    scale (k = 1) or the sum of k x k windows times value (the mean with value 1 / k^2)."""
    c = int(shape[0])
    w = np.zeros((c, c, k, k), np.float32)
    w[np.arange(c), np.arange(c)] = np.float32(value)
    return nir.Conv2d(input_shape=tuple(int(v) for v in shape[1:]), weight=w, stride=(k, k), padding=(0, 0),
                      dilation=(1, 1), groups=1, bias=np.zeros(c, np.float32))


def dense(shape: tuple, weight: np.ndarray, bias: np.ndarray) -> nir.Conv2d:
    """A linear layer on a (C, H, W) input (torch's flatten order) as a full-size Conv2d."""
    c, h, w = (int(v) for v in shape)
    return nir.Conv2d(input_shape=(h, w), weight=np.float32(weight).reshape(-1, c, h, w), stride=(1, 1),
                      padding=(0, 0), dilation=(1, 1), groups=1, bias=np.float32(bias))

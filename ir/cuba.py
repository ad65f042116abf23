"""Discrete-time reading of stock NIR LIF and CubaLIF, and IF as their limit (v += r I), (docs/nir-extensions.md,
"Stock neurons").

Euler steps of dt = 1, current first, then the voltage from the new current, as Loihi and Lava do:

    u_t = (1 - du) u_{t-1} + g_in I_t          LIF: du = 1, g_in = 1 (u_t = I_t)
    v_t = (1 - dv) v_{t-1} + g_u u_t + bias    CubaLIF: du = 1/tau_syn, g_in = w_in/tau_syn
    s_t = v_t > v_threshold; v_t = v_reset where s_t
                                               dv = 1/tau_mem, g_u = r/tau_mem, bias = v_leak/tau_mem

A lava-dl CUBA neuron exports with r = tau_mem and w_in = tau_syn, so both gains are 1 (snnTorch
writes r = tau too). An infinite time constant is its limit: no decay; with an infinite gain
beside it (tau = r = inf, snnTorch's beta = 1) the gain is that convention's 1, so the neuron is
a pure integrator, v += I. Torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

LEAKY = (nir.LIF, nir.CubaLIF)


def per_step(gain, tau) -> np.ndarray:
    """gain / tau, the input's weight in one step; 1 where both are infinite (the limit along
    gain = tau, the convention every exporter of such pairs follows)."""
    gain, tau = np.asarray(gain, np.float64), np.asarray(tau, np.float64)
    both = np.isinf(gain) & np.isinf(tau)
    with np.errstate(invalid="ignore"):
        return np.where(both, 1.0, gain / np.where(both, 1.0, tau))


@dataclass
class Cuba:
    du: np.ndarray
    g_in: np.ndarray
    dv: np.ndarray
    g_u: np.ndarray
    bias: np.ndarray
    threshold: np.ndarray
    v_reset: np.ndarray

    @property
    def gain(self) -> np.ndarray:
        """Input to voltage gain of one step."""
        return self.g_in * self.g_u


def cuba(node) -> Cuba:
    f = lambda v: np.asarray(v, np.float64)  # noqa: E731
    reset = f(0.0 if node.v_reset is None else node.v_reset)
    if isinstance(node, nir.IF):                 # v += r I: no decay, the current is the input
        return Cuba(f(1.0), f(1.0), f(0.0), f(node.r), f(0.0), f(node.v_threshold), reset)
    if isinstance(node, nir.LIF):
        tau = f(node.tau)
        return Cuba(f(1.0), f(1.0), 1.0 / tau, per_step(node.r, tau), f(node.v_leak) / tau, f(node.v_threshold),
                    reset)
    tau_m, tau_s = f(node.tau_mem), f(node.tau_syn)
    return Cuba(1.0 / tau_s, per_step(node.w_in, tau_s), 1.0 / tau_m, per_step(node.r, tau_m), f(node.v_leak) / tau_m,
                f(node.v_threshold), reset)


def node(shape, threshold: float, current_decay, voltage_decay, bias=0.0, unit: int = 4096):
    """A Loihi CUBA neuron (decays in 1/`unit` per step, reset to 0) as stock NIR: LIF when the
    current does not persist (current_decay = unit), else CubaLIF. Euler steps of dt = 1 with
    tau = unit / decay, r = tau_mem and w_in = tau_syn give u_t = (1 - du) u + I_t, v_t = (1 - dv) v
    + u_t + bias; the bias enters as v_leak = bias * tau_mem. A decay of 0 is an infinite tau (and
    gain: the pair's limit, 1), so no voltage decay needs bias 0: NIR has no other place for it."""
    shape = tuple(int(v) for v in shape)
    full = lambda v: np.broadcast_to(np.asarray(v, np.float64), shape).astype(np.float32)  # noqa: E731
    with np.errstate(divide="ignore"):
        tau_mem = unit / np.float64(voltage_decay)
        tau_syn = unit / np.float64(current_decay)
    bias = np.asarray(bias, np.float64)
    if np.isinf(tau_mem) and np.any(bias != 0):
        raise ValueError("a neuron without voltage decay cannot have a bias in NIR (v_leak = bias * tau_mem)")
    common = dict(r=full(tau_mem), v_leak=full(0.0 if np.isinf(tau_mem) else bias * tau_mem),
                  v_threshold=full(threshold), v_reset=full(0.0))
    if current_decay == unit:
        return nir.LIF(tau=full(tau_mem), **common)
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), w_in=full(tau_syn), **common)


def leaky(node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keep, gain, bias) of a stock I or LI: v_t = keep v_{t-1} + gain x_t + bias."""
    if isinstance(node, nir.I):
        return np.float64(1.0), np.asarray(node.r, np.float64), np.float64(0.0)
    tau = np.asarray(node.tau, np.float64)
    return 1.0 - 1.0 / tau, per_step(node.r, tau), np.asarray(node.v_leak, np.float64) / tau

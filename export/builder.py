"""Graph building helpers shared by the lowerings: node naming, neurons, gates, BatchNorm folding."""
from __future__ import annotations

import nir
import numpy as np
import torch
from torch import nn

from ..models.qcfs import QCFS
from ..ir import cuba
from ..ir.nodes import ResetSubIF, SynapseGate
from ..loihi.widths import DECAY_ONE


def np32(t) -> np.ndarray:
    return (t.detach().cpu().numpy() if torch.is_tensor(t) else np.asarray(t)).astype(np.float32)


def bn_affine(bn: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm in eval mode as y = a * x + c per channel."""
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    a = bn.weight.double() / std
    c = bn.bias.double() - bn.running_mean.double() * a
    return a.detach().numpy(), c.detach().numpy()


def fold_bn(weight, bias, bn: nn.Module | None) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias of `BN(W x + b)` as one affine map (BN over the output channel axis 0)."""
    w = weight.detach().double().numpy()
    b = np.zeros(w.shape[0]) if bias is None else bias.detach().double().numpy()
    if bn is None or isinstance(bn, nn.Identity):
        return w, b
    a, c = bn_affine(bn)
    return w * a.reshape(-1, *([1] * (w.ndim - 1))), a * b + c


def qcfs_lam(act: QCFS) -> float:
    return float(act.lam.detach())


class GraphBuilder:
    """Collects nodes and edges; gives every SynapseGate its own stream id in creation order.
    `levels` M: every converted neuron emits graded spikes k in 0..M of amplitude `unit(act)`."""

    def __init__(self, seed: int = 0, levels: int = 1):
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.seed = int(seed)
        self.levels = int(levels)
        self.streams = 0

    def unit(self, act: QCFS) -> float:
        """What one spike (payload 1) of the neuron converted from `act` stands for: lam / M."""
        return qcfs_lam(act) / self.levels

    def add(self, name: str, node: nir.NIRNode, *inputs: str) -> str:
        if name in self.nodes:
            raise ValueError(f"duplicate node name {name}")
        self.nodes[name] = node
        self.edges += [(i, name) for i in inputs]
        return name

    def neuron(self, name: str, act: QCFS, shape, *inputs: str, bias=0.0) -> str:
        """The IF neuron that replaces a QCFS: threshold lam / M, initial potential half of it."""
        unit = self.unit(act)
        bias = np.asarray(bias, dtype=np.float32)
        if bias.ndim and not np.any(bias):
            bias = np.zeros(1, np.float32)
        return self.add(name, ResetSubIF(shape=shape, threshold=unit, v_init=unit / 2, bias=bias,
                                         levels=self.levels), *inputs)

    def lif(self, name: str, shape, threshold: float, current_decay: int, voltage_decay: int,
            *inputs: str, bias=0.0) -> str:
        """A Loihi CUBA neuron (12-bit decays, reset to 0) as stock NIR LIF or CubaLIF (ir/cuba.node;
        docs/nir-extensions.md)."""
        if voltage_decay <= 0:
            raise ValueError(f"{name}: a CUBA neuron without voltage decay is not exported")
        return self.add(name, cuba.node(shape, threshold, current_decay, voltage_decay, bias, DECAY_ONE), *inputs)

    def gate(self, name: str, src: str, p: float, shape) -> str:
        """Stochastic synapse gating after `src` (nothing when p == 0)."""
        return self.gate_sum(name, [src], p, shape)[0]

    def gate_sum(self, name: str, srcs: list, p: float, shape) -> list:
        """Gating of the sum of `srcs` (fan-in): one gate on the sum, or the sources unchanged."""
        if p == 0.0:
            return list(srcs)
        self.streams += 1
        return [self.add(name, SynapseGate(shape=shape, p=p, seed=self.seed, stream=self.streams), *srcs)]

    def tokens(self, name: str, chw, src: str) -> str:
        """(C, H, W) -> (C, H*W) tokens: a Flatten of the spatial axes."""
        return self.add(name, nir.Flatten(input_type={"input": np.array(chw)}, start_dim=1, end_dim=2), src)

    def build(self, metadata: dict) -> nir.NIRGraph:
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=metadata)

"""Graph building helpers shared by the lowerings: node naming, neurons, gates, BatchNorm folding."""
from __future__ import annotations

import nir
import numpy as np
import torch
from torch import nn

from ..models.qcfs import QCFS
from .nodes import ResetSubIF, SynapseGate


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
    """Collects nodes and edges; gives every SynapseGate its own stream id in creation order."""

    def __init__(self, seed: int = 0):
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.seed = int(seed)
        self.streams = 0

    def add(self, name: str, node: nir.NIRNode, *inputs: str) -> str:
        if name in self.nodes:
            raise ValueError(f"duplicate node name {name}")
        self.nodes[name] = node
        self.edges += [(i, name) for i in inputs]
        return name

    def neuron(self, name: str, act: QCFS, shape, *inputs: str, bias=0.0) -> str:
        """The IF neuron that replaces a QCFS: threshold lam, initial potential lam / 2."""
        lam = qcfs_lam(act)
        bias = np.asarray(bias, dtype=np.float32)
        if bias.ndim and not np.any(bias):
            bias = np.zeros(1, np.float32)
        return self.add(name, ResetSubIF(shape=shape, threshold=lam, v_init=lam / 2, bias=bias), *inputs)

    def gate(self, name: str, src: str, p: float, shape) -> str:
        """Stochastic synapse gating after `src` (nothing when p == 0)."""
        if p == 0.0:
            return src
        self.streams += 1
        return self.add(name, SynapseGate(shape=shape, p=p, seed=self.seed, stream=self.streams), src)

    def build(self, metadata: dict) -> nir.NIRGraph:
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=metadata)

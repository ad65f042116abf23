"""Model -> NIR graph: dispatch to the per-architecture lowering, with graph metadata."""
from __future__ import annotations

import json

import nir
import numpy as np
import torch

from ..errors import UserError
from ..models.mst import MST
from ..models.resnet import ResNet
from ..models.saformer import SAFormer
from ..models.vgg import VGG
from . import portable
from .cnn import ExtensionNeeded, lower_resnet, lower_vgg
from .mst import lower_mst
from ..ir.nodes import EXTENSIONS, ResetSubIF
from ..ir.producers import RESETS
from ..loihi.widths import LEVELS_MAX, PAYLOAD_BITS
from .saformer import lower_saformer

FORMAT = "mstdeploy-nir/1"


LAYERNORM_MODES = ("cumulative", "per_step")


def _reset_to_zero(b) -> None:
    """Every converted neuron as stock IF: v += I, spike on v > lam, v = 0 (the conversion's other
    reset, Diehl et al. 2015; Rueckauer et al. 2017, section 2.2): no initial potential, and the
    residue above the threshold is lost, so accuracy drops; netx's LIF runs it (loihi/netx.py)."""
    for name, node in list(b.nodes.items()):
        if not isinstance(node, ResetSubIF):
            continue
        if np.any(np.asarray(node.bias)):
            raise UserError(f"--reset zero: {name} has a bias current, which stock IF has no field for")
        shape = tuple(int(v) for v in node.shape)
        full = lambda v: np.broadcast_to(np.asarray(v, np.float32), shape).copy()  # noqa: E731
        b.nodes[name] = nir.IF(r=full(1.0), v_threshold=full(node.threshold), v_reset=full(0.0))


def to_nir(model: torch.nn.Module, seed: int = 0, standard: bool = False,
           layernorm: str = "cumulative", spike_levels: int = 1, reset: str = "subtract") -> nir.NIRGraph:
    """The converted SNN of `model` (eval mode, its masks as stochastic synapse gating). `layernorm`:
    how an MST's LayerNorm head reads the residual stream, `cumulative` (the norm of its running
    mean: the exact readout) or `per_step` (each step's value: the official conversion).
    `spike_levels` M: each converted neuron sends graded spikes k in 0..M (1: binary). `reset`:
    the converted IF neuron's, `subtract` (exact: the QCFS conversion) or `zero` (stock IF)."""
    if layernorm not in LAYERNORM_MODES:
        raise UserError(f"layernorm must be one of {list(LAYERNORM_MODES)}, got {layernorm!r}")
    model = model.eval()
    cfg = model.config
    levels = int(spike_levels)
    if not 1 <= levels <= LEVELS_MAX:
        raise UserError(f"--spike-levels must be in 1..{LEVELS_MAX} (payloads of {PAYLOAD_BITS} bits), got {levels}")
    if reset not in RESETS:
        raise UserError(f"reset must be one of {list(RESETS)}, got {reset!r}")
    if reset == "zero" and (standard or levels > 1 or isinstance(model, SAFormer)):
        raise UserError("--reset zero makes the converted IF neurons stock IF (binary spikes, our nodes): not with "
                        "--standard, --spike-levels > 1 or SAFormer's LIF neurons")
    if levels > 1 and (standard or isinstance(model, SAFormer)):
        raise UserError("--spike-levels > 1 is for converted QCFS models (MST, ResNet, VGG) in our extension "
                        "nodes: stock NIR and SAFormer's LIF neurons have binary spikes")
    with torch.no_grad():
        try:
            if isinstance(model, MST):
                b = lower_mst(model, seed, layernorm, levels)
            elif isinstance(model, VGG):
                b = lower_vgg(model, seed, standard, levels)
            elif isinstance(model, SAFormer):
                b = lower_saformer(model, seed)
            elif isinstance(model, ResNet):
                b = lower_resnet(model, seed, standard, levels)
            else:
                raise UserError(f"cannot export a {type(model).__name__}")
        except ExtensionNeeded as e:
            raise UserError(f"--standard is impossible: these ops need NIR extensions: {e}") from None
    if reset == "zero":
        _reset_to_zero(b)
    if standard:
        used = sorted({type(n).__name__ for n in b.nodes.values() if isinstance(n, EXTENSIONS)})
        if used:
            raise UserError(f"--standard is impossible for {cfg.arch}: it needs the extension ops "
                            f"{', '.join(used)} (see docs/nir-extensions.md)")
    meta = {"format": FORMAT, "arch": cfg.arch, "seed": int(seed), "standard": int(standard), "reset": reset,
            "config": json.dumps(cfg.to_dict())}
    if standard:
        meta["dt"] = portable.DT                    # its time constants are in seconds of this step
    if hasattr(cfg, "attention"):
        meta["attention"] = cfg.attention
    if isinstance(model, MST) and cfg.head_norm == "layer":
        meta["layernorm"] = layernorm
    if levels > 1:
        meta["spike_levels"] = levels               # informational: the neurons' `levels` field says it
    if hasattr(cfg, "steps"):
        meta["steps"] = int(cfg.steps)              # informational: the T it was trained with
    return b.build(meta)

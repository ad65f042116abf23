"""Model -> NIR graph: dispatch to the per-architecture lowering, with graph metadata."""
from __future__ import annotations

import json

import nir
import torch

from ..errors import UserError
from ..models.mst import MST
from ..models.resnet import ResNet
from ..models.saformer import SAFormer
from ..models.vgg import VGG
from . import portable
from .cnn import ExtensionNeeded, lower_resnet, lower_vgg
from .mst import lower_mst
from ..ir.nodes import EXTENSIONS
from ..loihi.widths import LEVELS_MAX, PAYLOAD_BITS
from .saformer import lower_saformer

FORMAT = "mstdeploy-nir/1"


LAYERNORM_MODES = ("cumulative", "per_step")


def to_nir(model: torch.nn.Module, seed: int = 0, standard: bool = False,
           layernorm: str = "cumulative", spike_levels: int = 1) -> nir.NIRGraph:
    """The converted SNN of `model` (eval mode, its masks as stochastic synapse gating). `layernorm`:
    how an MST's LayerNorm head reads the residual stream, `cumulative` (the norm of its running
    mean: the exact readout) or `per_step` (each step's value: the official conversion).
    `spike_levels` M: each converted neuron sends graded spikes k in 0..M (1: binary)."""
    if layernorm not in LAYERNORM_MODES:
        raise UserError(f"layernorm must be one of {list(LAYERNORM_MODES)}, got {layernorm!r}")
    model = model.eval()
    cfg = model.config
    levels = int(spike_levels)
    if not 1 <= levels <= LEVELS_MAX:
        raise UserError(f"--spike-levels must be in 1..{LEVELS_MAX} (payloads of {PAYLOAD_BITS} bits), got {levels}")
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
    if standard:
        used = sorted({type(n).__name__ for n in b.nodes.values() if isinstance(n, EXTENSIONS)})
        if used:
            raise UserError(f"--standard is impossible for {cfg.arch}: it needs the extension ops "
                            f"{', '.join(used)} (see docs/nir-extensions.md)")
    meta = {"format": FORMAT, "arch": cfg.arch, "seed": int(seed), "standard": int(standard),
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

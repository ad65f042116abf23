"""Official MST checkpoints (github bic-L/Masked-Spiking-Transformer) as our models.

The official `main.py` saves `{'model': state_dict}` of its `MaskedSpikingTransformer` after
`replace_activation_by_floor` turned every ReLU into a `MyFloor` whose threshold is the parameter
`up` (shape [1], L = 16). Our MST (models/mst.py) uses the official module names, so the weights
map one to one: each `.up` becomes our `.lam` (a scalar). The official `MyFloor` computes
clamp(floor(x/up * L + 0.5) / L, 0, 1) * up, which equals our QCFS for every x. The architecture
is read from the tensors' shapes (docs/official-mst.md); what no tensor shows (masking ratio,
attention mode, L) comes from the caller.
"""
from __future__ import annotations

import math
import re

import torch

from ..errors import UserError
from .config import MSTConfig
from .registry import build_model

# Buffers the official model stores that ours computes; they are compared, not loaded.
COMPUTED = ("relative_position_index", "attn_mask")
LEVELS = 16                     # main.py: replace_activation_by_floor(ann, t=16, ...)


def state_dict_of(payload) -> dict:
    """The state dict of an official file: {'model': state_dict} or a bare state dict, with a
    DistributedDataParallel `module.` prefix removed."""
    sd = payload.get("model", payload) if isinstance(payload, dict) else None
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError("not an official MST checkpoint: expected {'model': state_dict} or a state dict of tensors")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _need(sd: dict, key: str) -> torch.Tensor:
    if key not in sd:
        raise UserError(f"not an official MST state dict: key {key!r} is missing")
    return sd[key]


def infer_config(sd: dict, img_size: int | None = None, **flags) -> MSTConfig:
    """The MSTConfig whose model has exactly these tensors. `img_size` is needed only when no
    shifted block stores an attention mask (which tells the token grid)."""
    proj = _need(sd, "patch_embed.proj.weight")
    embed, in_chans, patch = int(proj.shape[0]), int(proj.shape[1]), int(proj.shape[2])
    blocks = {}
    for k in sd:
        m = re.match(r"layers\.(\d+)\.blocks\.(\d+)\.", k)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        raise UserError("not an official MST state dict: no layers.<i>.blocks.<j> weights in order")
    depths = [len(blocks[i]) for i in range(len(blocks))]
    heads = [int(_need(sd, f"layers.{i}.blocks.0.attn.relative_position_bias_table").shape[1])
             for i in range(len(depths))]
    rows = int(_need(sd, "layers.0.blocks.0.attn.relative_position_bias_table").shape[0])
    window = (math.isqrt(rows) + 1) // 2
    hidden = int(_need(sd, "layers.0.blocks.0.mlp.fc1.weight").shape[0])
    grid = None
    for i in range(len(depths)):
        for j in range(depths[i]):
            mask = sd.get(f"layers.{i}.blocks.{j}.attn_mask")
            if mask is not None and grid is None:
                w = math.isqrt(int(mask.shape[-1]))
                grid = w * math.isqrt(int(mask.shape[0])) * 2 ** i * patch
    if grid is not None and img_size is not None and grid != img_size:
        raise UserError(f"--img-size {img_size} disagrees with the checkpoint's attention masks, "
                        f"which are for {grid}x{grid} images")
    size = grid or img_size or 224
    cfg = MSTConfig(img_size=size, patch_size=patch, in_chans=in_chans, embed_dim=embed, depths=depths,
                    num_heads=heads, window_size=window, mlp_ratio=hidden / embed,
                    num_classes=int(_need(sd, "head.weight").shape[0]),
                    mlp_bn="layers.0.blocks.0.mlp.norm1.weight" in sd,
                    head_norm="batch" if "norm.running_mean" in sd else "layer",
                    **{"levels": LEVELS, **flags})
    cfg.validate()
    return cfg


def _listed(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")


def import_official(payload, img_size: int | None = None, **flags) -> torch.nn.Module:
    """Our MST holding an official checkpoint's weights (eval mode). `flags`: config fields no
    tensor shows (mask, attention, mask_sites, levels)."""
    sd = state_dict_of(payload)
    cfg = infer_config(sd, img_size, **flags)
    model = build_model(cfg).eval()
    ours = model.state_dict()
    own_buffers = dict(model.named_buffers())
    mapped, unknown = {}, []
    for k, v in sd.items():
        leaf = k.rsplit(".", 1)[-1]
        if leaf in COMPUTED:
            mine = own_buffers.get(k.replace("attn_mask", "shift_mask"))
            if mine is None or mine.shape != v.shape or not torch.equal(mine.to(v.dtype), v):
                raise UserError(f"{k} differs from the one this architecture computes "
                                f"({cfg.img_size}x{cfg.img_size} images, window {cfg.window_size})")
            continue
        name = k[:-len(".up")] + ".lam" if leaf == "up" else k
        if name not in ours:
            unknown.append(k)
            continue
        if leaf == "up":
            if v.numel() != 1:
                raise UserError(f"{k}: a QCFS threshold must hold one value, it holds {v.numel()}")
            v = v.reshape(())
        if v.shape != ours[name].shape:
            raise UserError(f"{k} has shape {tuple(v.shape)}, the inferred architecture needs "
                            f"{tuple(ours[name].shape)}")
        mapped[name] = v
    missing = sorted(set(ours) - set(mapped))
    if unknown or missing:
        parts = ([f"unknown keys {_listed(unknown)}"] if unknown else []) + \
                ([f"missing keys {_listed(missing)}"] if missing else [])
        raise UserError(f"not an official MST state dict: {'; '.join(parts)}")
    for name, v in mapped.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise UserError(f"weight {name!r} holds NaN or infinite values")
    model.load_state_dict({k: v.to(ours[k].dtype) for k, v in mapped.items()})
    return model

"""Masked Spiking Transformer: Swin layout with BatchNorm and QCFS at every activation site.

Follows docs/sources.md, "MST" (the official MST code): patch embed Conv-BN-QCFS; blocks
``x = QCFS(BN1(x))`` (also the shortcut), (shifted) window attention, ``y = BN2(x)``,
``x = y + MLP(QCFS(y))``; patch merging concat-BN-Linear-QCFS; head norm -> average pool ->
Linear. Tokens are kept channel-last, (B, H, W, C).
"""
from __future__ import annotations

import torch
from torch import nn

from .attention import WindowAttention
from .config import MSTConfig
from .qcfs import QCFS
from .rsm import RandomSpikeMask


class TokenBN(nn.BatchNorm1d):
    """BatchNorm over the channel (last) axis of a channel-last token tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def window_partition(x: torch.Tensor, w: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/w * W/w, w*w, C), windows in row-major order."""
    B, H, W, C = x.shape
    x = x.reshape(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, C)


def window_reverse(windows: torch.Tensor, w: int, H: int, W: int) -> torch.Tensor:
    C = windows.shape[-1]
    x = windows.reshape(-1, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, H, W, C)


def shift_attention_mask(H: int, W: int, w: int, s: int) -> torch.Tensor:
    """Swin's mask for shifted windows: -100 between tokens from different regions, else 0."""
    img = torch.zeros(1, H, W, 1)
    cnt = 0
    for hs in (slice(0, -w), slice(-w, -s), slice(-s, None)):
        for ws in (slice(0, -w), slice(-w, -s), slice(-s, None)):
            img[:, hs, ws, :] = cnt
            cnt += 1
    ids = window_partition(img, w).squeeze(-1)            # (nW, N)
    diff = ids.unsqueeze(1) - ids.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


class MLP(nn.Module):
    """fc1 -> [BN] -> QCFS -> fc2 -> [BN] -> QCFS, with RSM on the fc1 and fc2 spike inputs."""

    def __init__(self, dim: int, hidden: int, cfg: MSTConfig, p: float):
        super().__init__()
        site = "mlp" in cfg.mask_sites
        self.mask_fc1 = RandomSpikeMask(p if site else 0.0)
        self.fc1 = nn.Linear(dim, hidden)
        self.bn1 = TokenBN(hidden) if cfg.mlp_bn else nn.Identity()
        self.act1 = QCFS(cfg.levels, cfg.lam_init)
        self.mask_fc2 = RandomSpikeMask(p if site else 0.0)
        self.fc2 = nn.Linear(hidden, dim)
        self.bn2 = TokenBN(dim) if cfg.mlp_bn else nn.Identity()
        self.act2 = QCFS(cfg.levels, cfg.lam_init)

    def forward(self, x):
        x = self.act1(self.bn1(self.fc1(self.mask_fc1(x))))
        return self.act2(self.bn2(self.fc2(self.mask_fc2(x))))


class MSTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, resolution: int, window: int, shift: int,
                 cfg: MSTConfig, p: float):
        super().__init__()
        if resolution <= window:            # one window covers everything: no shift (Swin)
            window, shift = resolution, 0
        self.resolution, self.window, self.shift = resolution, window, shift
        self.norm1 = TokenBN(dim)
        self.act1 = QCFS(cfg.levels, cfg.lam_init)
        self.attn = WindowAttention(dim, heads, window, cfg, p)
        self.norm2 = TokenBN(dim)
        self.mlp_in = QCFS(cfg.levels, cfg.lam_init)
        self.mlp = MLP(dim, int(dim * cfg.mlp_ratio), cfg, p)
        mask = shift_attention_mask(resolution, resolution, window, shift) if shift else None
        self.register_buffer("shift_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        x = self.act1(self.norm1(x))
        shortcut = x
        if self.shift:
            x = torch.roll(x, (-self.shift, -self.shift), dims=(1, 2))
        x = self.attn(window_partition(x, self.window), self.shift_mask)
        x = window_reverse(x, self.window, H, W)
        if self.shift:
            x = torch.roll(x, (self.shift, self.shift), dims=(1, 2))
        x = shortcut + x
        y = self.norm2(x)
        return y + self.mlp(self.mlp_in(y))


class PatchMerging(nn.Module):
    """Concatenate each 2x2 neighbourhood -> BN(4C) -> Linear(4C, 2C, no bias) -> QCFS."""

    def __init__(self, dim: int, cfg: MSTConfig):
        super().__init__()
        self.norm = TokenBN(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.act = QCFS(cfg.levels, cfg.lam_init)

    def forward(self, x):
        x0, x1 = x[:, 0::2, 0::2], x[:, 1::2, 0::2]
        x2, x3 = x[:, 0::2, 1::2], x[:, 1::2, 1::2]
        return self.act(self.reduction(self.norm(torch.cat([x0, x1, x2, x3], -1))))


class MST(nn.Module):
    def __init__(self, cfg: MSTConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        C = cfg.embed_dim
        self.patch_embed = nn.Conv2d(cfg.in_chans, C, cfg.patch_size, cfg.patch_size)
        self.patch_norm = nn.BatchNorm2d(C)
        self.patch_act = QCFS(cfg.levels, cfg.lam_init)
        ratios = iter(cfg.block_ratios())
        res = cfg.img_size // cfg.patch_size
        self.stages = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
            dim = C * 2 ** i
            blocks = [MSTBlock(dim, heads, res, cfg.window_size,
                               0 if j % 2 == 0 else cfg.window_size // 2, cfg, next(ratios))
                      for j in range(depth)]
            if i < len(cfg.depths) - 1:
                blocks.append(PatchMerging(dim, cfg))
                res //= 2
            self.stages.append(nn.Sequential(*blocks))
        dim = C * 2 ** (len(cfg.depths) - 1)
        self.head_norm = nn.BatchNorm1d(dim) if cfg.head_norm == "batch" else nn.LayerNorm(dim)
        self.head = nn.Linear(dim, cfg.num_classes)
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_act(self.patch_norm(self.patch_embed(x))).permute(0, 2, 3, 1)
        for stage in self.stages:
            x = stage(x)
        x = x.flatten(1, 2)                                 # (B, N, C)
        if isinstance(self.head_norm, nn.BatchNorm1d):
            x = self.head_norm(x.transpose(1, 2)).transpose(1, 2)
        else:
            x = self.head_norm(x)
        return self.head(x.mean(1))


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)

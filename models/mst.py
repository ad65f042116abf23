"""Masked Spiking Transformer in the layout of the official code, with its module names.

Official `models/mst.py` (github bic-L/Masked-Spiking-Transformer, docs/sources.md "MST"), read and
re-written: patch embed Conv -> BN -> QCFS; block `shortcut = x; x = QCFS(BN1(x))`, (shifted) window
attention, `x = shortcut + drop_path(attn)`, `y = BN2(x)`, `x = y + drop_path(MLP(QCFS(y)))`;
patch merging concat -> BN -> Linear -> QCFS; head LayerNorm -> token mean -> Linear. Every QCFS
site has the official module's name (`shortcut1_if`, `attn.q_if`, ...), so an official state dict
maps onto ours by renaming each threshold `.up` to `.lam` (models/official.py). Tokens are kept
channel-last, (B, H, W, C) inside blocks and (B, N, C) between them.
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


class DropPath(nn.Module):
    """Stochastic depth (training only): zero a residual branch for a whole sample with probability p,
    scaling the kept ones by 1/(1-p), as timm's DropPath that the official code uses."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


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
    """fc1 -> [BN] -> QCFS -> fc2 -> [BN] -> QCFS, with RSM on the fc1 and fc2 spike inputs
    (site `mlp`; the official code masks no MLP input). BN when `mlp_bn` (official: ImageNet)."""

    def __init__(self, dim: int, hidden: int, cfg: MSTConfig, p: float):
        super().__init__()
        site = "mlp" in cfg.mask_sites
        self.mask_fc1 = RandomSpikeMask(p if site else 0.0)
        self.fc1 = nn.Linear(dim, hidden)
        self.norm1 = TokenBN(hidden) if cfg.mlp_bn else nn.Identity()
        self.fc1_if = QCFS(cfg.levels, cfg.lam_init)
        self.mask_fc2 = RandomSpikeMask(p if site else 0.0)
        self.fc2 = nn.Linear(hidden, dim)
        self.norm2 = TokenBN(dim) if cfg.mlp_bn else nn.Identity()
        self.fc2_if = QCFS(cfg.levels, cfg.lam_init)

    def forward(self, x):
        x = self.fc1_if(self.norm1(self.fc1(self.mask_fc1(x))))
        return self.fc2_if(self.norm2(self.fc2(self.mask_fc2(x))))


class MSTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, resolution: int, window: int, shift: int,
                 cfg: MSTConfig, p: float, drop_path: float = 0.0):
        super().__init__()
        if resolution <= window:            # one window covers everything: no shift (Swin)
            window, shift = resolution, 0
        self.resolution, self.window, self.shift = resolution, window, shift
        self.norm1 = TokenBN(dim)
        self.shortcut1_if = QCFS(cfg.levels, cfg.lam_init)
        self.attn = WindowAttention(dim, heads, window, cfg, p)
        self.drop_path = DropPath(drop_path)
        self.norm2 = TokenBN(dim)
        self.shortcut2_if = QCFS(cfg.levels, cfg.lam_init)
        self.mlp = MLP(dim, int(dim * cfg.mlp_ratio), cfg, p)
        mask = shift_attention_mask(resolution, resolution, window, shift) if shift else None
        self.register_buffer("shift_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, N, C) tokens of a resolution x resolution grid."""
        B, N, C = x.shape
        H = W = self.resolution
        shortcut = x                                   # the block input, before norm1 (official)
        x = self.shortcut1_if(self.norm1(x)).reshape(B, H, W, C)
        if self.shift:
            x = torch.roll(x, (-self.shift, -self.shift), dims=(1, 2))
        x = self.attn(window_partition(x, self.window), self.shift_mask)
        x = window_reverse(x, self.window, H, W)
        if self.shift:
            x = torch.roll(x, (self.shift, self.shift), dims=(1, 2))
        x = shortcut + self.drop_path(x.reshape(B, N, C))
        y = self.norm2(x)
        return y + self.drop_path(self.mlp(self.shortcut2_if(y)))


class PatchMerging(nn.Module):
    """Concatenate each 2x2 neighbourhood -> BN(4C) -> Linear(4C, 2C, no bias) -> QCFS."""

    def __init__(self, dim: int, resolution: int, cfg: MSTConfig):
        super().__init__()
        self.resolution = resolution
        self.norm = TokenBN(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.reduction_if = QCFS(cfg.levels, cfg.lam_init)

    def forward(self, x):
        B, N, C = x.shape
        x = x.reshape(B, self.resolution, self.resolution, C)
        x0, x1 = x[:, 0::2, 0::2], x[:, 1::2, 0::2]
        x2, x3 = x[:, 0::2, 1::2], x[:, 1::2, 1::2]
        x = torch.cat([x0, x1, x2, x3], -1).reshape(B, -1, 4 * C)
        return self.reduction_if(self.reduction(self.norm(x)))


class PatchEmbed(nn.Module):
    """Conv(k = s = patch) -> BN -> QCFS, to (B, N, C) tokens."""

    def __init__(self, cfg: MSTConfig):
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, cfg.patch_size, cfg.patch_size)
        self.norm = TokenBN(cfg.embed_dim)
        self.proj_if = QCFS(cfg.levels, cfg.lam_init)

    def forward(self, x):
        return self.proj_if(self.norm(self.proj(x).flatten(2).transpose(1, 2)))


class Stage(nn.Module):
    def __init__(self, blocks: list, downsample: nn.Module | None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return x if self.downsample is None else self.downsample(x)


class MST(nn.Module):
    def __init__(self, cfg: MSTConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.patch_embed = PatchEmbed(cfg)
        ratios = iter(cfg.block_ratios())
        drops = iter(cfg.drop_paths())
        res = cfg.img_size // cfg.patch_size
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
            dim = cfg.embed_dim * 2 ** i
            blocks = [MSTBlock(dim, heads, res, cfg.window_size, 0 if j % 2 == 0 else cfg.window_size // 2,
                               cfg, next(ratios), next(drops)) for j in range(depth)]
            last = i == len(cfg.depths) - 1
            self.layers.append(Stage(blocks, None if last else PatchMerging(dim, res, cfg)))
            res = res if last else res // 2
        dim = cfg.embed_dim * 2 ** (len(cfg.depths) - 1)
        self.norm = nn.LayerNorm(dim) if cfg.head_norm == "layer" else nn.BatchNorm1d(dim)
        self.head = nn.Linear(dim, cfg.num_classes)
        self.apply(_init)

    def blocks(self):
        """(stage index, module) for every block and patch merging, in forward order."""
        for i, stage in enumerate(self.layers):
            for blk in stage.blocks:
                yield i, blk
            if stage.downsample is not None:
                yield i, stage.downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for stage in self.layers:
            x = stage(x)
        if isinstance(self.norm, nn.BatchNorm1d):
            x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        else:
            x = self.norm(x)
        return self.head(x.mean(1))


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)

"""Model configurations: plain dataclasses that round-trip through a dict (stored in checkpoints).

A checkpoint holds `config.to_dict()`; `from_dict` rebuilds it without any training code. Each
architecture has one config class; `arch` names it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Union

from ..errors import UserError
from ..ir.ratio import check_ratio
from ..loihi.widths import CUBA_SCALE, DECAY_ONE

MaskRatio = Union[float, list]
MST_MASK_SITES = ("q", "k", "attn", "mlp")


def resolve_ratios(mask: MaskRatio, count: int, what: str) -> list[float]:
    """One ratio for every site, or a per-block/per-layer list of exactly `count` ratios."""
    if isinstance(mask, (list, tuple)):
        if len(mask) != count:
            raise UserError(f"per-{what} masking list has {len(mask)} ratios, the model has {count} {what}s")
        return [check_ratio(p) for p in mask]
    return [check_ratio(mask)] * count


MAX_SIZE = 1 << 20       # no size in any config (channels, tokens, layers) is larger


def _like(v, default) -> bool:
    """v has default's kind: a flag, a size in [1, MAX_SIZE], a finite number, a name, or a list
    whose elements are each like one of default's elements."""
    if isinstance(default, bool):
        return isinstance(v, bool)
    if isinstance(v, bool):
        return False
    if isinstance(default, int):
        return isinstance(v, int) and 1 <= v <= MAX_SIZE
    if isinstance(default, float):
        return isinstance(v, (int, float)) and math.isfinite(v)
    if isinstance(default, str):
        return isinstance(v, str)
    if isinstance(default, list):
        return isinstance(v, list) and all(any(_like(e, d) for d in default) for e in v)
    return True


def _check_value(what: str, v, default) -> None:
    # a masking ratio may be one number or one per block (resolve_ratios checks the values)
    ok = _like(v, default) or (isinstance(default, float) and isinstance(v, list)
                               and all(_like(e, default) for e in v))
    if not ok:
        raise UserError(f"{what} has an unusable value {v!r} (expected like {default!r})")


@dataclass
class _Config:
    arch: str = ""
    img_size: int = 32
    in_chans: int = 3
    num_classes: int = 10
    mask: MaskRatio = 0.0     # RSM ratio p: one number or one per block/layer

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "_Config":
        out = dataclasses.replace(self, **changes)
        out.validate()
        return out

    def validate(self) -> None:
        self._check_types()
        if self.img_size < 1 or self.in_chans < 1 or self.num_classes < 2:
            raise UserError("img_size, in_chans must be >= 1 and num_classes >= 2")

    def _check_types(self) -> None:
        """Every field has its default's type (a checkpoint's config may be anything): whole numbers
        in [1, MAX_SIZE], finite numbers, strings, flags, and lists of those."""
        for f in dataclasses.fields(self):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            _check_value(f"{self.arch} config field {f.name}", getattr(self, f.name), default)


@dataclass
class _QCFSConfig(_Config):
    """ANN-to-SNN conversion models: QCFS activations."""
    levels: int = 16          # QCFS L
    lam_init: float = 2.0     # QCFS threshold initial value

    def validate(self) -> None:
        super().validate()
        if self.levels < 1:
            raise UserError(f"QCFS levels must be >= 1, got {self.levels}")


@dataclass
class MSTConfig(_QCFSConfig):
    """Masked Spiking Transformer in the official layout (models/mst.py): BatchNorm in blocks, patch
    embed and merging, a LayerNorm head."""
    arch: str = "mst"
    img_size: int = 224
    patch_size: int = 4
    embed_dim: int = 96
    depths: list = field(default_factory=lambda: [2, 2, 6, 2])
    num_heads: list = field(default_factory=lambda: [3, 6, 12, 24])
    window_size: int = 7
    mlp_ratio: float = 4.0
    attention: str = "softmax"     # "softmax" (official MST) or "spiking" (softmax-free, exact)
    mask_sites: list = field(default_factory=lambda: ["q", "k", "attn"])
    mlp_bn: bool = False           # BN after fc1/fc2 (the official code: ImageNet only)
    head_norm: str = "layer"       # "layer" (official) or "batch" (folds into the classifier)
    drop_path: float = 0.0         # stochastic depth of the last block (training only; official 0.2)

    def validate(self) -> None:
        super().validate()
        if self.attention not in ("softmax", "spiking"):
            raise UserError(f"attention must be 'softmax' or 'spiking', got {self.attention!r}")
        if self.head_norm not in ("batch", "layer"):
            raise UserError(f"head_norm must be 'batch' or 'layer', got {self.head_norm!r}")
        bad = [s for s in self.mask_sites if s not in MST_MASK_SITES]
        if bad:
            raise UserError(f"unknown masking site(s) {bad}; choose from {list(MST_MASK_SITES)}")
        if len(self.depths) != len(self.num_heads):
            raise UserError("depths and num_heads must have the same length")
        if self.img_size % self.patch_size:
            raise UserError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if not 0.0 <= self.drop_path < 1.0:
            raise UserError(f"drop_path must be in [0, 1), got {self.drop_path}")
        res = self.img_size // self.patch_size
        for i, heads in enumerate(self.num_heads):
            dim = self.embed_dim * 2 ** i
            if dim % heads:
                raise UserError(f"stage {i}: dim {dim} is not divisible by {heads} heads")
            if i < len(self.depths) - 1 and res % 2:
                raise UserError(f"stage {i}: resolution {res} cannot be merged 2x2")
            res //= 2
        self.block_ratios()

    def block_ratios(self) -> list[float]:
        return resolve_ratios(self.mask, sum(self.depths), "block")

    def drop_paths(self) -> list[float]:
        """Per-block stochastic depth rising linearly from 0 to `drop_path` (Swin's rule)."""
        n = sum(self.depths)
        return [self.drop_path * i / (n - 1) if n > 1 else 0.0 for i in range(n)]


@dataclass
class _CNNConfig(_QCFSConfig):
    """CNN baselines: one RSM ratio per masked layer (`masked_layers`, in forward order)."""

    def masked_layers(self) -> int:
        raise NotImplementedError

    def layer_ratios(self) -> list[float]:
        return resolve_ratios(self.mask, self.masked_layers(), "layer")

    def validate(self) -> None:
        super().validate()
        self.layer_ratios()


@dataclass
class ResNetConfig(_CNNConfig):
    """CIFAR-style QCFS ResNet (3x3 stem, no max-pool); RSM on every conv/linear spike input."""
    arch: str = "resnet"
    blocks: list = field(default_factory=lambda: [2, 2, 2, 2])
    width: int = 64

    def masked_layers(self) -> int:
        convs = sum(2 * n for n in self.blocks)
        shortcuts = len(self.blocks) - 1  # the first block of every later stage projects
        return convs + shortcuts + 1  # + the classifier


@dataclass
class VGGConfig(_CNNConfig):
    """CIFAR-style QCFS VGG: conv3x3-BN-QCFS stacks, average pooling ('M'), a 3-layer classifier."""
    arch: str = "vgg"
    layers: list = field(default_factory=lambda: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                                  512, 512, 512, "M", 512, 512, 512, "M"])
    hidden: int = 512

    def masked_layers(self) -> int:
        return sum(1 for c in self.layers if c != "M") + 2   # every conv output, 2 hidden linears


SAFORMER_MASK_SITES = MST_MASK_SITES


@dataclass
class SAFormerConfig(_Config):
    """SAFormer, trained directly as an SNN with Loihi CUBA LIF neurons (lava-dl slayer)."""
    arch: str = "saformer"
    stem: list = field(default_factory=lambda: [[64, 1], [128, 2], [256, 2]])  # (channels, stride)
    embed_dim: int = 256
    depth: int = 4
    num_heads: int = 8
    mlp_ratio: float = 4.0
    agg_grid: int = 2              # SASA aggregates the keys of each region of a grid x grid split
    steps: int = 4                 # T of training and of the model's own evaluation
    threshold: float = 1.0
    current_decay: float = 1.0     # 1: no synaptic current memory (a LIF)
    voltage_decay: float = 0.5     # tau_mem = 2, as in Spikformer
    tau_grad: float = 0.01         # surrogate gradient width and scale (slayer's units)
    scale_grad: float = 3.0
    mask_sites: list = field(default_factory=lambda: ["q", "k", "attn"])

    def validate(self) -> None:
        super().validate()
        bad = [s for s in self.mask_sites if s not in SAFORMER_MASK_SITES]
        if bad:
            raise UserError(f"unknown masking site(s) {bad}; choose from {list(SAFORMER_MASK_SITES)}")
        if self.embed_dim % self.num_heads:
            raise UserError(f"embed_dim {self.embed_dim} is not divisible by {self.num_heads} heads")
        if self.steps < 1 or self.depth < 1 or not self.stem:
            raise UserError("steps and depth must be >= 1 and the stem needs a layer")
        if self.stem[-1][0] != self.embed_dim:
            raise UserError(f"the last stem layer has {self.stem[-1][0]} channels, embed_dim is {self.embed_dim}")
        if self.threshold * CUBA_SCALE != round(self.threshold * CUBA_SCALE) or self.threshold <= 0:
            raise UserError(f"threshold {self.threshold} is not a positive multiple of 1/64 (Loihi's vth)")
        for name in ("current_decay", "voltage_decay"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0 or v * DECAY_ONE != round(v * DECAY_ONE):
                raise UserError(f"{name} {v} must be a multiple of 1/4096 in [0, 1] (12-bit decay)")
        if self.current_decay == 0.0:
            raise UserError("current_decay 0 (a perfect current integrator) has no Lava equivalent")
        res = self.token_grid()
        if res % self.agg_grid:
            raise UserError(f"token grid {res}x{res} cannot be split into {self.agg_grid}x{self.agg_grid} regions")
        self.block_ratios()

    def token_grid(self) -> int:
        res = self.img_size
        for _, stride in self.stem:
            if res % stride:
                raise UserError(f"image size {self.img_size} does not divide by the stem strides")
            res //= stride
        return res

    def block_ratios(self) -> list[float]:
        return resolve_ratios(self.mask, self.depth, "block")


CONFIGS = {"mst": MSTConfig, "resnet": ResNetConfig, "vgg": VGGConfig, "saformer": SAFormerConfig}

PRESETS = {
    # The paper's Swin-T (224x224).
    "mst-t": MSTConfig(),
    # Trains on the 8x8 digits set (upsampled to 16x16) on 2 CPU cores in a few minutes.
    "mst-tiny": MSTConfig(img_size=16, patch_size=2, embed_dim=32, depths=[2, 2], num_heads=[2, 4],
                          window_size=4, mlp_ratio=2.0),
    # Fashion-MNIST / MNIST (28x28 grey resized to 32x32 -> 8x8 tokens, windows of 4x4), 8 QCFS
    # levels: about 1.5 min per epoch of 60,000 images on 2 CPU cores (batch 128), 30 epochs in under
    # an hour (ANN 91.57%, docs/results.md).
    "mst-fmnist": MSTConfig(img_size=32, patch_size=4, embed_dim=64, depths=[2, 2], num_heads=[2, 4],
                            window_size=4, mlp_ratio=2.0, levels=8),
    "resnet18": ResNetConfig(),
    "vgg16": VGGConfig(),
    # Small VGG for digits-sized inputs and tests.
    "vgg-tiny": VGGConfig(img_size=16, layers=[16, 16, "M", 32, 32, "M"], hidden=64),
    # SAFormer for CIFAR-10 sized input (32x32 -> 8x8 tokens, 4 blocks of 256 channels).
    "saformer-cifar": SAFormerConfig(),
    # Digits (16x16 -> 8x8 tokens): trains on 2 CPU cores in a few minutes.
    "saformer-tiny": SAFormerConfig(img_size=16, stem=[[16, 1], [32, 2]], embed_dim=32, depth=2,
                                    num_heads=2, mlp_ratio=2.0),
}


# Fields renamed since checkpoints were first written: old name -> new name (old files keep loading).
RENAMED = {"timesteps": "steps"}


def config_from_dict(d: dict) -> _Config:
    d = {RENAMED.get(k, k): v for k, v in d.items()}
    arch = d.get("arch")
    if arch not in CONFIGS:
        raise UserError(f"unknown model architecture {arch!r}; known: {sorted(CONFIGS)}")
    cls = CONFIGS[arch]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise UserError(f"unknown {arch} config field(s): {unknown}")
    cfg = cls(**d)
    cfg.validate()
    return cfg


def preset(name: str, **overrides) -> _Config:
    if name not in PRESETS:
        raise UserError(f"unknown model {name!r}; choose from {sorted(PRESETS)}")
    return config_from_dict({**PRESETS[name].to_dict(), **overrides})

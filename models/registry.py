"""Build a model from its config (the only way models are made, so checkpoints rebuild exactly)."""
from __future__ import annotations

from torch import nn

from .config import MSTConfig, ResNetConfig, SAFormerConfig, VGGConfig, _Config


def build_model(cfg: _Config) -> nn.Module:
    """Imports only the architecture asked for (SAFormer needs lava-dl, the others do not)."""
    if isinstance(cfg, SAFormerConfig):
        from .saformer import SAFormer
        return SAFormer(cfg)
    from .mst import MST
    from .resnet import ResNet
    from .vgg import VGG
    builders = {MSTConfig: MST, ResNetConfig: ResNet, VGGConfig: VGG}
    return builders[type(cfg)](cfg)


def accuracy_name(cfg: _Config) -> str:
    """What a checkpoint's test accuracy measures: the QCFS ANN, or (SAFormer, trained directly as
    an SNN) the spiking network itself at its `steps`."""
    return "snn_accuracy" if isinstance(cfg, SAFormerConfig) else "ann_accuracy"


def accuracy_label(cfg: _Config) -> str:
    return f"SNN (T={cfg.steps})" if isinstance(cfg, SAFormerConfig) else "ANN"

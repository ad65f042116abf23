"""Build a model from its config (the only way models are made, so checkpoints rebuild exactly)."""
from __future__ import annotations

from torch import nn

from .config import MSTConfig, ResNetConfig, VGGConfig, _Config


def build_model(cfg: _Config) -> nn.Module:
    from .mst import MST
    from .resnet import ResNet
    from .vgg import VGG
    builders = {MSTConfig: MST, ResNetConfig: ResNet, VGGConfig: VGG}
    return builders[type(cfg)](cfg)

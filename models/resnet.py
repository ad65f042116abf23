"""CIFAR-style QCFS ResNet-18 (3x3 stem, no max-pool), RSM on the spike input of every conv/linear.

Each consumer draws its own mask (independent synapse gating per edge in the SNN); the identity
shortcut is not masked. The stem's input is the analog image, so it has no mask.
"""
from __future__ import annotations

from torch import nn

from .config import ResNetConfig
from .qcfs import QCFS
from .rsm import RandomSpikeMask


def masked_conv(p: float, cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(RandomSpikeMask(p), nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, cfg: ResNetConfig, ratios):
        super().__init__()
        self.conv1 = masked_conv(next(ratios), cin, cout, 3, stride)
        self.act1 = QCFS(cfg.levels, cfg.lam_init)
        self.conv2 = masked_conv(next(ratios), cout, cout, 3, 1)
        self.shortcut = (masked_conv(next(ratios), cin, cout, 1, stride)
                         if stride != 1 or cin != cout else nn.Identity())
        self.act2 = QCFS(cfg.levels, cfg.lam_init)

    def forward(self, x):
        return self.act2(self.conv2(self.act1(self.conv1(x))) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        ratios = iter(cfg.layer_ratios())
        w = cfg.width
        self.stem = nn.Sequential(nn.Conv2d(cfg.in_chans, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w),
                                  QCFS(cfg.levels, cfg.lam_init))
        layers, cin = [], w
        for i, n in enumerate(cfg.blocks):
            cout = w * 2 ** i
            for j in range(n):
                layers.append(BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1, cfg, ratios))
                cin = cout
        self.layers = nn.Sequential(*layers)
        # the classifier's mask drops spikes before the (linear) pooling
        self.pool = nn.Sequential(RandomSpikeMask(next(ratios)), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, cfg.num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.layers(self.stem(x))))

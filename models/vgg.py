"""CIFAR-style QCFS VGG: conv3x3-BN-QCFS stacks with average pooling ('M'), 3-layer classifier.

Average pooling (not max) because it is linear and converts exactly. A pooling step is skipped
once the feature map is 1x1, so the same layer list works for small inputs. RSM masks the spike
input of every conv/linear after the first conv (whose input is the analog image); it sits right
after the QCFS, before any pooling, so that it drops spikes (pool-then-conv is one linear map of
the spikes).
"""
from __future__ import annotations

from torch import nn

from .config import VGGConfig
from .qcfs import QCFS
from .rsm import RandomSpikeMask


class VGG(nn.Module):
    def __init__(self, cfg: VGGConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        ratios = iter(cfg.layer_ratios())
        layers, cin, res = [], cfg.in_chans, cfg.img_size
        for c in cfg.layers:
            if c == "M":
                if res > 1:
                    layers.append(nn.AvgPool2d(2))
                    res //= 2
                continue
            layers += [nn.Conv2d(cin, int(c), 3, 1, 1, bias=False), nn.BatchNorm2d(int(c)),
                       QCFS(cfg.levels, cfg.lam_init), RandomSpikeMask(next(ratios))]
            cin = int(c)
        self.features = nn.Sequential(*layers)
        flat, h = cin * res * res, cfg.hidden
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, h), QCFS(cfg.levels, cfg.lam_init),
            RandomSpikeMask(next(ratios)), nn.Linear(h, h), QCFS(cfg.levels, cfg.lam_init),
            RandomSpikeMask(next(ratios)), nn.Linear(h, cfg.num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))

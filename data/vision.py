"""torchvision (and timm, which imports it), importable beside the CPU-only torch 2.13.0 wheel.

No CPU build of torchvision 0.28.0 exists: its C++ extension links torch's CUDA libraries and does
not load here. Its Python transforms need none of it, but its import registers fake kernels for
two detection ops (`torchvision::nms`, `qnms`, torchvision/_meta_registrations.py) whose schemas
only the extension defines, and fails. Where that happens we define those two schemas (without
kernels: calling the ops still fails) and import again. Where the extension loads (a CUDA torch),
nothing is changed.
"""
from __future__ import annotations

import sys

import torch

_SCHEMAS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
            "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_LIB = []                      # keeps the schema library alive


def torchvision():
    try:
        import torchvision as tv
    except RuntimeError as e:
        if "torchvision::nms" not in str(e):
            raise
        for m in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[m]
        lib = torch.library.Library("torchvision", "DEF")
        for schema in _SCHEMAS:
            lib.define(schema)
        _LIB.append(lib)
        import torchvision as tv
    return tv


def transforms():
    """torchvision.transforms (PIL-based: the official MST data pipeline's)."""
    return torchvision().transforms


def timm_data():
    """timm.data (RandAugment, Mixup/CutMix, random erasing), after torchvision is importable."""
    torchvision()
    import timm.data
    return timm.data

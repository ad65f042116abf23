"""Training recipes: `default` (fast, for digits and small models) and `official`, the official MST
code's (its config.py, main.py, optimizer.py, lr_scheduler.py and data/build.py; docs/sources.md
"MST"), built on timm and torchvision as the official code is:

- AdamW, lr 1e-4, weight decay 0.05 (none on QCFS thresholds, biases, norms, position tables),
  gradient clipping 5, 300 epochs with 20 of linear warm-up from 1e-6, then cosine to 1e-5,
  updated every iteration (timm CosineLRScheduler, t_in_epochs=False); warm-up keeps its 20/300
  share when --epochs changes;
- drop path 0.2 (rising linearly over the blocks); mixup 0.8 / cutmix 1.0, switch probability 0.5,
  label smoothing 0.1 inside the mixed targets (timm Mixup + SoftTargetCrossEntropy);
- CIFAR: RandomCrop(32, padding 4) -> Resize(S) -> horizontal flip -> ToTensor -> Normalize;
  ImageNet: timm create_transform (RandomResizedCrop, flip, RandAugment rand-m9-mstd0.5-inc1,
  colour jitter 0.4, bicubic, random erasing 0.25 pixel mode); digits keeps its batch augmentation;
- mixed precision (float16 autocast with a gradient scaler) on CUDA, none on CPU.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..data import vision
from ..data.datasets import info

# Per recipe: what a command-line option left unset takes.
DEFAULTS = {
    "default": dict(epochs=60, lr=2e-3, min_lr=1e-5, warmup_lr=0.0, warmup_epochs=3.0, weight_decay=0.05,
                    label_smoothing=0.1, clip_grad=5.0),
    "official": dict(epochs=300, lr=1e-4, min_lr=1e-5, warmup_lr=1e-6, warmup_epochs=20.0, weight_decay=0.05,
                     label_smoothing=0.1, clip_grad=5.0),
}
OFFICIAL_EPOCHS, OFFICIAL_WARMUP = 300, 20
DROP_PATH = 0.2                                   # configs/mst/MST.yaml
MIXUP = dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch")
IMAGENET_AUG = dict(color_jitter=0.4, auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25, re_mode="pixel",
                    re_count=1, interpolation="bicubic")


@dataclass
class Official:
    """The parts of the official recipe that are objects: transform, mixing, schedule."""
    dataset: str
    num_classes: int
    label_smoothing: float

    def train_transform(self, size: int):
        """PIL image -> normalised tensor for the training split (None: digits, batch augmentation)."""
        if self.dataset in ("digits", "mnist", "fashion-mnist"):
            return None
        inf = info(self.dataset)
        if self.dataset == "imagenet":
            return vision.timm_data().create_transform(input_size=size, is_training=True, **IMAGENET_AUG)
        T = vision.transforms()
        return T.Compose([T.RandomCrop(32, padding=4), T.Resize(size), T.RandomHorizontalFlip(),
                          T.ToTensor(), T.Normalize(inf.mean, inf.std)])

    def mixup(self):
        return vision.timm_data().Mixup(label_smoothing=self.label_smoothing, num_classes=self.num_classes, **MIXUP)

    @staticmethod
    def loss():
        vision.torchvision()
        from timm.loss import SoftTargetCrossEntropy
        return SoftTargetCrossEntropy()

    @staticmethod
    def scheduler(opt, steps: int, warmup: int, min_lr: float, warmup_lr: float):
        vision.torchvision()
        from timm.scheduler import CosineLRScheduler
        return CosineLRScheduler(opt, t_initial=steps, lr_min=min_lr, warmup_lr_init=warmup_lr,
                                 warmup_t=warmup, cycle_limit=1, t_in_epochs=False)


def resolve(recipe: str, given: dict) -> dict:
    """The training numbers: those given (not None), else the recipe's. The official warm-up keeps
    its share of the epochs (20 of 300) when only --epochs is given."""
    out = {k: (given.get(k) if given.get(k) is not None else v) for k, v in DEFAULTS[recipe].items()}
    if recipe == "official" and given.get("warmup_epochs") is None:
        out["warmup_epochs"] = OFFICIAL_WARMUP * out["epochs"] / OFFICIAL_EPOCHS
    return out

"""Training: AdamW, warm-up + cosine schedule, label smoothing, gradient clipping, seeded; DDP-ready.

Runs unchanged as one process or under `torchrun --nproc_per_node N -m mstdeploy.cli train ...`
(gloo on CPU). `batch_size` is the global batch, split evenly across ranks. QCFS thresholds,
biases, norms and relative-position tables get no weight decay. `recipe` "official" adds the
official MST code's augmentation, mixing, schedule and mixed precision (models/recipe.py).
An MST trained on ImageNet gets BatchNorm in its MLPs, as the official code builds it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..errors import UserError
from ..faults import free_bytes, no_space
from ..progress import bar as progress_bar
from ..data import datasets
from . import checkpoint
from .config import preset
from ..distributed import setup
from .evaluate import accuracy
from .recipe import DROP_PATH, Official
from .registry import accuracy_label, accuracy_name, build_model


@dataclass
class TrainArgs:
    model: str = "mst-tiny"
    dataset: str = "digits"
    data: str | None = None
    out: str = "ckpt.pt"
    overrides: dict = field(default_factory=dict)   # config fields: mask, attention, mask_sites...
    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    min_lr: float = 1e-5
    warmup_lr: float = 0.0
    weight_decay: float = 0.05
    warmup_epochs: float = 3.0
    label_smoothing: float = 0.1
    clip_grad: float = 5.0
    translate: int = 2            # random translation (pixels at model resolution)
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    recipe: str = "default"      # or "official" (models/recipe.py)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        skip = p.ndim <= 1 or leaf == "lam" or "relative_position_bias_table" in name
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(step: int, total: int, warmup: int, floor: float) -> float:
    """Linear warm-up to 1, then cosine down to `floor` (a fraction of the peak)."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


def train(a: TrainArgs) -> dict:
    """Train, evaluate on the test split, save the checkpoint (rank 0); returns the figures."""
    if a.epochs < 1 or a.batch_size < 1:
        raise UserError("--epochs and --batch-size must be >= 1")
    inf = datasets.info(a.dataset, a.data)
    official = Official(a.dataset, inf.num_classes, a.label_smoothing) if a.recipe == "official" else None
    implied = {}
    if a.model.startswith("mst"):
        implied["mlp_bn"] = a.dataset == "imagenet"          # the official models/mst.py SpikingMlp
        if official:
            implied["drop_path"] = DROP_PATH
    cfg = preset(a.model, in_chans=inf.in_chans, num_classes=inf.num_classes, **{**implied, **a.overrides})
    transform = official.train_transform(cfg.img_size) if official else None
    events = a.dataset in datasets.EVENTS
    if events and not a.model.startswith("saformer"):
        raise UserError(f"{a.dataset} is event data, one frame per step: train SAFormer on it (an SNN trained "
                        f"in time); a QCFS model trains as an ANN on static images")
    steps = cfg.steps if events else None
    train_set = datasets.load(a.dataset, "train", cfg.img_size, a.data, transform, steps=steps)
    test_set = datasets.load(a.dataset, "test", cfg.img_size, a.data, steps=steps)
    d = setup(a.device)
    if a.batch_size % d.world:
        raise UserError(f"--batch-size {a.batch_size} is not divisible by {d.world} processes")
    if official and (a.batch_size // d.world) % 2:
        raise UserError(f"--recipe official mixes pairs of images: the batch per process "
                        f"({a.batch_size // d.world}) must be even")
    torch.manual_seed(a.seed)                     # identical initial weights on every rank
    model = build_model(cfg).to(d.device)
    need = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    free = free_bytes(a.out) if d.main else None
    if free is not None and need > free:          # before the training, not after it
        raise no_space(a.out, need, free)
    opt = torch.optim.AdamW(param_groups(model, a.weight_decay), lr=a.lr)
    net = torch.nn.parallel.DistributedDataParallel(model) if d.enabled else model
    gen = torch.Generator().manual_seed(a.seed)
    sampler = (DistributedSampler(train_set, d.world, d.rank, shuffle=True, seed=a.seed)
               if d.enabled else RandomSampler(train_set, generator=gen))
    loader = DataLoader(train_set, batch_size=a.batch_size // d.world, sampler=sampler, drop_last=True)
    steps = a.epochs * len(loader)
    warm = int(a.warmup_epochs * len(loader))
    if official:
        sched = _Updates(official.scheduler(opt, steps, warm, a.min_lr, a.warmup_lr))
        mix, loss_fn = official.mixup(), official.loss()
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, steps, warm, a.min_lr / a.lr))
        mix, loss_fn = None, nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
    amp = official is not None and d.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    torch.manual_seed(a.seed + 1 + d.rank)        # masks and augmentation differ across ranks
    bar = progress_bar(total=steps, desc=f"train {a.model}", enabled=a.progress and d.main, unit="step")
    model.train()
    for epoch in range(a.epochs):
        if d.enabled:
            sampler.set_epoch(epoch)
        for x, y in loader:
            if transform is None and not events:
                x = datasets.augment(x, inf.natural, a.translate)
            x, y = x.to(d.device), y.to(d.device)
            if mix is not None:
                x, y = mix(x, y)
            with torch.autocast(d.device.type, dtype=torch.float16, enabled=amp):
                loss = loss_fn(net(x), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if a.clip_grad > 0:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), a.clip_grad)
            scaler.step(opt)
            scaler.update()
            sched.step()
            bar.update()
        bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    d.sync_buffers(model)
    acc = accuracy(model, test_set, seed=a.seed, dist=d)
    key = accuracy_name(cfg)
    result = {"model": a.model, "dataset": a.dataset, key: acc, "accuracy": acc,
              "accuracy_label": accuracy_label(cfg), "epochs": a.epochs, "recipe": a.recipe,
              "processes": d.world, "rank": d.rank, "config": cfg.to_dict()}
    if d.main:
        checkpoint.save(a.out, model, {"dataset": a.dataset, "classes": datasets.classes(a.dataset, a.data), key: acc, "seed": a.seed, "recipe": a.recipe,
                                       "epochs": a.epochs, "processes": d.world})
    d.barrier()
    d.close()
    return result


class _Updates:
    """A timm scheduler stepped per iteration (its step_update), like torch's schedulers."""

    def __init__(self, sched):
        self.sched, self.n = sched, 0

    def step(self) -> None:
        self.n += 1
        self.sched.step_update(self.n)

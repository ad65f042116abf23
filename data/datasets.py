"""Data sets: digits (embedded default), MNIST and Fashion-MNIST (IDX files, data/idx.py), CIFAR-10/100
(python-pickle) and ImageNet (ImageFolder).

All return a torch Dataset of (float image tensor (C, S, S), int label) at the model's image size
S, normalised per channel. CIFAR and ImageNet go through the official MST code's test transforms
(its data/build.py), with torchvision: CIFAR `Resize(S) -> ToTensor -> Normalize((0.4914, 0.4822,
0.4465), (0.2023, 0.1994, 0.2010))` (the same constants for CIFAR-100, as there), ImageNet
`Resize(256/224 S, bicubic) -> CenterCrop(S) -> ToTensor -> Normalize(ImageNet mean, std)`. A
training split takes another transform from the recipe (models/recipe.py); otherwise augmentation
is done on batches (see `augment`).

digits: scikit-learn's 1797 8x8 grey images (0..16), a fixed stratified 80/20 split with seed 0
(1437 train / 360 test); upsampled from 8x8 to the model's size (mst-tiny: 16x16). MNIST and
Fashion-MNIST: their own 60,000 / 10,000 split, 28x28 grey scaled to [0, 1], resized to the model's
size, normalised with the training split's mean and std (measured, below).
"""
from __future__ import annotations

import pathlib
import pickle
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from ..errors import UserError
from . import idx, vision

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "imagenet", "nmnist", "dvsgesture", "cifar10dvs",
            "folder")
IDX = ("mnist", "fashion-mnist")                       # LeCun's IDX files (data/idx.py)
EVENTS = ("nmnist", "dvsgesture", "cifar10dvs")       # event cameras: one frame per step (data/events.py)


@dataclass(frozen=True)
class DataInfo:
    in_chans: int
    num_classes: int
    mean: tuple
    std: tuple
    natural: bool          # natural images: horizontal flips are a valid augmentation


INFO = {
    "digits": DataInfo(1, 10, (0.305,), (0.319,), False),  # measured on the 16x16 train split
    "mnist": DataInfo(1, 10, (0.1307,), (0.3081,), False),             # train split, measured
    "fashion-mnist": DataInfo(1, 10, (0.2860,), (0.3530,), True),     # train split, measured; flips are valid
    "cifar10": DataInfo(3, 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), True),   # official MST
    "cifar100": DataInfo(3, 100, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), True),
    "imagenet": DataInfo(3, 1000, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), True),
    "nmnist": DataInfo(2, 10, (0.0, 0.0), (1.0, 1.0), False),         # event counts, not normalised
    "dvsgesture": DataInfo(2, 11, (0.0, 0.0), (1.0, 1.0), False),
    "cifar10dvs": DataInfo(2, 10, (0.0, 0.0), (1.0, 1.0), False),
}


def info(name: str, path: str | None = None) -> DataInfo:
    """Channels, classes and normalisation of a data set (a folder's: read from `path`)."""
    if name == "folder":
        return folder_info(path)
    if name not in INFO:
        raise UserError(f"unknown dataset {name!r}; choose from {list(DATASETS)}")
    return INFO[name]


def folder_info(path) -> DataInfo:
    """Your own images, root/train/<class>/...: as many classes as sub-folders, grey when the first
    image is, else RGB; scaled to [-1, 1] (mean and std 0.5: nothing measured about your data)."""
    f = ImageFolder(_root("folder", path), "train", None, "folder")
    c = 1 if f.grey else 3
    return DataInfo(c, len(f.classes), (0.5,) * c, (0.5,) * c, True)


def classes(name: str, path: str | None = None) -> list[str] | None:
    """The class names of a data set that has them (a folder's sub-folders)."""
    return ImageFolder(_root(name, path), "train", None, name).classes if name == "folder" else None


def _root(name: str, path) -> pathlib.Path:
    path = path or idx.default_dir(name)
    if path is None:
        raise UserError(f"dataset {name!r} needs --data PATH (no download: it is read from disk)")
    root = pathlib.Path(path)
    if not root.exists():
        how = f"; {idx.INSTALL[name]}" if name in idx.INSTALL else ""
        raise UserError(f"data path does not exist: {root}{how}")
    return root


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of a (N, C, H, W) float batch to (N, C, size, size)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    shrink = size < max(x.shape[-2:])
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def _normalise(x: torch.Tensor, inf: DataInfo) -> torch.Tensor:
    mean = torch.tensor(inf.mean).view(1, -1, 1, 1)
    std = torch.tensor(inf.std).view(1, -1, 1, 1)
    return (x - mean) / std


def test_transform(name: str, size: int):
    """The official MST code's test transform of a CIFAR or ImageNet PIL image (module docstring)."""
    T = vision.transforms()
    inf = info(name)
    if name == "imagenet":
        first = [T.Resize(int(256 / 224 * size), interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size)]
    else:
        first = [T.Resize(size)]
    return T.Compose(first + [T.ToTensor(), T.Normalize(inf.mean, inf.std)])


def load(name: str, split: str, image_size: int, path: str | None = None, transform=None,
         steps: int | None = None) -> Dataset:
    """The `split` ('train' or 'test') of data set `name` at `image_size`; `transform` (a PIL image
    -> tensor, CIFAR and ImageNet) replaces the test transform (a training recipe's). Event data
    sets give `steps` frames per sample."""
    inf = info(name, path)
    if split not in ("train", "test"):
        raise ValueError(split)
    if name == "digits":
        return _digits(split, image_size, inf)
    root = _root(name, path)
    if name == "folder":
        T = vision.transforms()
        return ImageFolder(root, split, transform or T.Compose([T.Resize((image_size, image_size)), T.ToTensor(),
                                                                T.Normalize(inf.mean, inf.std)]), "folder")
    if name in IDX:
        return _idx(name, split, image_size, root, inf)
    if name in EVENTS:
        from .events import load_events
        if steps is None:
            raise UserError(f"{name} is event data: it needs a number of steps to bin its recordings into")
        return load_events(name, split, steps, image_size, root)
    transform = transform or test_transform(name, image_size)
    if name in ("cifar10", "cifar100"):
        return _cifar(name, root, split, inf, transform)
    return ImageFolder(root, split, transform)


def _digits(split: str, size: int, inf: DataInfo) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0,
                                           stratify=d.target)
    idx = torch.as_tensor(idx_train if split == "train" else idx_test)
    return TensorDataset(_normalise(resize(x[idx], size), inf), y[idx])


def _idx(name: str, split: str, size: int, root: pathlib.Path, inf: DataInfo) -> Dataset:
    images, labels = idx.load_idx(name, split, root, inf.num_classes)
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    # resize and normalise in slices: 60,000 images at once would hold several copies in memory
    out = torch.cat([_normalise(resize(x[i:i + 8192].float() / 255.0, size), inf) for i in range(0, len(x), 8192)]
                    or [torch.empty(0, 1, size, size)])
    return TensorDataset(out, torch.from_numpy(labels))


_CIFAR_FILES = {"cifar10": ({"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
                            b"labels", "cifar-10-batches-py"),
                "cifar100": ({"train": ["train"], "test": ["test"]}, b"fine_labels", "cifar-100-python")}


class _Images(Dataset):
    """uint8 (N, H, W, C) images, transformed lazily one at a time as PIL images."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


class _Refused(pickle.UnpicklingError):
    pass


class _CifarUnpickler(pickle.Unpickler):
    """Pickle reading restricted to what CIFAR batches hold: dicts, lists, bytes, numbers and numpy
    arrays. Any other global (a function a crafted file would call) is refused before it is looked
    up, so no code from the file runs."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise _Refused(f"{module}.{name}")
        return super().find_class(module, name)


def _cifar(name: str, root: pathlib.Path, split: str, inf: DataInfo, transform) -> Dataset:
    files, label_key, subdir = _CIFAR_FILES[name]
    if (root / subdir).is_dir():
        root = root / subdir
    images, labels = [], []
    for fname in files[split]:
        f = root / fname
        if not f.is_file():
            raise UserError(f"{name}: expected file {f} (python-pickle CIFAR format)")
        try:
            with open(f, "rb") as fh:
                batch = _CifarUnpickler(fh, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            lab = np.asarray(batch[label_key], dtype=np.int64)
        except _Refused as e:
            raise UserError(f"{name}: {f} is not a CIFAR batch: it asks to load {e} (nothing in it was run)") from None
        except Exception as e:  # noqa: BLE001 - any decoding failure is a format error
            raise UserError(f"{name}: {f} is not a CIFAR python-pickle batch ({type(e).__name__})") from None
        if len(lab) != len(data) or (len(lab) and (lab.min() < 0 or lab.max() >= inf.num_classes)):
            raise UserError(f"{name}: {f} has inconsistent labels")
        images.append(data.transpose(0, 2, 3, 1))
        labels.append(lab)
    return _Images(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels), transform)


class ImageFolder(Dataset):
    """root/train/<class>/<image> and root/val/<class>/ (a folder of your own: or test/):
    classes sorted by name (those of train/ for every split), decoded with PIL as RGB, or grey
    for a folder whose first image is grey."""

    EXTENSIONS = {".jpeg", ".jpg", ".png", ".bmp", ".webp"}

    def __init__(self, root: pathlib.Path, split: str, transform, name: str = "imagenet"):
        tests = ("val", "test") if name == "folder" else ("val",)
        d = root / "train" if split == "train" else next((root / t for t in tests if (root / t).is_dir()),
                                                          root / tests[0])
        if not d.is_dir():
            raise UserError(f"{name}: expected folder {d} with one sub-folder per class"
                            + (" (or test/)" if name == "folder" else ""))
        self.name = name
        train = root / "train"
        self.classes = sorted(p.name for p in (train if train.is_dir() else d).iterdir() if p.is_dir())
        index = {c: i for i, c in enumerate(self.classes)}
        self.samples = [(f, index[c.name]) for c in sorted(p for p in d.iterdir() if p.is_dir())
                        for f in sorted(c.iterdir()) if f.suffix.lower() in self.EXTENSIONS and c.name in index]
        unknown = sorted(p.name for p in d.iterdir() if p.is_dir() and p.name not in index)
        if unknown:
            raise UserError(f"{name}: {d} has classes that train/ has not: {', '.join(unknown[:5])}")
        if not self.samples:
            raise UserError(f"{name}: no images found under {d}")
        if name == "imagenet" and len(self.classes) > INFO["imagenet"].num_classes:
            raise UserError(f"imagenet: {len(self.classes)} classes, at most {INFO['imagenet'].num_classes}")
        self.grey = name == "folder" and self._open(self.samples[0][0]).mode in ("L", "I", "I;16", "1", "LA")
        self.transform = transform

    def _open(self, f):
        from PIL import Image, UnidentifiedImageError
        try:
            with Image.open(f) as im:
                im.load()
                return im
        except (OSError, UnidentifiedImageError):
            raise UserError(f"{self.name}: cannot decode image {f}") from None

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        f, label = self.samples[i]
        return self.transform(self._open(f).convert("L" if self.grey else "RGB")), label


def augment(x: torch.Tensor, natural: bool, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random translation by up to `pad` pixels (zero padding) and, for natural images, h-flips."""
    B, C, H, W = x.shape
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (B,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (B,), generator=generator)
        rows = (dy[:, None] + torch.arange(H))[:, None, :, None].expand(B, C, H, W + 2 * pad)
        xp = xp.gather(2, rows)
        cols = (dx[:, None] + torch.arange(W))[:, None, None, :].expand(B, C, H, W)
        x = xp.gather(3, cols)
    if natural:
        flip = torch.rand(B, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x

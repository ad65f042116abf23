"""Event-camera data sets from local files, binned into T frames through tonic (its file readers
and `ToFrame`, T equal time windows from the first event to the last): each sample is
(T, 2, S, S) event counts per polarity and bin, resized to the model's size S by area averaging,
one frame per step (docs/interop.md).

On disk, as tonic extracts them (no download here):
- nmnist: <data>/NMNIST/{Train,Test}/<digit>/*.bin (or <data>/{Train,Test}/...), 34 x 34, 10 classes
  (Orchard et al. 2015); read by tonic.io.read_mnist_file.
- dvsgesture: <data>/DVSGesture/{ibmGestureTrain,ibmGestureTest}/user<NN>_<lighting>/<label>.npy
  (tonic's preprocessed arrays x, y, p, t in ms), 128 x 128, 11 classes (Amir et al. 2017).
- cifar10dvs: <data>/CIFAR10DVS/<class name>/*.aedat4, 128 x 128, 10 classes (Li et al. 2017), read
  by tonic.io.read_aedat4. The release has no split: per class, in file order, the first 90% train
  and the rest test (the usual 9:1).
tonic's own dataset classes are not used: they download unless 10,000 (N-MNIST), 100 (DVS
Gesture) or 1,000 (CIFAR10-DVS) files are present, which a subset or a test's small files are not.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import UserError


@dataclass(frozen=True)
class EventSet:
    folder: str                    # tonic's folder name under --data
    splits: dict                   # "train" / "test" -> sub-folder
    sensor: tuple                  # (W, H, P), tonic's sensor_size
    classes: int
    suffix: str


EVENT_SETS = {
    "nmnist": EventSet("NMNIST", {"train": "Train", "test": "Test"}, (34, 34, 2), 10, ".bin"),
    "dvsgesture": EventSet("DVSGesture", {"train": "ibmGestureTrain", "test": "ibmGestureTest"}, (128, 128, 2), 11,
                           ".npy"),
    "cifar10dvs": EventSet("CIFAR10DVS", {}, (128, 128, 2), 10, ".aedat4"),
}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_SHARE = 0.9
DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])


def _label(name: str, path: pathlib.Path) -> int:
    """N-MNIST: the digit folder's last character; DVS Gesture: the file name; CIFAR10-DVS: the
    class folder's name."""
    if name == "cifar10dvs":
        if path.parent.name not in CIFAR10_CLASSES:
            raise UserError(f"{path}: folder {path.parent.name!r} is not a CIFAR-10 class")
        return CIFAR10_CLASSES.index(path.parent.name)
    text = path.parent.name[-1] if name == "nmnist" else path.stem
    if not text.isdigit():
        raise UserError(f"{path}: cannot tell its class from the {'folder' if name == 'nmnist' else 'file'} name")
    return int(text)


class EventFrames(Dataset):
    """(frames (T, 2, S, S) float32, label) for each recording of one split."""

    def __init__(self, name: str, files: list, steps: int, size: int):
        self.name, self.files, self.steps, self.size = name, files, steps, size
        self.spec = EVENT_SETS[name]
        self.labels = [_label(name, f) for f in files]
        bad = sorted({y for y in self.labels if not 0 <= y < self.spec.classes})
        if bad:
            raise UserError(f"{name}: class(es) {bad} outside 0..{self.spec.classes - 1}")

    def __len__(self) -> int:
        return len(self.files)

    def events(self, i: int) -> np.ndarray:
        import tonic
        path = self.files[i]
        try:
            if self.name == "nmnist":
                ev = tonic.io.read_mnist_file(str(path), dtype=DTYPE)
            elif self.name == "cifar10dvs":
                raw = tonic.io.read_aedat4(str(path))               # fields t, x, y, polarity
                ev = np.zeros(len(raw), DTYPE)
                for ours, theirs in zip(("t", "x", "y", "p"), raw.dtype.names):
                    ev[ours] = raw[theirs]
            else:
                a = np.load(path, allow_pickle=False)
                if a.ndim != 2 or a.shape[1] != 4:
                    raise ValueError(f"shape {a.shape}, not (events, 4)")
                ev = np.zeros(len(a), DTYPE)
                ev["x"], ev["y"], ev["p"], ev["t"] = a[:, 0], a[:, 1], a[:, 2], a[:, 3] * 1000   # ms -> us, as tonic
        except Exception as e:  # noqa: BLE001 - the readers (numpy, tonic's, aedat's) fail in many ways
            raise UserError(f"{path} is not a readable {self.name} recording ({type(e).__name__}: {e})") from None
        w, h, p = self.spec.sensor
        if len(ev) and (ev["x"].max() >= w or ev["y"].max() >= h or ev["p"].max() >= p or ev["x"].min() < 0
                        or ev["y"].min() < 0):
            raise UserError(f"{path}: events outside the {w}x{h} sensor")
        return ev

    def __getitem__(self, i: int):
        import tonic
        ev = np.sort(self.events(i), order="t")
        if len(ev) == 0:
            frames = np.zeros((self.steps, 2, self.spec.sensor[1], self.spec.sensor[0]), np.float32)
        else:
            # T equal windows from the first event that hold the last one too (tonic's n_time_bins
            # drops the events at the last timestamp)
            t0 = int(ev["t"][0])
            w = -(-(int(ev["t"][-1]) - t0 + 1) // self.steps)
            frames = tonic.transforms.ToFrame(sensor_size=self.spec.sensor, time_window=w, start_time=t0,
                                              end_time=t0 + self.steps * w)(ev)
        x = torch.as_tensor(np.asarray(frames, np.float32))              # (T, P, H, W)
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="area")  # mean counts per pixel
        return x, self.labels[i]


def load_events(name: str, split: str, steps: int, size: int, root) -> EventFrames:
    spec = EVENT_SETS[name]
    root = pathlib.Path(root)
    if name == "cifar10dvs":
        base = root / spec.folder if (root / spec.folder).is_dir() else root
        files = []
        for c in CIFAR10_CLASSES:
            mine = sorted((base / c).glob("*" + spec.suffix)) if (base / c).is_dir() else []
            cut = min(len(mine) - 1, round(TRAIN_SHARE * len(mine))) if len(mine) > 1 else len(mine)
            files += mine[:cut] if split == "train" else mine[cut:]
        if not files:
            raise UserError(f"cifar10dvs: no {split} recordings (<class>/*.aedat4) under {base} (tonic's layout, "
                            f"data/events.py)")
        return EventFrames(name, files, steps, size)
    for base in (root / spec.folder / spec.splits[split], root / spec.splits[split]):
        if base.is_dir():
            files = sorted(base.rglob("*" + spec.suffix))
            if not files:
                raise UserError(f"{base} holds no {spec.suffix} recordings")
            return EventFrames(name, files, steps, size)
    raise UserError(f"{name}: no {spec.folder}/{spec.splits[split]} folder under {root} (tonic's layout, "
                    f"data/events.py)")

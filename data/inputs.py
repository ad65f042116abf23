"""Inputs from a file (`--inputs`): the arrays a graph reads, for graphs whose input is not an
image of a built-in data set (1-D inputs, event frames, others' graphs).

.npy: one array; .h5 / .hdf5: a dataset "inputs" and optionally "labels". Static inputs are
(B, *input shape), repeated every step; time-varying ones are (T, B, *input shape), one frame per
step (event streams). Labels (B,) integers come from the HDF5 file or `--labels FILE.npy`;
without them a run reports no accuracy.
"""
from __future__ import annotations

import pathlib

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import UserError
from ..machine import check_fits


class InputFile(Dataset):
    """Sample i: (x (*shape) static or (T, *shape) time-varying, label or -1)."""

    def __init__(self, x: np.ndarray, labels: np.ndarray | None, steps: int | None, source: str):
        self.x, self.labels, self.steps, self.source = x, labels, steps, source

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i):
        return torch.from_numpy(np.ascontiguousarray(self.x[i])), int(self.labels[i]) if self.labelled else -1


class Frames(Dataset):
    """A data set's images as integer frames round(weight x + bias) (a netx file's input)."""

    def __init__(self, ds: Dataset, weight: float, bias: float):
        self.ds, self.weight, self.bias = ds, weight, bias
        self.labelled = getattr(ds, "labelled", True)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i):
        x, y = self.ds[i]
        return torch.round(x * self.weight + self.bias), y


def _read(path: pathlib.Path, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    if not path.is_file():
        raise UserError(f"{what} file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            a = np.load(path, mmap_mode="r", allow_pickle=False)
            check_fits(a.nbytes, f"the {what} file {path}", "the file's size")
            return np.asarray(a), None
        if suffix in (".h5", ".hdf5"):
            import h5py
            with h5py.File(path, "r") as f:
                if "inputs" not in f:
                    raise UserError(f"{path} has no dataset 'inputs' (an HDF5 input file holds 'inputs' "
                                    f"and optionally 'labels')")
                check_fits(f["inputs"].nbytes, f"the {what} file {path}", "the file's size")
                return f["inputs"][()], (f["labels"][()] if "labels" in f else None)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy and h5py raise many kinds for broken files
        raise UserError(f"{path} is not a readable {suffix} file ({type(e).__name__})") from None
    raise UserError(f"{path}: {what} must be a .npy or .h5/.hdf5 file")


def _numbers(a: np.ndarray, path, what: str) -> np.ndarray:
    if a.dtype.kind not in "biuf":
        raise UserError(f"{path}: {what} must be numbers, not {a.dtype}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise UserError(f"{path}: {what} hold NaN or infinite values")
    return a


def load_inputs(path, input_shape: tuple, labels_path=None, classes: int | None = None) -> InputFile:
    """The samples of an input file for a graph whose Input has `input_shape`."""
    p = pathlib.Path(path)
    x, labels = _read(p, "--inputs")
    if labels_path is not None:
        if labels is not None:
            raise UserError(f"{p} holds labels already; --labels is for .npy inputs")
        labels, _ = _read(pathlib.Path(labels_path), "--labels")
    return as_inputs(x, labels, input_shape, classes, str(p), str(labels_path or p))


def as_inputs(x, labels, input_shape: tuple, classes: int | None = None, source: str = "inputs",
              labels_source: str | None = None) -> InputFile:
    """Arrays (numpy or torch) as samples: x static (B, *input_shape) or one frame per step (T, B,
    *input_shape); labels (B,) whole numbers in 0..classes - 1, or None."""
    x = _numbers(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x), source, "inputs")
    n = len(input_shape)
    if x.ndim not in (n + 1, n + 2) or tuple(x.shape[x.ndim - n:]) != tuple(input_shape):
        raise UserError(f"{source}: inputs of shape {tuple(x.shape)}; the graph's Input is {tuple(input_shape)}, so "
                        f"they must be (samples, {', '.join(map(str, input_shape))}) or (steps, samples, ...)")
    steps = None
    if x.ndim == n + 2:                               # (T, B, ...) -> per sample (B, T, ...)
        steps = int(x.shape[0])
        x = np.swapaxes(x, 0, 1)
    if x.shape[0] == 0 or steps == 0:
        raise UserError(f"{source}: no samples (inputs of shape {tuple(x.shape)})")
    if labels is not None:
        where = labels_source or source
        labels = _numbers(np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels), where,
                          "labels")
        if labels.shape != (x.shape[0],) or labels.dtype.kind == "f" and np.any(labels != np.round(labels)):
            raise UserError(f"labels must be {x.shape[0]} whole numbers, one per sample (got shape "
                            f"{tuple(labels.shape)}, {labels.dtype})")
        labels = labels.astype(np.int64)
        if classes is not None and labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise UserError(f"labels must lie in 0..{classes - 1}, the graph's {classes} outputs (got "
                            f"{labels.min()}..{labels.max()} in {where})")
    return InputFile(x.astype(np.float32), labels, steps, source)

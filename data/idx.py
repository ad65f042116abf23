"""MNIST and Fashion-MNIST from their IDX files (LeCun's format, the four `*-ubyte[.gz]` files).

IDX: a big-endian header `0 0 type ndim`, then ndim uint32 sizes, then the data (type 0x08:
uint8), as http://yann.lecun.com/exdb/mnist/ describes it and Fashion-MNIST's own
utils/mnist_reader.py reads it (github zalandoresearch/fashion-mnist). Debian's package
`dataset-fashion-mnist` puts the gzipped files in /usr/share/datasets/fashion-mnist, the default
for `--dataset fashion-mnist`; MNIST has no Debian package and needs `--data DIR`.
"""
from __future__ import annotations

import gzip
import pathlib

import numpy as np

from ..errors import UserError

DEFAULT_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist"}
INSTALL = {"fashion-mnist": "install them with `make data` (Debian's dataset-fashion-mnist, as root) "
                            "or pass --data DIR holding the four IDX files"}
_PREFIX = {"train": "train", "test": "t10k"}
_UBYTE = 0x08


def default_dir(name: str) -> str | None:
    return DEFAULT_DIRS.get(name)


def _file(root: pathlib.Path, name: str, split: str, kind: str) -> pathlib.Path:
    stem = f"{_PREFIX[split]}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
    for candidate in (root / stem, root / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    how = INSTALL.get(name, "pass --data DIR holding the four IDX files")
    raise UserError(f"{name}: no {stem}[.gz] in {root}; {how}")


def read_idx(path: pathlib.Path, ndim: int) -> np.ndarray:
    """The uint8 array of one IDX file with `ndim` axes; a malformed file is one line."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise UserError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    head = 4 + 4 * ndim
    if len(raw) < head or raw[0] or raw[1] or raw[2] != _UBYTE or raw[3] != ndim:
        raise UserError(f"{path} is not an IDX file of {ndim}-d unsigned bytes")
    shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", ndim, 4))
    if len(raw) - head != int(np.prod(shape, dtype=np.int64)):
        raise UserError(f"{path}: the header says {shape}, the file holds {len(raw) - head} bytes of data")
    return np.frombuffer(raw, np.uint8, offset=head).reshape(shape)


def load_idx(name: str, split: str, root: pathlib.Path, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, H, W) uint8, labels (N,) int64) of one split."""
    images = read_idx(_file(root, name, split, "images"), 3)
    labels = read_idx(_file(root, name, split, "labels"), 1).astype(np.int64)
    if len(images) != len(labels):
        raise UserError(f"{name} {split}: {len(images)} images but {len(labels)} labels in {root}")
    if len(labels) and labels.max() >= classes:
        raise UserError(f"{name} {split}: label {labels.max()} in {root}, the data set has {classes} classes")
    return images, labels

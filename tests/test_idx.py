"""MNIST / Fashion-MNIST IDX files (data/idx.py): read, refused when malformed, trained on."""
import gzip
import struct

import numpy as np
import pytest
import torch

from mstdeploy.data import datasets
from mstdeploy.errors import UserError

from conftest import mst_here, one_line_here


def write_idx(root, n_train=24, n_test=8, size=28, gz=True, seed=0):
    """The four IDX files of a small MNIST-like set; labels cycle through the 10 classes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            data = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
            name = root / f"{prefix}-{kind}-ubyte"
            if gz:
                with gzip.open(str(name) + ".gz", "wb") as fh:
                    fh.write(data)
            else:
                name.write_bytes(data)
    return root


@pytest.mark.parametrize("gz", [True, False])
def test_idx_read_resized_and_normalised(tmp_path, gz):
    root = write_idx(tmp_path / "f", gz=gz)
    tr = datasets.load("fashion-mnist", "train", 32, str(root))
    te = datasets.load("mnist", "test", 28, str(root))
    assert len(tr) == 24 and len(te) == 8
    assert tr[0][0].shape == (1, 32, 32) and te[0][0].shape == (1, 28, 28)
    assert te.tensors[1].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    raw = np.frombuffer(gzip.decompress((root / "t10k-images-idx3-ubyte.gz").read_bytes()) if gz else
                        (root / "t10k-images-idx3-ubyte").read_bytes(), np.uint8, offset=16)
    want = (torch.tensor(raw[:784].reshape(28, 28), dtype=torch.float32) / 255 - 0.1307) / 0.3081
    assert torch.allclose(te[0][0][0], want, atol=1e-6)      # same size: no resampling, MNIST's constants


def test_idx_faults_are_one_line(tmp_path):
    root = write_idx(tmp_path / "f", gz=False)
    (root / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 8) + bytes([0] * 7 + [10]))
    with pytest.raises(UserError, match="label 10"):
        datasets.load("mnist", "test", 28, str(root))
    (root / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 9) + bytes(8))
    with pytest.raises(UserError, match="header says"):
        datasets.load("mnist", "test", 28, str(root))
    (root / "t10k-images-idx3-ubyte").write_bytes(b"\x89PNG garbage")
    with pytest.raises(UserError, match="not an IDX file"):
        datasets.load("mnist", "test", 28, str(root))
    (root / "train-images-idx3-ubyte").unlink()
    with pytest.raises(UserError, match="no train-images-idx3-ubyte"):
        datasets.load("mnist", "train", 28, str(root))
    with pytest.raises(UserError, match="needs --data"):
        datasets.load("mnist", "train", 28, None)


def test_missing_fashion_mnist_says_how_to_install(tmp_path, capsys):
    line = one_line_here(capsys, "train", "--dataset", "fashion-mnist", "--data", tmp_path / "none",
                         "--out", tmp_path / "c.pt")
    assert "make data" in line


def test_fashion_mnist_preset_trains_from_idx_files(tmp_path, capsys):
    root = write_idx(tmp_path / "f", n_train=64, n_test=16)
    code, out, err = mst_here(capsys, "train", "--model", "mst-fmnist", "--dataset", "fashion-mnist", "--data",
                              root, "--epochs", "1", "--batch-size", "32", "--levels", "4", "--no-progress",
                              "--out", tmp_path / "c.pt")
    assert code == 0, err
    assert "fashion-mnist test" in out
    ck = torch.load(tmp_path / "c.pt", weights_only=False)
    assert ck["config"]["levels"] == 4 and ck["config"]["img_size"] == 32 and ck["config"]["in_chans"] == 1


def test_a_cut_gzip_file_is_one_line(tmp_path, capsys):
    root = write_idx(tmp_path / "f")
    for split in ("train", "t10k"):
        f = root / f"{split}-images-idx3-ubyte.gz"
        f.write_bytes(f.read_bytes()[:-40])                # gzip's EOFError: no strerror
    with pytest.raises(UserError, match="cannot read .*t10k-images.*ended before"):
        datasets.load("fashion-mnist", "test", 28, str(root))
    line = one_line_here(capsys, "train", "--dataset", "fashion-mnist", "--data", root, "--epochs", "1",
                         "--out", tmp_path / "c.pt")
    assert "cannot read" in line and "train-images-idx3-ubyte.gz" in line
    assert not (tmp_path / "c.pt").exists()

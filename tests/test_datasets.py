import pickle

import numpy as np
import pytest
import torch

from mstdeploy.errors import UserError
from mstdeploy.data import datasets


def test_digits_split_is_fixed_and_upsampled():
    tr, te = datasets.load("digits", "train", 16), datasets.load("digits", "test", 16)
    assert (len(tr), len(te)) == (1437, 360)
    x, y = te[0]
    assert x.shape == (1, 16, 16)
    assert torch.equal(datasets.load("digits", "test", 16).tensors[1], te.tensors[1])
    assert abs(tr.tensors[0].mean()) < 0.1 and abs(tr.tensors[0].std() - 1) < 0.1


def _write_cifar(root, name, n=6):
    rng = np.random.default_rng(0)
    key = b"labels" if name == "cifar10" else b"fine_labels"
    files = ([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"] if name == "cifar10"
             else ["train", "test"])
    for f in files:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 key: rng.integers(0, 10, n).tolist()}
        with open(root / f, "wb") as fh:
            pickle.dump(batch, fh)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_pickle_format(tmp_path, name):
    _write_cifar(tmp_path, name)
    tr = datasets.load(name, "train", 32, str(tmp_path))
    te = datasets.load(name, "test", 48, str(tmp_path))
    assert len(tr) == (30 if name == "cifar10" else 6) and len(te) == 6
    assert tr[0][0].shape == (3, 32, 32) and te[0][0].shape == (3, 48, 48)


def test_cifar_and_imagenet_are_fed_as_the_official_code_feeds_them(tmp_path):
    # Official data/build.py, written out here with PIL and numpy only: CIFAR test images are
    # PIL-resized (bilinear, uint8) to 224 and normalised with (0.4914, 0.4822, 0.4465),
    # (0.2023, 0.1994, 0.2010); ImageNet val: shorter side to 256 (bicubic), centre crop 224,
    # ImageNet mean and std.
    from PIL import Image
    _write_cifar(tmp_path, "cifar10")
    with open(tmp_path / "test_batch", "rb") as fh:
        raw = pickle.load(fh)[b"data"][2].reshape(3, 32, 32).transpose(1, 2, 0)
    up = np.asarray(Image.fromarray(raw).resize((224, 224), Image.BILINEAR), np.float32) / 255
    want = (up - np.array([0.4914, 0.4822, 0.4465])) / np.array([0.2023, 0.1994, 0.2010])
    got = datasets.load("cifar10", "test", 224, str(tmp_path))[2][0].numpy().transpose(1, 2, 0)
    assert np.allclose(got, want, atol=1e-5)
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    (tmp_path / "val" / "n01").mkdir(parents=True)
    Image.fromarray(img).save(tmp_path / "val" / "n01" / "a.png")
    r = np.asarray(Image.fromarray(img).resize((341, 256), Image.BICUBIC), np.float32) / 255
    top, left = round((256 - 224) / 2), round((341 - 224) / 2)     # torchvision's CenterCrop
    want = (r[top:top + 224, left:left + 224] - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    got = datasets.load("imagenet", "test", 224, str(tmp_path))[0][0].numpy().transpose(1, 2, 0)
    assert np.allclose(got, want, atol=1e-5)


def test_cifar_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        datasets.load("cifar10", "train", 32, str(tmp_path / "nope"))
    with pytest.raises(UserError, match="expected file"):
        datasets.load("cifar10", "train", 32, str(tmp_path))
    (tmp_path / "test").write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a CIFAR"):
        datasets.load("cifar100", "test", 32, str(tmp_path))
    with pytest.raises(UserError, match="needs --data"):
        datasets.load("cifar10", "test", 32, None)


def test_imagenet_folder(tmp_path):
    from PIL import Image
    for split in ("train", "val"):
        for c in ("n01", "n02"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(tmp_path / split / c / f"{i}.JPEG")
    ds = datasets.load("imagenet", "test", 24, str(tmp_path))
    assert len(ds) == 4 and ds[3][1] == 1 and ds[0][0].shape == (3, 24, 24)
    (tmp_path / "val" / "n02" / "1.JPEG").write_bytes(b"broken")
    with pytest.raises(UserError, match="cannot decode"):
        ds[3]
    with pytest.raises(UserError, match="expected folder"):
        datasets.load("imagenet", "train", 24, str(tmp_path / "val"))

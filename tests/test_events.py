"""Event-camera data (data/events.py): small N-MNIST and DVS Gesture folders made here, binned into
T frames through tonic; SAFormer trains on them and its graph runs them in both backends."""
import json

import numpy as np
import pytest
import torch

from conftest import mst_here, run_mst
from mstdeploy.data import datasets
from mstdeploy.errors import UserError


def write_nmnist_bin(path, x, y, p, t) -> None:
    """N-MNIST's 40-bit events: x, y, polarity in bit 7 of byte 2, a 23-bit timestamp (us)."""
    raw = np.zeros((len(x), 5), np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (np.asarray(p) << 7) | ((np.asarray(t) >> 16) & 127)
    raw[:, 3], raw[:, 4] = (np.asarray(t) >> 8) & 255, np.asarray(t) & 255
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.tofile(path)


def make_nmnist(root, per_class=4, seed=0):
    """Two classes told apart by where their events fall (left or right half), 300 ms each."""
    rng = np.random.default_rng(seed)
    for split in ("Train", "Test"):
        for c in (0, 1):
            for k in range(per_class):
                n = 6000
                x = rng.integers(0, 17, n) + 17 * c
                y = rng.integers(0, 34, n)
                t = np.sort(rng.integers(0, 300_000, n))
                write_nmnist_bin(root / "NMNIST" / split / str(c) / f"{k:05d}.bin", x, y, rng.integers(0, 2, n), t)


def test_frames_count_every_event_in_its_bin_and_pixel(tmp_path):
    t = np.array([0, 10, 20, 99_999, 100_000, 299_999])
    x, y, p = np.array([0, 1, 1, 33, 5, 6]), np.array([0, 2, 2, 33, 7, 8]), np.array([0, 1, 1, 0, 1, 0])
    write_nmnist_bin(tmp_path / "NMNIST" / "Test" / "3" / "a.bin", x, y, p, t)
    ds = datasets.load("nmnist", "test", 34, tmp_path, steps=3)
    frames, label = ds[0]
    assert label == 3 and frames.shape == (3, 2, 34, 34) and frames.sum() == len(t)
    assert frames[0, 1, 2, 1] == 2 and frames[0, 0, 0, 0] == 1          # (step, polarity, y, x)
    assert frames[:, 0, 33, 33].sum() == 1 and frames[2, 0, 8, 6] == 1
    small, _ = datasets.load("nmnist", "test", 17, tmp_path, steps=3)[0]   # resized: mean counts per pixel
    assert small.shape == (3, 2, 17, 17) and torch.isclose(small.sum() * 4, frames.sum())


def test_dvs_gesture_layout_and_bad_folders(tmp_path):
    a = np.array([[0, 0, 1, 0], [127, 127, 0, 5], [3, 4, 1, 9]], np.int64)   # x, y, p, t (ms)
    d = tmp_path / "DVSGesture" / "ibmGestureTest" / "user01_led"
    d.mkdir(parents=True)
    np.save(d / "7.npy", a)
    frames, label = datasets.load("dvsgesture", "test", 32, tmp_path, steps=2)[0]
    assert label == 7 and frames.shape == (2, 2, 32, 32) and torch.isclose(frames.sum() * 16, torch.tensor(3.0))
    with pytest.raises(UserError, match="no NMNIST/Test folder"):
        datasets.load("nmnist", "test", 34, tmp_path, steps=2)
    with pytest.raises(UserError, match="number of steps"):
        datasets.load("dvsgesture", "test", 32, tmp_path)


def test_saformer_trains_on_events_and_runs_them_in_both_backends(tmp_path, capsys):
    make_nmnist(tmp_path / "data")
    ck, graph = tmp_path / "saf.pt", tmp_path / "saf.nir"
    common = ("--dataset", "nmnist", "--data", tmp_path / "data")
    r = run_mst("train", "--model", "saformer-tiny", *common, "--epochs", "1", "--steps", "4", "--out", ck,
                "--batch-size", "4", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "nmnist" in r.stdout
    code, _, err = mst_here(capsys, "train", "--model", "vgg-tiny", *common, "--epochs", "1", "--out", tmp_path / "v.pt")
    assert code == 2 and "train SAFormer" in err
    assert mst_here(capsys, "export", ck, "-o", graph)[0] == 0
    code, out, err = mst_here(capsys, "parity", graph, *common, "-T", "4", "-n", "2", "--fixed-point", "--no-progress",
                              "--json", tmp_path / "p.json")
    assert code == 0, out + err
    rep = json.loads((tmp_path / "p.json").read_text())
    assert rep["steps"] == 4 and rep["mismatched_spikes"] == 0 and rep["reference_spikes"] > 0

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


def write_aedat4(path, t, x, y, p, size=128) -> None:
    """An uncompressed AEDAT 4 file with one event stream (iniVation's layout: magic, a size-prefixed
    IOHeader flatbuffer whose description names the stream, then packets of stream id, size and a
    size-prefixed EventPacket of Event structs {int64 t; int16 x, y; bool on})."""
    import flatbuffers
    desc = (f'<dv version="2.0"><node name="outInfo"><node name="0"><attr key="typeIdentifier" '
            f'type="string">EVTS</attr><node name="info"><attr key="sizeX" type="int">{size}</attr>'
            f'<attr key="sizeY" type="int">{size}</attr></node></node></node></dv>')
    b = flatbuffers.Builder(256)
    text = b.CreateString(desc)
    b.StartObject(3)
    b.PrependUOffsetTRelativeSlot(2, text, 0)
    b.FinishSizePrefixed(b.EndObject(), b"IOHE")
    header = bytes(b.Output())
    b = flatbuffers.Builder(1024)
    b.StartVector(16, len(t), 8)
    for i in reversed(range(len(t))):
        b.Prep(8, 16)
        b.Pad(3)
        b.PrependBool(bool(p[i]))
        b.PrependInt16(int(y[i]))
        b.PrependInt16(int(x[i]))
        b.PrependInt64(int(t[i]))
    events = b.EndVector()
    b.StartObject(1)
    b.PrependUOffsetTRelativeSlot(0, events, 0)
    b.FinishSizePrefixed(b.EndObject(), b"EVTS")
    packet = bytes(b.Output())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!AER-DAT4.0\r\n" + header + (0).to_bytes(4, "little") + len(packet).to_bytes(4, "little")
                     + packet)


def test_cifar10_dvs_from_aedat4_split_nine_to_one(tmp_path):
    base = tmp_path / "CIFAR10DVS"
    for c in ("bird", "ship"):
        for k in range(3):
            write_aedat4(base / c / f"{c}_{k}.aedat4", [5, 10, 400 + k], [0, 64, 127], [0, 1, 127], [1, 0, 1])
    train = datasets.load("cifar10dvs", "train", 128, tmp_path, steps=2)
    test = datasets.load("cifar10dvs", "test", 32, tmp_path, steps=2)
    assert len(train) == 4 and len(test) == 2 and [test[i][1] for i in range(2)] == [2, 8]
    frames, _ = datasets.load("cifar10dvs", "train", 128, tmp_path, steps=2)[0]
    assert frames.shape == (2, 2, 128, 128) and frames.sum() == 3
    assert frames[0, 1, 0, 0] == 1 and frames[0, 0, 1, 64] == 1 and frames[1, 1, 127, 127] == 1
    (base / "bird" / "bird_0.aedat4").write_bytes(b"#!AER-DAT4.0\r\n broken")
    with pytest.raises(UserError, match="not a readable cifar10dvs recording"):
        train[0]


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

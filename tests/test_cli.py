"""The CLI as a user meets it: help, training (one and two processes), evaluation, bad input."""
import json
import sys

import pytest

from conftest import one_line_error, run_mst
from mstdeploy.models import checkpoint
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model


@pytest.mark.parametrize("cmd", ["train", "eval", "demo", "simulate", "lava", "parity", "energy", "resources"])
def test_subcommand_help(cmd):
    r = run_mst(cmd, "--help", timeout=60)
    assert r.returncode == 0 and "usage: mst " + cmd in r.stdout


def test_train_then_eval(tmp_path):
    ck = tmp_path / "ck.pt"
    r = run_mst("train", "--model", "vgg-tiny", "--epochs", "6", "--warmup-epochs", "1", "--lr", "5e-3", "--mask", "0.25", "--no-progress",
                "--out", ck)
    assert r.returncode == 0, r.stderr
    assert "ANN top-1 accuracy on digits test" in r.stdout
    acc = float(r.stdout.split(":")[-1].split("%")[0])
    assert acc > 80.0                                     # it really learns
    out = tmp_path / "eval.json"
    r = run_mst("eval", ck, "--json", out)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["images"] == 360
    # same weights, same seed, same masks: exactly the accuracy measured at the end of training
    assert json.loads(out.read_text())["ann_accuracy"] == checkpoint.read(ck)["meta"]["ann_accuracy"]


def test_train_under_torchrun_two_processes(tmp_path):
    import subprocess
    ck = tmp_path / "ddp.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "mstdeploy.cli", "train", "--model", "mst-tiny", "--attention", "spiking",
           "--mask", "0.75", "--epochs", "1", "--no-progress", "--out", str(ck)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("ANN top-1 accuracy") == 1      # printed by rank 0 only
    model, ck_dict = checkpoint.load(ck)
    assert ck_dict["meta"]["processes"] == 2 and model.config.attention == "spiking"


def test_bad_inputs_give_one_line_errors(tmp_path):
    assert "[0, 1)" in one_line_error(run_mst("train", "--mask", "1.5", "--out", tmp_path / "x.pt"))
    assert "does not exist" in one_line_error(
        run_mst("train", "--dataset", "cifar10", "--data", tmp_path / "missing", "--out", tmp_path / "x.pt"))
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x00garbage")
    assert "not a readable checkpoint" in one_line_error(run_mst("eval", bad))
    assert "not found" in one_line_error(run_mst("eval", tmp_path / "nope.pt"))
    assert "unknown model" in one_line_error(run_mst("train", "--model", "gpt", "--out", tmp_path / "x.pt"))
    one_line_error(run_mst("train", "--epochs", "many"))
    one_line_error(run_mst())
    assert not (tmp_path / "x.pt").exists()


def test_eval_mask_override_and_per_block(tmp_path):
    ck = tmp_path / "m.pt"
    checkpoint.save(ck, build_model(preset("mst-tiny", in_chans=1)), {"dataset": "digits"})
    assert "4 blocks" in one_line_error(run_mst("eval", ck, "--mask-per-block", "0.1,0.2"))
    r = run_mst("eval", ck, "--mask-per-block", "0.1,0.2,0.3,0.4")
    assert r.returncode == 0, r.stderr

import torch

from mstdeploy.models import checkpoint
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model
from mstdeploy.errors import UserError
import pytest


@pytest.mark.parametrize("attention", ["softmax", "spiking"])
def test_save_reload_gives_bit_identical_logits(tmp_path, attention):
    model = build_model(preset("mst-tiny", in_chans=1, attention=attention, mask=0.75))
    model.train()
    model(torch.randn(8, 1, 16, 16))          # move BatchNorm running statistics off their init
    model.eval()
    x = torch.randn(5, 1, 16, 16)
    torch.manual_seed(7)
    before = model(x)
    path = tmp_path / "m.pt"
    checkpoint.save(path, model, {"dataset": "digits"})
    loaded, ck = checkpoint.load(path)
    torch.manual_seed(7)                      # RSM is active in evaluation: same masks
    after = loaded(x)
    assert torch.equal(before, after)
    assert ck["config"]["attention"] == attention and ck["meta"]["dataset"] == "digits"
    assert not list(tmp_path.glob(".*tmp"))   # atomic write left no temporary behind


def test_checkpoint_loads_without_training_code(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "m.pt"
    checkpoint.save(path, build_model(preset("vgg-tiny", in_chans=1)))
    code = ("import sys; from mstdeploy.models.checkpoint import load; m, _ = load(sys.argv[1]); "
            "print(type(m).__name__, 'mstdeploy.models.train' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["VGG", "False"], r.stderr


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_corrupt_or_truncated_checkpoint(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content is None:                        # a real checkpoint cut in half
        checkpoint.save(path, build_model(preset("vgg-tiny", in_chans=1)))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match="not a readable checkpoint"):
        checkpoint.load(path)


def test_wrong_payloads(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": 1}, path)
    with pytest.raises(UserError, match="not an mstdeploy checkpoint"):
        checkpoint.load(path)
    with pytest.raises(UserError, match="not found"):
        checkpoint.load(tmp_path / "missing.pt")


def test_a_checkpoint_that_says_timesteps_loads_as_steps(tmp_path):
    # SAFormer's config field was `timesteps` before the names were unified (docs/layout.md, "One name per idea")
    model = build_model(preset("saformer-tiny", steps=3))
    path = tmp_path / "old.pt"
    checkpoint.save(path, model, {})
    ck = torch.load(path, weights_only=False)
    ck["config"]["timesteps"] = ck["config"].pop("steps")
    torch.save(ck, path)
    loaded, _ = checkpoint.load(path)
    assert loaded.config.steps == 3

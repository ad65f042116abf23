"""`mst import` of official MST checkpoints: architecture inference, the ANN forward equal to the
official one, refusals with one line, and the whole road after import."""
import pytest
import torch

from conftest import one_line_error, run_mst
from official_mst import CIFAR, IMAGENET, forward, random_state_dict
from mstdeploy.errors import UserError
from mstdeploy.models.official import import_official


@pytest.mark.parametrize("arch", [CIFAR, IMAGENET], ids=["cifar", "imagenet"])
def test_imported_forward_equals_the_official(arch):
    sd = random_state_dict(arch)
    model = import_official({"model": sd})
    cfg = model.config
    assert (cfg.img_size, cfg.patch_size, cfg.embed_dim, cfg.depths, cfg.num_heads, cfg.window_size,
            cfg.mlp_ratio, cfg.mlp_bn, cfg.num_classes, cfg.head_norm, cfg.levels) == \
        (arch["img"], arch["patch"], arch["embed"], arch["depths"], arch["heads"], arch["window"],
         arch["mlp_ratio"], arch["mlp_bn"], arch["classes"], "layer", 16)
    x = torch.randn(4, 3, arch["img"], arch["img"])
    with torch.no_grad():
        want, got = forward(sd, arch, x), model(x)
    assert want.abs().mean() > 0.05 and want.std(0).mean() > 0.01          # alive, input-dependent
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


def test_bare_state_dict_and_ddp_prefix_are_read():
    sd = random_state_dict(CIFAR)
    a = import_official(sd)
    b = import_official({"model": {"module." + k: v for k, v in sd.items()}})
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(a(x), b(x))


def test_unknown_and_missing_keys_are_named():
    sd = random_state_dict(CIFAR)
    sd["absolute_pos_embed"] = torch.zeros(1, 64, 16)
    with pytest.raises(UserError, match="unknown keys absolute_pos_embed"):
        import_official(sd)
    sd = random_state_dict(CIFAR)
    del sd["layers.0.blocks.1.attn.k_if.up"]
    with pytest.raises(UserError, match=r"missing keys layers\.0\.blocks\.1\.attn\.k_if\.lam"):
        import_official(sd)
    with pytest.raises(UserError, match="disagrees"):
        import_official(random_state_dict(CIFAR), img_size=64)


def test_import_cli_then_the_whole_road(tmp_path):
    src, ck, g = tmp_path / "official.pth", tmp_path / "mst.pt", tmp_path / "mst.nir"
    torch.save({"model": random_state_dict(IMAGENET)}, src)
    r = run_mst("import", src, "-o", ck, "--mask", "0.75")
    assert r.returncode == 0, r.stderr
    assert "MLP BN on" in r.stdout and "window 4" in r.stdout
    r = run_mst("export", ck, "-o", g, "--layernorm", "per_step")
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.pth"
    sd = random_state_dict(CIFAR)
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, bad)
    assert "unknown keys extra.weight" in one_line_error(run_mst("import", bad, "-o", tmp_path / "x.pt"))
    assert not (tmp_path / "x.pt").exists()


def test_official_recipe_numbers_and_transforms():
    from mstdeploy.models.recipe import Official, resolve
    r = resolve("official", {"epochs": 30})
    assert (r["lr"], r["warmup_lr"], r["min_lr"], r["weight_decay"], r["clip_grad"]) == (1e-4, 1e-6, 1e-5, 0.05, 5.0)
    assert r["epochs"] == 30 and r["warmup_epochs"] == 2.0           # 20 of 300, in proportion
    assert resolve("official", {"lr": 3e-4})["lr"] == 3e-4 and resolve("default", {})["epochs"] == 60
    text = repr(Official("imagenet", 1000, 0.1).train_transform(224))
    assert "RandAugment" in text and "RandomErasing(p=0.25" in text and "bicubic" in text
    text = repr(Official("cifar10", 10, 0.1).train_transform(224))
    assert "RandomCrop(size=(32, 32), padding=4)" in text and "Resize(size=224" in text
    mix = Official("cifar10", 10, 0.1).mixup()
    assert (mix.mixup_alpha, mix.cutmix_alpha, mix.switch_prob, mix.label_smoothing) == (0.8, 1.0, 0.5, 0.1)


def test_official_recipe_trains(tmp_path):
    ck = tmp_path / "m.pt"
    r = run_mst("train", "--recipe", "official", "--epochs", "1", "--batch-size", "32", "--no-progress", "--out", ck)
    assert r.returncode == 0, r.stderr
    from mstdeploy.models import checkpoint
    model, payload = checkpoint.load(ck)
    assert payload["meta"]["recipe"] == "official" and model.config.drop_path == 0.2
    assert not model.config.mlp_bn                                   # digits is not ImageNet
    assert "even" in one_line_error(run_mst("train", "--recipe", "official", "--epochs", "1",
                                            "--batch-size", "33", "--out", tmp_path / "x.pt"))

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

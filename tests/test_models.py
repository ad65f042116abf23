import pytest
import torch

from mstdeploy.errors import UserError
from mstdeploy.models.config import preset
from mstdeploy.models.mst import MSTBlock
from mstdeploy.models.registry import build_model
from mstdeploy.models.rsm import RandomSpikeMask


def tiny(**kw):
    return build_model(preset("mst-tiny", in_chans=1, **kw))


@pytest.mark.parametrize("attention", ["softmax", "spiking"])
def test_mst_tiny_forward_backward(attention):
    m = tiny(attention=attention, mask=0.75, mask_sites=["q", "k", "attn", "mlp"])
    y = m(torch.randn(3, 1, 16, 16))
    assert y.shape == (3, 10)
    y.sum().backward()
    assert all(p.grad is not None for n, p in m.named_parameters() if n.endswith("lam"))


def test_mst_layout_shift_and_merging():
    m = tiny()
    blocks = [b for _, b in m.blocks() if isinstance(b, MSTBlock)]
    assert [b.shift for b in blocks] == [0, 2, 0, 0]   # stage 2 is one 4x4 window: no shift
    assert [b.resolution for b in blocks] == [8, 8, 4, 4]
    assert blocks[1].shift_mask.shape == (4, 16, 16)
    assert set(blocks[1].shift_mask.unique().tolist()) == {0.0, -100.0}


def test_block_residual_is_the_block_input():
    # Official: x + attn(QCFS(BN1(x))), the shortcut taken before norm1. With the attention's output
    # neuron silenced (lam 0 gives 0 everywhere), the block's first residual is x itself.
    m = tiny().eval()
    blk = m.layers[0].blocks[0]
    blk.attn.proj_if.lam.data.fill_(1e-9)
    x = torch.randn(2, 64, 32)
    seen = {}
    blk.norm2.register_forward_hook(lambda mod, i, o: seen.setdefault("in", i[0]))
    blk(x)
    assert torch.allclose(seen["in"], x, atol=1e-6)


def test_drop_path_rises_linearly_and_only_trains():
    m = tiny(drop_path=0.3)
    rates = [b.drop_path.p for _, b in m.blocks() if isinstance(b, MSTBlock)]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])
    x = torch.randn(4, 1, 16, 16)
    m.eval()
    assert torch.equal(m(x), m(x))


def test_mst_t_is_swin_t_sized():
    m = build_model(preset("mst-t", num_classes=1000))
    n = sum(p.numel() for p in m.parameters())
    assert 27e6 < n < 29e6                            # Swin-T: 28.3M
    assert m(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_mask_sites_and_per_block_ratios():
    m = tiny(mask=[0.1, 0.2, 0.3, 0.4], mask_sites=["q", "mlp"])
    ps = {n: mod.p for n, mod in m.named_modules() if isinstance(mod, RandomSpikeMask)}
    assert ps["layers.0.blocks.0.attn.mask_q"] == 0.1 and ps["layers.0.blocks.1.mlp.mask_fc2"] == 0.2
    assert ps["layers.1.blocks.1.attn.mask_q"] == 0.4 and ps["layers.1.blocks.1.attn.mask_k"] == 0.0
    with pytest.raises(UserError, match="4 blocks"):
        tiny(mask=[0.1, 0.2])
    with pytest.raises(UserError, match="unknown masking site"):
        tiny(mask_sites=["v"])


def test_spiking_attention_is_zero_across_shifted_regions():
    m = tiny(attention="spiking").eval()
    attn = m.layers[0].blocks[1].attn
    seen = {}
    attn.attn_if.register_forward_hook(lambda mod, i, o: seen.setdefault("a", o))
    m(torch.randn(2, 1, 16, 16))
    cross = (m.layers[0].blocks[1].shift_mask != 0).float()   # (nW, N, N): different regions
    a = seen["a"].reshape(2, cross.shape[0], -1, 16, 16)  # (B, nW, heads, N, N)
    assert (a * cross[None, :, None]).abs().max() == 0
    assert (a * (1 - cross)[None, :, None]).abs().max() > 0


@pytest.mark.parametrize("name,kw", [("resnet18", dict(width=8)), ("vgg16", {}), ("vgg-tiny", {})])
def test_cnn_baselines(name, kw):
    size = 16 if name != "vgg16" else 32
    m = build_model(preset(name, img_size=size, in_chans=1, mask=0.5, **kw))
    assert m(torch.randn(2, 1, size, size)).shape == (2, 10)
    masks = [mod for mod in m.modules() if isinstance(mod, RandomSpikeMask)]
    assert len(masks) == m.config.masked_layers() and all(mk.p == 0.5 for mk in masks)
    first_conv = next(mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d))
    assert first_conv.in_channels == 1                  # the analog image is not masked

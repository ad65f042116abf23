"""What "the converted network equals the quantized ANN at M = L, T = 1" means, checked on a model
of the official Swin-T's size (README, "What is exact"; docs/few-steps.md).

A graph holds its parameters in float32 (as NIR files do), the ANN in its own precision: both
compute the same levels, except where a pre-activation lies within float32 rounding of a level
boundary (floor(u + 0.5) at u + 0.5 within ~1e-6 of an integer). Such a level may come out one
off, and a flipped level then feeds every later layer. Measured here (1 image, 224x224, random
weights in the official layout, float64 arithmetic): see test_m_equal_l_on_the_swin_t_layout."""
import re

import numpy as np
import torch

from official_mst import random_state_dict
from mstdeploy.export.lower import to_nir
from mstdeploy.ir import nodes as X
from mstdeploy.ir.topology import Topology
from mstdeploy.models.official import import_official
from mstdeploy.models.qcfs import QCFS
from mstdeploy.simulate.engine import Simulator

SWIN_T = dict(img=224, patch=4, chans=3, embed=96, depths=[2, 2, 6, 2], heads=[3, 6, 12, 24], window=7,
              mlp_ratio=4.0, mlp_bn=False, classes=10)
TIE = 1e-5          # levels: a pre-activation this close to a boundary may round either way in float32
SITES = {"act1": "shortcut1_if", "attn.q": "attn.q_if", "attn.k": "attn.k_if", "attn.v": "attn.v_if",
         "attn.attn": "attn.attn_if", "attn.out": "attn.attn_v_if", "attn.proj": "attn.proj_if",
         "mlp_in": "shortcut2_if", "fc1": "mlp.fc1_if", "fc2": "mlp.fc2_if"}


def module_of(node: str, depths) -> str:
    """The QCFS module of the official layout that a graph's neuron converts."""
    if node == "patch_embed.if":
        return "patch_embed.proj_if"
    if m := re.fullmatch(r"merge(\d+)", node):
        return f"layers.{m[1]}.downsample.reduction_if"
    k, site = re.fullmatch(r"block(\d+)\.(.+)", node).groups()
    k = int(k)
    layer = next(i for i in range(len(depths)) if k < sum(depths[:i + 1]))
    return f"layers.{layer}.blocks.{k - sum(depths[:layer])}.{SITES[site]}"


def test_m_equal_l_on_the_swin_t_layout():
    torch.manual_seed(0)
    model = import_official({"model": random_state_dict(SWIN_T)}, mask=0.0).double()
    x = torch.randn(1, 3, 224, 224, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ann, order = {}, []

    def hook(name):
        def record(mod, inp, out):
            u = torch.clamp(inp[0] / mod.lam, 0, 1) * mod.levels + 0.5
            frac = u - torch.floor(u)
            ann[name] = (torch.floor(u).to(torch.int64), torch.minimum(frac, 1 - frac))
            order.append(name)
        return record
    for name, mod in model.named_modules():
        if isinstance(mod, QCFS):
            mod.register_forward_hook(hook(name))
    with torch.no_grad():
        logits = model(x)
    g = to_nir(model, spike_levels=16)                          # M = L = 16
    neurons = [n for n in Topology(g).order if isinstance(g.nodes[n], X.ResetSubIF)]
    r = Simulator(g, dtype=torch.float64).run(x, 1, record=set(neurons))
    snn = {module_of(n, SWIN_T["depths"]): r.spikes[n] for n in neurons}
    assert sorted(snn) == sorted(ann) and len(ann) == 124

    def histogram(levels):
        return np.bincount(np.asarray(levels, np.int64).reshape(-1), minlength=17)
    equal = 0
    for name in order:                                          # forward order: the first flip
        a, s = histogram(ann[name][0]), histogram(snn[name][0])
        if np.array_equal(a, s):
            equal += 1
            continue
        flips = int(np.abs(a - s).sum()) // 2                  # levels that moved, at least
        ties = int((ann[name][1] < TIE).sum())
        assert 1 <= flips <= ties, (name, flips, ties)
        print(f"first flip at {name} after {equal} equal quantizers: {flips} level(s) moved, "
              f"{ties} pre-activations within {TIE:g} of a boundary, of {ann[name][0].numel():,}")
        break
    else:
        assert torch.allclose(r.logits[0], logits, atol=1e-9)
    assert r.logits[0].argmax(-1).tolist() == logits.argmax(-1).tolist()

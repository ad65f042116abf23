"""An independent reading of the official MST forward (github bic-L/Masked-Spiking-Transformer,
models/mst.py and modules_QCFS.py MyFloor), written as functions of a state dict in the official
key layout, and random state dicts in that layout. Tests compare `mst import` against it; it
shares no code with models/mst.py."""
from __future__ import annotations

import torch
import torch.nn.functional as F

L = 16


def myfloor(x, up):
    """modules_QCFS.MyFloor: floor first, then clamp (ours clamps first: equal values)."""
    x = x / up
    x = torch.floor(x * L + 0.5) / L
    return torch.clamp(x, 0, 1) * up


def bn(sd, p, x):
    """BatchNorm1d over the channel axis of (B, N, C) tokens, eval mode."""
    y = F.batch_norm(x.transpose(1, 2), sd[p + ".running_mean"], sd[p + ".running_var"],
                     sd[p + ".weight"], sd[p + ".bias"], False, 0.0, 1e-5)
    return y.transpose(1, 2)


def rel_index(w):
    ch, cw = torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")
    c = torch.stack([ch.flatten(), cw.flatten()])
    r = (c[:, :, None] - c[:, None, :]).permute(1, 2, 0) + (w - 1)
    return r[..., 0] * (2 * w - 1) + r[..., 1]


def windows(x, w):
    B, H, W, C = x.shape
    return x.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, C)


def unwindows(x, w, H, W):
    B = x.shape[0] // (H * W // w // w)
    return x.view(B, H // w, W // w, w, w, -1).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, -1)


def shift_mask(H, w, s):
    img = torch.zeros(1, H, H, 1)
    cnt = 0
    for a in (slice(0, -w), slice(-w, -s), slice(-s, None)):
        for b in (slice(0, -w), slice(-w, -s), slice(-s, None)):
            img[:, a, b, :] = cnt
            cnt += 1
    mw = windows(img, w).squeeze(-1)
    m = mw.unsqueeze(1) - mw.unsqueeze(2)
    return m.masked_fill(m != 0, -100.0).masked_fill(m == 0, 0.0)


def attention(sd, p, x, heads, w, mask):
    B_, N, C = x.shape
    qkv = F.linear(x, sd[p + ".qkv.weight"], sd[p + ".qkv.bias"]).reshape(B_, N, 3, heads, C // heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    q, k = myfloor(q, sd[p + ".q_if.up"]), myfloor(k, sd[p + ".k_if.up"])
    a = myfloor((q @ k.transpose(-2, -1)) * (C // heads) ** -0.5, sd[p + ".attn_if.up"])
    v = myfloor(v, sd[p + ".v_if.up"])
    bias = sd[p + ".relative_position_bias_table"][rel_index(w).view(-1)].view(w * w, w * w, -1).permute(2, 0, 1)
    a = a + bias.unsqueeze(0)
    if mask is not None:
        nW = mask.shape[0]
        a = (a.view(B_ // nW, nW, heads, N, N) + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, N, N)
    x = (a.softmax(-1) @ v).transpose(1, 2).reshape(B_, N, C)
    x = myfloor(x, sd[p + ".attn_v_if.up"])
    return myfloor(F.linear(x, sd[p + ".proj.weight"], sd[p + ".proj.bias"]), sd[p + ".proj_if.up"])


def block(sd, p, x, res, heads, window, shift, mlp_bn):
    B, Ntok, C = x.shape
    if res <= window:
        window, shift = res, 0
    shortcut = x
    x = myfloor(bn(sd, p + ".norm1", x), sd[p + ".shortcut1_if.up"]).view(B, res, res, C)
    if shift:
        x = torch.roll(x, (-shift, -shift), (1, 2))
    x = attention(sd, p + ".attn", windows(x, window), heads, window,
                  shift_mask(res, window, shift) if shift else None)
    x = unwindows(x, window, res, res)
    if shift:
        x = torch.roll(x, (shift, shift), (1, 2))
    x = shortcut + x.reshape(B, Ntok, C)
    x = bn(sd, p + ".norm2", x)
    h = myfloor(x, sd[p + ".shortcut2_if.up"])
    h = F.linear(h, sd[p + ".mlp.fc1.weight"], sd[p + ".mlp.fc1.bias"])
    if mlp_bn:
        h = bn(sd, p + ".mlp.norm1", h)
    h = myfloor(h, sd[p + ".mlp.fc1_if.up"])
    h = F.linear(h, sd[p + ".mlp.fc2.weight"], sd[p + ".mlp.fc2.bias"])
    if mlp_bn:
        h = bn(sd, p + ".mlp.norm2", h)
    return x + myfloor(h, sd[p + ".mlp.fc2_if.up"])


def forward(sd, arch, x):
    """The official ANN forward (eval mode) of state dict `sd` with architecture `arch`."""
    x = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], arch["patch"])
    x = myfloor(bn(sd, "patch_embed.norm", x.flatten(2).transpose(1, 2)), sd["patch_embed.proj_if.up"])
    res = arch["img"] // arch["patch"]
    for i, (depth, heads) in enumerate(zip(arch["depths"], arch["heads"])):
        for j in range(depth):
            x = block(sd, f"layers.{i}.blocks.{j}", x, res, heads, arch["window"],
                      0 if j % 2 == 0 else arch["window"] // 2, arch["mlp_bn"])
        if i < len(arch["depths"]) - 1:
            B, N, C = x.shape
            v = x.view(B, res, res, C)
            v = torch.cat([v[:, 0::2, 0::2], v[:, 1::2, 0::2], v[:, 0::2, 1::2], v[:, 1::2, 1::2]], -1)
            v = bn(sd, f"layers.{i}.downsample.norm", v.view(B, -1, 4 * C))
            x = myfloor(F.linear(v, sd[f"layers.{i}.downsample.reduction.weight"]),
                        sd[f"layers.{i}.downsample.reduction_if.up"])
            res //= 2
    x = F.layer_norm(x, (x.shape[-1],), sd["norm.weight"], sd["norm.bias"])
    return F.linear(x.mean(1), sd["head.weight"], sd["head.bias"])


def random_state_dict(arch, seed=0) -> dict:
    """Random weights in the official key layout (thresholds `.up` of shape [1], BN statistics,
    the buffers relative_position_index and attn_mask that the official model stores)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}

    def t(*shape, scale=1.0, low=None):
        v = torch.randn(*shape, generator=g) * scale
        return v.abs() + low if low is not None else v

    def norm(p, c):
        sd.update({p + ".weight": t(c, scale=0.2, low=0.8), p + ".bias": t(c, scale=0.1),
                   p + ".running_mean": t(c, scale=0.1), p + ".running_var": t(c, scale=0.3, low=0.5),
                   p + ".num_batches_tracked": torch.tensor(10)})

    def up(p):
        sd[p + ".up"] = t(1, scale=0.2, low=0.6)

    C, P = arch["embed"], arch["patch"]
    sd["patch_embed.proj.weight"] = t(C, arch["chans"], P, P, scale=0.3)
    sd["patch_embed.proj.bias"] = t(C, scale=0.1)
    norm("patch_embed.norm", C)
    up("patch_embed.proj_if")
    res = arch["img"] // P
    for i, (depth, heads) in enumerate(zip(arch["depths"], arch["heads"])):
        dim = C * 2 ** i
        w = min(arch["window"], res)
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}"
            norm(p + ".norm1", dim)
            up(p + ".shortcut1_if")
            sd[p + ".attn.relative_position_bias_table"] = t((2 * w - 1) ** 2, heads, scale=0.02)
            sd[p + ".attn.relative_position_index"] = rel_index(w)
            sd[p + ".attn.qkv.weight"] = t(3 * dim, dim, scale=dim ** -0.5)
            sd[p + ".attn.qkv.bias"] = t(3 * dim, scale=0.1)
            for site in ("q_if", "k_if", "v_if", "attn_if", "attn_v_if", "proj_if"):
                up(p + ".attn." + site)
            sd[p + ".attn.proj.weight"] = t(dim, dim, scale=dim ** -0.5)
            sd[p + ".attn.proj.bias"] = t(dim, scale=0.1)
            norm(p + ".norm2", dim)
            up(p + ".shortcut2_if")
            hidden = int(dim * arch["mlp_ratio"])
            sd[p + ".mlp.fc1.weight"] = t(hidden, dim, scale=dim ** -0.5)
            sd[p + ".mlp.fc1.bias"] = t(hidden, scale=0.1)
            sd[p + ".mlp.fc2.weight"] = t(dim, hidden, scale=hidden ** -0.5)
            sd[p + ".mlp.fc2.bias"] = t(dim, scale=0.1)
            if arch["mlp_bn"]:
                norm(p + ".mlp.norm1", hidden)
                norm(p + ".mlp.norm2", dim)
            up(p + ".mlp.fc1_if")
            up(p + ".mlp.fc2_if")
            if j % 2 == 1 and res > arch["window"]:
                sd[p + ".attn_mask"] = shift_mask(res, w, w // 2)
        if i < len(arch["depths"]) - 1:
            p = f"layers.{i}.downsample"
            sd[p + ".reduction.weight"] = t(2 * dim, 4 * dim, scale=(4 * dim) ** -0.5)
            norm(p + ".norm", 4 * dim)
            up(p + ".reduction_if")
            res //= 2
    dim = C * 2 ** (len(arch["depths"]) - 1)
    sd["norm.weight"], sd["norm.bias"] = t(dim, scale=0.2, low=0.8), t(dim, scale=0.1)
    sd["head.weight"], sd["head.bias"] = t(arch["classes"], dim, scale=dim ** -0.5), t(arch["classes"], scale=0.1)
    return sd


# A CIFAR configuration (no MLP BN) and an ImageNet one (MLP BN), small enough for a test.
CIFAR = dict(img=32, patch=4, chans=3, embed=16, depths=[2, 2], heads=[2, 4], window=4, mlp_ratio=4.0,
             mlp_bn=False, classes=10)
IMAGENET = dict(img=32, patch=2, chans=3, embed=8, depths=[2, 2, 2], heads=[1, 2, 2], window=4, mlp_ratio=2.0,
                mlp_bn=True, classes=20)

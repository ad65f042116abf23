"""Lowering of an MST (models/mst.py) to a NIR graph.

Token tensors are (C, N), channel-first, tokens row-major: the layout in which NIR type-checks
token-wise linear layers (Conv1d, kernel 1). Between IF neurons the network is linear, so every
tensor is tracked as a `Lin`: a sum of per-channel-scaled, routed spike streams plus a constant.
A QCFS site then becomes one IF neuron fed by one synapse node per stream, with the constant as
its bias. This is how BatchNorm folds even where it has no single neighbouring weight (the MLP
shortcut y = BN2(x) feeds both the MLP and the residual sum): its scale lands on every stream's
synapse and its shift in the bias of the neuron that integrates it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np
import torch

from ..models.attention import WindowAttention
from ..models.mst import MST, MSTBlock, PatchMerging
from .builder import GraphBuilder, bn_affine, fold_bn, np32
from ..ir.nodes import HostLayerNorm, HostSoftmax, Route, SpikeProduct


@dataclass
class Term:
    src: str                     # node whose output (spikes) this stream carries
    src_shape: tuple             # (C_src, N_src)
    w: np.ndarray                # per-channel weight in the current layout, shape (C,)
    route: np.ndarray | None = None   # index map into the source, shape (C, N); None: identity


@dataclass
class Lin:
    """A (C, N) tensor = sum over terms of w * route(spikes) + const."""
    shape: tuple
    terms: list = field(default_factory=list)
    const: np.ndarray | None = None   # broadcastable to shape

    @staticmethod
    def of(src: str, shape: tuple, w) -> "Lin":
        return Lin(shape, [Term(src, shape, np.full(shape[0], float(w)))], np.zeros((shape[0], 1)))

    def affine(self, a: np.ndarray, c: np.ndarray) -> "Lin":
        terms = [Term(t.src, t.src_shape, t.w * a, t.route) for t in self.terms]
        return Lin(self.shape, terms, a[:, None] * self.const + c[:, None])

    def plus(self, other: "Lin") -> "Lin":
        return Lin(self.shape, self.terms + other.terms, self.const + other.const)

    def routed(self, index: np.ndarray) -> "Lin":
        """Apply a token/channel routing; each output channel must come from one input channel."""
        C, N = self.shape
        chan = index // N
        if not (chan == chan[:, :1]).all():
            raise ValueError("routing mixes channels within an output channel")
        chan = chan[:, 0]
        terms = []
        for t in self.terms:
            base = np.arange(int(np.prod(t.src_shape))).reshape(t.src_shape) if t.route is None else t.route
            terms.append(Term(t.src, t.src_shape, t.w[chan], base.reshape(-1)[index]))
        const = np.broadcast_to(self.const, self.shape).reshape(-1)[index]
        if (const == const[:, :1]).all():
            const = const[:, :1]
        return Lin(index.shape, terms, const)


def _route_node(b: GraphBuilder, name: str, t: Term) -> str:
    if t.route is None:
        return t.src
    return b.add(name, Route(in_shape=t.src_shape, index=t.route), t.src)


def neuron_from(b: GraphBuilder, name: str, lin: Lin, act, weight=None, bias=None) -> str:
    """IF neuron integrating `weight @ lin + bias` (token-wise; weight None: identity)."""
    C, N = lin.shape
    out_c = C if weight is None else weight.shape[0]
    inputs = []
    for k, t in enumerate(lin.terms):
        src = _route_node(b, f"{name}.in{k}.route", t)
        if weight is None:
            syn = nir.Scale(scale=np.repeat(t.w[:, None], N, 1).astype(np.float32))
        else:
            syn = nir.Conv1d(input_shape=N, weight=np.float32(weight * t.w[None, :])[:, :, None],
                             stride=1, padding=0, dilation=1, groups=1, bias=np.zeros(out_c, np.float32))
        inputs.append(b.add(f"{name}.in{k}", syn, src))
    const = lin.const if weight is None else weight @ lin.const
    if bias is not None:
        const = const + bias[:, None]
    return b.neuron(name, act, (out_c, N), *inputs, bias=np.broadcast_to(const, (out_c, const.shape[1])))


def spike_product(b: GraphBuilder, name: str, a: tuple, bb: tuple, mode: str, scale: float) -> str:
    """SpikeProduct of operands (src, src_shape, index map into src): each reaches its slice of
    the packed input through its own Route (NIR sums the two)."""
    (sa, shape_a, map_a), (sb, shape_b, map_b) = a, bb
    na, nb = map_a.size, map_b.size
    ra = b.add(f"{name}.a", Route(in_shape=shape_a, index=np.concatenate(
        [map_a.reshape(-1), -np.ones(nb, np.int64)])), sa)
    rb = b.add(f"{name}.b", Route(in_shape=shape_b, index=np.concatenate(
        [-np.ones(na, np.int64), map_b.reshape(-1)])), sb)
    return b.add(name, SpikeProduct(a_shape=map_a.shape, b_shape=map_b.shape, mode=mode, scale=scale),
                 ra, rb)


def token_index(H: int, W: int, win: int, shift: int) -> np.ndarray:
    """(nW, Nw) -> token id n of the unshifted (H, W) grid for window nw, position p."""
    ih, iw = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    rolled = ((ih + shift) % H) * W + (iw + shift) % W           # token at rolled (i, j)
    r = rolled.reshape(H // win, win, W // win, win).transpose(0, 2, 1, 3)
    return r.reshape(-1, win * win)


def _attention(b: GraphBuilder, pre: str, blk: MSTBlock, s1: str, lam1: float, C: int, res: int) -> Lin:
    """Window attention on spikes `s1` (C, N); returns the projected output as a Lin."""
    att: WindowAttention = blk.attn
    H = W = res
    N, heads, win = H * W, att.heads, blk.window
    d, Nw = C // heads, win * win
    tok = token_index(H, W, win, blk.shift)                        # (nW, Nw)
    nW = tok.shape[0]
    x1 = Lin.of(s1, (C, N), lam1)
    wqkv, bqkv = fold_bn(att.qkv.weight, att.qkv.bias, None)
    acts = (att.q_if, att.k_if, att.v_if)
    spikes = []
    for i, nm in enumerate("qkv"):
        sl = slice(i * C, (i + 1) * C)
        s = neuron_from(b, f"{pre}.{nm}", x1, acts[i], wqkv[sl], bqkv[sl])
        p = {"q": att.mask_q.p, "k": att.mask_k.p, "v": 0.0}[nm]
        spikes.append(b.gate(f"{pre}.{nm}.gate", s, p, (C, N)))
    sq, sk, sv = spikes
    # index maps from (C, N) into the window layouts; channel c = head * d + e
    c_idx = (np.arange(heads)[:, None] * d + np.arange(d)[None, :])            # (heads, d)
    q_map = c_idx[None, :, None, :] * N + tok[:, None, :, None]                 # (nW, heads, Nw, d)
    kt_map = q_map.transpose(0, 1, 3, 2)                                        # (nW, heads, d, Nw)

    spiking = att.mode == "spiking"
    mode = "cumulative" if spiking else "per_step"
    lq, lk = b.unit(att.q_if), b.unit(att.k_if)
    qk = spike_product(b, f"{pre}.qk", (sq, (C, N), q_map), (sk, (C, N), kt_map), mode, att.scale * lq * lk)
    a_shape = (nW, heads, Nw, Nw)
    bias = np32(att.position_bias())[None]                                      # (1, heads, Nw, Nw)
    if blk.shift_mask is not None:
        bias = bias + np32(blk.shift_mask)[:, None]
    bias = np.broadcast_to(bias, a_shape)
    lam_a, lam_v = b.unit(att.attn_if), b.unit(att.v_if)
    # spiking: the bias (and shift mask) drive the attention neuron; softmax: the host op
    a = b.neuron(f"{pre}.attn", att.attn_if, a_shape, qk, bias=bias if spiking else 0.0)
    a = b.gate(f"{pre}.attn.gate", a, att.mask_attn.p, a_shape)
    av_scale = lam_a * lam_v
    if not spiking:
        a = b.add(f"{pre}.softmax", HostSoftmax(shape=a_shape, scale=lam_a, bias=bias, axis=-1), a)
        av_scale = lam_v
    # A @ V; V uses the Q layout (nW, heads, Nw, d)
    a_map = np.arange(int(np.prod(a_shape))).reshape(a_shape)
    av = spike_product(b, f"{pre}.av", (a, a_shape, a_map), (sv, (C, N), q_map), mode, av_scale)
    # back to (C, N): inverse of q_map
    inv = np.empty(C * N, np.int64)
    inv[q_map.reshape(-1)] = np.arange(q_map.size)
    back = b.add(f"{pre}.av.out", Route(in_shape=q_map.shape, index=inv.reshape(C, N)), av)
    o = b.neuron(f"{pre}.out", att.attn_v_if, (C, N), back)
    wp, bp = fold_bn(att.proj.weight, att.proj.bias, None)
    sp = neuron_from(b, f"{pre}.proj", Lin.of(o, (C, N), b.unit(att.attn_v_if)), att.proj_if, wp, bp)
    return Lin.of(sp, (C, N), b.unit(att.proj_if))


def _block(b: GraphBuilder, pre: str, blk: MSTBlock, x: Lin) -> Lin:
    """Official block: the attention's shortcut is the block input x itself (before norm1)."""
    C, N = x.shape
    s1 = neuron_from(b, f"{pre}.act1", x.affine(*bn_affine(blk.norm1)), blk.shortcut1_if)
    x_mid = x.plus(_attention(b, f"{pre}.attn", blk, s1, b.unit(blk.shortcut1_if), C, blk.resolution))
    y = x_mid.affine(*bn_affine(blk.norm2))
    mlp = blk.mlp
    s_in = neuron_from(b, f"{pre}.mlp_in", y, blk.shortcut2_if)
    g1 = b.gate(f"{pre}.fc1.gate", s_in, mlp.mask_fc1.p, (C, N))
    w1, b1 = fold_bn(mlp.fc1.weight, mlp.fc1.bias, mlp.norm1)
    h1 = neuron_from(b, f"{pre}.fc1", Lin.of(g1, (C, N), b.unit(blk.shortcut2_if)), mlp.fc1_if, w1, b1)
    g2 = b.gate(f"{pre}.fc2.gate", h1, mlp.mask_fc2.p, (w1.shape[0], N))
    w2, b2 = fold_bn(mlp.fc2.weight, mlp.fc2.bias, mlp.norm2)
    h2 = neuron_from(b, f"{pre}.fc2", Lin.of(g2, (w1.shape[0], N), b.unit(mlp.fc1_if)), mlp.fc2_if, w2, b2)
    return y.plus(Lin.of(h2, (C, N), b.unit(mlp.fc2_if)))


def _merge(b: GraphBuilder, pre: str, m: PatchMerging, x: Lin, res: int) -> Lin:
    C, N = x.shape
    h2 = res // 2
    oh, ow = np.meshgrid(np.arange(h2), np.arange(h2), indexing="ij")
    parts = []
    for dh, dw in ((0, 0), (1, 0), (0, 1), (1, 1)):                 # x0, x1, x2, x3 of Swin
        tok = ((2 * oh + dh) * res + 2 * ow + dw).reshape(-1)
        parts.append(np.arange(C)[:, None] * N + tok[None, :])
    xc = x.routed(np.concatenate(parts, 0)).affine(*bn_affine(m.norm))
    w, _ = fold_bn(m.reduction.weight, None, None)
    s = neuron_from(b, f"{pre}", xc, m.reduction_if, w, np.zeros(w.shape[0]))
    return Lin.of(s, (w.shape[0], h2 * h2), b.unit(m.reduction_if))


def _head(b: GraphBuilder, model: MST, x: Lin, layernorm: str) -> str:
    """norm -> token mean -> Linear. BatchNorm folds into the classifier. LayerNorm is a host op
    on the residual stream's spike streams (HostLayerNorm, `layernorm` cumulative or per_step)
    whose affine folds into the classifier."""
    C, N = x.shape
    wh, bh = fold_bn(model.head.weight, model.head.bias, None)
    K = wh.shape[0]
    out = b.add("output", nir.Output(output_type={"output": np.array([K, 1])}))
    if isinstance(model.norm, torch.nn.LayerNorm):
        ln = model.norm
        gamma, beta = (np.ones(C), np.zeros(C)) if ln.weight is None else \
            (ln.weight.double().numpy(), ln.bias.double().numpy())
        packed = (len(x.terms), C, N)
        inputs = []
        for k, t in enumerate(x.terms):
            base = np.arange(int(np.prod(t.src_shape))).reshape(t.src_shape) if t.route is None else t.route
            index = -np.ones(packed, np.int64)
            index[k] = base
            inputs.append(b.add(f"head.norm.in{k}", Route(in_shape=t.src_shape, index=index), t.src))
        weight = np.stack([t.w for t in x.terms])[:, :, None]
        norm = b.add("head.norm", HostLayerNorm(shape=(C, N), weight=weight, bias=x.const, axis=0,
                                                eps=float(ln.eps), mode=layernorm), *inputs)
        w = np.repeat((wh * gamma[None, :])[:, :, None] / N, N, 2).astype(np.float32)
        syn = b.add("head", nir.Conv1d(input_shape=N, weight=w, stride=1, padding=0, dilation=1, groups=1,
                                       bias=np.float32(wh @ beta + bh)), norm)
        b.edges.append((syn, out))
        return out
    xh = x.affine(*bn_affine(model.norm))
    for k, t in enumerate(xh.terms):
        src = _route_node(b, f"head.in{k}.route", t)
        w = np.repeat((wh * t.w[None, :])[:, :, None] / N, N, 2).astype(np.float32)
        bias = (wh @ np.broadcast_to(xh.const, (C, N)).mean(1) + bh) if k == 0 else np.zeros(K)
        syn = b.add(f"head.in{k}", nir.Conv1d(input_shape=N, weight=w, stride=1, padding=0, dilation=1,
                                              groups=1, bias=np.float32(bias)), src)
        b.edges.append((syn, out))
    return out


def lower_mst(model: MST, seed: int = 0, layernorm: str = "cumulative", levels: int = 1) -> GraphBuilder:
    cfg = model.config
    b = GraphBuilder(seed, levels)
    S = cfg.img_size
    inp = b.add("input", nir.Input(input_type={"input": np.array([cfg.in_chans, S, S])}))
    pe = model.patch_embed
    w, bias = fold_bn(pe.proj.weight, pe.proj.bias, pe.norm)
    P = cfg.patch_size
    res = S // P
    conv = b.add("patch_embed", nir.Conv2d(input_shape=(S, S), weight=np.float32(w), stride=P, padding=0,
                                           dilation=1, groups=1, bias=np.float32(bias)), inp)
    flat = b.tokens("patch_embed.flatten", [cfg.embed_dim, res, res], conv)
    C, N = cfg.embed_dim, res * res
    s = b.neuron("patch_embed.if", pe.proj_if, (C, N), flat)
    x = Lin.of(s, (C, N), b.unit(pe.proj_if))
    nb = 0
    for i, mod in model.blocks():
        if isinstance(mod, MSTBlock):
            x = _block(b, f"block{nb}", mod, x)
            nb += 1
        else:
            x = _merge(b, f"merge{i}", mod, x, mod.resolution)
    _head(b, model, x, layernorm)
    return b

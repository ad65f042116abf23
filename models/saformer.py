"""SAFormer (Spike Aggregation Transformer, docs/sources.md, "SAFormer"), trained directly as an SNN.

Neurons are lava-dl slayer CUBA LIF neurons (Loihi's integer dynamics, surrogate gradients);
every synapse is quantization-aware (models/qat.py) with BatchNorm folded into it while it
trains, so the exported network computes the trained network's integers. docs/models.md gives
our reading of the paper. Activations are (T, B, C, N), tokens row-major on an H x W grid; the
network sees the image at every step and returns the logits averaged over the T steps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from . import qat
from .config import SAFormerConfig
from .rsm import RandomSpikeMask


class VoltageBias(nn.Module):
    """slayer's `norm` hook (applied to the current before the voltage integrates it), used to add
    the synapse's bias where Lava's LIF adds bias_mant: to the voltage."""

    def __init__(self):
        super().__init__()
        self.bias = None

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        return current if self.bias is None else current + self.bias


class LIF(nn.Module):
    """A slayer CUBA neuron layer on (T, B, *shape) currents; `bias` per channel (axis 0 of shape)."""

    def __init__(self, cfg: SAFormerConfig):
        super().__init__()
        try:            # lava-dl is needed here alone: export and the simulator run without Lava
            from lava.lib.dl.slayer.neuron import cuba
        except ImportError as e:
            raise UserError(f"SAFormer's neurons are lava-dl's ({e}); install it with `make install`") from e
        self.neuron = cuba.Neuron(threshold=cfg.threshold, current_decay=cfg.current_decay,
                                  voltage_decay=cfg.voltage_decay, tau_grad=cfg.tau_grad,
                                  scale_grad=cfg.scale_grad, norm=VoltageBias, shared_param=True,
                                  requires_grad=False)

    def forward(self, current: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        T, rest = current.shape[0], current.shape[1:]
        x = current.double().permute(*range(1, current.dim()), 0)        # (B, *shape, T)
        if bias is not None:
            bias = bias.double().reshape(1, -1, *([1] * (x.dim() - 2)))
        self.neuron.norm.bias = bias
        try:
            s = self.neuron(x.contiguous())
        finally:
            self.neuron.norm.bias = None
        return s.permute(-1, *range(0, len(rest))).to(current.dtype).reshape(T, *rest)


class ConvBN(nn.Module):
    """Conv (2-d, or token-wise 1-d with kernel 1) -> BatchNorm, folded and quantized as it trains.

    Training uses the batch statistics to fold (Krishnamoorthi 2018, section 3.2); evaluation the
    running ones. Returns the floored current and the quantized bias (for the neuron)."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, padding: int = 0,
                 groups: int = 1, token: bool = False, analog: bool = False):
        super().__init__()
        shape = (cout, cin // groups, k) if token else (cout, cin // groups, k, k)
        self.weight = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self.bn = nn.BatchNorm1d(cout)
        self.conv = F.conv1d if token else F.conv2d
        self.args = dict(stride=stride, padding=padding, groups=groups)
        self.analog = analog

    def folded(self, x: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(quantized weight, quantized bias) of BN(conv(x)); batch statistics of x in training."""
        bn = self.bn
        if self.training and x is not None:
            y = self.conv(x, self.weight, None, **self.args).transpose(0, 1).reshape(self.weight.shape[0], -1)
            mean, var = y.mean(1), y.var(1, unbiased=False)
            with torch.no_grad():
                n = y.shape[1]
                bn.running_mean.lerp_(mean, bn.momentum)
                bn.running_var.lerp_(var * n / max(n - 1, 1), bn.momentum)
                bn.num_batches_tracked += 1
        else:
            mean, var = bn.running_mean, bn.running_var
        a = bn.weight / torch.sqrt(var + bn.eps)
        w = self.weight * a.reshape(-1, *([1] * (self.weight.dim() - 1)))
        return qat.quantize_weight(w, self.analog), qat.quantize_bias(bn.bias - mean * a)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (T, B, C, *spatial) -> (current (T, B, C', *spatial'), bias (C',))."""
        T, B = x.shape[:2]
        flat = x.reshape(T * B, *x.shape[2:])
        w, b = self.folded(flat)
        y = qat.floor_current(self.conv(flat, w, None, **self.args))
        return y.reshape(T, B, *y.shape[1:]), b


class Unit(nn.Module):
    """ConvBN -> LIF: one synaptic layer and the neurons it drives."""

    def __init__(self, cfg: SAFormerConfig, *args, **kw):
        super().__init__()
        self.syn = ConvBN(*args, **kw)
        self.lif = LIF(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(*self.syn(x))


def grid(x: torch.Tensor, res: int) -> torch.Tensor:
    """(T, B, C, N) tokens -> (T, B, C, res, res)."""
    return x.reshape(*x.shape[:3], res, res)


class ScaledProduct(nn.Module):
    """Per-step product of two spike tensors with a learnable scalar gain and bias, into LIFs."""

    def __init__(self, cfg: SAFormerConfig, gain: float):
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(float(gain)))
        self.bias = nn.Parameter(torch.zeros(()))
        self.lif = LIF(cfg)

    def quantized(self) -> tuple[torch.Tensor, torch.Tensor]:
        return qat.quantize_weight(self.gain.reshape(1))[0], qat.quantize_bias(self.bias.reshape(1))

    def current(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g, bias = self.quantized()
        return qat.floor_current(g * (a @ b)), bias


class SASA(nn.Module):
    """Spike Aggregated Self-Attention: attention from Q and K spikes only, keys aggregated by
    region; linear in the number of tokens (docs/models.md).

    Q, K = LIF(BN(W x)); K_r = LIF(BN(DWConv_{r, stride r}(K))) aggregates each r x r region
    into one key token (grid^2 of them); A = LIF(g_a Q_h K_r,h^T + b_a) per head; the aggregated
    keys also carry the values: O = LIF(g_o A_h K_r,h + b_o); out = LIF(BN(W_p O))."""

    def __init__(self, cfg: SAFormerConfig, p: float):
        super().__init__()
        C, self.heads, self.res = cfg.embed_dim, cfg.num_heads, cfg.token_grid()
        self.d = C // self.heads
        r = self.res // cfg.agg_grid
        self.regions = cfg.agg_grid ** 2                                # aggregated key tokens
        self.q = Unit(cfg, C, C, token=True)
        self.k = Unit(cfg, C, C, token=True)
        self.agg = Unit(cfg, C, C, k=r, stride=r, groups=C)
        self.attn = ScaledProduct(cfg, 4.0 / self.d)
        self.out = ScaledProduct(cfg, 0.5)
        self.proj = Unit(cfg, C, C, token=True)
        sites = cfg.mask_sites
        self.mask_q = RandomSpikeMask(p if "q" in sites else 0.0)
        self.mask_k = RandomSpikeMask(p if "k" in sites else 0.0)
        self.mask_attn = RandomSpikeMask(p if "attn" in sites else 0.0)

    def heads_of(self, x: torch.Tensor) -> torch.Tensor:
        """(T, B, C, M) -> (T, B, heads, M, d); channel c = head * d + e."""
        T, B, C, M = x.shape
        return x.reshape(T, B, self.heads, self.d, M).transpose(-1, -2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, N = x.shape
        q = self.mask_q(self.q(x))
        k = self.mask_k(self.k(x))
        kr = self.agg(grid(k, self.res)).flatten(3)                     # (T, B, C, G*G)
        qh, krh = self.heads_of(q), self.heads_of(kr)                     # (.., N, d), (.., G*G, d)
        a = self.mask_attn(self.attn.lif(*self.attn.current(qh, krh.transpose(-1, -2))))
        o, bias = self.out.current(a, krh)                               # (T, B, heads, N, d)
        o = self.out.lif(o.transpose(-1, -2).reshape(T, B, C, N), bias)
        return self.proj(o)


class Block(nn.Module):
    """x = x + SASA(x) + DWC(x); x = x + MLP(x). x is the sum of the spike streams (SEW residual)."""

    def __init__(self, cfg: SAFormerConfig, p: float):
        super().__init__()
        C, self.res = cfg.embed_dim, cfg.token_grid()
        hidden = int(C * cfg.mlp_ratio)
        self.sasa = SASA(cfg, p)
        self.dwc = Unit(cfg, C, C, k=3, padding=1, groups=C)
        self.fc1 = Unit(cfg, C, hidden, token=True)
        self.fc2 = Unit(cfg, hidden, C, token=True)
        site = "mlp" in cfg.mask_sites
        self.mask_fc1 = RandomSpikeMask(p if site else 0.0)
        self.mask_fc2 = RandomSpikeMask(p if site else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sasa(x) + self.dwc(grid(x, self.res)).flatten(3)
        return x + self.fc2(self.mask_fc2(self.fc1(self.mask_fc1(x))))


class SAFormer(nn.Module):
    """Spike patch splitting (conv stem + relative position embedding), SAFormer blocks, a head on
    the token average; logits averaged over `config.steps` steps."""

    def __init__(self, cfg: SAFormerConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        layers, cin = [], cfg.in_chans
        for i, (c, s) in enumerate(cfg.stem):
            layers.append(Unit(cfg, cin, c, k=3, stride=s, padding=1, analog=(i == 0)))
            cin = c
        self.stem = nn.ModuleList(layers)
        self.rpe = Unit(cfg, cfg.embed_dim, cfg.embed_dim, k=3, padding=1)   # relative position embedding
        self.blocks = nn.ModuleList(Block(cfg, p) for p in cfg.block_ratios())
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes)

    def head_weight(self) -> torch.Tensor:
        return qat.quantize_output(self.head.weight)

    def step_logits(self, img: torch.Tensor, T: int | None = None) -> torch.Tensor:
        """(T, B, classes): the output at every step (what the exported graph's Output gives).
        img: (B, C, H, W), the same input every step, or (B, T, C, H, W) frames (event data)."""
        frames = img.dim() == 5
        T = img.shape[1] if frames else (T or self.config.steps)
        x = qat.quantize_input(img.transpose(0, 1) if frames else img.unsqueeze(0))
        first = self.stem[0]
        cur, bias = first.syn(x)
        s = first.lif(cur if frames else cur.expand(T, *cur.shape[1:]), bias)
        for unit in self.stem[1:]:
            s = unit(s)
        x = s + self.rpe(s)
        x = x.flatten(3)                                                # (T, B, C, N)
        for blk in self.blocks:
            x = blk(x)
        return F.linear(x.mean(-1), self.head_weight(), self.head.bias)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.step_logits(img).mean(0)

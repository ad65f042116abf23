"""Window self-attention with QCFS spikes, in the two modes of the model config.

softmax (official MST): A = QCFS(mask(Qs) @ mask(Ks)^T * d^-1/2); S = mask(A) + bias (+ shift
    mask); P = softmax(S); out = QCFS(P @ Vs). Softmax stays a host (non-neuromorphic) op.
spiking (softmax-free): A = mask(QCFS(mask(Qs) @ mask(Ks)^T * d^-1/2 + bias (+ shift mask)));
    out = QCFS(A @ Vs). Every op is a spike x spike product, an affine map or an IF neuron, so the
    SNN is exact (docs/sources.md, "Exact spike products"); the -100 shift mask drives A to exactly 0.
Both end in proj Linear -> QCFS. Relative position bias as in Swin. QCFS sites carry the
official module names (q_if, k_if, v_if, attn_if, attn_v_if, proj_if).
"""
from __future__ import annotations

import torch
from torch import nn

from .config import MSTConfig
from .qcfs import QCFS
from .rsm import RandomSpikeMask


def relative_position_index(w: int) -> torch.Tensor:
    """Swin's (w*w, w*w) index into the (2w-1)^2 relative-position bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (w - 1)
    return rel[..., 0] * (2 * w - 1) + rel[..., 1]


class WindowAttention(nn.Module):
    def __init__(self, dim: int, heads: int, window: int, cfg: MSTConfig, p: float):
        super().__init__()
        self.heads, self.window, self.mode = heads, window, cfg.attention
        self.scale = (dim // heads) ** -0.5
        q = lambda: QCFS(cfg.levels, cfg.lam_init)  # noqa: E731
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_if, self.k_if, self.v_if, self.attn_if, self.attn_v_if = q(), q(), q(), q(), q()
        sites = cfg.mask_sites
        self.mask_q = RandomSpikeMask(p if "q" in sites else 0.0)
        self.mask_k = RandomSpikeMask(p if "k" in sites else 0.0)
        self.mask_attn = RandomSpikeMask(p if "attn" in sites else 0.0)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window),
                             persistent=False)
        self.proj = nn.Linear(dim, dim)
        self.proj_if = q()

    def position_bias(self) -> torch.Tensor:
        """(heads, N, N) relative position bias."""
        n = self.window * self.window
        idx = self.relative_position_index.reshape(-1)
        return self.relative_position_bias_table[idx].reshape(n, n, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, shift_mask: torch.Tensor | None = None) -> torch.Tensor:
        Bw, N, C = x.shape
        qkv = self.qkv(x).reshape(Bw, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q = self.mask_q(self.q_if(qkv[0]))
        k = self.mask_k(self.k_if(qkv[1]))
        v = self.v_if(qkv[2])
        a = (q @ k.transpose(-2, -1)) * self.scale           # (Bw, heads, N, N)
        bias = self.position_bias().unsqueeze(0)
        if shift_mask is not None:                           # (nW, N, N), windows repeat per image
            nW = shift_mask.shape[0]
            bias = (bias.unsqueeze(0) + shift_mask.unsqueeze(1).unsqueeze(0)).reshape(nW, self.heads, N, N)
            bias = bias.repeat(Bw // nW, 1, 1, 1)
        if self.mode == "spiking":
            p = self.mask_attn(self.attn_if(a + bias))
        else:
            p = torch.softmax(self.mask_attn(self.attn_if(a)) + bias, dim=-1)
        out = self.attn_v_if(p @ v).transpose(1, 2).reshape(Bw, N, C)
        return self.proj_if(self.proj(out))

"""The released MeshSmileNet transformers: pre-LN blocks with the positional encoding added inside every attention call,
and the space-time stack that alternates attention over time and over tokens (in the spirit of ViViT's factorised
encoder, Arnab et al., ICCV 2021, arXiv:2103.15691)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def sinusoid(length: int, dim: int) -> torch.Tensor:
    """PE[p, 2i] = sin(p 10000^(-2i/d)), PE[p, 2i+1] = cos(...), p < length (the release's table, float32)."""
    pos = torch.arange(0, length, dtype=torch.float).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


PE_ROWS = 128  # rows of the release's positional table: the longest sequence an attention accepts


class Attention(nn.Module):
    """Pre-LN attention with the release's positional encoding: y = LN(x); z = y + Dropout(y + PE);
    out = Dropout(W_o softmax(Q K^T / sqrt(d_head)) V + b_o), [Q K V] = z W_qkv^T (no bias, no dropout on the weights).
    The residual stream x itself is not touched by the PE."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.register_buffer("pe", sinusoid(PE_ROWS, dim), persistent=False)
        self.pe_drop = nn.Dropout(dropout)
        self.qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > PE_ROWS:
            raise ValueError(f"sequence of {x.shape[1]} exceeds the positional table ({PE_ROWS} rows)")
        y = self.norm(x)
        z = y + self.pe_drop(y + self.pe[: x.shape[1]])
        q, k, v = rearrange(self.qkv(z), "b s (three h e) -> three b h s e", three=3, h=self.heads)
        o = F.scaled_dot_product_attention(q, k, v)
        return self.out(rearrange(o, "b h s e -> b s (h e)"))


class FeedForward(nn.Sequential):
    """Dropout(W_2 Dropout(GELU(W_1 LN(x) + b_1)) + b_2), exact GELU."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, dim), nn.Dropout(dropout))


class Block(nn.Module):
    """x = x + Attention(x); x = x + FeedForward(x)."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.attn, self.ff = Attention(dim, heads, dim_head, dropout), FeedForward(dim, mlp_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.ff(x)


class SpaceTimeTransformer(nn.Module):
    """Depth-L stack on (b, t, m, d): even layers attend over time per (b, m), odd layers over tokens per (b, t)."""

    def __init__(self, dim, depth, heads, dim_head, mlp_dim, dropout):
        super().__init__()
        self.layers = nn.ModuleList(Block(dim, heads, dim_head, mlp_dim, dropout) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        for i, layer in enumerate(self.layers):
            if i % 2 == 0:
                x = rearrange(layer(rearrange(x, "b t m d -> (b m) t d")), "(b m) t d -> b t m d", b=b)
            else:
                x = rearrange(layer(rearrange(x, "b t m d -> (b t) m d")), "(b t) m d -> b t m d", b=b)
        return x

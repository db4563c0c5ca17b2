"""Attention (RPT #5), multi-head attention (#6), cross-attention (#7), multi-head cross-attention (#8).

Released defect (read from the released FUS notebooks): every query attends over ONE key, so softmax(.) = 1 and the
output is W_V d' (times W_O) whatever h is -- the deep branch gets no gradient. ``impl="released"`` keeps that
behaviour on purpose; ``impl="paper"`` is the corrected form, attending over several tokens:
- deep tokens: the backbone's per-frame tokens (b, t, d) (through W_x for the single-head forms);
- D-Marker tokens: the 225 features as 3 regions x 3 phases x 25, each projected to d plus a learned embedding.
"""
from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from common.smile.fusions import DMARKER_DIM, FUSIONS, Fusion, mlp2


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d_head)) V per head: q (b, i, h*e), k/v (b, j, h*e) -> (b, i, h*e)."""
    q, k, v = (rearrange(x, "b n (h e) -> b h n e", h=heads) for x in (q, k, v))
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return rearrange(w @ v, "b h n e -> b n (h e)")


class DMarkerTokens(nn.Module):
    """(b, 225) -> (b, 9, d): one token per region x phase, t_rp = W x_rp + e_rp (x_rp the 25 features)."""

    def __init__(self, dim: int, regions: int = 3, phases: int = 3):
        super().__init__()
        self.regions, self.phases = regions, phases
        self.proj: nn.Linear | None = None  # built by build(), which knows the D-Marker width
        self.embed = nn.Parameter(torch.zeros(regions * phases, dim))

    def build(self, dmarker_dim: int, dim: int) -> DMarkerTokens:
        if dmarker_dim % (self.regions * self.phases):
            raise ValueError(f"D-Marker width {dmarker_dim} is not regions x phases x features")
        self.proj = nn.Linear(dmarker_dim // (self.regions * self.phases), dim)
        return self

    def forward(self, dmarker: torch.Tensor) -> torch.Tensor:
        x = rearrange(dmarker, "b (rp f) -> b rp f", rp=self.regions * self.phases)
        return self.proj(x) + self.embed


class _Attention(Fusion):
    """Shared body; subclasses set heads, query source, whether an MLP2 follows, and cross (queries = D-Marker)."""

    uses_frames = True
    heads, query_raw_h, post_mlp, cross = 1, False, True, False

    def __init__(self, dim, dmarker_dim=DMARKER_DIM, impl="paper", dropout=0.1):
        super().__init__(dim, dmarker_dim, impl, dropout, project_h=not self.query_raw_h)
        bias = self.heads == 1  # the multi-head released code has q/k/v without bias
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=bias) for _ in range(3))
        self.out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout)) if self.heads > 1 else nn.Identity()
        self.mlp = mlp2(dim, dropout) if self.post_mlp else nn.Identity()
        self.dm_tokens = DMarkerTokens(dim).build(dmarker_dim, dim) if impl == "paper" else None
        if impl == "paper":
            self.proj_d = None  # the corrected form reads the D-Marker as tokens

    def forward(self, h, dmarker, frames=None):
        if self.impl == "released":
            self.check(h, dmarker)
            query = h if self.query_raw_h else self.proj_h(h)
            d = self.proj_d(dmarker)
            q, kv = query.unsqueeze(1), d.unsqueeze(1)                  # one query, ONE key
            fused = attend(self.q(q), self.k(kv), self.v(kv), self.heads).squeeze(1)
            return self.mlp(self.out(fused))
        if dmarker.shape[-1] != self.dmarker_dim:
            raise ValueError(f"D-Marker has {dmarker.shape[-1]} features, the fusion expects {self.dmarker_dim}")
        if frames is None:
            raise ValueError("the corrected attention fusions need the backbone's per-frame tokens")
        dm = self.dm_tokens(dmarker)                                   # b 9 d
        deep = frames if self.query_raw_h else self.proj_h(frames)      # b t d
        if self.cross:   # D-Marker tokens ask, deep frames answer; mean over the 9 queries
            fused = attend(self.q(dm), self.k(deep), self.v(deep), self.heads).mean(dim=1)
        else:            # h' asks over deep frames and D-Marker tokens together
            tokens = torch.cat([deep, dm], dim=1)
            fused = attend(self.q(self.proj_h(h)).unsqueeze(1), self.k(tokens), self.v(tokens), self.heads).squeeze(1)
        return self.mlp(self.out(fused))


@FUSIONS.register("attention", paper_name="Attention", rpt=5, differs=True)
class Attention(_Attention):
    """released: F = MLP2(softmax(Q K^T / sqrt(d)) V), Q = W_Q h', K = W_K d', V = W_V d' (one token: = MLP2(W_V d')).
    paper (corrected): Q = W_Q h', K/V = W_K/W_V [W_x frames ; D-Marker tokens]  (t + 9 keys)."""


@FUSIONS.register("mh_attention", paper_name="MHAttention", rpt=6, differs=True)
class MHAttention(_Attention):
    """As ``attention`` with 4 heads x d/4, q/k/v without bias, output W_O + Dropout, then MLP2."""

    heads = 4


@FUSIONS.register("cross_attention", paper_name="CrossAttention", rpt=7, differs=True)
class CrossAttention(_Attention):
    """released: identical to ``attention`` (duplicate code).
    paper (corrected): queries = the 9 D-Marker tokens, K/V = W_x frames; F = MLP2(mean over queries)."""

    cross = True


@FUSIONS.register("mh_cross_attention", paper_name="MHCrossAttention", rpt=8, differs=True)
class MHCrossAttention(_Attention):
    """released: 4 heads, query from the raw h (no W_x), K/V from d'; NO MLP2 (straight to the head).
    paper (corrected): queries = D-Marker tokens, K/V = raw frames, 4 heads, mean over queries, no MLP2."""

    heads, query_raw_h, post_mlp, cross = 4, True, False, True

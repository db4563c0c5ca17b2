"""Additive (softmax-weighted) fusion, RPT #3."""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from common.smile.fusions import DMARKER_DIM, FUSIONS, Fusion


@FUSIONS.register("additive", paper_name="AdditiveFusion", rpt=3, differs=False)
class Additive(Fusion):
    """h'' = Drop(ReLU(LN(W_x h))),  d'' = Drop(ReLU(LN(W_d d))),  alpha = softmax(W_a [h'' ; d''])  (2 weights),
    F = alpha_1 h'' + alpha_2 d'', then LN - Linear(d, 2d) - ReLU - Drop - Linear(2d, d) - ReLU.
    """

    def __init__(self, dim, dmarker_dim=DMARKER_DIM, impl="paper", dropout=0.1):
        super().__init__(dim, dmarker_dim, impl, dropout)
        self.norm_h, self.norm_d = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.weights = nn.Linear(2 * dim, 2)
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(2 * dim, dim), nn.ReLU())

    def forward(self, h, dmarker, frames=None):
        self.check(h, dmarker)
        hh = self.drop(torch.relu(self.norm_h(self.proj_h(h))))
        dd = self.drop(torch.relu(self.norm_d(self.proj_d(dmarker))))
        alpha = torch.softmax(self.weights(torch.cat([hh, dd], dim=-1)), dim=-1)
        stacked = torch.stack([hh, dd], dim=1)                         # b two d
        fused = (rearrange(alpha, "b two -> b two 1") * stacked).sum(dim=1)
        return self.mlp(fused)

"""Hadamard product (RPT #4, HadaSmileNet) and Hadamard + gated concatenation (RPT #15)."""
from __future__ import annotations

import torch
from torch import nn

from common.smile.fusions import DMARKER_DIM, FUSIONS, Fusion, mlp2


@FUSIONS.register("hadamard", paper_name="Hadamard-multip", rpt=4, differs=False)
class Hadamard(Fusion):
    """F = MLP2(h' * d'),  h' = W_x h + b,  d' = W_d d + b.  The fusion itself has no parameters."""

    def __init__(self, dim, dmarker_dim=DMARKER_DIM, impl="paper", dropout=0.1):
        super().__init__(dim, dmarker_dim, impl, dropout)
        self.mlp = mlp2(dim, dropout)

    def forward(self, h, dmarker, frames=None):
        self.check(h, dmarker)
        return self.mlp(self.proj_h(h) * self.proj_d(dmarker))


@FUSIONS.register("hadamard_gated_concat", paper_name="Hadamard + GatedConcat", rpt=15, differs=False)
class HadamardGatedConcat(Fusion):
    """g = sigmoid(W_g [h ; d']),  F = MLP2(h' * d' + g * h + (1 - g) * d')."""

    def __init__(self, dim, dmarker_dim=DMARKER_DIM, impl="paper", dropout=0.1):
        super().__init__(dim, dmarker_dim, impl, dropout)
        self.gate = nn.Linear(2 * dim, dim)
        self.mlp = mlp2(dim, dropout)

    def forward(self, h, dmarker, frames=None):
        self.check(h, dmarker)
        d = self.proj_d(dmarker)
        g = torch.sigmoid(self.gate(torch.cat([h, d], dim=-1)))
        return self.mlp(self.proj_h(h) * d + g * h + (1 - g) * d)

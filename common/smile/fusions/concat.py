"""Concatenation (RPT #1) and gated concatenation (RPT #2)."""
from __future__ import annotations

import torch
from torch import nn

from common.smile.fusions import DMARKER_DIM, FUSIONS, Fusion, mlp2


@FUSIONS.register("concat", paper_name="concatenation", rpt=1, differs=True)
class Concat(Fusion):
    """F = MLP([h ; d']).

    released: MLP = Linear(2d, d) - ReLU - Dropout - Linear(d, d) - ReLU (no h projection, no LayerNorm).
    paper (RPT: "4-layer MLP 256-256-256-256 with LN"): four Linear layers 2d -> d -> d -> d -> d, each followed by
    LayerNorm - ReLU - Dropout (our reading of that sentence).
    """

    def __init__(self, dim, dmarker_dim=DMARKER_DIM, impl="paper", dropout=0.1):
        super().__init__(dim, dmarker_dim, impl, dropout, project_h=False)
        if impl == "released":
            self.mlp = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim),
                                     nn.ReLU())
        else:
            layers = []
            for i in range(4):
                layers += [nn.Linear(2 * dim if i == 0 else dim, dim), nn.LayerNorm(dim), nn.ReLU(),
                           nn.Dropout(dropout)]
            self.mlp = nn.Sequential(*layers)

    def forward(self, h, dmarker, frames=None):
        self.check(h, dmarker)
        return self.mlp(torch.cat([h, self.proj_d(dmarker)], dim=-1))


@FUSIONS.register("gated_concat", paper_name="gatedConcatenation", rpt=2, differs=False)
class GatedConcat(Fusion):
    """g = sigmoid(W_g [h ; d']),  F = MLP2(g * h + (1 - g) * d')."""

    def __init__(self, dim, dmarker_dim=DMARKER_DIM, impl="paper", dropout=0.1):
        super().__init__(dim, dmarker_dim, impl, dropout, project_h=False)
        self.gate = nn.Linear(2 * dim, dim)
        self.mlp = mlp2(dim, dropout)

    def forward(self, h, dmarker, frames=None):
        self.check(h, dmarker)
        d = self.proj_d(dmarker)
        g = torch.sigmoid(self.gate(torch.cat([h, d], dim=-1)))
        return self.mlp(g * h + (1 - g) * d)

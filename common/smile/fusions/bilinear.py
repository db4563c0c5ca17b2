"""Bilinear pooling (RPT #11), + Hadamard (#12), factorized bilinear pooling (#13), + Hadamard (#14).

The released notebooks of this family use the narrow "dim-8" backbone (:meth:`BackboneConfig.released_dim8`); the model
builder gives it to these fusions in both forms (registry info ``released_backbone="dim8"``), and the fusion formulas
are the same in both forms.
"""
from __future__ import annotations

import torch
from torch import nn

from common.smile.fusions import DMARKER_DIM, FUSIONS, Fusion, mlp2


class _Bilinear(Fusion):
    def __init__(self, dim, dmarker_dim=DMARKER_DIM, impl="paper", dropout=0.1, with_hadamard=False, factorized=False):
        super().__init__(dim, dmarker_dim, impl, dropout)
        self.with_hadamard, self.factorized = with_hadamard, factorized
        if factorized:  # P_1, P_2: d -> 2d, W_o: 2d -> d
            self.p_h, self.p_d, self.out = nn.Linear(dim, 2 * dim), nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)
        else:
            self.bilinear = nn.Bilinear(dim, dim, dim)
        self.combine = nn.Linear(dim, dim) if with_hadamard else None
        self.mlp = nn.Sequential(nn.LayerNorm(dim), *mlp2(dim, dropout))

    def pool(self, hp: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        if self.factorized:
            return self.out(self.p_h(hp) * self.p_d(d))
        return self.bilinear(hp, d)

    def forward(self, h, dmarker, frames=None):
        self.check(h, dmarker)
        hp, d = self.proj_h(h), self.proj_d(dmarker)
        fused = self.pool(hp, d)
        if self.with_hadamard:
            fused = torch.relu(self.combine(fused + hp * d))
        return self.mlp(fused)


@FUSIONS.register("bilinear", paper_name="Bilinear_Pooling", rpt=11, released_backbone="dim8", differs=False)
class Bilinear(_Bilinear):
    """F_k = h'^T W_k d' + b_k  (nn.Bilinear(d, d, d)),  then LN + MLP2."""


@FUSIONS.register("bilinear_hadamard", paper_name="Bilinear_Pooling+Hadam", rpt=12, released_backbone="dim8",
                  differs=False)
class BilinearHadamard(_Bilinear):
    """F = ReLU(W_c (Bil(h', d') + h' * d')),  then LN + MLP2."""

    def __init__(self, dim, dmarker_dim=DMARKER_DIM, impl="paper", dropout=0.1):
        super().__init__(dim, dmarker_dim, impl, dropout, with_hadamard=True)


@FUSIONS.register("factorized_bilinear", paper_name="Factorized_Bilinear_Pooling", rpt=13, released_backbone="dim8",
                  differs=False)
class FactorizedBilinear(_Bilinear):
    """F = W_o [(P_1 h' + b_1) * (P_2 d' + b_2)]  (hidden 2d),  then LN + MLP2."""

    def __init__(self, dim, dmarker_dim=DMARKER_DIM, impl="paper", dropout=0.1):
        super().__init__(dim, dmarker_dim, impl, dropout, factorized=True)


@FUSIONS.register("factorized_bilinear_hadamard", paper_name="Factorized_Bilinear_Pooling+Hadamard", rpt=14,
                  released_backbone="dim8", differs=False)
class FactorizedBilinearHadamard(_Bilinear):
    """F = ReLU(W_c (FBP(h', d') + h' * d')),  then LN + MLP2."""

    def __init__(self, dim, dmarker_dim=DMARKER_DIM, impl="paper", dropout=0.1):
        super().__init__(dim, dmarker_dim, impl, dropout, with_hadamard=True, factorized=True)

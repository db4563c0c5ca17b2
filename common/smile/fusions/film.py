"""FiLM (RPT #9) and FiLM + Hadamard (RPT #10)."""
from __future__ import annotations

import torch
from torch import nn

from common.smile.fusions import DMARKER_DIM, FUSIONS, Fusion, mlp2


@FUSIONS.register("film", paper_name="FiLM only", rpt=9, differs=True)
class FiLM(Fusion):
    """[gamma ; beta] = ReLU(W_2 ReLU(W_1 d'))  (d -> 2d -> 2d; the last ReLU makes gamma, beta >= 0),
    released: F = MLP2(gamma * h' + beta);   paper (RPT): F = MLP2(gamma * LN(h') + beta).
    """

    def __init__(self, dim, dmarker_dim=DMARKER_DIM, impl="paper", dropout=0.1):
        super().__init__(dim, dmarker_dim, impl, dropout)
        self.film = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, 2 * dim), nn.ReLU())
        self.norm = nn.LayerNorm(dim) if impl == "paper" else nn.Identity()
        self.mlp = mlp2(dim, dropout)

    def forward(self, h, dmarker, frames=None):
        self.check(h, dmarker)
        gamma, beta = self.film(self.proj_d(dmarker)).chunk(2, dim=-1)
        return self.mlp(gamma * self.norm(self.proj_h(h)) + beta)


@FUSIONS.register("film_hadamard", paper_name="FILM + Hadamard", rpt=10, differs=False)
class FiLMHadamard(Fusion):
    """[gamma_raw ; beta] = W_2 ReLU(W_1 d'),  gamma = 2 sigmoid(gamma_raw),
    F = MLP2(gamma * LN(h') + beta + h' * d').
    """

    def __init__(self, dim, dmarker_dim=DMARKER_DIM, impl="paper", dropout=0.1):
        super().__init__(dim, dmarker_dim, impl, dropout)
        self.film = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, 2 * dim))
        self.norm = nn.LayerNorm(dim)
        self.mlp = mlp2(dim, dropout)

    def forward(self, h, dmarker, frames=None):
        self.check(h, dmarker)
        hp, d = self.proj_h(h), self.proj_d(dmarker)
        gamma_raw, beta = self.film(d).chunk(2, dim=-1)
        return self.mlp(2 * torch.sigmoid(gamma_raw) * self.norm(hp) + beta + hp * d)

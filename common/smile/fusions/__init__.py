"""The 15 fusion strategies of HadaSmileNet (``docs/smile-method.md``; RPT Table 4), registered by name in
:data:`FUSIONS`.

Every fusion maps the deep vector h (b, d), the D-Marker (b, 225) and the deep per-frame tokens (b, t, d) to a fused
vector (b, d) that the shared head LN -> Linear(d, 1) classifies. ``impl="paper"`` follows the paper (RPT) where it
describes the fusion and corrects the released code's defects; ``impl="released"`` reproduces the FUS notebooks.
Registry info: ``paper_name`` (FUS notebook), ``rpt`` (number in RPT Table 4), ``released_backbone`` ("dim8" for the
bilinear family, whose notebooks use the narrow dim-8 backbone, in both forms), ``differs`` (paper and released forms differ).

    >>> fusion = FUSIONS.create("hadamard", dim=256)
    >>> fusion(h, dmarker, frames).shape     # (b, 256)
"""
from __future__ import annotations

import torch
from torch import nn

from common.registry import Registry
from common.smile.dmarker import DMARKER_DIM
from common.smile.choices import FUSION_IMPLS as IMPLS

FUSIONS = Registry("fusion")


def check_impl(impl: str) -> str:
    """``impl`` if it names a fusion form (:data:`IMPLS`), else a ValueError listing them."""
    if impl not in IMPLS:
        raise ValueError(f"unknown fusion_impl {impl!r}; accepted: {', '.join(IMPLS)}")
    return impl


def mlp2(dim: int, dropout: float = 0.1) -> nn.Sequential:
    """MLP2 = Linear(d, d) - ReLU - Dropout - Linear(d, d) - ReLU: follows most fusions in the released code."""
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim), nn.ReLU())


class Fusion(nn.Module):
    """Base: d' = W_d d + b (``proj_d``) and, where used, h' = W_x h + b (``proj_h``)."""

    uses_frames = False  # True: the fusion reads the per-frame tokens

    def __init__(self, dim: int, dmarker_dim: int = DMARKER_DIM, impl: str = "paper", dropout: float = 0.1,
                 project_h: bool = True):
        super().__init__()
        check_impl(impl)
        self.dim, self.dmarker_dim, self.impl = dim, dmarker_dim, impl
        self.proj_d = nn.Linear(dmarker_dim, dim)
        self.proj_h = nn.Linear(dim, dim) if project_h else None

    def check(self, h: torch.Tensor, dmarker: torch.Tensor) -> None:
        if dmarker.shape[-1] != self.dmarker_dim:
            raise ValueError(f"D-Marker has {dmarker.shape[-1]} features, the fusion expects {self.dmarker_dim}")
        if h.shape[-1] != self.dim:
            raise ValueError(f"deep vector has {h.shape[-1]} features, the fusion expects {self.dim}")


def create_fusion(name: str, dim: int, dmarker_dim: int = DMARKER_DIM, impl: str = "paper",
                  dropout: float = 0.1) -> Fusion:
    return FUSIONS.create(name, dim=dim, dmarker_dim=dmarker_dim, impl=impl, dropout=dropout)


def list_fusions() -> list[str]:
    return FUSIONS.list()


from common.smile.fusions import additive, attention, bilinear, concat, film, hadamard  # noqa: F401  (register)

"""HAFEM's compound loss: L = λ1·CE + λ2·center + λ3·DLS, with (λ1, λ2, λ3) = (0.60, 0.25, 0.15).

Every term takes a target *distribution* q (b, C): a one-hot label, a FER+ soft label (``crossentropy`` mode), or a
mixup blend of two. Hard integer labels are turned into one-hot rows first.

- CE:     -Σ_c q_c log p_c
- center: ½ · Σ_c q_c · mean_j (f_j − μ_{c,j})²  (Wen et al. 2016; learnable class centres μ; averaged over the d
          feature dimensions so its scale does not grow with d_model, a normalisation the paper does not state)
- FER+ ``multi_target`` (``multi_target=True``): the CE term is -log Σ_{c: q_c > 0} p_c, the probability mass on
          the set of accepted labels (Barsoum et al. 2016); center and DLS use q (uniform over the set). Under mixup
          the set is the union of the two images' sets.
- DLS:    -Σ_c q̃_c log p_c with q̃ = (1 − ε)·q + ε·w, w_c = (1/n_c) / Σ_k (1/n_k): the smoothing mass goes to the
          classes in inverse proportion to their training frequency n_c, so rare classes (disgust, contempt) get more.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.registry import Registry

LOSSES = Registry("fer loss")
PAPER_WEIGHTS = (0.60, 0.25, 0.15)


def as_distribution(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(b,) integer labels -> one-hot (b, C) floats; (b, C) rows are checked to be distributions and passed through."""
    if target.dim() == 1:
        if target.dtype.is_floating_point:
            raise ValueError("1-D targets must be integer class indices")
        return F.one_hot(target.long(), num_classes).float()
    if target.shape[-1] != num_classes:
        raise ValueError(f"soft targets have {target.shape[-1]} classes, the model {num_classes}")
    return target.float()


def inverse_frequency_weights(class_counts: Sequence[float]) -> torch.Tensor:
    """w_c = (1/n_c) / Σ_k 1/n_k; a class absent from training (n_c = 0) gets the weight of a single sample."""
    counts = np.maximum(np.asarray(class_counts, dtype=np.float64), 1.0)
    inv = 1.0 / counts
    return torch.tensor(inv / inv.sum(), dtype=torch.float32)


def soft_cross_entropy(logits: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return -(q * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def multi_target_nll(logits: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """-log Σ_{c in S} p_c with S = {c : q_c > 0} (FER+ multi-target loss)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return -torch.logsumexp(logp.masked_fill(q <= 0, float("-inf")), dim=-1).mean()


def target_term(multi_target: bool):
    return multi_target_nll if multi_target else soft_cross_entropy


class DistributionAwareSmoothing(nn.Module):
    """-Σ_c [(1 − ε)·q_c + ε·w_c] log p_c, w = inverse class frequency (normalised)."""

    def __init__(self, class_counts: Sequence[float], smoothing: float = 0.1):
        super().__init__()
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must lie in [0, 1), got {smoothing}")
        self.smoothing = smoothing
        self.register_buffer("prior", inverse_frequency_weights(class_counts))

    def smoothed(self, q: torch.Tensor) -> torch.Tensor:
        return (1.0 - self.smoothing) * q + self.smoothing * self.prior.to(q.device)

    def forward(self, logits: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return soft_cross_entropy(logits, self.smoothed(q))


class CenterLoss(nn.Module):
    """½ Σ_c q_c · mean_j (f_j − μ_{c,j})², centres μ (C, d) learned by the optimiser with the network."""

    def __init__(self, num_classes: int, feat_dim: int):
        super().__init__()
        self.centers = nn.Parameter(torch.zeros(num_classes, feat_dim))
        nn.init.normal_(self.centers, std=0.01)

    def forward(self, feats: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        sq = (feats.float().unsqueeze(1) - self.centers.unsqueeze(0)).pow(2).mean(-1)  # (b, C)
        return 0.5 * (q * sq).sum(-1).mean()


class CompoundLoss(nn.Module):
    """λ1·CE + λ2·center + λ3·DLS; ``forward`` returns the total and each unweighted term (for curves)."""

    def __init__(self, num_classes: int, feat_dim: int, class_counts: Sequence[float],
                 weights: Sequence[float] = PAPER_WEIGHTS, smoothing: float = 0.1, multi_target: bool = False):
        super().__init__()
        self.ce = target_term(multi_target)
        if len(weights) != 3 or any(w < 0 for w in weights):
            raise ValueError(f"compound loss needs three non-negative weights (CE, center, DLS), got {weights}")
        self.num_classes = num_classes
        self.weights = tuple(float(w) for w in weights)
        self.center = CenterLoss(num_classes, feat_dim)
        self.dls = DistributionAwareSmoothing(class_counts, smoothing)

    def forward(self, logits: torch.Tensor, feats: torch.Tensor, target: torch.Tensor
                ) -> tuple[torch.Tensor, Mapping[str, float]]:
        q = as_distribution(target, self.num_classes)
        ce = self.ce(logits, q)
        center = self.center(feats, q)
        dls = self.dls(logits, q)
        w_ce, w_center, w_dls = self.weights
        total = w_ce * ce + w_center * center + w_dls * dls
        return total, {"ce": ce.item(), "center": center.item(), "dls": dls.item()}


class CrossEntropyOnly(nn.Module):
    """Plain cross-entropy on q (the ablation rungs before "+ compound loss")."""

    def __init__(self, num_classes: int, multi_target: bool = False, **_: object):
        super().__init__()
        self.num_classes = num_classes
        self.ce = target_term(multi_target)

    def forward(self, logits: torch.Tensor, feats: torch.Tensor, target: torch.Tensor):
        ce = self.ce(logits, as_distribution(target, self.num_classes))
        return ce, {"ce": ce.item()}


@LOSSES.register("compound")
def compound(num_classes: int, feat_dim: int, class_counts: Sequence[float], weights: Sequence[float] = PAPER_WEIGHTS,
             smoothing: float = 0.1, multi_target: bool = False) -> nn.Module:
    return CompoundLoss(num_classes, feat_dim, class_counts, weights, smoothing, multi_target)


@LOSSES.register("ce")
def cross_entropy(num_classes: int, multi_target: bool = False, **_: object) -> nn.Module:
    return CrossEntropyOnly(num_classes, multi_target)

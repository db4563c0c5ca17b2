"""Baselines on the same folds (``docs/smile-method.md``, "Deep branch, fusions and training"): MeshSmileNet (deep
only), DeepMarkerNet (auxiliary D-Marker regression), a D-Marker-only MLP, and the hand-crafted D-Marker + linear SVM /
logistic regression.

Every torch model maps (clip (b, t, 478, 3), dmarker (b, 225)) to logits (b,) and has ``loss(clip, dmarker, label)``.
The hand-crafted entries are not torch models: :mod:`common.smile.run` calls
:func:`common.smile.handcrafted.evaluate_handcrafted` for them (registry info ``kind="handcrafted"``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from common.registry import Registry
from common.smile.backbone import MeshSmileBackbone
from common.smile.backbone_config import BackboneConfig
from common.smile.deepmarkernet_target import DMN_TARGET_DIM
from common.smile.dmarker import DMARKER_DIM

BASELINES = Registry("smile baseline")


class Head(nn.Sequential):
    """LN(d) -> Linear(d, 1): the released classifier head (the sigmoid lives in the loss)."""

    def __init__(self, dim: int):
        super().__init__(nn.LayerNorm(dim), nn.Linear(dim, 1))


class BinaryModel(nn.Module):
    """Base: BCE on the logits (= BCE on the sigmoid output, computed stably)."""

    uses_clip, uses_dmarker = True, True

    def loss(self, clip, dmarker, label):
        logits = self(clip, dmarker)
        return F.binary_cross_entropy_with_logits(logits, label), logits


@BASELINES.register("meshsmilenet", kind="deep", paper_name="MeshSmileNet (BMVC 2022)")
class MeshSmileNet(BinaryModel):
    """p = sigmoid(Linear(LN(h))),  h = backbone(clip). The D-Marker is not used."""

    uses_dmarker = False

    def __init__(self, backbone: BackboneConfig, dmarker_dim: int = DMARKER_DIM, dropout: float = 0.1,
                 impl: str = "paper"):
        super().__init__()
        self.backbone = MeshSmileBackbone(backbone)
        self.head = Head(self.backbone.out_dim)

    def forward(self, clip, dmarker=None):
        return self.head(self.backbone(clip)[0]).squeeze(-1)


@BASELINES.register("deepmarkernet", kind="deep", paper_name="DeepMarkerNet (PRL 2024)")
class DeepMarkerNet(BinaryModel):
    """Multi-task (released DeepMarkerNet): p = sigmoid(Linear(LN(h))), t_hat = Linear(LN(h)) in R^216 regresses
    DeepMarkerNet's own 216-d smile features (the data side puts them in the batch's ``dmarker`` key);
    L = 0.2 BCE(p, y) + 0.8 sigmoid(MSE(t_hat, t)). Inference needs only the clip.
    """

    uses_dmarker = False  # as an input; it is the auxiliary target
    alpha, beta = 0.2, 0.8

    def __init__(self, backbone: BackboneConfig, dmarker_dim: int = DMARKER_DIM, dropout: float = 0.1,
                 impl: str = "paper"):
        super().__init__()
        self.target_dim = DMN_TARGET_DIM
        self.backbone = MeshSmileBackbone(backbone)
        d = self.backbone.out_dim
        self.head = Head(d)
        self.aux = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, DMN_TARGET_DIM))

    def forward(self, clip, dmarker=None):
        return self.head(self.backbone(clip)[0]).squeeze(-1)

    def loss(self, clip, dmarker, label):
        if dmarker.shape[-1] != self.target_dim:
            raise ValueError(f"DeepMarkerNet's auxiliary target has {dmarker.shape[-1]} features, the model regresses "
                             f"{self.target_dim} (its own features, not the 225-d D-Marker)")
        h = self.backbone(clip)[0]
        logits = self.head(h).squeeze(-1)
        bce = F.binary_cross_entropy_with_logits(logits, label)
        mse = F.mse_loss(self.aux(h), dmarker)
        return self.alpha * bce + self.beta * torch.sigmoid(mse), logits


@BASELINES.register("dmarker_mlp", kind="deep", paper_name="D-Marker-only MLP")
class DMarkerMLP(BinaryModel):
    """p = sigmoid(Linear(LN(MLP2(W_d d)))): the fusion head without the deep branch."""

    uses_clip = False

    def __init__(self, backbone: BackboneConfig, dmarker_dim: int = DMARKER_DIM, dropout: float = 0.1,
                 impl: str = "paper"):
        super().__init__()
        dim = backbone.dim
        self.dmarker_dim = dmarker_dim
        self.net = nn.Sequential(nn.Linear(dmarker_dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim),
                                 nn.ReLU())
        self.head = Head(dim)

    def forward(self, clip, dmarker):
        if dmarker.shape[-1] != self.dmarker_dim:
            raise ValueError(f"D-Marker has {dmarker.shape[-1]} features, the model expects {self.dmarker_dim}")
        return self.head(self.net(dmarker)).squeeze(-1)


def _handcrafted(model: str):
    def build(**_):
        raise TypeError(f"dmarker_{model} is a scikit-learn baseline; run it through common.smile.run")
    return build


BASELINES.register("dmarker_svm", kind="handcrafted", classifier="svm", paper_name="D-Marker + linear SVM")(
    _handcrafted("svm"))
BASELINES.register("dmarker_logreg", kind="handcrafted", classifier="logreg",
                   paper_name="D-Marker + logistic regression")(_handcrafted("logreg"))

"""The timm baselines of the paper's Table 3 and of the ablation's first rung, as plain classifiers.

The paper claims significance against "ten" competing methods; its Table 3 lists nine. Four can be rebuilt from timm
(registered in :mod:`common.fer.model`): ResNet-50, ViT-Base/16, EfficientNet-B4 and Swin-T (each fine-tuned from its
own ImageNet checkpoint when ``baseline_pretrained`` asks for one, else trained from scratch, and said so). Five
cannot: "VGGFace2 TL" [7] needs VGGFace2 face-recognition weights (no offline copy, and the network is not named);
"CNN+LSTM" [6], "GAN-Aug" [8], "Cross-Attn" (no citation) and "DualPath CNN" [14] are given only as a name and a
citation, with no architecture, hyper-parameters or code to rebuild them from (GAN-Aug would also need its own GAN
training recipe). Inventing them would reproduce nothing. The tenth method is not identified anywhere in the paper.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.fer.backbones import NO_WEIGHTS, TIMM_PREFIX, WeightsUnavailableError, create_backbone

PAPER_BASELINES = ("resnet50", "vit_base_patch16_224", "efficientnet_b4", "swin_tiny_patch4_window7_224")
DEMO_BASELINES = ("resnet18", "vit_tiny_patch16_224", "efficientnet_b0", "swin_demo")
NOT_REBUILDABLE = {
    "VGGFace2 TL": "needs VGGFace2 face-recognition weights (none offline) and an unspecified network",
    "CNN+LSTM": "architecture not described beyond its name",
    "GAN-Aug": "GAN augmenter and its training recipe not described",
    "Cross-Attn": "no citation, architecture not described",
    "DualPath CNN": "architecture not described beyond its name",
    "(tenth method)": "the text says ten competitors, Table 3 lists nine",
}


class TimmClassifier(nn.Module):
    """A plain timm classifier (Table-3 baselines, the ResNet ablation rung): features (b, d) -> Linear."""

    def __init__(self, backbone: str, num_classes: int = 7, pretrained: str = NO_WEIGHTS, input_size: int = 224,
                 dropout: float = 0.1, **timm_kwargs: Any):
        super().__init__()
        if any(backbone.startswith(p) for p in ("vit_", "swin_", "deit_")):
            timm_kwargs.setdefault("img_size", input_size)
        self.backbone_name = backbone
        self.backbone, self.weights_note = create_backbone(backbone, pretrained, pooled=True, **timm_kwargs)
        self.feature_dim = self.backbone.num_features
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        feats = self.features(x)
        logits = self.head(self.drop(feats))
        return (logits, feats) if return_features else logits

    def target_layer(self) -> nn.Module:
        for name in ("conv_head", "layer4", "stages", "layers"):
            if hasattr(self.backbone, name):
                layer = getattr(self.backbone, name)
                return layer[-1] if isinstance(layer, nn.Sequential) else layer
        raise ValueError(f"no convolutional target layer for Grad-CAM in {self.backbone_name!r}")


def baseline_weights(cfg: Mapping[str, Any], name: str) -> str:
    """The ``pretrained`` value of baseline ``name`` under ``baseline_pretrained``: ``none``; ``timm`` = that model's
    default timm ImageNet tag; or a folder holding ``<name>.safetensors`` / ``<name>.pth`` (missing -> error)."""
    spec = cfg.get("baseline_pretrained", NO_WEIGHTS) or NO_WEIGHTS
    if spec == NO_WEIGHTS:
        return NO_WEIGHTS
    if spec == "timm":
        return f"{TIMM_PREFIX}{name}"
    folder = Path(spec).expanduser()
    for suffix in (".safetensors", ".pth", ".pt"):
        if (folder / f"{name}{suffix}").is_file():
            return str(folder / f"{name}{suffix}")
    raise WeightsUnavailableError(f"baseline_pretrained={spec!r}: no {name}.safetensors / {name}.pth in {folder}")


"""The FER model registry: every trainable model by name (HAFEM and its two ablation rungs from
:mod:`common.fer.hafem`, the timm baselines from :mod:`common.fer.baselines`), built from a study config, or rebuilt
from a checkpoint. Backbone weights: :mod:`common.fer.backbones`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from common.fer.backbones import NO_WEIGHTS
from common.fer.baselines import TimmClassifier, baseline_weights
from common.fer.hafem import HAFEM
from common.registry import Registry

MODELS = Registry("fer model")  # each entry maps a study config and a class count to a model


def _hafem_kwargs(cfg: Mapping[str, Any], **over: Any) -> dict[str, Any]:
    kw = {"backbone": cfg["backbone"], "dim": cfg["dim"], "depth": cfg["depth"], "heads": cfg["heads"],
          "ff_dim": cfg["ff_dim"],
          "token_grid": cfg["token_grid"], "use_cbam": True, "dropout": cfg.get("dropout", 0.1),
          "pretrained": cfg.get("pretrained", NO_WEIGHTS),
          "cbam_placement": cfg.get("cbam_placement", "after_backbone"), "cbam_stages": cfg.get("cbam_stages", 2)}
    kw.update(over)
    return kw


@MODELS.register("hafem", paper_name="HAFEM", kind="hafem")
def hafem(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    return HAFEM(num_classes=num_classes, **_hafem_kwargs(cfg))


@MODELS.register("hafem_no_cbam", paper_name="+ Transformer", kind="hafem")
def hafem_no_cbam(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    return HAFEM(num_classes=num_classes, **_hafem_kwargs(cfg, use_cbam=False))


@MODELS.register("backbone_only", paper_name="EfficientNet-B5 (backbone + linear head)", kind="hafem")
def backbone_only(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    return HAFEM(num_classes=num_classes, **_hafem_kwargs(cfg, use_cbam=False, depth=0))


def _timm_baseline(name: str, paper_name: str) -> None:
    def build(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
        return TimmClassifier(name, num_classes, pretrained=baseline_weights(cfg, name), input_size=cfg["input_size"],
                              dropout=cfg.get("dropout", 0.1))

    build.__name__ = name
    MODELS.register(name, paper_name=paper_name, kind="timm")(build)


# paper baselines (Table 3) and the ResNet-50 ablation rung
for _name, _paper in [("resnet50", "ResNet-50"), ("vit_base_patch16_224", "ViT-Base"),
                      ("efficientnet_b4", "EfficientNet-B4"), ("swin_tiny_patch4_window7_224", "Swin-T"),
                      # their small counterparts for the demo profile (labelled as such in the results)
                      ("resnet18", "ResNet-18 (demo stand-in for ResNet-50)"),
                      ("vit_tiny_patch16_224", "ViT-Tiny (demo stand-in for ViT-Base)"),
                      ("efficientnet_b0", "EfficientNet-B0 (demo stand-in for EfficientNet-B4)")]:
    _timm_baseline(_name, _paper)


@MODELS.register("swin_demo", paper_name="Swin (2 stages, demo stand-in for Swin-T)", kind="timm")
def swin_demo(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    # A two-stage Swin with window 4 fits a 64-96 px input; Swin-T's 7×7 windows need 224.
    return TimmClassifier("swin_tiny_patch4_window7_224", num_classes, input_size=cfg["input_size"],
                          window_size=4, depths=(2, 2), num_heads=(3, 6), embed_dim=48,
                          dropout=cfg.get("dropout", 0.1))


def build_fer_model(cfg: Mapping[str, Any], num_classes: int, variant: str | None = None) -> nn.Module:
    """Build the model named ``variant`` (default ``cfg["model"]``, else ``"hafem"``) for ``num_classes`` classes."""
    name = MODELS.check(variant or cfg.get("model", "hafem"))
    # channels-last convolution weights make every conv pick the NHWC kernels, whatever the input's layout: the same
    # function, and on CPU about 1.4-1.8x faster for the depthwise EfficientNets (benchmarks/README.md)
    return MODELS.get(name)(cfg, num_classes).to(memory_format=torch.channels_last)


def model_from_checkpoint(payload: Mapping[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint written by :mod:`common.fer.run` and load its weights (strict)."""
    cfg = dict(payload["config"])
    cfg["pretrained"] = cfg["baseline_pretrained"] = NO_WEIGHTS  # the checkpoint holds the fine-tuned weights
    variant = payload.get("variant", cfg.get("model", "hafem"))
    classes = payload.get("classes")
    if not classes:
        raise ValueError("checkpoint has no 'classes' list; cannot size the classifier")
    model = build_fer_model(cfg, len(classes), variant)
    model.load_state_dict(payload["model_state"], strict=True)
    model.eval()
    cfg["variant_model"] = variant
    cfg["classes"] = list(classes)
    return model, cfg


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

"""Build a smile model from a resolved study config, and rebuild it from a checkpoint alone.

A *model spec* is the small JSON-able dict that fixes the architecture: variant, fusion_impl, backbone sizes,
D-Marker width, dropout. ``build_model(cfg)`` derives it from the study config; checkpoints store it, so
``model_from_checkpoint(payload)`` needs nothing else.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from torch import nn

from common.registry import UnknownNameError
from common.smile.backbone import MeshSmileBackbone
from common.smile.backbone_config import BackboneConfig
from common.smile.baselines import BASELINES, BinaryModel, Head
from common.smile.deepmarkernet_target import DMN_TARGET_DIM
from common.smile.dmarker import DMARKER_DIM
from common.smile.fusions import FUSIONS, check_impl

BACKBONES = {"meshsmilenet": "the released MeshSmileNet deep branch (CurveNet encoder + spatial/temporal transformers)"}
BACKBONE_SIZES = ("paper", "demo")


class FusionNet(BinaryModel):
    """logits = Linear(LN(Fusion(h, d, frames))),  (h, frames) = backbone(clip)."""

    def __init__(self, fusion: str, backbone: BackboneConfig, dmarker_dim: int = DMARKER_DIM, dropout: float = 0.1,
                 impl: str = "paper"):
        super().__init__()
        self.backbone = MeshSmileBackbone(backbone)
        self.fusion = FUSIONS.create(fusion, dim=self.backbone.out_dim, dmarker_dim=dmarker_dim, impl=impl,
                                     dropout=dropout)
        self.head = Head(self.backbone.out_dim)

    def forward(self, clip, dmarker):
        h, frames = self.backbone(clip)
        return self.head(self.fusion(h, dmarker, frames)).squeeze(-1)


def variants() -> list[str]:
    return FUSIONS.list() + BASELINES.list()


def is_handcrafted(variant: str) -> bool:
    return variant in BASELINES and BASELINES.info(variant).get("kind") == "handcrafted"


def check_variant(variant: str) -> str:
    """``variant`` if it is a fusion or a baseline, else an error listing both and the closest name."""
    if variant in FUSIONS or variant in BASELINES:
        return variant
    close = difflib.get_close_matches(str(variant), variants(), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownNameError(f"unknown smile variant (fusion or baseline) {variant!r}.{hint} "
                           f"Fusions: {', '.join(FUSIONS.list())}. Baselines: {', '.join(BASELINES.list())}")


def backbone_config(cfg: Mapping[str, Any]) -> BackboneConfig:
    """Backbone sizes from the study config: the size preset, then explicit overrides; the bilinear family gets the
    released dim-8 spatial transformer. The architecture is the released one for every preset and fusion form."""
    name = cfg.get("backbone", "meshsmilenet")
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; accepted: {', '.join(BACKBONES)}")
    size = cfg.get("backbone_size", "paper")
    if size not in BACKBONE_SIZES:
        raise ValueError(f"unknown backbone_size {size!r}; accepted: {', '.join(BACKBONE_SIZES)}")
    bb = BackboneConfig.paper() if size == "paper" else BackboneConfig.demo()
    overrides = {"n_points": "n_points", "k": "knn_k", "dim": "model_dim", "n_tokens": "n_tokens",
                 "spatial_depth": "spatial_depth", "temporal_depth": "temporal_depth", "dropout": "dropout"}
    bb = replace(bb, **{field: cfg[key] for field, key in overrides.items() if cfg.get(key) is not None})
    variant = cfg["variant"]
    if variant in FUSIONS and FUSIONS.info(variant).get("released_backbone") == "dim8":
        bb = bb.released_dim8()  # the bilinear family's notebooks all use the dim-8 backbone (both fusion forms)
    return bb.validate()


def model_spec(cfg: Mapping[str, Any]) -> dict[str, Any]:
    variant = check_variant(cfg["variant"])
    impl = check_impl(cfg.get("fusion_impl", "paper"))
    return {"variant": variant, "fusion_impl": impl, "backbone": backbone_config(cfg).to_dict(),
            "dmarker_dim": int(cfg.get("dmarker_dim", DMN_TARGET_DIM if variant == "deepmarkernet" else DMARKER_DIM)),
            "dropout": float(cfg.get("dropout", 0.1))}


def build_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    variant = spec["variant"]
    if is_handcrafted(variant):
        raise ValueError(f"{variant!r} is a scikit-learn baseline, not a torch model")
    bb = BackboneConfig.from_dict(spec["backbone"]).validate()
    kwargs = {"backbone": bb, "dmarker_dim": spec["dmarker_dim"], "dropout": spec["dropout"], "impl": spec["fusion_impl"]}
    if variant in FUSIONS:
        return FusionNet(variant, **kwargs)
    return BASELINES.create(variant, **kwargs)


def build_model(cfg: Mapping[str, Any]) -> nn.Module:
    """The torch model of a resolved smile config (fusion or deep baseline)."""
    return build_from_spec(model_spec(cfg))


def count_parameters(model: nn.Module) -> dict[str, int]:
    return {"params_total": sum(p.numel() for p in model.parameters()),
            "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def model_from_checkpoint(payload: Mapping[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint written by :mod:`common.smile.run` (eval mode) and return (model, config)."""
    if "model_spec" not in payload:
        raise ValueError("checkpoint has no 'model_spec'; it was not written by common.smile.run")
    model = build_from_spec(payload["model_spec"])
    model.load_state_dict(payload["model_state"])
    model.eval()
    return model, dict(payload["config"])

"""The HAFEM network: a timm CNN backbone, CBAM on its last feature map, a transformer over a k×k token grid, a
linear head.

CBAM placement (``cbam_placement``): ``after_backbone`` = one CBAM on the backbone's final map (F → F''); ``stages`` =
"EfficientNet-B5, with inserted CBAM modules" (HAFEM §3): in addition, a CBAM after each of the backbone's last
``cbam_stages`` MBConv stages (B5: stages 6 and 7, 304 and 512 channels), inside the backbone's forward pass. The
paper does not say how many stages get one; 2 is ours.

Shapes (paper setting: EfficientNet-B5 at 224², k = 7, d_model = 2048):

    image (b, 3, H, W) -> backbone.forward_features -> F (b, C, h, w)
    F -> CBAM -> F'' (b, C, h, w) -> adaptive avg-pool to (k, k) -> 1×1 conv C -> d (identity when C == d)
    tokens (b, k·k, d) + learnable positions (k·k, d) -> N × TransformerEncoderLayer(d, heads, ff) -> mean over tokens
    pooled (b, d) -> LayerNorm -> dropout -> Linear(d, classes) -> logits

Pooling to a fixed k×k grid makes any input size work (B5 at 224 already gives 7×7). ``pooled`` is "the classifier's
input features": the center loss pulls it towards class centres, and SHAP attributes the logits to its dimensions.
Backbone weights: :mod:`common.fer.backbones`.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

from common.fer.backbones import NO_WEIGHTS, create_backbone


class ChannelAttention(nn.Module):
    """M_c = σ(MLP(avgpool F) + MLP(maxpool F)), shared MLP C -> C/r -> C."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = reduce(x, "b c h w -> b c 1 1", "mean")
        mx = reduce(x, "b c h w -> b c 1 1", "max")
        return torch.sigmoid(self.mlp(avg) + self.mlp(mx))


class SpatialAttention(nn.Module):
    """M_s = σ(conv7×7([mean_c F; max_c F])), as in CBAM (Woo et al. 2018).

    The HAFEM text says the spatial branch is "a unique MLP with r = 16"; a per-pixel MLP over two channels cannot
    reduce by 16, so this follows the CBAM paper it cites.
    """

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = reduce(x, "b c h w -> b 1 h w", "mean")
        mx = reduce(x, "b c h w -> b 1 h w", "max")
        return torch.sigmoid(self.conv(torch.cat([avg, mx], dim=1)))


class CBAM(nn.Module):
    """F' = M_c(F) ⊙ F, then F'' = M_s(F') ⊙ F' (channel, then spatial)."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.channel(x)
        return x * self.spatial(x)


class TokenTransformer(nn.Module):
    """tokens (b, n, d) + pos (n, d) -> depth × post-norm TransformerEncoderLayer(d, heads, ff) -> (b, n, d)."""

    def __init__(self, n_tokens: int, dim: int, depth: int, heads: int, ff_dim: int, dropout: float = 0.1):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, n_tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, ff_dim, dropout=dropout, activation="gelu", batch_first=True)
        # The nested-tensor fast path only changes speed; disabling it keeps eval and train numerics identical.
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encoder(tokens + self.pos)


CBAM_PLACEMENTS = ("after_backbone", "stages")


def stage_channels(backbone: nn.Module) -> list[int]:
    """Output channels of each stage in ``backbone.blocks`` (timm EfficientNet / MobileNet family)."""
    stages = getattr(backbone, "blocks", None)
    if not isinstance(stages, nn.Sequential) or not hasattr(backbone, "conv_stem"):
        raise ValueError(f"cbam_placement='stages' needs a timm EfficientNet-style backbone (conv_stem, blocks, "
                         f"conv_head); {type(backbone).__name__} has no such stages")
    return [[m for m in stage.modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features for stage in stages]


class HAFEM(nn.Module):
    """Backbone [with CBAM after its last stages] -> [CBAM] -> [k×k tokens -> transformer] -> mean pool -> LayerNorm
    -> Linear.

    ``use_cbam=False`` / ``depth=0`` give the ablation rungs "EfficientNet-B5" (global average pool + head) and
    "+ transformer"; ``forward(x, return_features=True)`` also returns the pooled (b, d) features.
    """

    def __init__(self, backbone: str = "efficientnet_b5", num_classes: int = 7, dim: int = 2048, depth: int = 6,
                 heads: int = 8, ff_dim: int = 4096, token_grid: int = 7, use_cbam: bool = True,
                 cbam_reduction: int = 16, dropout: float = 0.1, pretrained: str = NO_WEIGHTS,
                 cbam_placement: str = "after_backbone", cbam_stages: int = 2, **_: Any):
        super().__init__()
        if cbam_placement not in CBAM_PLACEMENTS:
            raise ValueError(f"cbam_placement must be one of {CBAM_PLACEMENTS}, got {cbam_placement!r}")
        self.backbone, self.weights_note = create_backbone(backbone, pretrained)
        channels = self.backbone.num_features
        self.cbam = CBAM(channels, cbam_reduction) if use_cbam else nn.Identity()
        self.cbam_placement = cbam_placement if use_cbam else "none"
        self.stage_cbams = nn.ModuleDict()
        if use_cbam and cbam_placement == "stages":
            widths = stage_channels(self.backbone)
            if not 1 <= cbam_stages <= len(widths):
                raise ValueError(f"cbam_stages={cbam_stages}: {backbone} has {len(widths)} stages")
            for i in range(len(widths) - cbam_stages, len(widths)):
                self.stage_cbams[str(i)] = CBAM(widths[i], cbam_reduction)
        self.token_grid = token_grid
        self.use_transformer = depth > 0
        if self.use_transformer:
            if dim % heads:
                raise ValueError(f"transformer width {dim} is not divisible by {heads} heads")
            self.project = nn.Identity() if channels == dim else nn.Conv2d(channels, dim, 1)
            self.transformer = TokenTransformer(token_grid * token_grid, dim, depth, heads, ff_dim, dropout)
            self.feature_dim = dim
        else:
            self.feature_dim = channels
        self.norm = nn.LayerNorm(self.feature_dim)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def backbone_map(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's final feature map, with a CBAM after each chosen stage (``stages`` placement)."""
        if not len(self.stage_cbams):
            return self.backbone.forward_features(x)
        bb = self.backbone
        x = bb.bn1(bb.conv_stem(x))
        for i, stage in enumerate(bb.blocks):
            x = stage(x)
            if str(i) in self.stage_cbams:
                x = self.stage_cbams[str(i)](x)
        return bb.bn2(bb.conv_head(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(b, 3, H, W) -> pooled classifier-input features (b, d)."""
        fmap = self.cbam(self.backbone_map(x))
        if not self.use_transformer:
            return self.norm(reduce(fmap, "b c h w -> b c", "mean"))
        if fmap.shape[-2:] != (self.token_grid, self.token_grid):  # skipped when sizes agree (and in ONNX graphs)
            fmap = F.adaptive_avg_pool2d(fmap, self.token_grid)
        grid = self.project(fmap)
        tokens = self.transformer(rearrange(grid, "b d h w -> b (h w) d"))
        return self.norm(reduce(tokens, "b n d -> b d", "mean"))

    def forward(self, x: torch.Tensor, return_features: bool = False):
        feats = self.features(x)
        logits = self.head(self.drop(feats))
        return (logits, feats) if return_features else logits

    def target_layer(self) -> nn.Module:
        """The layer Grad-CAM looks at: the backbone's last convolutional block (the paper's "last bottleneck")."""
        return self.backbone.conv_head if hasattr(self.backbone, "conv_head") else list(self.backbone.children())[-1]

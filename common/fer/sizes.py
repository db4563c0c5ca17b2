"""HAFEM's parameter count in closed form, and which transformer sizes give the paper's 31.2 M.

HAFEM §3 states EfficientNet-B5 (30.4 M with its ImageNet classifier), 6 transformer layers with d_model 2048, 8 heads
and d_ff 4096 on 49 tokens, and says the transformer "bring[s] the parameter overhead down to 31.2M". Those stated
sizes give 230.4 M (measured by building the model, :func:`common.fer.model.count_parameters`): the six 2048-wide
layers alone hold 201.6 M. :func:`hafem_parameters` is the same count in closed form (checked against the built
model in the tests), so :func:`sizes_near` can search the transformer sizes that would give 31.2 M around the
28.34 M B5 feature extractor.

Per post-norm encoder layer (PyTorch ``TransformerEncoderLayer``): attention 4d² + 4d, feed-forward 2·d·ff + d + ff,
two LayerNorms 4d. CBAM on C channels with reduction r: shared MLP 2·C·(C/r) + C/r + C, spatial 7×7 conv 2·49 + 1.
"""
from __future__ import annotations

PAPER_CLAIM = 31.2e6
B5_FEATURES = 28_340_784  # timm efficientnet_b5 without classifier (measured: count_parameters)
B5_CHANNELS = 2048
PAPER_SIZES = {"dim": 2048, "depth": 6, "heads": 8, "ff_dim": 4096, "token_grid": 7}


def encoder_layer(d: int, ff: int) -> int:
    return 4 * d * d + 4 * d + 2 * d * ff + d + ff + 4 * d


def cbam(channels: int, reduction: int = 16, kernel: int = 7) -> int:
    hidden = max(channels // reduction, 1)
    return 2 * channels * hidden + hidden + channels + 2 * kernel * kernel + 1


def hafem_parameters(backbone: int = B5_FEATURES, channels: int = B5_CHANNELS, dim: int = 2048, depth: int = 6,
                     ff_dim: int = 4096, token_grid: int = 7, classes: int = 7, stage_cbam_channels=()) -> int:
    """Parameters of :class:`common.fer.hafem.HAFEM` (with CBAM; ``stage_cbam_channels`` for the in-stage CBAMs)."""
    total = backbone + cbam(channels) + sum(cbam(c) for c in stage_cbam_channels)
    width = channels
    if depth > 0:
        width = dim
        projection = 0 if channels == dim else channels * dim + dim
        total += projection + token_grid ** 2 * dim + depth * encoder_layer(dim, ff_dim)
    return total + 2 * width + width * classes + classes


def sizes_near(target: float = PAPER_CLAIM, heads: int = 8, depths=(1, 2, 4, 6)) -> list[dict[str, int | float]]:
    """Per depth (d_ff = 2·d as in the paper, d a multiple of ``heads``), the d_model whose total is closest to
    ``target``. (At d_model 2048 no depth comes close: 0 layers give 28.9 M, one layer adds 33.6 M.)"""
    out = []
    for depth in depths:
        best = min(range(heads, 2049, heads),
                   key=lambda d: abs(hafem_parameters(dim=d, depth=depth, ff_dim=2 * d) - target))
        out.append({"depth": depth, "dim": best, "ff_dim": 2 * best,
                    "params": hafem_parameters(dim=best, depth=depth, ff_dim=2 * best)})
    return out

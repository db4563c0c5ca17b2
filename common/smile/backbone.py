"""The MeshSmileNet deep branch exactly as released (HadaSmileNet / MeshSmileNet code; described in words in the
papers): a per-frame CurveNet point encoder -> 32 tokens -> alternating space/time transformer -> temporal
transformer -> h in R^dim. The encoder is a CurveNet (Xiang et al., "Walk in the Cloud: Learning Curves for Point
Clouds Shape Analysis", ICCV 2021, arXiv:2105.01288) run on each frame's landmarks.

Modules: :mod:`common.smile.backbone_config` holds the sizes (:class:`BackboneConfig`), this one the assembled network
(:class:`MeshSmileBackbone`);
:mod:`common.smile.encoder` the point encoder (``graph``: k-NN table and coordinate moments, ``layers``: channels-last
BN / LReLU, ``lpfa``: the two LPFAs, ``curves``: curve grouping and aggregation, ``cic``: CIC blocks and the encoder,
``chunks``: work split over frames and threads); :mod:`common.smile.transformers` the attention blocks. Every formula
is in those docstrings;
:mod:`common.smile.release_weights` maps the release's state-dict names onto these modules, and the tests compare
every intermediate with the release's own output.

Release semantics kept on purpose (see each class): k-NN *includes the point itself* (self + k-1 nearest feed every
LPFA, the k nearest non-self points feed the walk); LPFA inside a block applies LReLU to (f_j - f_i + pos) before its
MLP and averages; curves in every CIC block, walked with dynamic momentum (with the release's (2, n) -> (n, 2)
reinterpretation), crossover suppression and a straight-through hard argmax without Gumbel noise; the positional
encoding is added inside every attention call to the pre-LN input (q/k/v see LN(x) + (LN(x) + pe)); dropout only where
the release has it (encoder output, PE sum, attention output, both feed-forward sites; never on attention weights).

Computed differently, same function (see benchmarks/bench_backbone.py for the speed against a release-style
reference): channels-last tensors so every 1x1 convolution is one matmul; one k-NN graph per forward shared by all
blocks (the coordinates never change); linear maps of the 9-d point descriptor act per point
(W [p_i, p_j, p_j - p_i] = (W1 - W3) p_i + (W2 + W3) p_j) and their batch-norm statistics come from 3x3 coordinate
moments; the initial LPFA's max commutes with the monotone LReLU; the in-block LPFA is one autograd function that
works a few frames at a time and keeps no (frames, points, k, channels) tensor for backward (it recomputes it); its
training batch statistics come from sum z and z^T z (u = W z), the batch norm is folded into the matmul, and the mean
output is rebuilt from the two per-point sums backward needs anyway. Loops over chunks of frames (fused LPFA, k-NN,
the initial LPFA's max) run one single-threaded part per thread, without a thread barrier per small op. The walk
scores candidates from one per-point logit w_a . F_j (gathered as scalars), gathers neighbour features only without
gradient (crossover suppression) and takes its straight-through pick through
:class:`common.smile.encoder.curves.PickedNeighbour`, whose backward needs no (curves, k, c) gradient; its one- and
two-channel batch norms take their training statistics from one ``var_mean``.

Shapes: b batch, t frames, f = b*t point clouds, n points, k neighbours, c channels, s curves, l curve length,
m tokens, d model width.
"""
from __future__ import annotations

import torch
from einops import rearrange, reduce
from torch import nn

from common.smile.backbone_config import N_LANDMARKS, BackboneConfig
from common.smile.encoder.cic import PointEncoder
from common.smile.transformers import Block, SpaceTimeTransformer


class MeshSmileBackbone(nn.Module):
    """(b, t, 478, 3) landmarks -> h (b, dim) and per-frame features (b, t, dim).

    Point encoder per frame; tokens = BN(R P) with R (m x n) a learned mix of point identities (Conv1d over the
    point axis); spatial transformer; mean over tokens (the dim-8 variant instead flattens the m x 8 tokens); temporal
    transformer; h = mean over time. The dim-8 variant maps each frame's tokens, flattened channel-major
    (index c*m + token), by one Linear to m x spatial_dim.
    """

    def __init__(self, cfg: BackboneConfig | None = None):
        super().__init__()
        self.cfg = cfg = (cfg or BackboneConfig.paper()).validate()
        subset = torch.linspace(0, N_LANDMARKS - 1, cfg.n_points, dtype=torch.float64).round().long()
        self.register_buffer("point_subset", subset, persistent=False)
        self.encoder = PointEncoder(cfg)
        self.reduce = nn.Linear(cfg.n_points, cfg.n_tokens, bias=False)
        self.reduce_bn = nn.BatchNorm1d(cfg.n_tokens)
        self.narrow = cfg.spatial_dim != cfg.point_width
        if self.narrow:
            self.to_spatial = nn.Linear(cfg.n_tokens * cfg.point_width, cfg.n_tokens * cfg.spatial_dim)
        heads, dim_head = cfg.spatial_heads_dim_head or (cfg.heads, cfg.dim_head)
        self.spatial = SpaceTimeTransformer(cfg.spatial_dim, cfg.spatial_depth, heads, dim_head,
                                            cfg.spatial_mlp_dim or cfg.mlp_dim, cfg.dropout)
        frame_width = cfg.n_tokens * cfg.spatial_dim if self.narrow else cfg.spatial_dim
        self.to_temporal = nn.Identity() if frame_width == cfg.dim else nn.Linear(frame_width, cfg.dim)
        self.temporal = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.dim_head, cfg.mlp_dim, cfg.dropout)
                                      for _ in range(cfg.temporal_depth))
        self.out_dim = cfg.dim

    def tokens(self, clip: torch.Tensor, record: dict | None = None) -> torch.Tensor:
        """(b, t, 478, 3) -> the point-reduction output (b*t, m, point_width)."""
        if clip.ndim != 4 or clip.shape[-2:] != (N_LANDMARKS, 3):
            raise ValueError(f"backbone expects (batch, frames, {N_LANDMARKS}, 3), got {tuple(clip.shape)}")
        xyz = rearrange(clip.index_select(2, self.point_subset), "b t n c -> (b t) n c")
        points = self.encoder(xyz, record=record)                      # f n c
        return self.reduce_bn(torch.matmul(self.reduce.weight, points))  # = Linear over the point axis, no transpose

    def from_tokens(self, tokens: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Point-reduction output (b*t, m, c) -> (h, per-frame features)."""
        if self.narrow:
            tokens = rearrange(self.to_spatial(rearrange(tokens, "f m c -> f (c m)")), "f (m e) -> f m e",
                               m=self.cfg.n_tokens)
        x = self.spatial(rearrange(tokens, "(b t) m e -> b t m e", b=b))
        frames = rearrange(x, "b t m e -> b t (m e)") if self.narrow else reduce(x, "b t m e -> b t e", "mean")
        frames = self.to_temporal(frames)
        for layer in self.temporal:
            frames = layer(frames)
        return frames.mean(dim=1), frames

    def forward(self, clip: torch.Tensor, record: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokens(clip, record)
        if record is not None:
            record["downsample"] = tokens
        return self.from_tokens(tokens, clip.shape[0])

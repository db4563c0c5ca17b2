"""The MeshSmileNet deep branch exactly as released (HadaSmileNet / MeshSmileNet code; described in words in the
papers): a per-frame CurveNet point encoder -> 32 tokens -> alternating space/time transformer -> temporal
transformer -> h in R^dim. The encoder is a CurveNet (Xiang et al., "Walk in the Cloud: Learning Curves for Point
Clouds Shape Analysis", ICCV 2021, arXiv:2105.01288) run on each frame's landmarks.

Modules: this one holds the sizes (:class:`BackboneConfig`) and the assembled network (:class:`MeshSmileBackbone`);
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

import dataclasses
from dataclasses import asdict, dataclass, fields

import torch
from einops import rearrange, reduce
from torch import nn

from common.smile.encoder.cic import PointEncoder
from common.smile.transformers import Block, SpaceTimeTransformer

N_LANDMARKS = 478


@dataclass(frozen=True)
class BackboneConfig:
    """Every size of the deep branch. ``paper()`` = the released sizes; ``demo()`` = the same structure, CPU seconds.

    ``momentum_per_curve`` (off = release): the release reads curve i's momentum weights from the (2, curves) softmax
    buffer reinterpreted as (curves, 2) without a transpose, so curve i < s/2 is steered by curves 2i and 2i+1; on
    fixes that by pairing each curve with its own two weights (what the code evidently intends).
    """

    n_points: int = N_LANDMARKS          # < 478: a fixed, evenly spaced subset of the landmarks (demo only)
    k: int = 20                          # LPFA neighbourhood = self + k-1 nearest; the walk's candidates = k non-self
    lpfa_width: int = 32                 # initial LPFA(9 -> lpfa_width)
    cic: tuple = ((32, 32, 2), (32, 64, 4), (64, 128, 2), (128, 256, 4))  # (in, out, bottleneck) per CIC block
    n_curves: int = 100                  # curves per block (every block has curves)
    curve_length: int = 5
    point_width: int = 256               # conv0: Conv1d(last CIC -> point_width) + BN + ReLU
    n_tokens: int = 32                   # point reduction n_points -> n_tokens
    dim: int = 256                       # temporal transformer width (= size of h)
    spatial_dim: int = 256               # 8 in the released bilinear notebooks (the "dim-8" backbone)
    spatial_depth: int = 6
    temporal_depth: int = 3
    heads: int = 4
    dim_head: int = 64
    spatial_heads_dim_head: tuple = ()   # (heads, dim_head) of the spatial transformer when it is narrow
    mlp_dim: int = 512
    spatial_mlp_dim: int = 0             # 0 = mlp_dim
    dropout: float = 0.1
    momentum_per_curve: bool = False     # off = release (see the class docstring)

    @classmethod
    def paper(cls, **overrides) -> BackboneConfig:
        return cls(**overrides)

    @classmethod
    def demo(cls, **overrides) -> BackboneConfig:
        """The released structure (initial LPFA, four CIC blocks with curves, conv0, reduction, both transformers)
        at CPU-seconds widths: 32 landmarks, k = 6, 6 curves of 3 steps."""
        base = {"n_points": 32, "k": 6, "lpfa_width": 8, "cic": ((8, 8, 2), (8, 16, 4), (16, 24, 2), (24, 24, 2)),
                "n_curves": 6, "curve_length": 3, "point_width": 24, "n_tokens": 4, "dim": 24, "spatial_dim": 24,
                "spatial_depth": 2, "temporal_depth": 1, "heads": 2, "dim_head": 12, "mlp_dim": 48, "dropout": 0.1}
        base.update(overrides)
        return cls(**base)

    def released_dim8(self) -> BackboneConfig:
        """The narrow variant of the released bilinear-family notebooks: tokens flattened channel-major ->
        Linear -> n_tokens x 8 -> spatial transformer at width 8 (4 heads x 2, MLP 32)."""
        return dataclasses.replace(self, spatial_dim=8, spatial_heads_dim_head=(4, 2), spatial_mlp_dim=32)

    def to_dict(self) -> dict:
        return {k: (list(map(list, v)) if k == "cic" else list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> BackboneConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown backbone config keys {sorted(unknown)}; accepted: {sorted(known)}")
        d = dict(d)
        if "cic" in d:
            d["cic"] = tuple(tuple(x) for x in d["cic"])
        if "spatial_heads_dim_head" in d:
            d["spatial_heads_dim_head"] = tuple(d["spatial_heads_dim_head"])
        return cls(**d)

    def validate(self) -> BackboneConfig:
        if not 2 <= self.n_points <= N_LANDMARKS:
            raise ValueError(f"backbone n_points={self.n_points} must lie in [2, {N_LANDMARKS}]")
        if not 1 <= self.k < self.n_points:
            raise ValueError(f"backbone k={self.k} must lie in [1, n_points-1={self.n_points - 1}]")
        if not self.cic:
            raise ValueError("backbone needs at least one CIC block")
        if any(len(c) != 3 for c in self.cic):
            raise ValueError(f"each CIC block is (in, out, bottleneck), got {self.cic}")
        if self.cic[0][0] != self.lpfa_width:
            raise ValueError(f"first CIC input width {self.cic[0][0]} != lpfa_width {self.lpfa_width}")
        for a, b in zip(self.cic, self.cic[1:]):
            if a[1] != b[0]:
                raise ValueError(f"CIC widths do not chain: {a} -> {b}")
        if any(c[0] // c[2] < 2 for c in self.cic):
            raise ValueError(f"a CIC bottleneck leaves fewer than 2 channels: {self.cic}")
        if not 1 <= self.n_curves <= self.n_points:
            raise ValueError(f"n_curves={self.n_curves} must lie in [1, n_points={self.n_points}]")
        if self.curve_length < 1:
            raise ValueError(f"curve_length={self.curve_length} must be >= 1")
        return self


def replace_config(cfg: BackboneConfig, **changes) -> BackboneConfig:
    return dataclasses.replace(cfg, **changes)



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

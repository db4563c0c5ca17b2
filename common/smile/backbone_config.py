"""The sizes of the MeshSmileNet deep branch (:class:`BackboneConfig`): the released sizes (``paper()``), the demo's
CPU-seconds sizes (``demo()``), the narrow "dim-8" variant of the released bilinear notebooks, and their checks.
The network built from them is :class:`common.smile.backbone.MeshSmileBackbone`."""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields

from common.face.topology import N_POINTS as N_LANDMARKS



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

"""CurveNet's curve-intervention (CIC) block and the released per-frame point encoder that stacks them (Xiang et al.,
ICCV 2021, arXiv:2105.01288): initial LPFA -> CIC blocks (curves in every block) -> conv0."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from common.smile.encoder.curves import CurveAggregation, CurveGrouping
from common.smile.encoder.graph import Graph, knn
from common.smile.encoder.layers import PointBN, leaky
from common.smile.encoder.lpfa import LPFA, InitialLPFA

if TYPE_CHECKING:
    from common.smile.backbone_config import BackboneConfig


class CIC(nn.Module):
    """Curve-intervention block: a = LReLU(BN(W_1 x)); curves on a; a = CurveAggregation(a, curves); a = LPFA(a);
    y = LReLU(BN(W_2 a) + shortcut(x)), shortcut = identity or BN(W_s x)."""

    def __init__(self, c_in: int, c_out: int, bottleneck: int, n_curves: int, length: int,
                 momentum_per_curve: bool = False):
        super().__init__()
        planes = c_in // bottleneck
        self.reduce = nn.Sequential(nn.Linear(c_in, planes, bias=False), PointBN(planes))
        self.grouping = CurveGrouping(planes, n_curves, length, momentum_per_curve)
        self.aggregation = CurveAggregation(planes)
        self.lpfa = LPFA(planes)
        self.expand = nn.Sequential(nn.Linear(planes, c_out, bias=False), PointBN(c_out))
        self.shortcut = nn.Identity() if c_in == c_out else nn.Sequential(nn.Linear(c_in, c_out, bias=False),
                                                                          PointBN(c_out))

    def forward(self, x: torch.Tensor, xyz: torch.Tensor, graph: Graph, record: dict | None = None) -> torch.Tensor:
        a = leaky(self.reduce(x))
        curves, start, walk = self.grouping(a, graph)
        agg = self.aggregation(a, curves)
        lp = self.lpfa(agg, xyz, graph)
        out = leaky(self.expand(lp) + self.shortcut(x))
        if record is not None:
            record.update(conv1=a, curves=curves, start_idx=start, walk_idx=walk, curveagg=agg, lpfa=lp, out=out)
        return out


class PointEncoder(nn.Module):
    """Released CurveNet encoder per frame: (f, n, 3) -> (f, n, point_width); conv0 = ReLU(BN(W x)), then the
    release's dropout. Frames never mix (except through train-mode batch statistics)."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.k = cfg.k
        self.lpfa = InitialLPFA(cfg.lpfa_width)
        self.blocks = nn.ModuleList(CIC(i, o, b, cfg.n_curves, cfg.curve_length, cfg.momentum_per_curve)
                                    for i, o, b in cfg.cic)
        self.head = nn.Sequential(nn.Linear(cfg.cic[-1][1], cfg.point_width, bias=False), PointBN(cfg.point_width),
                                  nn.ReLU(inplace=True), nn.Dropout(cfg.dropout))

    def forward(self, xyz: torch.Tensor, knn_idx: torch.Tensor | None = None,
                record: dict | None = None) -> torch.Tensor:
        """``knn_idx`` (f, n, k+1) replaces the k-NN table (tests); ``record`` receives every intermediate."""
        graph = Graph(knn(xyz.detach(), self.k) if knn_idx is None else knn_idx)
        x = self.lpfa(xyz, graph)
        if record is not None:
            record.update(knn_idx=graph.full, lpfa0=x)
        for i, block in enumerate(self.blocks):
            x = block(x, xyz, graph, None if record is None else record.setdefault(f"cic{i}", {}))
        x = self.head[2](self.head[1](self.head[0](x)))
        if record is not None:
            record["conv0"] = x
        return self.head[3](x)

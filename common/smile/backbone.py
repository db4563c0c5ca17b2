"""MeshSmileNet deep branch (smile-method.md §3): per-frame CurveNet point encoder -> 32 tokens -> spatial/temporal
transformers -> h in R^dim.

Written from the specification. Layout choices made for CPU speed (same architecture, same parameter count as a
naive CurveNet port; see benchmarks/bench_backbone.py):
- points are kept channels-last, ``(frames, points, channels)``, so every 1x1 convolution is one matmul;
- the k-NN graph of a frame is computed once and reused by every block (all blocks see the same 478 points);
- in LPFA the first linear map is applied per point *before* gathering neighbours (W(f_j - f_i) = Wf_j - Wf_i), so the
  large (frames, points, k, C) tensors are only gathered, normalised and activated, never multiplied.

Shapes: b batch, t frames, n points, k neighbours, c channels, m tokens, d model width.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

N_LANDMARKS = 478


@dataclass(frozen=True)
class BackboneConfig:
    """Every size of the deep branch. ``paper()`` = published sizes; ``demo()`` = a CPU-seconds configuration."""

    n_points: int = N_LANDMARKS          # < 478: a fixed, evenly spaced subset of the landmarks (demo only)
    k: int = 20                          # neighbours per point
    lpfa_width: int = 32                 # LPFA(9 -> lpfa_width)
    cic: tuple = ((32, 32, 2, True), (32, 64, 4, True), (64, 128, 2, False), (128, 256, 4, False))  # in, out, bneck, curves
    n_curves: int = 100
    curve_length: int = 5
    point_width: int = 256               # Conv1d(last CIC -> point_width) + BN + ReLU
    n_tokens: int = 32                   # point reduction 478 -> n_tokens
    dim: int = 256                       # transformer width (= output h size)
    spatial_dim: int = 256               # 8 in the released bilinear notebooks (flattened tokens -> Linear -> m x 8)
    spatial_depth: int = 6
    temporal_depth: int = 3
    heads: int = 4
    dim_head: int = 64
    spatial_heads_dim_head: tuple = ()   # (heads, dim_head) of the spatial transformer when spatial_dim != dim
    mlp_dim: int = 512
    spatial_mlp_dim: int = 0             # 0 = mlp_dim
    dropout: float = 0.1
    pe_released: bool = False            # released code: x += dropout(x + pe), i.e. 2x + pe before every attention

    @classmethod
    def paper(cls, **overrides) -> BackboneConfig:
        return cls(**overrides)

    @classmethod
    def demo(cls, **overrides) -> BackboneConfig:
        base = {"n_points": 32, "k": 6, "lpfa_width": 8, "cic": ((8, 16, 2, True),), "n_curves": 6,
                    "curve_length": 3, "point_width": 24, "n_tokens": 4, "dim": 24, "spatial_dim": 24, "spatial_depth": 2,
                    "temporal_depth": 1, "heads": 2, "dim_head": 12, "mlp_dim": 48, "dropout": 0.1}
        base.update(overrides)
        return cls(**base)

    def released_dim8(self) -> BackboneConfig:
        """The narrow variant of the released bilinear / factorized-bilinear notebooks (spec §3.6)."""
        return replace_config(self, spatial_dim=8, spatial_heads_dim_head=(4, 2), spatial_mlp_dim=32)

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
        if self.cic and self.cic[0][0] != self.lpfa_width:
            raise ValueError(f"first CIC input width {self.cic[0][0]} != lpfa_width {self.lpfa_width}")
        for a, b in zip(self.cic, self.cic[1:]):
            if a[1] != b[0]:
                raise ValueError(f"CIC widths do not chain: {a} -> {b}")
        if any(c[0] // c[2] < 1 for c in self.cic):
            raise ValueError(f"a CIC bottleneck leaves no channels: {self.cic}")
        if self.n_curves > self.n_points:
            raise ValueError(f"n_curves={self.n_curves} > n_points={self.n_points}")
        return self


def replace_config(cfg: BackboneConfig, **changes) -> BackboneConfig:
    import dataclasses

    return dataclasses.replace(cfg, **changes)


# ----------------------------------------------------------------------------------------------------------- utils

class PointBN(nn.BatchNorm1d):
    """BatchNorm over the last (channel) axis of a channels-last tensor of any rank."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


def knn(xyz: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (f, n, k+1) of each point's k nearest neighbours, itself first. ||a-b||^2 = |a|^2 - 2ab + |b|^2."""
    sq = (xyz * xyz).sum(-1)
    dist = sq.unsqueeze(-1) - 2 * xyz @ xyz.transpose(1, 2) + sq.unsqueeze(-2)
    dist.diagonal(dim1=1, dim2=2).fill_(-1.0)  # self first even with duplicated points
    return dist.topk(k + 1, dim=-1, largest=False).indices


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, size: int) -> torch.Tensor:
    with warnings.catch_warnings():  # "CSR support is in beta": the ops used here (CSR @ dense) are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, (size, size), check_invariants=False)


class Graph:
    """The k-NN graph of a batch of frames, built once and shared by every block.

    ``idx`` (f, n, k) neighbours without self; ``flat`` the same as rows of a (f*n, c) matrix; ``adj`` the sparse
    (CSR) row-normalised adjacency, so a mean over neighbours is one sparse matmul; ``deg`` how often each point is
    somebody's neighbour.
    """

    def __init__(self, idx_with_self: torch.Tensor):
        self.with_self = idx_with_self
        self.idx = idx_with_self[..., 1:]
        f, n, k = self.idx.shape
        self.shape = (f, n, k)
        self.flat = (self.idx + (torch.arange(f, device=self.idx.device) * n).view(f, 1, 1)).reshape(-1)
        self.adj = _csr(torch.arange(0, f * n * k + 1, k), self.flat, torch.full((f * n * k,), 1.0 / k), f * n)
        self.deg = torch.bincount(self.flat, minlength=f * n).to(torch.float32)
        self._adj_t = None

    @property
    def adj_t(self) -> torch.Tensor:
        """Transposed adjacency (for the backward pass), built on first use."""
        if self._adj_t is None:
            f, n, k = self.shape
            order = torch.argsort(self.flat, stable=True)
            rows = torch.arange(f * n).repeat_interleave(k)[order]
            crow = torch.zeros(f * n + 1, dtype=torch.int64)
            crow[1:] = torch.cumsum(self.deg.to(torch.int64), 0)
            self._adj_t = _csr(crow, rows, torch.full((f * n * k,), 1.0 / k), f * n)
        return self._adj_t


def gather(x: torch.Tensor, graph: Graph | torch.Tensor) -> torch.Tensor:
    """x (f, n, c) -> (f, n, k, c) neighbour features."""
    f, n, c = x.shape
    if isinstance(graph, Graph):
        flat, shape = graph.flat, graph.shape
    else:
        flat = (graph + (torch.arange(f, device=x.device) * n).view(f, 1, 1)).reshape(-1)
        shape = graph.shape
    return x.reshape(f * n, c).index_select(0, flat).view(*shape, c)


class _NeighbourMean(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, graph):
        ctx.graph, ctx.dtype = graph, x.dtype
        return _sparse_mm(graph.adj, x)

    @staticmethod
    def backward(ctx, grad):
        return _sparse_mm(ctx.graph.adj_t, grad).to(ctx.dtype), None


def _sparse_mm(adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """CSR @ dense in float32: the sparse kernels have no bfloat16 version, so autocast is switched off here."""
    with torch.autocast("cpu", enabled=False):
        return (adj @ x.float()).to(x.dtype)


def neighbour_mean(x: torch.Tensor, graph: Graph) -> torch.Tensor:
    """mean_{j in N(i)} x_j as a sparse matmul: (f, n, c) -> (f, n, c), no (f, n, k, c) tensor."""
    f, n, c = x.shape
    flat = x.reshape(f * n, c).contiguous()
    out = _NeighbourMean.apply(flat, graph) if x.requires_grad else _sparse_mm(graph.adj, flat)
    return out.view(f, n, c)


def pair_moments(h: torch.Tensor, g: torch.Tensor, g_bar: torch.Tensor, graph: Graph):
    """Mean and (biased) variance per channel of z_ij = h_i + g_j over all (frame, i, j in N(i)), from points only.

    E[z] = <h> + sum_j deg_j g_j / M;   E[z^2] = <h^2> + 2 <h . g_bar> + sum_j deg_j g_j^2 / M,   M = f n k.
    """
    f, n, k = graph.shape
    c = h.shape[-1]
    h, g, g_bar = (t.reshape(-1, c).double() for t in (h, g, g_bar))
    deg = graph.deg.double()
    m = f * n * k
    mean = h.mean(0) + deg @ g / m
    second = (h * h).mean(0) + 2 * (h * g_bar).mean(0) + deg @ (g * g) / m
    return mean.float(), (second - mean * mean).clamp_min(0).float(), m


def point_triplets(xyz: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """p_ij = [x_i, x_j, x_j - x_i] (f, n, k, 9): the relative-position descriptor of LPFA (reference form)."""
    xj = gather(xyz, idx)
    xi = xyz.unsqueeze(2).expand_as(xj)
    return torch.cat([xi, xj, xj - xi], dim=-1)


def split_triplet_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """W p_ij = W1 x_i + W2 x_j + W3 (x_j - x_i) = (W1 - W3) x_i + (W2 + W3) x_j: the map acts per point."""
    w1, w2, w3 = weight.split(3, dim=1)
    return w1 - w3, w2 + w3


def bn_affine(bn: nn.BatchNorm1d, mean: torch.Tensor, var: torch.Tensor, count: int):
    """BN(z) = s * z + t with nn.BatchNorm semantics (batch stats + running update in training, running in eval)."""
    if bn.training:
        with torch.no_grad():
            bn.running_mean.lerp_(mean.detach(), bn.momentum)
            bn.running_var.lerp_(var.detach() * count / max(count - 1, 1), bn.momentum)
            bn.num_batches_tracked += 1
    else:
        mean, var = bn.running_mean, bn.running_var
    s = bn.weight * torch.rsqrt(var + bn.eps)
    return s, bn.bias - mean * s


def leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2, inplace=True)


class NeighbourLeakyMean(torch.autograd.Function):
    """y_i = mean_j LReLU(g_j + h_i) over the graph, storing only the sign mask (1 byte per element) for backward.

    dL/dh_i = sum_j slope_ij dL/dy_i / k;  dL/dg_j = sum_{i: j in N(i)} slope_ij dL/dy_i / k.
    """

    @staticmethod
    def forward(ctx, g, h, flat, shape, slope: float = 0.2):
        f, n, k = shape
        c = g.shape[-1]
        z = g.reshape(f * n, c).index_select(0, flat).view(f, n, k, c)
        z.add_(h.unsqueeze(2))
        positive = z > 0
        F.leaky_relu(z, slope, inplace=True)
        ctx.save_for_backward(positive, flat)
        ctx.shape, ctx.slope = shape, slope
        return z.mean(dim=2)

    @staticmethod
    def backward(ctx, grad_y):
        positive, flat = ctx.saved_tensors
        f, n, k = ctx.shape
        c = grad_y.shape[-1]
        dz = positive.to(grad_y.dtype).mul_(1.0 - ctx.slope).add_(ctx.slope)
        dz.mul_((grad_y / k).unsqueeze(2))
        grad_h = dz.sum(dim=2)
        grad_g = torch.zeros(f * n, c, dtype=grad_y.dtype).index_add_(0, flat, dz.view(-1, c))
        return grad_g.view(f, n, c), grad_h, None, None, None


def neighbour_max(x: torch.Tensor, graph: Graph) -> torch.Tensor:
    """Per channel max_j x_j over each point's neighbours; the gradient flows to the arg-max neighbour only (as with
    ``amax``), and nothing of size (f, n, k, c) is kept for backward."""
    f, n, k = graph.shape
    c = x.shape[-1]
    with torch.no_grad():
        pos = gather(x, graph).max(dim=2).indices                       # f n c, position among the k
        rows = torch.gather(graph.flat.view(f, n, k), 2, pos)           # f n c, row in the (f*n, c) matrix
    return x.reshape(f * n, c).gather(0, rows.view(f * n, c)).view(f, n, c)


# ------------------------------------------------------------------------------------------------ point encoder

class LPFA(nn.Module):
    """Local point-feature aggregation over the k-NN graph.

    initial:  y_i = max_j  LReLU(BN(W p_ij))                         p_ij = [x_i, x_j, x_j - x_i]
    else:     y_i = mean_j LReLU(BN(W (f_j - f_i + BN_p(W_p p_ij))))

    Computed exactly but cheaply: every pre-activation has the form z_ij = h_i + g_j (W p_ij = A x_i + B x_j, and
    W BN_p(e) = W diag(s) e + W t), so linear maps act on points, batch-norm statistics come from point moments
    (:func:`pair_moments`), and the (f, n, k, c) tensor is only gathered, activated and averaged. In the initial block
    max_j commutes with the monotone LReLU: max_j LReLU(s (a_i + b_j) + t) = LReLU(s a_i + t + max_j s b_j).
    """

    def __init__(self, c_in: int, c_out: int, initial: bool = False):
        super().__init__()
        self.initial = initial
        self.pos = None if initial else nn.Sequential(nn.Linear(9, c_in, bias=False), PointBN(c_in))
        self.lin = nn.Linear(9 if initial else c_in, c_out, bias=False)
        self.bn = PointBN(c_out)

    def forward(self, feats: torch.Tensor | None, xyz: torch.Tensor, graph: Graph) -> torch.Tensor:
        x_bar = neighbour_mean(xyz, graph)
        a, b = split_triplet_weight((self.lin if self.initial else self.pos[0]).weight)
        ax, bx = xyz @ a.t(), xyz @ b.t()
        bn = self.bn if self.initial else self.pos[1]
        s, t = bn_affine(bn, *pair_moments(ax, bx, x_bar @ b.t(), graph))
        if self.initial:
            return leaky(ax * s + t + neighbour_max(bx * s, graph))   # max_j LReLU(s z_ij + t), z_ij = ax_i + bx_j
        w = self.lin.weight
        ws = w * s                                                     # W diag(s_p)
        wf = self.lin(feats)
        per_j = wf + bx @ ws.t()                                       # z_ij = per_i + per_j
        per_i = ax @ ws.t() - wf + w @ t
        s, t = bn_affine(self.bn, *pair_moments(per_i, per_j, neighbour_mean(per_j, graph), graph))
        return NeighbourLeakyMean.apply((per_j * s).contiguous(), (per_i * s + t).contiguous(), graph.flat,
                                        graph.shape)


class CurveGrouping(nn.Module):
    """Start at the n highest-scoring points, walk ``length`` steps along the k-NN graph.

    Each step picks the next neighbour by a (hard, straight-through) Gumbel-softmax over
    s_j = w . [f_cur ; f_j - f_cur]; in eval mode the argmax. Returns curve features (f, curves, length, c).
    """

    def __init__(self, c: int, n_curves: int, length: int):
        super().__init__()
        self.n_curves, self.length = n_curves, length
        self.start_score = nn.Linear(c, 1)
        self.step_score = nn.Linear(2 * c, 1)

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        f, _n, _c = x.shape
        att = torch.sigmoid(self.start_score(x))                      # f n 1; multiplies x so the score learns
        x = x * att
        cur = att.squeeze(-1).topk(self.n_curves, dim=-1).indices     # f curves
        frame = torch.arange(f, device=x.device).view(f, 1)
        cur_feat = x[frame, cur]                                       # f curves c
        steps = []
        for _ in range(self.length):
            nb = idx[frame, cur]                                       # f curves k
            nb_feat = x[frame.unsqueeze(-1), nb]                       # f curves k c
            ctx = cur_feat.unsqueeze(2).expand_as(nb_feat)
            logits = self.step_score(torch.cat([ctx, nb_feat - ctx], dim=-1)).squeeze(-1)
            pick = F.gumbel_softmax(logits, tau=1.0, hard=True) if self.training else \
                F.one_hot(logits.argmax(-1), logits.shape[-1]).to(x.dtype)
            cur_feat = torch.einsum("fck,fckd->fcd", pick, nb_feat)
            cur = nb.gather(-1, pick.argmax(-1, keepdim=True)).squeeze(-1)
            steps.append(cur_feat)
        return torch.stack(steps, dim=2)


class CurveAggregation(nn.Module):
    """Points attend to curve summaries: inter (max over each curve's length) and intra (max over curves).

    a = softmax(Q x . K c), y = LReLU(x + BN(W [a_inter V c_inter ; a_intra V c_intra]))
    """

    def __init__(self, c: int):
        super().__init__()
        mid = max(c // 2, 1)
        self.q = nn.Linear(c, mid, bias=False)
        self.k_inter, self.k_intra = nn.Linear(c, mid, bias=False), nn.Linear(c, mid, bias=False)
        self.v_inter, self.v_intra = nn.Linear(c, mid, bias=False), nn.Linear(c, mid, bias=False)
        self.out = nn.Sequential(nn.Linear(2 * mid, c, bias=False), PointBN(c))

    def forward(self, x: torch.Tensor, curves: torch.Tensor) -> torch.Tensor:
        inter, intra = curves.amax(dim=2), curves.amax(dim=1)          # f curves c, f length c
        q = self.q(x)
        a_inter = torch.softmax(q @ self.k_inter(inter).transpose(1, 2), dim=-1)
        a_intra = torch.softmax(q @ self.k_intra(intra).transpose(1, 2), dim=-1)
        mixed = torch.cat([a_inter @ self.v_inter(inter), a_intra @ self.v_intra(intra)], dim=-1)
        return leaky(x + self.out(mixed))


class CIC(nn.Module):
    """Curve-intervention block: bottleneck -> [curve grouping + aggregation] -> LPFA -> expand, residual.

    y = LReLU(BN(W_2 LPFA(CurveAgg(LReLU(BN(W_1 x))))) + shortcut(x))
    """

    def __init__(self, c_in: int, c_out: int, bottleneck: int, curves: bool, n_curves: int, length: int):
        super().__init__()
        planes = c_in // bottleneck
        self.reduce = nn.Sequential(nn.Linear(c_in, planes, bias=False), PointBN(planes))
        self.grouping = CurveGrouping(planes, n_curves, length) if curves else None
        self.aggregation = CurveAggregation(planes) if curves else None
        self.lpfa = LPFA(planes, planes)
        self.expand = nn.Sequential(nn.Linear(planes, c_out, bias=False), PointBN(c_out))
        self.shortcut = nn.Identity() if c_in == c_out else nn.Sequential(nn.Linear(c_in, c_out, bias=False),
                                                                          PointBN(c_out))

    def forward(self, x: torch.Tensor, xyz: torch.Tensor, graph: Graph) -> torch.Tensor:
        y = leaky(self.reduce(x))
        if self.grouping is not None:
            y = self.aggregation(y, self.grouping(y, graph.idx))
        y = self.expand(self.lpfa(y, xyz, graph))
        return leaky(y + self.shortcut(x))


class PointEncoder(nn.Module):
    """CurveNet-style per-frame encoder: (f, n, 3) -> (f, n, point_width). One k-NN graph per frame, shared."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.k = cfg.k
        self.lpfa = LPFA(9, cfg.lpfa_width, initial=True)
        self.blocks = nn.ModuleList(CIC(i, o, b, c, cfg.n_curves, cfg.curve_length) for i, o, b, c in cfg.cic)
        last = cfg.cic[-1][1] if cfg.cic else cfg.lpfa_width
        self.head = nn.Sequential(nn.Linear(last, cfg.point_width, bias=False), PointBN(cfg.point_width),
                                  nn.ReLU(inplace=True), nn.Dropout(cfg.dropout))

    def forward(self, xyz: torch.Tensor) -> torch.Tensor:
        graph = Graph(knn(xyz.detach(), self.k))                       # built once, reused by every block
        x = self.lpfa(None, xyz, graph)
        for block in self.blocks:
            x = block(x, xyz, graph)
        return self.head(x)


# ---------------------------------------------------------------------------------------------------- transformers

def sinusoid(length: int, dim: int, max_len: int = 128) -> torch.Tensor:
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...)."""
    if length > max_len:
        raise ValueError(f"sequence of {length} exceeds the positional table (max_len {max_len})")
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


class Attention(nn.Module):
    """softmax(Q K^T / sqrt(d_head)) V over heads, pre-LN."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(dropout))
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(self.norm(x)), "b s (three h e) -> three b h s e", three=3, h=self.heads)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(rearrange(y, "b h s e -> b s (h e)"))


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, dim), nn.Dropout(dropout))


class Block(nn.Module):
    """x = x + PE; x = x + Attn(x); x = x + MLP(x)   (released PE quirk: x = 2x + PE)."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, dropout: float, pe_released: bool):
        super().__init__()
        self.attn, self.ff = Attention(dim, heads, dim_head, dropout), FeedForward(dim, mlp_dim, dropout)
        self.pe_drop, self.pe_released = nn.Dropout(dropout), pe_released

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pe = sinusoid(x.shape[1], x.shape[2]).to(x)
        x = x + self.pe_drop(x + pe) if self.pe_released else self.pe_drop(x + pe)
        x = x + self.attn(x)
        return x + self.ff(x)


class SpaceTimeTransformer(nn.Module):
    """Depth-L stack on (b, t, m, d): even layers attend over time per token, odd layers over tokens per frame."""

    def __init__(self, dim, depth, heads, dim_head, mlp_dim, dropout, pe_released):
        super().__init__()
        self.layers = nn.ModuleList(Block(dim, heads, dim_head, mlp_dim, dropout, pe_released) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _t, _m, _ = x.shape
        for i, layer in enumerate(self.layers):
            if i % 2 == 0:
                x = rearrange(layer(rearrange(x, "b t m d -> (b m) t d")), "(b m) t d -> b t m d", b=b)
            else:
                x = rearrange(layer(rearrange(x, "b t m d -> (b t) m d")), "(b t) m d -> b t m d", b=b)
        return x


# ----------------------------------------------------------------------------------------------------- backbone

class MeshSmileBackbone(nn.Module):
    """(b, t, 478, 3) landmarks -> h (b, dim) and per-frame tokens (b, t, dim).

    Point encoder per frame; tokens = BN(R (m x n) . P (n x c)); spatial transformer; mean over tokens;
    temporal transformer; h = mean over time.
    """

    def __init__(self, cfg: BackboneConfig | None = None):
        super().__init__()
        self.cfg = cfg = (cfg or BackboneConfig.paper()).validate()
        subset = np.linspace(0, N_LANDMARKS - 1, cfg.n_points).round().astype(np.int64)
        self.register_buffer("point_subset", torch.from_numpy(subset), persistent=False)
        self.encoder = PointEncoder(cfg)
        self.reduce = nn.Linear(cfg.n_points, cfg.n_tokens, bias=False)  # Conv1d(n -> m, k=1) over the point axis
        self.reduce_bn = nn.BatchNorm1d(cfg.n_tokens)
        self.narrow = cfg.spatial_dim != cfg.point_width
        if self.narrow:  # released dim-8 variant: flatten the m x c tokens, project, split into m x spatial_dim
            self.to_spatial = nn.Linear(cfg.n_tokens * cfg.point_width, cfg.n_tokens * cfg.spatial_dim)
        heads, dim_head = cfg.spatial_heads_dim_head or (cfg.heads, cfg.dim_head)
        self.spatial = SpaceTimeTransformer(cfg.spatial_dim, cfg.spatial_depth, heads, dim_head,
                                            cfg.spatial_mlp_dim or cfg.mlp_dim, cfg.dropout, cfg.pe_released)
        frame_width = cfg.n_tokens * cfg.spatial_dim if self.narrow else cfg.spatial_dim
        self.to_temporal = nn.Identity() if frame_width == cfg.dim else nn.Linear(frame_width, cfg.dim)
        self.temporal = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.dim_head, cfg.mlp_dim, cfg.dropout,
                                            cfg.pe_released) for _ in range(cfg.temporal_depth))
        self.out_dim = cfg.dim

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if clip.ndim != 4 or clip.shape[-2:] != (N_LANDMARKS, 3):
            raise ValueError(f"backbone expects (batch, frames, {N_LANDMARKS}, 3), got {tuple(clip.shape)}")
        b, _t = clip.shape[:2]
        xyz = rearrange(clip.index_select(2, self.point_subset), "b t n c -> (b t) n c")
        points = self.encoder(xyz)                                     # (b t) n c
        tokens = self.reduce(points.transpose(1, 2)).transpose(1, 2)   # (b t) m c
        tokens = self.reduce_bn(tokens)
        if self.narrow:
            tokens = rearrange(self.to_spatial(rearrange(tokens, "f m c -> f (m c)")), "f (m e) -> f m e",
                               m=self.cfg.n_tokens)
        x = self.spatial(rearrange(tokens, "(b t) m e -> b t m e", b=b))
        frames = rearrange(x, "b t m e -> b t (m e)") if self.narrow else reduce(x, "b t m e -> b t e", "mean")
        frames = self.to_temporal(frames)
        for layer in self.temporal:
            frames = layer(frames)
        return frames.mean(dim=1), frames

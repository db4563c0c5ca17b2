"""The MeshSmileNet deep branch exactly as released (HadaSmileNet / MeshSmileNet code; described in words in the
papers): a per-frame CurveNet point encoder -> 32 tokens -> alternating space/time transformer -> temporal
transformer -> h in R^dim. Every formula is in the docstrings below; :mod:`common.smile.release_weights` maps the
release's state-dict names onto these modules, and the tests compare every intermediate with the release's own output.

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
output is rebuilt from the two per-point sums backward needs anyway. The walk scores candidates from one per-point
logit w_a . F_j (gathered as scalars), gathers neighbour features only without gradient (crossover suppression) and
takes its straight-through pick through :class:`PickedNeighbour`, whose backward needs no (curves, k, c) gradient.

Shapes: b batch, t frames, f = b*t point clouds, n points, k neighbours, c channels, s curves, l curve length,
m tokens, d model width.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

N_LANDMARKS = 478
SLOPE = 0.2  # every LeakyReLU of the encoder


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


# ----------------------------------------------------------------------------------------------------------- graph

def knn(xyz: torch.Tensor, k: int) -> torch.Tensor:
    """(f, n, k+1) indices of the k+1 highest scores -|x_i - x_j|^2 per point, best first (the point itself is
    normally column 0, but it is not forced: the release does not force it either).

    The release's float32 op order is kept, so exact ties (real at ~1e-4 squared distances) break the same way:
    G = -2 X^T X; q = sum_c X^2; score = -q - G - q^T; torch.topk.
    """
    x = xyz.transpose(1, 2).contiguous()                               # f 3 n
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x ** 2, dim=1, keepdim=True)
    score = -xx - inner - xx.transpose(2, 1)
    return score.topk(k=k + 1, dim=-1)[1]


class Graph:
    """The k-NN table of a batch of frames, built once per forward and shared by every block.

    ``lpfa`` (f, n, k) = columns 0..k-1 (self + k-1 nearest), ``walk`` (f, n, k) = columns 1..k (k nearest non-self);
    ``*_flat`` the same as row numbers of an (f*n, c) matrix; ``deg`` how often each point is an LPFA neighbour.
    """

    def __init__(self, idx: torch.Tensor):
        f, n, k1 = idx.shape
        self.full = idx
        self.shape = (f, n, k1 - 1)
        offset = (torch.arange(f, device=idx.device) * n).view(f, 1, 1)
        self.lpfa = idx[..., :-1]
        self.walk = idx[..., 1:]
        self.lpfa_flat = (self.lpfa + offset).reshape(-1)
        self.walk_flat = (self.walk + offset).reshape(f * n, k1 - 1)
        self._deg = None

    @property
    def deg(self) -> torch.Tensor:
        if self._deg is None:
            f, n, _ = self.shape
            self._deg = torch.bincount(self.lpfa_flat, minlength=f * n).to(torch.float64)
        return self._deg


def gather(x: torch.Tensor, graph: Graph) -> torch.Tensor:
    """x (f, n, c) -> (f, n, k, c) LPFA-neighbour features."""
    f, n, c = x.shape
    return x.reshape(f * n, c).index_select(0, graph.lpfa_flat).view(*graph.shape, c)


def coordinate_moments(xyz: torch.Tensor, graph: Graph) -> tuple[torch.Tensor, ...]:
    """First and second moments of the coordinate pairs (p_i, p_j), j in N(i), over all f*n*k pairs (float64):
    E[p_i], E[p_j], E[p_i p_i^T], E[p_i p_j^T], E[p_j p_j^T]. Built once per forward (cached on the graph)."""
    key = id(xyz)
    if getattr(graph, "_moments_key", None) != key:
        f, n, k = graph.shape
        p = xyz.detach().reshape(f * n, 3).double()
        m = f * n * k
        nbr_sum = p.index_select(0, graph.lpfa_flat).view(f * n, k, 3).sum(dim=1)
        weighted = p * graph.deg.unsqueeze(1)
        graph._moments = (p.mean(0), weighted.sum(0) / m, p.t() @ p / (f * n), p.t() @ nbr_sum / m,
                          weighted.t() @ p / m)
        graph._moments_key = key
    return graph._moments


def pair_moments(a: torch.Tensor, b: torch.Tensor, xyz: torch.Tensor, graph: Graph):
    """Mean and biased variance per channel of z_ij = a p_i + b p_j over all pairs, from the coordinate moments
    (a, b: (c, 3) weights; exact, differentiable in a and b): E[z] = a E[p_i] + b E[p_j],
    E[z_c^2] = a_c S_ii a_c + 2 a_c S_ij b_c + b_c S_jj b_c."""
    mi, mj, sii, sij, sjj = coordinate_moments(xyz, graph)
    a, b = a.double(), b.double()
    mean = a @ mi + b @ mj
    second = ((a @ sii) * a).sum(1) + 2 * ((a @ sij) * b).sum(1) + ((b @ sjj) * b).sum(1)
    f, n, k = graph.shape
    return mean.float(), (second - mean * mean).clamp_min(0).float(), f * n * k


def bn_affine(bn: nn.BatchNorm1d, stats):
    """BN(z) = s * z + t with nn.BatchNorm semantics (batch stats + running update in training, running in eval);
    ``stats()`` gives (mean, biased var, count) and is called in training only."""
    if bn.training:
        mean, var, count = stats()
        with torch.no_grad():
            bn.running_mean.lerp_(mean.detach(), bn.momentum)
            bn.running_var.lerp_(var.detach() * count / max(count - 1, 1), bn.momentum)
            bn.num_batches_tracked += 1
    else:
        mean, var = bn.running_mean, bn.running_var
    s = bn.weight * torch.rsqrt(var + bn.eps)
    return s, bn.bias - mean * s


def split_triplet_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """W [p_i, p_j, p_j - p_i] = (W1 - W3) p_i + (W2 + W3) p_j: the 9-d descriptor's map acts per point."""
    w1, w2, w3 = weight.split(3, dim=1)
    return w1 - w3, w2 + w3


def leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, SLOPE)


class PointBN(nn.BatchNorm1d):
    """BatchNorm over the last (channel) axis of a channels-last tensor of any rank."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


def neighbour_max(x: torch.Tensor, graph: Graph) -> torch.Tensor:
    """Per channel max_j x_j over each point's LPFA neighbours; the gradient reaches the arg-max neighbour only (as
    with ``amax``) and nothing of size (f, n, k, c) is kept for backward."""
    f, n, k = graph.shape
    c = x.shape[-1]
    flat = x.reshape(f * n, c)
    with torch.no_grad():
        pos = flat.index_select(0, graph.lpfa_flat).view(f, n, k, c).max(dim=2).indices   # f n c
        rows = torch.gather(graph.lpfa_flat.view(f, n, k), 2, pos)                         # f n c
    return flat.gather(0, rows.view(f * n, c)).view(f, n, c)


CHUNK_ROWS = {"cpu": 16384, "other": 1 << 22}  # neighbour pairs per chunk of the fused LPFA; on CPU ~1-2 MB per
# tensor, so the temporaries stay in a core's L2 cache; on an accelerator large chunks keep the kernels big


def _frame_chunks(shape: tuple[int, int, int], device: torch.device) -> list[tuple[int, int]]:
    f, n, k = shape
    step = max(1, CHUNK_ROWS["cpu" if device.type == "cpu" else "other"] // (n * k))
    return [(a, min(f, a + step)) for a in range(0, f, step)]


def _pairs(g: torch.Tensor, h: torch.Tensor, flat: torch.Tensor, shape, a: int, b: int) -> torch.Tensor:
    """LReLU(g_j + h_i) for the pairs of frames a..b-1, as ((b-a) n k, c) rows."""
    f, n, k = shape
    c = g.shape[-1]
    z = g.reshape(f * n, c).index_select(0, flat[a * n * k: b * n * k]).view(b - a, n, k, c)
    return F.leaky_relu_(z.add_(h[a:b].unsqueeze(2)), SLOPE).view(-1, c)


class LeakyMLPMean(torch.autograd.Function):
    """out_i = mean_{j in N(i)} LReLU(BN(W LReLU(g_j + h_i))): the LPFA of a CIC block after its per-point parts.

    BN has nn.BatchNorm semantics over all f*n*k pairs (batch statistics + running update in training). Work is done
    a few frames at a time so the (pairs, c) temporaries stay in cache, and nothing of size (f, n, k, c) is saved:
    backward recomputes the pairs in one pass. Batch statistics enter backward through two per-channel sums, which
    forward prepares per point (sum_j LReLU'(v_ij) and sum_j LReLU'(v_ij) u_hat_ij).
    """

    @staticmethod
    def forward(ctx, g, h, weight, gamma, beta, bn: nn.BatchNorm1d, flat, shape):
        f, n, k = shape
        chunks = _frame_chunks(shape, g.device)
        if bn.training:  # u = W z: sum u = W sum z, sum u_c^2 = w_c (sum z z^T) w_c (one product per chunk)
            z_sum = torch.zeros(g.shape[-1], dtype=torch.float64, device=g.device)
            zz_sum = torch.zeros(g.shape[-1], g.shape[-1], dtype=torch.float64, device=g.device)
            for a, b in chunks:
                z = _pairs(g, h, flat, shape, a, b)
                z_sum += z.sum(0).double()
                zz_sum += (z.t() @ z).double()
            m = f * n * k
            w64 = weight.double()
            mean64 = w64 @ z_sum / m
            var = ((w64 @ zz_sum * w64).sum(1) / m - mean64 * mean64).clamp_min(0).to(g.dtype)
            mean = mean64.to(g.dtype)
            bn.running_mean.lerp_(mean, bn.momentum)
            bn.running_var.lerp_(var * m / max(m - 1, 1), bn.momentum)
            bn.num_batches_tracked += 1
        else:
            mean, var = bn.running_mean, bn.running_var
        rstd = torch.rsqrt(var + bn.eps)
        scale = gamma * rstd
        shift = beta - mean * scale
        c_out = weight.shape[0]
        out = torch.empty(f, n, c_out, dtype=g.dtype, device=g.device)
        if bn.training:
            # per point: S_i = sum_j LReLU'(v_ij), U_i = sum_j LReLU'(v_ij) u_hat_ij (backward's BN sums), and
            # out_i = mean_j LReLU'(v_ij) v_ij = (gamma U_i + beta S_i) / k
            w_hat, b_hat = weight * rstd.unsqueeze(1), -mean * rstd          # u_hat = w_hat z + b_hat
            slope_sum, slope_uhat_sum = torch.empty_like(out), torch.empty_like(out)
            ones = g.new_ones(1, 1)
            for a, b in chunks:
                uhat = torch.addmm(b_hat, _pairs(g, h, flat, shape, a, b), w_hat.t())
                slope = torch.ops.aten.leaky_relu_backward(ones.expand_as(uhat), torch.addcmul(beta, uhat, gamma),
                                                           SLOPE, False)              # LReLU'(v), no branch
                torch.sum(slope.view(b - a, n, k, c_out), dim=2, out=slope_sum[a:b])
                torch.sum(slope.mul_(uhat).view(b - a, n, k, c_out), dim=2, out=slope_uhat_sum[a:b])
            torch.addcmul(slope_sum * (beta / k), slope_uhat_sum, gamma / k, out=out)
            ctx.save_for_backward(g, h, weight, gamma, beta, mean, rstd, flat, slope_sum, slope_uhat_sum)
        else:
            w_s = weight * scale.unsqueeze(1)
            for a, b in chunks:
                v = torch.addmm(shift, _pairs(g, h, flat, shape, a, b), w_s.t())
                torch.mean(F.leaky_relu_(v, SLOPE).view(b - a, n, k, c_out), dim=2, out=out[a:b])
            ctx.save_for_backward(g, h, weight, gamma, beta, mean, rstd, flat)
        ctx.shape, ctx.training = shape, bn.training
        return out

    @staticmethod
    def backward(ctx, grad_out):
        g, h, weight, gamma, beta, mean, rstd, flat = ctx.saved_tensors[:8]
        shape = ctx.shape
        f, n, k = shape
        c_in, c_out = g.shape[-1], weight.shape[0]
        m = f * n * k
        grad_out = grad_out / k
        scale = gamma * rstd
        w_hat, b_hat = weight * rstd.unsqueeze(1), -mean * rstd
        w_s = weight * scale.unsqueeze(1)                                    # du @ W = (du / scale) @ w_s
        d_weight = torch.zeros_like(weight)                                  # accumulates (du / scale)^T z
        d_h = torch.empty_like(h)
        d_g = torch.zeros(f * n, c_in, dtype=g.dtype, device=g.device)
        if ctx.training:  # du = scale (dv - <dv> - u_hat <dv u_hat>); both sums from the per-point forward sums
            slope_sum, slope_uhat_sum = ctx.saved_tensors[8:]
            d_beta = (grad_out * slope_sum).reshape(-1, c_out).sum(0)
            d_gamma = (grad_out * slope_uhat_sum).reshape(-1, c_out).sum(0)
            mean_dv, neg_mean_dv_uhat = d_beta / m, -d_gamma / m
        else:
            d_beta = torch.zeros(c_out, dtype=g.dtype, device=g.device)
            d_gamma = torch.zeros_like(d_beta)
        for a, b in _frame_chunks(shape, g.device):
            z = _pairs(g, h, flat, shape, a, b)
            uhat = torch.addmm(b_hat, z, w_hat.t())
            v = torch.addcmul(beta, uhat, gamma).view(b - a, n, k, c_out)
            grad = grad_out[a:b].unsqueeze(2).expand(b - a, n, k, c_out)
            dv = torch.ops.aten.leaky_relu_backward(grad, v, SLOPE, False).view(-1, c_out)
            if ctx.training:
                du = dv.sub_(mean_dv).addcmul_(uhat, neg_mean_dv_uhat)      # du / scale
            else:
                d_beta += dv.sum(0)
                d_gamma += (dv * uhat).sum(0)
                du = dv
            d_weight.addmm_(du.t(), z)
            dz = torch.ops.aten.leaky_relu_backward(du @ w_s, z, SLOPE, True)   # z has the signs of its input
            torch.sum(dz.view(b - a, n, k, c_in), dim=2, out=d_h[a:b])
            d_g.index_add_(0, flat[a * n * k: b * n * k], dz)
        return d_g.view(g.shape), d_h, d_weight.mul_(scale.unsqueeze(1)), d_gamma, d_beta, None, None, None


# ------------------------------------------------------------------------------------------------ point encoder

class InitialLPFA(nn.Module):
    """y_i = max_{j in N(i)} LReLU(BN(W [p_i, p_j, p_j - p_i])), N(i) = self + k-1 nearest.

    With W p_ij = a_i + b_j (per point) and BN(z) = s z + t: max_j LReLU(s (a_i + b_j) + t) =
    LReLU(s a_i + t + max_j s b_j), since LReLU is monotone.
    """

    def __init__(self, width: int):
        super().__init__()
        self.lin = nn.Linear(9, width, bias=False)
        self.bn = PointBN(width)

    def forward(self, xyz: torch.Tensor, graph: Graph) -> torch.Tensor:
        a, b = split_triplet_weight(self.lin.weight)
        ax, bx = xyz @ a.t(), xyz @ b.t()
        s, t = bn_affine(self.bn, lambda: pair_moments(a, b, xyz, graph))
        return leaky(ax * s + t + neighbour_max(bx * s, graph))


class LPFA(nn.Module):
    """y_i = mean_{j in N(i)} LReLU(BN(W LReLU(f_j - f_i + BN_p(W_p [p_i, p_j, p_j - p_i])))), N(i) = self + k-1.

    The inner LReLU comes before the MLP (release). Per point: f_j - f_i + s_p (A p_i + B p_j) + t_p = g_j + h_i with
    g_j = f_j + s_p B p_j and h_i = s_p A p_i + t_p - f_i; :class:`LeakyMLPMean` does the rest.
    """

    def __init__(self, c: int):
        super().__init__()
        self.pos = nn.Sequential(nn.Linear(9, c, bias=False), PointBN(c))
        self.lin = nn.Linear(c, c, bias=False)
        self.bn = PointBN(c)

    def forward(self, feats: torch.Tensor, xyz: torch.Tensor, graph: Graph) -> torch.Tensor:
        a, b = split_triplet_weight(self.pos[0].weight)
        ax, bx = xyz @ a.t(), xyz @ b.t()
        s, t = bn_affine(self.pos[1], lambda: pair_moments(a, b, xyz, graph))
        g = (feats + bx * s).contiguous()
        h = (ax * s + t - feats).contiguous()
        return LeakyMLPMean.apply(g, h, self.lin.weight, self.bn.weight, self.bn.bias, self.bn, graph.lpfa_flat,
                                  graph.shape)


class CurveGrouping(nn.Module):
    """Start points and the release's walk; returns curves (f, s, l, c) and the chosen indices.

    u = sigmoid(w_att . a) per point; the walk runs on the gated features F = a * u; the s start points are
    ``topk(u, s, sorted=False)`` (its order matters: see momentum). Descriptor psi = F_start, then per step:
      s > 0: (alpha, beta) = momentum weights, psi <- alpha phi + beta psi, where the weights are
             softmax over 2 rows of BN(W_mom [phi; psi]) (2, s), read as (s, 2) without a transpose (release);
      logits l_j = BN(w_a . [F_j; psi]) over the k non-self neighbours j of the current point;
      s > 0: crossover suppression l_j <- l_j * clamp(1 + cos(phi - psi, F_j - phi), 0, 1) (no gradient);
      pi = softmax(l); j* = argmax pi; omega = (onehot(j*) - pi) + pi (straight-through, no noise, train = eval);
      phi = sum_j omega_j F_j; current point <- j*; append phi.
    """

    def __init__(self, c: int, n_curves: int, length: int, momentum_per_curve: bool = False):
        super().__init__()
        self.n_curves, self.length, self.momentum_per_curve = n_curves, length, momentum_per_curve
        self.start_score = nn.Linear(c, 1, bias=False)
        self.step_score = nn.Linear(2 * c, 1, bias=False)
        self.step_bn = nn.BatchNorm1d(1)
        self.momentum = nn.Linear(2 * c, 2, bias=False)
        self.momentum_bn = nn.BatchNorm1d(2)

    def forward(self, a: torch.Tensor, graph: Graph):
        f, n, c = a.shape
        s = self.n_curves
        score = torch.sigmoid(self.start_score(a))                     # f n 1
        feat = (a * score).reshape(f * n, c)
        start = score.squeeze(-1).topk(s, dim=-1, sorted=False)[1]     # f s, release order
        cur = (start + (torch.arange(f, device=a.device) * n).view(f, 1)).reshape(-1)
        w_nb, w_psi = self.step_score.weight.view(-1).split(c)
        point_logit = feat @ w_nb                                      # (f n): w_a . F_j once per point, not per pair
        psi = feat.index_select(0, cur)                                # (f s) c
        phi = None
        curves, picks = [], []
        for step in range(self.length):
            if step > 0:
                m = self.momentum_bn(self.momentum(torch.cat([phi, psi], dim=-1)))     # (f s) 2
                w = torch.softmax(m.view(f, s, 2), dim=-1)
                if not self.momentum_per_curve:                        # release: (2, s) buffer read as (s, 2)
                    w = w.transpose(1, 2).contiguous().view(f, s, 2)
                w = w.reshape(f * s, 2)
                psi = phi * w[:, :1] + psi * w[:, 1:]
            cand = graph.walk_flat.index_select(0, cur)                # (f s) k
            logit = point_logit.index_select(0, cand.reshape(-1)).view(f * s, -1) + (psi @ w_psi).unsqueeze(-1)
            logit = self.step_bn(logit.reshape(-1, 1)).view(f * s, -1)
            if step > 0:
                with torch.no_grad():
                    nb = feat.index_select(0, cand.reshape(-1)).view(f * s, -1, c)
                    factor = crossover_suppression(phi - psi, nb - phi.unsqueeze(1))
                    del nb
                logit = logit * factor
            pi = torch.softmax(logit, dim=-1)
            j = pi.argmax(dim=-1, keepdim=True)
            omega = (torch.zeros_like(pi).scatter_(1, j, 1.0) - pi).detach() + pi
            phi = PickedNeighbour.apply(feat, omega, cand, j)          # = sum_j omega_j F_j
            cur = cand.gather(1, j).squeeze(1)
            curves.append(phi)
            picks.append(cur)
        curves = torch.stack(curves, dim=1).view(f, s, self.length, c)
        walk = (torch.stack(picks, dim=1).view(f, s, self.length) % n)
        return curves, start, walk


class PickedNeighbour(torch.autograd.Function):
    """phi = sum_j omega_j F_{cand_j} for a straight-through one-hot omega (exact zeros off the pick j*), without
    gathering the (rows, k, c) neighbour features for autograd: forward = omega_{j*} F_{cand_{j*}} (the same sum: the
    other terms are exact zeros); backward d omega_j = F_{cand_j} . d phi (a gather without gradient) and
    d F_{cand_{j*}} += omega_{j*} d phi (the only nonzero neighbour gradient)."""

    @staticmethod
    def forward(ctx, feat, omega, cand, j):
        rows = cand.gather(1, j).squeeze(1)
        w = omega.gather(1, j)
        ctx.save_for_backward(feat, cand, rows, w)
        return feat.index_select(0, rows) * w

    @staticmethod
    def backward(ctx, d_phi):
        feat, cand, rows, w = ctx.saved_tensors
        r, k = cand.shape
        d_omega = torch.bmm(feat.index_select(0, cand.reshape(-1)).view(r, k, -1), d_phi.unsqueeze(-1)).squeeze(-1)
        d_feat = torch.zeros_like(feat).index_add_(0, rows, d_phi * w)
        return d_feat, d_omega, None, None


def crossover_suppression(v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """clamp(1 + cos(v, w_j), 0, 1), cos = v.w / max(|v||w|, 1e-8), without gradient. v (r, c), w (r, k, c)."""
    with torch.no_grad():
        dot = (w @ v.unsqueeze(-1)).squeeze(-1)
        norm = v.norm(dim=-1, keepdim=True) * w.norm(dim=-1)
        return (1.0 + dot / norm.clamp_min(1e-8)).clamp_(0.0, 1.0)


class CurveAggregation(nn.Module):
    """Points attend to curve summaries (z = w_line . K; no 1/sqrt(d) scaling):
    I = sum_len K softmax_len(z) (f, s, c), J = sum_curves K softmax_curves(z) (f, l, c);
    y = LReLU(a + BN(W_d [softmax(Q_a . W_a I) W_n W_a I ; softmax(Q_a . W_b J) W_l W_b J]))."""

    def __init__(self, c: int):
        super().__init__()
        mid = c // 2
        self.att = nn.Linear(c, 1, bias=False)
        self.k_inter, self.k_intra, self.q = (nn.Linear(c, mid, bias=False) for _ in range(3))
        self.v_inter, self.v_intra = nn.Linear(mid, mid, bias=False), nn.Linear(mid, mid, bias=False)
        self.out = nn.Sequential(nn.Linear(2 * mid, c, bias=False), PointBN(c))

    def forward(self, a: torch.Tensor, curves: torch.Tensor) -> torch.Tensor:
        z = self.att(curves)                                           # f s l 1
        inter = (curves * torch.softmax(z, dim=2)).sum(dim=2)          # f s c
        intra = (curves * torch.softmax(z, dim=1)).sum(dim=1)          # f l c
        k_inter, k_intra, q = self.k_inter(inter), self.k_intra(intra), self.q(a)
        p_inter = torch.softmax(q @ k_inter.transpose(1, 2), dim=-1)   # f n s
        p_intra = torch.softmax(q @ k_intra.transpose(1, 2), dim=-1)   # f n l
        mixed = torch.cat([p_inter @ self.v_inter(k_inter), p_intra @ self.v_intra(k_intra)], dim=-1)
        return leaky(a + self.out(mixed))


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


# ---------------------------------------------------------------------------------------------------- transformers

def sinusoid(length: int, dim: int) -> torch.Tensor:
    """PE[p, 2i] = sin(p 10000^(-2i/d)), PE[p, 2i+1] = cos(...), p < length (the release's table, float32)."""
    pos = torch.arange(0, length, dtype=torch.float).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


PE_ROWS = 128  # rows of the release's positional table: the longest sequence an attention accepts


class Attention(nn.Module):
    """Pre-LN attention with the release's positional encoding: y = LN(x); z = y + Dropout(y + PE);
    out = Dropout(W_o softmax(Q K^T / sqrt(d_head)) V + b_o), [Q K V] = z W_qkv^T (no bias, no dropout on the weights).
    The residual stream x itself is not touched by the PE."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.register_buffer("pe", sinusoid(PE_ROWS, dim), persistent=False)
        self.pe_drop = nn.Dropout(dropout)
        self.qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > PE_ROWS:
            raise ValueError(f"sequence of {x.shape[1]} exceeds the positional table ({PE_ROWS} rows)")
        y = self.norm(x)
        z = y + self.pe_drop(y + self.pe[: x.shape[1]])
        q, k, v = rearrange(self.qkv(z), "b s (three h e) -> three b h s e", three=3, h=self.heads)
        o = F.scaled_dot_product_attention(q, k, v)
        return self.out(rearrange(o, "b h s e -> b s (h e)"))


class FeedForward(nn.Sequential):
    """Dropout(W_2 Dropout(GELU(W_1 LN(x) + b_1)) + b_2), exact GELU."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, dim), nn.Dropout(dropout))


class Block(nn.Module):
    """x = x + Attention(x); x = x + FeedForward(x)."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.attn, self.ff = Attention(dim, heads, dim_head, dropout), FeedForward(dim, mlp_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.ff(x)


class SpaceTimeTransformer(nn.Module):
    """Depth-L stack on (b, t, m, d): even layers attend over time per (b, m), odd layers over tokens per (b, t)."""

    def __init__(self, dim, depth, heads, dim_head, mlp_dim, dropout):
        super().__init__()
        self.layers = nn.ModuleList(Block(dim, heads, dim_head, mlp_dim, dropout) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        for i, layer in enumerate(self.layers):
            if i % 2 == 0:
                x = rearrange(layer(rearrange(x, "b t m d -> (b m) t d")), "(b m) t d -> b t m d", b=b)
            else:
                x = rearrange(layer(rearrange(x, "b t m d -> (b t) m d")), "(b t) m d -> b t m d", b=b)
        return x


# ----------------------------------------------------------------------------------------------------- backbone

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
        return self.reduce_bn(self.reduce(points.transpose(1, 2)).transpose(1, 2))

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

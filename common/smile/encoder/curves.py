"""CurveNet's curve grouping (start points + guided walk) and curve aggregation (Xiang et al., ICCV 2021,
arXiv:2105.01288), with the released MeshSmileNet's walk semantics (momentum buffer reinterpretation, crossover
suppression, hard straight-through pick without Gumbel noise)."""
from __future__ import annotations

import torch
from torch import nn

from common.smile.encoder.graph import Graph
from common.smile.encoder.layers import NarrowBN, PointBN, leaky


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
        self.step_bn = NarrowBN(1)
        self.momentum = nn.Linear(2 * c, 2, bias=False)
        self.momentum_bn = NarrowBN(2)

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

"""Local point-feature aggregation (LPFA) of CurveNet (Xiang et al., ICCV 2021, arXiv:2105.01288) as released in
MeshSmileNet: the initial LPFA on the 9-d point descriptor (max over neighbours) and the in-block LPFA (mean over
neighbours after LReLU, MLP, BN), the latter as one fused autograd function that never keeps a
(frames, points, k, channels) tensor."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from common.smile.encoder.chunks import frame_chunks, in_order_sums, split_over_threads
from common.smile.encoder.graph import Graph, neighbour_max, pair_moments, split_triplet_weight
from common.smile.encoder.layers import SLOPE, PointBN, bn_affine, leaky

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
        chunks = frame_chunks(shape, g.device)
        if bn.training:  # u = W z: sum u = W sum z, sum u_c^2 = w_c (sum z z^T) w_c (one product per chunk)
            def moments(part):
                z_sum = torch.zeros(g.shape[-1], dtype=torch.float64, device=g.device)
                zz_sum = torch.zeros(g.shape[-1], g.shape[-1], dtype=torch.float64, device=g.device)
                for a, b in part:
                    z = _pairs(g, h, flat, shape, a, b)
                    z_sum += z.sum(0).double()
                    zz_sum += (z.t() @ z).double()
                return z_sum, zz_sum
            parts = split_over_threads(chunks, moments, g.device)
            z_sum, zz_sum = in_order_sums(parts)
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

            def slope_sums(part):
                for a, b in part:
                    uhat = torch.addmm(b_hat, _pairs(g, h, flat, shape, a, b), w_hat.t())
                    slope = torch.ops.aten.leaky_relu_backward(ones.expand_as(uhat), torch.addcmul(beta, uhat, gamma),
                                                               SLOPE, False)              # LReLU'(v), no branch
                    torch.sum(slope.view(b - a, n, k, c_out), dim=2, out=slope_sum[a:b])
                    torch.sum(slope.mul_(uhat).view(b - a, n, k, c_out), dim=2, out=slope_uhat_sum[a:b])
            split_over_threads(chunks, slope_sums, g.device)
            torch.addcmul(slope_sum * (beta / k), slope_uhat_sum, gamma / k, out=out)
            ctx.save_for_backward(g, h, weight, gamma, beta, mean, rstd, flat, slope_sum, slope_uhat_sum)
        else:
            w_s = weight * scale.unsqueeze(1)

            def means(part):
                for a, b in part:
                    v = torch.addmm(shift, _pairs(g, h, flat, shape, a, b), w_s.t())
                    torch.mean(F.leaky_relu_(v, SLOPE).view(b - a, n, k, c_out), dim=2, out=out[a:b])
            split_over_threads(chunks, means, g.device)
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
        d_h = torch.empty_like(h)
        d_g = torch.zeros(f * n, c_in, dtype=g.dtype, device=g.device)
        if ctx.training:  # du = scale (dv - <dv> - u_hat <dv u_hat>); both sums from the per-point forward sums
            slope_sum, slope_uhat_sum = ctx.saved_tensors[8:]
            d_beta = (grad_out * slope_sum).reshape(-1, c_out).sum(0)
            d_gamma = (grad_out * slope_uhat_sum).reshape(-1, c_out).sum(0)
            mean_dv, neg_mean_dv_uhat = d_beta / m, -d_gamma / m

        def gradients(part):  # d_h and d_g rows of the part's frames (neighbours lie in the same frame) + sums
            d_weight = torch.zeros_like(weight)                              # accumulates (du / scale)^T z
            d_beta_part = torch.zeros(c_out, dtype=g.dtype, device=g.device)
            d_gamma_part = torch.zeros_like(d_beta_part)
            for a, b in part:
                z = _pairs(g, h, flat, shape, a, b)
                uhat = torch.addmm(b_hat, z, w_hat.t())
                v = torch.addcmul(beta, uhat, gamma).view(b - a, n, k, c_out)
                grad = grad_out[a:b].unsqueeze(2).expand(b - a, n, k, c_out)
                dv = torch.ops.aten.leaky_relu_backward(grad, v, SLOPE, False).view(-1, c_out)
                if ctx.training:
                    du = dv.sub_(mean_dv).addcmul_(uhat, neg_mean_dv_uhat)  # du / scale
                else:
                    d_beta_part += dv.sum(0)
                    d_gamma_part += (dv * uhat).sum(0)
                    du = dv
                d_weight.addmm_(du.t(), z)
                dz = torch.ops.aten.leaky_relu_backward(du @ w_s, z, SLOPE, True)   # z has the signs of its input
                torch.sum(dz.view(b - a, n, k, c_in), dim=2, out=d_h[a:b])
                d_g.index_add_(0, flat[a * n * k: b * n * k], dz)
            return d_weight, d_beta_part, d_gamma_part

        parts = split_over_threads(frame_chunks(shape, g.device), gradients, g.device)
        d_weight, d_beta_eval, d_gamma_eval = in_order_sums(parts)
        if not ctx.training:
            d_beta, d_gamma = d_beta_eval, d_gamma_eval
        return d_g.view(g.shape), d_h, d_weight.mul_(scale.unsqueeze(1)), d_gamma, d_beta, None, None, None



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

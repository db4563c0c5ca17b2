"""Channels-last building blocks of the point encoder: its LeakyReLU, batch norm over the last axis, and batch norm
written as the affine map it applies (for layers that compute their statistics without materialising the input)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SLOPE = 0.2  # every LeakyReLU of the encoder


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


def leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, SLOPE)


class PointBN(nn.BatchNorm1d):
    """BatchNorm over the last (channel) axis of a channels-last tensor of any rank."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


class NarrowBN(nn.BatchNorm1d):
    """nn.BatchNorm1d on (rows, C) for C = 1 or 2 (the walk's logits and momentum weights), same semantics.

    Training: the batch statistics come from one ``var_mean`` over the rows and BN(x) = s x + t (see
    :func:`bn_affine`); PyTorch's kernel splits its work by channel, so with one or two channels it runs serially.
    Eval: PyTorch's own kernel (running statistics), bit for bit what the release computes.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        var, mean = torch.var_mean(x, dim=0, unbiased=False)
        s, t = bn_affine(self, lambda: (mean, var, x.shape[0]))
        return torch.addcmul(t, x, s)

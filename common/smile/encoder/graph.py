"""The k-NN graph of a batch of point clouds and the coordinate-pair statistics the encoder's position maps need.

Every LPFA of CurveNet (Xiang et al., "Walk in the Cloud: Learning Curves for Point Clouds Shape Analysis", ICCV 2021,
arXiv:2105.01288) works on neighbourhoods N(i) of each point; the released MeshSmileNet builds them by k-NN on the
landmark coordinates, which never change inside the encoder, so one table serves every block. Frames never mix in
a neighbourhood, so work over them is cut into chunks of frames (:func:`frame_chunks`) and the chunks into one part
per thread (:func:`split_over_threads`).
"""
from __future__ import annotations

import torch

from common.smile.encoder.chunks import CHUNK_ROWS, frame_chunks, split_over_threads

def knn(xyz: torch.Tensor, k: int) -> torch.Tensor:
    """(f, n, k+1) indices of the k+1 highest scores -|x_i - x_j|^2 per point, best first (the point itself is
    normally column 0, but it is not forced: the release does not force it either).

    The release's float32 op order is kept, so exact ties (real at ~1e-4 squared distances) break the same way:
    G = -2 X^T X; q = sum_c X^2; score = -q - G - q^T; torch.topk. Frames are independent: on CPU a few at a time
    (the (frames, n, n) scores stay small), split over the threads (:func:`split_over_threads`).
    """
    f, n, _ = xyz.shape
    step = max(1, CHUNK_ROWS["cpu"] // (n * n)) if xyz.device.type == "cpu" else f
    chunks = [(a, min(f, a + step)) for a in range(0, f, step)]

    def nearest(part):
        return [_knn_frames(xyz[a:b], k) for a, b in part]
    return torch.cat([idx for part in split_over_threads(chunks, nearest, xyz.device) for idx in part])


def _knn_frames(xyz: torch.Tensor, k: int) -> torch.Tensor:
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


def split_triplet_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """W [p_i, p_j, p_j - p_i] = (W1 - W3) p_i + (W2 + W3) p_j: the 9-d descriptor's map acts per point."""
    w1, w2, w3 = weight.split(3, dim=1)
    return w1 - w3, w2 + w3


def neighbour_max(x: torch.Tensor, graph: Graph) -> torch.Tensor:
    """Per channel max_j x_j over each point's LPFA neighbours; the gradient reaches the arg-max neighbour only (as
    with ``amax``) and nothing of size (f, n, k, c) is kept for backward."""
    f, n, k = graph.shape
    c = x.shape[-1]
    flat = x.reshape(f * n, c)
    table = graph.lpfa_flat.view(f, n, k)
    rows = torch.empty(f, n, c, dtype=torch.long, device=x.device)

    def arg_max_rows(part):  # a few frames at a time: no (f, n, k, c) tensor at all
        for a, b in part:
            pos = flat.index_select(0, table[a:b].reshape(-1)).view(b - a, n, k, c).max(dim=2).indices
            torch.gather(table[a:b], 2, pos, out=rows[a:b])
    with torch.no_grad():
        split_over_threads(frame_chunks(graph.shape, x.device), arg_max_rows, x.device)
    return flat.gather(0, rows.view(f * n, c)).view(f, n, c)

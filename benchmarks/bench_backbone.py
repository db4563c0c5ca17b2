"""Training speed of our deep branch against a straightforward reference of the released network (Hadamard model,
paper size, batch 16 x 16 frames, CPU).

The reference (``ReferenceHadamard``) is written by us from our description of the released code and computes the
way the release does: channels-first (frames, channels, points, neighbours) tensors, the k-NN table recomputed in
every block, 1x1 Conv1d/Conv2d over every neighbourhood, the 9-d point descriptor materialised in every LPFA, the walk
step by step with flattened-index gathers and the release's transposes, attention as matmul + softmax. Its module and
parameter names are the release's own, so a release state dict loads into it with ``strict=True``; the test
``tests/smile_model/test_release_reference.py`` shows it reproduces the release fixtures, so the ratio below is
against the release's function. Our model gets the same weights through :mod:`common.smile.release_weights`.

    python benchmarks/bench_backbone.py              # paper size, writes benchmarks/out/bench_backbone.json
    python benchmarks/bench_backbone.py --quick      # batch 2, 1 round (smoke)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on a shared, loaded machine spinning threads steal the cores the
# working ones need (many small kernels -> many barriers). Read when torch loads, so it is set before the import;
# it applies to both networks alike.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from einops import rearrange  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.smile.backbone_config import BackboneConfig  # noqa: E402
from common.smile.models import FusionNet  # noqa: E402
from common.smile.release_weights import RELEASE_BLOCKS, to_release_state_dict  # noqa: E402
from common.smile.transformers import sinusoid  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


# ------------------------------------------------------------------------------- release-style reference network

def ref_knn(x: torch.Tensor, k: int) -> torch.Tensor:
    """(f, 3, n) -> (f, n, k) indices of the k highest -squared distances (the point itself included)."""
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x ** 2, dim=1, keepdim=True)
    pairwise = -xx - inner - xx.transpose(2, 1)
    return pairwise.topk(k=k, dim=-1)[1]


def flat_index(idx: torch.Tensor, n: int) -> torch.Tensor:
    return (idx + torch.arange(idx.shape[0], device=idx.device).view(-1, 1, 1) * n).view(-1)


class RefLPFA(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, initial: bool = False):
        super().__init__()
        self.k, self.initial = k, initial
        if not initial:
            self.xyz2feature = nn.Sequential(nn.Conv2d(9, c_in, 1, bias=False), nn.BatchNorm2d(c_in))
        self.mlp = nn.Sequential(nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
                                               nn.LeakyReLU(0.2)))

    def forward(self, x, xyz, idx):
        f, _, n = xyz.shape
        flat = flat_index(idx, n)
        xyz_t = xyz.transpose(2, 1).contiguous()
        nb = xyz_t.view(f * n, -1)[flat, :].view(f, n, self.k, -1)
        centre = xyz_t.view(f, n, 1, 3).expand(-1, -1, self.k, -1)
        geometry = torch.cat((centre, nb, nb - centre), dim=3).permute(0, 3, 1, 2).contiguous()
        if self.initial:
            return self.mlp(geometry).max(dim=-1)[0]
        c = x.shape[1]
        x_t = x.transpose(2, 1).contiguous()
        feature = x_t.view(f * n, -1)[flat, :].view(f, n, self.k, c) - x_t.view(f, n, 1, c)
        feature = F.leaky_relu(feature.permute(0, 3, 1, 2).contiguous() + self.xyz2feature(geometry), 0.2)
        return self.mlp(feature).mean(dim=-1)


def ref_crossover(v, w):
    """v (r, c), w (r, c, k) -> clamp(1 + cos, 0, 1) (r, k), no gradient."""
    w, v = w.detach(), v.unsqueeze(-1).detach()
    dot = torch.bmm(v.transpose(1, 2), w)
    divider = torch.clamp(torch.norm(v, dim=1, keepdim=True) * torch.norm(w, dim=1, keepdim=True), min=1e-8)
    return torch.clamp(1.0 + torch.div(dot, divider).squeeze(1), 0.0, 1.0).detach()


def hard_straight_through(logits, dim=-1):
    y = F.softmax(logits, dim=dim)
    ind = y.max(dim=-1)[1]
    hard = torch.zeros_like(y).view(-1, y.shape[-1]).scatter_(1, ind.view(-1, 1), 1).view(*y.shape)
    return (hard - y).detach() + y


class RefWalk(nn.Module):
    def __init__(self, c: int, k: int, n_curves: int, length: int):
        super().__init__()
        self.k, self.n_curves, self.length = k, n_curves, length
        self.agent_mlp = nn.Sequential(nn.Conv2d(2 * c, 1, 1, bias=False), nn.BatchNorm2d(1))
        self.momentum_mlp = nn.Sequential(nn.Conv1d(2 * c, 2, 1, bias=False), nn.BatchNorm1d(2))

    def forward(self, x, adj, start, record=None):
        f, c, n = x.shape
        s = self.n_curves
        flat_x = x.transpose(1, 2).contiguous().view(f * n, -1)
        offset = torch.arange(0, f, device=x.device) * n
        tmp_adj = (adj + offset.view(-1, 1, 1)).view(f * n, -1)
        flat_cur = (start + offset.view(-1, 1)).view(-1)
        curves, picks = [], []
        for step in range(self.length):
            if step == 0:
                pre = flat_x[flat_cur, :].contiguous().view(f, s, -1, 1).transpose(1, 2)
            else:
                cat = torch.cat((cur_feature.squeeze(-1), pre.squeeze(-1)), dim=1)
                att = F.softmax(self.momentum_mlp(cat), dim=1).view(f, 1, s, 2)
                pre = torch.sum(torch.cat((cur_feature, pre), dim=-1) * att, dim=-1, keepdim=True)
                pre_cos = pre.transpose(1, 2).contiguous().view(f * s, -1)
            pick_idx = tmp_adj[flat_cur]
            values = flat_x[pick_idx.view(-1), :]
            values_cos = values.view(f * s, self.k, c).transpose(1, 2).contiguous()
            values = values.view(f, s, self.k, c).permute(0, 3, 1, 2)
            logits = self.agent_mlp(torch.cat((values, pre.expand_as(values)), dim=1))
            if step != 0:
                d = ref_crossover(cur_cos - pre_cos, values_cos - cur_cos.unsqueeze(-1))
                logits = torch.mul(logits, d.view(f, s, self.k).unsqueeze(1))
            weights = hard_straight_through(logits, -1)
            cur_feature = torch.sum(values * weights, dim=-1, keepdim=True)
            cur_cos = cur_feature.transpose(1, 2).contiguous().view(f * s, c)
            flat_cur = torch.gather(pick_idx, 1, torch.argmax(weights, dim=-1).view(-1, 1)).squeeze(-1)
            curves.append(cur_feature)
            picks.append((flat_cur.view(f, s) - offset.view(-1, 1)))
        if record is not None:
            record["walk_idx"] = torch.stack(picks, dim=-1)
        return torch.cat(curves, dim=-1)


class RefCurveGrouping(nn.Module):
    def __init__(self, c, k, n_curves, length):
        super().__init__()
        self.n_curves = n_curves
        self.att = nn.Conv1d(c, 1, 1, bias=False)
        self.walk = RefWalk(c, k, n_curves, length)

    def forward(self, x, idx, record=None):
        score = torch.sigmoid(self.att(x))
        x = x * score
        start = torch.topk(score, self.n_curves, dim=2, sorted=False)[1].squeeze(1)
        if record is not None:
            record["start_idx"] = start
        return self.walk(x, idx, start, record)


class RefCurveAggregation(nn.Module):
    def __init__(self, c):
        super().__init__()
        mid = c // 2
        self.conva, self.convb, self.convc = (nn.Conv1d(c, mid, 1, bias=False) for _ in range(3))
        self.convn, self.convl = nn.Conv1d(mid, mid, 1, bias=False), nn.Conv1d(mid, mid, 1, bias=False)
        self.convd = nn.Sequential(nn.Conv1d(2 * mid, c, 1, bias=False), nn.BatchNorm1d(c))
        self.line_conv_att = nn.Conv2d(c, 1, 1, bias=False)

    def forward(self, x, curves):
        att = self.line_conv_att(curves)
        inter = torch.sum(curves * F.softmax(att, dim=-1), dim=-1)
        intra = torch.sum(curves * F.softmax(att, dim=-2), dim=-2)
        inter, intra = self.conva(inter), self.convb(intra)
        logits = self.convc(x).transpose(1, 2).contiguous()
        w_inter, w_intra = F.softmax(torch.bmm(logits, inter), dim=-1), F.softmax(torch.bmm(logits, intra), dim=-1)
        inter = self.convn(inter).transpose(1, 2).contiguous()
        intra = self.convl(intra).transpose(1, 2).contiguous()
        mixed = torch.cat((torch.bmm(w_inter, inter), torch.bmm(w_intra, intra)), dim=-1).transpose(1, 2)
        return F.leaky_relu(x + self.convd(mixed.contiguous()), negative_slope=0.2)


class RefCIC(nn.Module):
    def __init__(self, c_in, c_out, bottleneck, k, n_curves, length):
        super().__init__()
        planes = c_in // bottleneck
        self.k = k
        self.conv1 = nn.Sequential(nn.Conv1d(c_in, planes, 1, bias=False), nn.BatchNorm1d(planes),
                                   nn.LeakyReLU(0.2))
        self.curvegrouping = RefCurveGrouping(planes, k, n_curves, length)
        self.curveaggregation = RefCurveAggregation(planes)
        self.lpfa = RefLPFA(planes, planes, k)
        self.conv2 = nn.Sequential(nn.Conv1d(planes, c_out, 1, bias=False), nn.BatchNorm1d(c_out))
        if c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))

    def forward(self, xyz, x, record=None):
        shortcut = x
        x = self.conv1(x)
        idx = ref_knn(xyz, self.k + 1)
        if record is not None:
            record["conv1"] = x
        curves = self.curvegrouping(x, idx[:, :, 1:], record)
        x = self.curveaggregation(x, curves)
        if record is not None:
            record.update(curves=curves, curveagg=x)
        x = self.lpfa(x, xyz, idx[:, :, :self.k])
        if record is not None:
            record["lpfa"] = x
        x = self.conv2(x)
        if hasattr(self, "shortcut"):
            shortcut = self.shortcut(shortcut)
        return xyz, F.leaky_relu(x + shortcut, negative_slope=0.2)


class RefEncoder(nn.Module):
    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.k = cfg.k
        self.lpfa = RefLPFA(9, cfg.lpfa_width, cfg.k, initial=True)
        for name, (c_in, c_out, bottleneck) in zip(RELEASE_BLOCKS, cfg.cic):
            setattr(self, name, RefCIC(c_in, c_out, bottleneck, cfg.k, cfg.n_curves, cfg.curve_length))
        self.conv0 = nn.Sequential(nn.Conv1d(cfg.cic[-1][1], cfg.point_width, 1, bias=False),
                                   nn.BatchNorm1d(cfg.point_width), nn.ReLU(inplace=True))

    def forward(self, xyz, record=None):
        idx = ref_knn(xyz, self.k + 1)
        x = self.lpfa(None, xyz, idx[:, :, :self.k])
        if record is not None:
            record["enc.knn_idx"], record["enc.lpfa0"] = idx, x
        for name in RELEASE_BLOCKS:
            block_record = {} if record is not None else None
            xyz, x = getattr(self, name)(xyz, x, block_record)
            if record is not None:
                record.update({f"enc.{name}.{k}": v for k, v in block_record.items()})
                record[f"enc.{name}.out"] = x
        x = self.conv0(x)
        if record is not None:
            record["enc.conv0"] = x
        return x


class RefPositionalEncoding(nn.Module):
    def __init__(self, dim, dropout, max_len=128):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("pe", sinusoid(max_len, dim).unsqueeze(0))

    def forward(self, x):
        return self.dropout(x + self.pe[:, : x.size(1)])


class RefAttention(nn.Module):
    def __init__(self, dim, heads, dim_head, dropout):
        super().__init__()
        self.heads, self.scale = heads, dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(dropout))
        self.pos_embedding = RefPositionalEncoding(dim, dropout)
        self.qkv_input = None

    def forward(self, x):
        x = x + self.pos_embedding(x)
        self.qkv_input = x
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        attn = F.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        return self.to_out(rearrange(torch.matmul(attn, v), "b h n d -> b n (h d)"))


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm, self.fn = nn.LayerNorm(dim), fn

    def forward(self, x):
        return self.fn(self.norm(x))


class RefFeedForward(nn.Module):
    def __init__(self, dim, hidden, dropout):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                                 nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class RefTransformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, mlp_dim, dropout):
        super().__init__()
        self.layers = nn.ModuleList(nn.ModuleList([PreNorm(dim, RefAttention(dim, heads, dim_head, dropout)),
                                                   PreNorm(dim, RefFeedForward(dim, mlp_dim, dropout))])
                                    for _ in range(depth))

    @staticmethod
    def layer(pair, x, record, name):
        attn, ff = pair
        x = attn(x) + x
        if record is not None:
            record[f"{name}.qkv_input"], record[f"{name}.after_attn"] = attn.fn.qkv_input, x
        return ff(x) + x

    def space_time(self, x, record=None):
        """(b, t, m, d): even layers attend over time per (b, m), odd ones over the tokens per (b, t)."""
        b, t, m, d = x.shape
        for i, pair in enumerate(self.layers):
            sub = {} if record is not None else None
            if i % 2 == 0:
                seq = x.permute(0, 2, 1, 3).reshape(b * m, t, d)
                x = self.layer(pair, seq, sub, "l").reshape(b, m, t, d).permute(0, 2, 1, 3)
                canon = lambda y: y.reshape(b, m, t, d).permute(0, 2, 1, 3)  # noqa: E731
            else:
                seq = x.reshape(b * t, m, d)
                x = self.layer(pair, seq, sub, "l").reshape(b, t, m, d)
                canon = lambda y: y.reshape(b, t, m, d)  # noqa: E731
            if record is not None:
                record.update({f"spatial.layer{i}.{k[2:]}": canon(v) for k, v in sub.items()})
                record[f"spatial.layer{i}.out"] = x
        return x

    def over_time(self, x, record=None):
        for i, pair in enumerate(self.layers):
            x = self.layer(pair, x, record, f"temporal.layer{i}")
            if record is not None:
                record[f"temporal.layer{i}.out"] = x
        return x


class ReferenceHadamard(nn.Module):
    """The released Hadamard-multip model (full width spatial transformer), release module names."""

    def __init__(self, cfg: BackboneConfig, dmarker_dim: int = 225, dropout: float = 0.1):
        super().__init__()
        if cfg.spatial_dim != cfg.point_width or len(cfg.cic) != len(RELEASE_BLOCKS):
            raise ValueError("the reference covers the full-width backbone with four CIC blocks")
        self.cfg = cfg
        subset = torch.linspace(0, 477, cfg.n_points, dtype=torch.float64).round().long()
        self.register_buffer("point_subset", subset, persistent=False)
        self.encoder = RefEncoder(cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.downsample = nn.Sequential(nn.Conv1d(cfg.n_points, cfg.n_tokens, 1, bias=False),
                                        nn.BatchNorm1d(cfg.n_tokens))
        self.transformer = RefTransformer(cfg.spatial_dim, cfg.spatial_depth, cfg.heads, cfg.dim_head, cfg.mlp_dim,
                                          cfg.dropout)
        self.time = RefTransformer(cfg.dim, cfg.temporal_depth, cfg.heads, cfg.dim_head, cfg.mlp_dim, cfg.dropout)
        d = cfg.dim
        self.dmarker_proj, self.x_proj = nn.Linear(dmarker_dim, d), nn.Linear(d, d)
        self.fusion_mlp = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d, d), nn.ReLU())
        self.smile_head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 1))

    def forward(self, x, dmarker, record=None):
        """Returns the logit (b,) (the release applies the sigmoid in the model; BCE on it is the same loss)."""
        b, t = x.shape[:2]
        xyz = x.index_select(2, self.point_subset).reshape(b * t, -1, 3).transpose(1, 2).contiguous()
        if record is not None:
            record["enc.input_xyz"] = xyz
        e = self.dropout(self.encoder(xyz, record)).transpose(1, 2)          # f n c
        r = self.downsample(e)                                                # f m c
        s = self.transformer.space_time(r.view(b, t, r.shape[1], r.shape[2]), record)
        u = self.time.over_time(s.mean(dim=2), record)
        h = u.mean(dim=1)
        xp, dp = self.x_proj(h), self.dmarker_proj(dmarker)
        fused = xp * dp
        q = self.fusion_mlp(fused)
        logit = self.smile_head(q)
        if record is not None:
            record.update({"downsample.out": r, "spatial.token_mean": s.mean(dim=2), "h": h, "x_proj": xp,
                           "dmarker_embed": dp, "fused": fused, "fusion_mlp": q, "logit": logit,
                           "prob": torch.sigmoid(logit)})
        return logit.squeeze(-1)


# ----------------------------------------------------------------------------------------------------- measuring

def paired_models(cfg: BackboneConfig, seed: int = 0) -> tuple[FusionNet, ReferenceHadamard]:
    """Our Hadamard model and the reference with the same weights (ours -> release names -> reference)."""
    torch.manual_seed(seed)
    ours = FusionNet("hadamard", cfg, impl="released", dropout=cfg.dropout)
    ref = ReferenceHadamard(cfg, dropout=cfg.dropout)
    ref.load_state_dict(to_release_state_dict(ours, "hadamard"), strict=True)
    return ours, ref


def train_step_fn(model: nn.Module, clip, dmarker, label, autocast: bool = False):
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.0)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logit = model(clip, dmarker)
        loss = F.binary_cross_entropy_with_logits(logit.float(), label)
        loss.backward()
        opt.step()
        return loss.detach()
    return step


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads (what a step costs the machine, whoever else runs)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def seconds_per_call(steps: dict, rounds: int) -> dict[str, dict]:
    """One warm-up call, then ``rounds`` timed calls of each step, interleaved (ours, reference, ours, ...) so load
    bursts from other processes hit both; min and median per step of the wall time, and of the process CPU time
    (user + system, both threads: less sensitive to other processes taking the cores, since idle threads sleep)."""
    for step in steps.values():
        step()
    times = {name: [] for name in steps}
    cpu = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            t0, c0 = time.perf_counter(), process_cpu_seconds()
            step()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(process_cpu_seconds() - c0)
    return {name: {"min": min(v), "median": sorted(v)[len(v) // 2], "all": [round(x, 3) for x in v],
                   "cpu_min": min(cpu[name]), "cpu_median": sorted(cpu[name])[len(v) // 2],
                   "cpu_all": [round(x, 3) for x in cpu[name]]}
            for name, v in times.items()}


def profile_step(step, top: int = 14) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    rows = sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]
    return [{"op": e.key, "self_ms": round(e.self_cpu_time_total / 1e3, 1),
             "share": round(e.self_cpu_time_total / total, 3)} for e in rows]


def stage_seconds(model: FusionNet, clip, dmarker) -> dict[str, float]:
    """Forward+backward seconds of the encoder alone vs the whole step (where the time goes, coarse)."""
    xyz = clip.reshape(-1, *clip.shape[2:])
    t0 = time.perf_counter()
    model.backbone.encoder(xyz).sum().backward()
    enc = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    return {"encoder_fwd_bwd_s": round(enc, 3)}


def data_seconds_per_batch(batch: int, clip_len: int, n_batches: int = 20) -> dict:
    """Time to fetch one training batch (memory-mapped windows + normalisation + precomputed D-Marker lookup +
    scaling + collation) from :class:`SmileClips` on a generated dataset in the published format."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "smile_model"))
    from smile_model_data import make_tiny_dataset

    import common.smile.data as smile_data
    from common.smile.run import make_loaders

    with tempfile.TemporaryDirectory() as tmp:
        smile_data.DEFAULT_CACHE_DIR = Path(tmp) / "cache"
        ds = smile_data.load_smile_dataset("BBC", make_tiny_dataset(Path(tmp) / "BBC", n_videos=64, frames=150,
                                                                    n_folds=2))
        fold = ds.folds[0]
        t0 = time.perf_counter()
        loader = make_loaders(ds, fold.train, [], clip_len=clip_len, n_eval_clips=5, batch_size=batch, seed=0,
                              dmarker_variant="released", dmarker_scope="clip")[0]
        setup = time.perf_counter() - t0
        seconds, n, epoch = 0.0, 0, 0
        while n < n_batches:
            loader.dataset.set_epoch(epoch)
            it = iter(loader)
            while n < n_batches:
                t0 = time.perf_counter()
                try:
                    next(it)
                except StopIteration:
                    break
                seconds += time.perf_counter() - t0
                n += 1
            epoch += 1
    return {"seconds_per_batch": seconds / n_batches, "one_off_dmarker_table_and_scaler_seconds": setup,
            "n_videos": 64, "frames_per_video": 150, "dmarker": "released, per clip (precomputed table)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2, help="timed rounds per step (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="batch 2, 1 round: a smoke run")
    ap.add_argument("--no-reference", action="store_true", help="time our model only")
    ap.add_argument("--bf16", action="store_true", help="also time ours under bf16 autocast (its discrete choices "
                    "differ from float32, so it is not the equal-output figure)")
    ap.add_argument("--load-note", default="", help="free text recorded with the figures (e.g. machine load)")
    args = ap.parse_args()
    if args.quick:
        args.batch, args.rounds = 2, 1
    torch.set_num_threads(args.threads)
    bf16 = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    result: dict = {"batch": args.batch, "frames": args.frames, "rounds": args.rounds, "threads": args.threads,
                    "cpu_bf16": bf16, "synthetic_input": True, "load_note": args.load_note,
                    "loadavg_at_start": list(os.getloadavg()),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    cfg = BackboneConfig.paper()
    ours, ref = paired_models(cfg)
    g = torch.Generator().manual_seed(0)
    clip = torch.rand(args.batch, args.frames, 478, 3, generator=g)
    dmarker = torch.randn(args.batch, 225, generator=g)
    label = (torch.arange(args.batch) % 2).float()
    ours.eval()
    ref.eval()
    with torch.no_grad():
        result["eval_max_abs_diff_logit"] = float((ours(clip, dmarker) - ref(clip, dmarker)).abs().max())
    ours.train()
    ref.train()
    torch.manual_seed(1)
    result["params"] = sum(p.numel() for p in ours.parameters())
    steps = {"ours_fp32": train_step_fn(ours, clip, dmarker, label)}
    if not args.no_reference:
        steps["reference"] = train_step_fn(ref, clip, dmarker, label)
    timing = seconds_per_call(steps, args.rounds)
    result["seconds_per_train_step"] = timing
    if not args.no_reference:
        result["speedup_fp32_min"] = timing["reference"]["min"] / timing["ours_fp32"]["min"]
        result["speedup_fp32_median"] = timing["reference"]["median"] / timing["ours_fp32"]["median"]
        result["speedup_fp32_cpu_seconds_min"] = timing["reference"]["cpu_min"] / timing["ours_fp32"]["cpu_min"]
        result["speedup_fp32_cpu_seconds_median"] = (timing["reference"]["cpu_median"]
                                                     / timing["ours_fp32"]["cpu_median"])
    if bf16 and args.bf16:
        ours_bf16, _ = paired_models(cfg)
        result["seconds_per_train_step"]["ours_bf16_autocast"] = seconds_per_call(
            {"b": train_step_fn(ours_bf16.train(), clip, dmarker, label, autocast=True)}, args.rounds)["b"]
    result |= stage_seconds(ours, clip, dmarker)
    result["profile_ours_fp32_step"] = profile_step(steps["ours_fp32"])
    demo = FusionNet("hadamard", BackboneConfig.demo(), impl="released").train()
    step_demo = train_step_fn(demo, clip, dmarker, label)
    result["demo_seconds_per_train_step"] = seconds_per_call({"demo": step_demo}, 5)["demo"]
    loading = data_seconds_per_batch(args.batch, args.frames)
    for size, sec in (("paper", timing["ours_fp32"]["min"]), ("demo", result["demo_seconds_per_train_step"]["min"])):
        loading[f"share_of_{size}_train_step"] = loading["seconds_per_batch"] / (loading["seconds_per_batch"] + sec)
    result["data_loading"] = loading
    result["loadavg_at_end"] = list(os.getloadavg())
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_backbone.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

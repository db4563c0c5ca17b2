"""Backbone training throughput (clips/s at batch 16) on CPU, and the speed-up over a released-style reference.

The reference (``ReferenceEncoder``) runs the SAME modules and parameters as :class:`PointEncoder` the way a direct
CurveNet port does: channels-first (f, c, n, k) tensors, the k-NN graph recomputed in every block, 1x1 Conv2d over
every neighbourhood, the 9-d point descriptor materialised per block, out-of-place activations.

    python benchmarks/bench_backbone.py                 # paper size + demo, writes benchmarks/out/bench_backbone.json
    python benchmarks/bench_backbone.py --quick         # fewer steps (smoke)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.smile.backbone import CIC, LPFA, BackboneConfig, MeshSmileBackbone, PointEncoder, point_triplets

OUT = Path(__file__).resolve().parent / "out"


# ------------------------------------------------------------------------------------- released-style reference

def ref_knn(x_cf: torch.Tensor, k: int) -> torch.Tensor:
    """k-NN from channels-first coordinates (f, 3, n), recomputed at every call as in the released code."""
    inner = -2 * torch.matmul(x_cf.transpose(2, 1), x_cf)
    xx = torch.sum(x_cf ** 2, dim=1, keepdim=True)
    dist = xx + inner + xx.transpose(2, 1)
    dist.diagonal(dim1=1, dim2=2).fill_(-1.0)
    return dist.topk(k=k + 1, dim=-1, largest=False)[1]


def conv(lin: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """The 1x1 Conv1d/Conv2d the released code uses, with the Linear's weights."""
    w = lin.weight.view(*lin.weight.shape, *([1] * (x.ndim - 2)))
    return F.conv2d(x, w) if x.ndim == 4 else F.conv1d(x, w)


def bn(mod: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, mod.running_mean, mod.running_var, mod.weight, mod.bias, mod.training, mod.momentum,
                        mod.eps)


def ref_group(x_cf: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(f, c, n) -> (f, c, n, k) by advanced indexing through a transposed copy."""
    f, c, n = x_cf.shape
    base = torch.arange(f).view(-1, 1, 1) * n
    flat = (idx + base).view(-1)
    g = x_cf.transpose(2, 1).contiguous().view(f * n, -1)[flat, :]
    return g.view(f, n, idx.shape[-1], c).permute(0, 3, 1, 2).contiguous()


def ref_lpfa(m: LPFA, feats_cf, xyz, k: int):
    idx = ref_knn(xyz.transpose(1, 2), k)[..., 1:]
    p = point_triplets(xyz, idx).permute(0, 3, 1, 2).contiguous()    # f 9 n k
    if m.initial:
        z = F.leaky_relu(bn(m.bn, conv(m.lin, p)), 0.2)
        return z.max(dim=-1)[0]
    e = bn(m.pos[1], conv(m.pos[0], p))
    nb = ref_group(feats_cf, idx)
    z = nb - feats_cf.unsqueeze(-1).repeat(1, 1, 1, idx.shape[-1]) + e
    z = F.leaky_relu(bn(m.bn, conv(m.lin, z)), 0.2)
    return z.mean(dim=-1)


def ref_cic(m: CIC, x_cf, xyz, k: int):
    idx = ref_knn(xyz.transpose(1, 2), k)
    y = F.leaky_relu(bn(m.reduce[1], conv(m.reduce[0], x_cf)), 0.2)
    if m.grouping is not None:
        y_cl = y.transpose(1, 2).contiguous()
        y = m.aggregation(y_cl, m.grouping(y_cl, idx[..., 1:])).transpose(1, 2).contiguous()
    y = ref_lpfa(m.lpfa, y, xyz, k)
    y = bn(m.expand[1], conv(m.expand[0], y))
    sc = x_cf if isinstance(m.shortcut, nn.Identity) else bn(m.shortcut[1], conv(m.shortcut[0], x_cf))
    return F.leaky_relu(y + sc, 0.2)


class ReferenceEncoder(PointEncoder):
    """Released-style forward of a :class:`PointEncoder`: same modules, same parameters."""

    def forward(self, xyz):
        e = self
        x = ref_lpfa(e.lpfa, None, xyz, e.k)
        for block in e.blocks:
            x = ref_cic(block, x, xyz, e.k)
        lin, norm, _, drop = e.head
        x = drop(F.relu(bn(norm, conv(lin, x))))
        return x.transpose(1, 2)


def reference_backbone(cfg: BackboneConfig) -> MeshSmileBackbone:
    """A MeshSmileBackbone whose encoder runs the reference forward: same architecture and parameter count."""
    model = MeshSmileBackbone(cfg)
    model.encoder.__class__ = ReferenceEncoder
    return model


# ----------------------------------------------------------------------------------------------------- measuring

def train_step_fn(model: MeshSmileBackbone, batch: int, frames: int, autocast: bool):
    head = nn.Linear(model.out_dim, 1)
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=5e-4, weight_decay=0.0)
    clip = torch.rand(batch, frames, 478, 3)
    y = torch.randint(0, 2, (batch,)).float()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            h, _ = model(clip)
            loss = F.binary_cross_entropy_with_logits(head(h.float()).squeeze(-1), y)
        loss.backward()
        opt.step()
    return step


def best_seconds(steps: dict, rounds: int) -> dict[str, float]:
    """Seconds per call of each step, one step after the other: a warm-up call, then the minimum of ``rounds`` timed
    calls (the minimum filters bursts of load from other processes on a shared machine). Steps run in dict order;
    put the memory-hungry reference last so the memory it frees does not slow the next step's first allocations."""
    best = {}
    for name, step in steps.items():
        step()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        best[name] = min(times)
    return best


def profile_step(step, top: int = 12) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
    return [{"op": e.key, "self_ms": round(e.self_cpu_time_total / 1e3, 1),
             "share": round(e.self_cpu_time_total / total, 3)} for e in rows]


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
    ap.add_argument("--steps", type=int, default=2, help="timed rounds per step (after one warm-up); min is kept")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="batch 4, 1 step: a smoke run")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.batch, args.steps = 4, 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bf16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    result: dict = {"batch": args.batch, "frames": args.frames, "steps": args.steps, "threads": args.threads,
                    "cpu_bf16": bool(bf16), "synthetic_input": True}
    paper = BackboneConfig.paper()
    fast, ref = MeshSmileBackbone(paper), reference_backbone(paper)
    ref.load_state_dict(fast.state_dict())
    n_fast, n_ref = (sum(p.numel() for p in m.parameters()) for m in (fast, ref))
    assert n_fast == n_ref, (n_fast, n_ref)
    result["params_paper_backbone"] = n_fast
    xyz = torch.rand(args.batch * args.frames, 478, 3)
    enc_ref = ReferenceEncoder.__new__(ReferenceEncoder)
    enc_ref.__dict__ = fast.encoder.__dict__  # the same modules and parameters, reference forward
    steps = {"optimised": train_step_fn(fast, args.batch, args.frames, autocast=False)}
    if bf16:
        steps["optimised_bf16"] = train_step_fn(fast, args.batch, args.frames, autocast=True)
    steps["encoder_optimised"] = lambda: fast.encoder(xyz).sum().backward()
    steps["encoder_reference"] = lambda: enc_ref(xyz).sum().backward()
    steps["reference"] = train_step_fn(ref, args.batch, args.frames, autocast=False)
    seconds = best_seconds(steps, args.steps)
    for name, sec in seconds.items():
        result[f"paper_{name}_train_clips_per_s"] = args.batch / sec
    result["speedup_fp32"] = seconds["reference"] / seconds["optimised"]
    result["speedup_best"] = seconds["reference"] / min(v for k, v in seconds.items() if k.startswith("optimised"))
    result["encoder_speedup_fp32"] = seconds["encoder_reference"] / seconds["encoder_optimised"]
    result["encoder_share_of_optimised_step"] = seconds["encoder_optimised"] / seconds["optimised"]
    step_fast = steps["optimised"]
    fast.eval()
    with torch.no_grad():
        clip = torch.rand(args.batch, args.frames, 478, 3)
        t0 = time.perf_counter()
        fast(clip)
        result["paper_optimised_eval_clips_per_s"] = args.batch / (time.perf_counter() - t0)
    fast.train()
    if not args.no_profile:
        result["profile_paper_optimised_step"] = profile_step(step_fast)
    demo = MeshSmileBackbone(BackboneConfig.demo())
    result["params_demo_backbone"] = sum(p.numel() for p in demo.parameters())
    step_demo = train_step_fn(demo, args.batch, args.frames, autocast=False)
    result["demo_train_clips_per_s"] = args.batch / best_seconds({"demo": step_demo}, 10)["demo"]
    loading = data_seconds_per_batch(args.batch, args.frames)
    paper_step = seconds["optimised"]
    demo_step = args.batch / result["demo_train_clips_per_s"]
    loading["share_of_paper_train_step"] = loading["seconds_per_batch"] / (loading["seconds_per_batch"] + paper_step)
    loading["share_of_demo_train_step"] = loading["seconds_per_batch"] / (loading["seconds_per_batch"] + demo_step)
    result["data_loading"] = loading
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_backbone.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

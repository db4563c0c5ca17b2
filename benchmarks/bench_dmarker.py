"""D-Marker speed: the vectorised implementation vs a straightforward per-clip Python-loop reference.

    python benchmarks/bench_dmarker.py [--videos 40] [--frames 200]

The reference below re-implements the same formulas clip by clip, frame by frame (the way the released
``extract_dmarker_features`` cell works); it lives only here. The script also checks that both give the same
numbers (a correctness cross-check), prints the timings and writes them to benchmarks/out/bench_dmarker.json.
Landmarks are synthetic (a random face with a smile-like lip motion plus tracking noise).
"""
from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import io as atomic  # noqa: E402
from common.face.topology import N_POINTS  # noqa: E402
from common.smile.clips import UVA_LANDMARK_MAX, UVA_LANDMARK_MIN  # noqa: E402
from common.smile.dmarker import video_dmarkers  # noqa: E402

IDX = [33, 159, 133, 362, 386, 263, 50, 280, 1, 62, 308]


# ------------------------------------------------------------------------------------- slow reference (loops)
def _d(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def _face_frame(p):
    """Per-frame pose normalisation written out with plain vector algebra."""
    cr = [(p[0][i] + p[2][i]) / 2 for i in range(3)]
    cl = [(p[3][i] + p[5][i]) / 2 for i in range(3)]
    o = [(cr[i] + cl[i]) / 2 for i in range(3)]
    ex = [cl[i] - cr[i] for i in range(3)]
    s = math.sqrt(sum(e * e for e in ex))
    ex = [e / s for e in ex]
    v = [p[8][i] - o[i] for i in range(3)]
    dot = sum(v[i] * ex[i] for i in range(3))
    ey = [v[i] - dot * ex[i] for i in range(3)]
    n = math.sqrt(sum(e * e for e in ey))
    ey = [e / n for e in ey]
    ez = [ex[1] * ey[2] - ex[2] * ey[1], ex[2] * ey[0] - ex[0] * ey[2], ex[0] * ey[1] - ex[1] * ey[0]]
    out = []
    for q in p:
        c = [q[i] - o[i] for i in range(3)]
        out.append([sum(r[i] * c[i] for i in range(3)) / s for r in (ex, ey, ez)])
    return out


def _signals_ref(clip, variant):
    frames = [[list(map(float, clip[t, j])) for j in IDX] for t in range(clip.shape[0])]
    if variant == "released":
        frames = [[[(q[i] - UVA_LANDMARK_MIN[i]) / (UVA_LANDMARK_MAX[i] - UVA_LANDMARK_MIN[i]) for i in range(2)]
                   for q in f] for f in frames]
    else:
        frames = [_face_frame(f) for f in frames]
    f1 = frames[0]
    mid = lambda a, b: [(x + y) / 2 for x, y in zip(a, b)]  # noqa: E731
    sig = {"eye": [], "cheek": [], "lip": []}
    side = {k: ([], []) for k in sig}
    for p in frames:
        cr, cl = mid(p[0], p[2]), mid(p[3], p[5])
        kr = -1.0 if p[1][1] > cr[1] else 1.0
        kl = -1.0 if p[4][1] > cl[1] else 1.0
        if variant == "released":
            m = mid(p[9], p[10])
            sig["lip"].append((_d(m, p[9]) + _d(m, p[10])) / (2 * _d(f1[9], f1[10])))
            sig["eye"].append((kr * _d(cr, p[1]) + kl * _d(cl, p[4])) / (2 * _d(f1[0], f1[2])))
            sig["cheek"].append((_d(cr, p[6]) + _d(cl, p[7])) / (2 * _d(f1[0], f1[2])))
        else:
            m1, k1 = mid(f1[9], f1[10]), mid(f1[6], f1[7])
            parts = {"lip": (_d(m1, p[9]) / _d(f1[9], f1[10]), _d(m1, p[10]) / _d(f1[9], f1[10])),
                     "eye": (kr * _d(cr, p[1]) / _d(p[0], p[2]), kl * _d(cl, p[4]) / _d(p[0], p[2])),
                     "cheek": (_d(k1, p[6]) / _d(f1[6], f1[7]), _d(k1, p[7]) / _d(f1[6], f1[7]))}
            for k, (r, l) in parts.items():
                side[k][0].append(r)
                side[k][1].append(l)
                sig[k].append((r + l) / 2)
    return sig, side


def _longest(cond, released):
    best, best_pair, start = 0, None, None
    for i, val in enumerate(cond):
        if val and start is None:
            start = i
        last = i == len(cond) - 1
        if start is not None and (not val or last):
            end = i if (released or val) else i - 1
            if end - start + 1 > best:
                best, best_pair = end - start + 1, (start, end)
            start = None
    return best_pair


def _phase_feats(seg, right, left, variant, w):
    n = len(seg)
    if n == 0:
        return [0.0] * 25
    v = [seg[i + 1] - seg[i] for i in range(n - 1)]
    a = [v[i + 1] - v[i] for i in range(len(v) - 1)]
    dp = [seg[i + 1] for i in range(n - 1) if v[i] > 0]
    dm = [seg[i + 1] for i in range(n - 1) if v[i] < 0]
    vp, vm = [x for x in v if x > 0], [-x for x in v if x < 0]
    ap, am = [x for x in a if x > 0], [-x for x in a if x < 0]
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    mx = lambda xs: max(xs) if xs else 0.0  # noqa: E731
    sp, sm = sum(dp), sum(abs(x) for x in dm)
    mu = sum(seg) / n
    tot = sp + sm
    net = sp - sm
    f = [len(dp) / w, len(dm) / w, n / w, len(dp) / n, len(dm) / n, max(seg), mu, mean(dp),
         (sum(dm) if variant == "released" else sm) / len(dm) if dm else 0.0,
         math.sqrt(sum((x - mu) ** 2 for x in seg) / n), sp, sm, net,
         sp / tot if tot > 0 else 0.0, sm / tot if tot > 0 else 0.0, mx(vp), mx(vm), mean(vp), mean(vm),
         mx(ap), mx(am), mean(ap), mean(am), net / (n * w) if variant == "released" else net * w / n]
    f.append(0.0 if variant == "released" else abs(sum(left) - sum(right)) / n)
    return f


def reference_dmarker(clip, variant, fps):
    sig, side = _signals_ref(clip, variant)
    released = variant == "released"
    w = 1.0 if released else fps
    lip = sig["lip"]
    diffs = [lip[i + 1] - lip[i] for i in range(len(lip) - 1)]
    on = _longest([d > 0 for d in diffs], released)
    off = _longest([d < 0 for d in diffs], released)
    ranges = [range(on[0], on[1] + 2) if on else range(0),
              range(on[1] + 2, off[0]) if on and off else range(0),
              range(off[0], off[1] + 2) if off else range(0)]
    out = []
    for region in ("eye", "cheek", "lip"):
        for r in ranges:
            seg = [sig[region][t] for t in r]
            right = [side[region][0][t] for t in r] if not released else []
            left = [side[region][1][t] for t in r] if not released else []
            out.extend(_phase_feats(seg, right, left, variant, w))
    return np.array(out, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------- benchmark
def synthetic_video(n_frames, rng):
    base = rng.uniform(0.3, 0.7, (N_POINTS, 3))
    base[IDX] = [(0.40, 0.40, 0), (0.43, 0.38, 0), (0.46, 0.40, 0), (0.54, 0.40, 0), (0.57, 0.38, 0), (0.60, 0.40, 0),
                 (0.40, 0.55, 0), (0.60, 0.55, 0), (0.50, 0.55, -0.05), (0.45, 0.70, 0), (0.55, 0.70, 0)]
    t = np.linspace(0, 1, n_frames)
    smile = 0.02 * np.clip(np.sin(np.pi * t * rng.uniform(0.8, 1.2)), 0, None)
    seq = np.repeat(base[None], n_frames, 0) + rng.normal(0, 0.0015, (n_frames, N_POINTS, 3))
    seq[:, 62, 0] -= smile
    seq[:, 308, 0] += smile
    return seq.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--clip-len", type=int, default=16)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    videos = [synthetic_video(args.frames, rng) for _ in range(args.videos)]
    n_clips = sum(v.shape[0] - args.clip_len + 1 for v in videos)
    results = {"videos": args.videos, "frames_per_video": args.frames, "clips": n_clips, "synthetic": True,
               "machine": platform.processor() or platform.machine(), "variants": {}}
    for variant in ("released", "paper"):
        t_fast = math.inf
        for _ in range(3):  # best of 3: the machine is shared, the minimum is the least disturbed run
            t0 = time.perf_counter()
            fast = np.concatenate([video_dmarkers(v, variant, 50.0, "clip", args.clip_len) for v in videos])
            t_fast = min(t_fast, time.perf_counter() - t0)
        t0 = time.perf_counter()
        slow = np.stack([reference_dmarker(v[s:s + args.clip_len], variant, 50.0)
                         for v in videos for s in range(v.shape[0] - args.clip_len + 1)])
        t_slow = time.perf_counter() - t0
        max_diff = float(np.abs(fast - slow).max())
        agree = float(np.mean(np.all(np.isclose(fast, slow, rtol=1e-4, atol=1e-4), axis=1)))
        results["variants"][variant] = {
            "vectorised_seconds_best_of_3": round(t_fast, 4), "loop_reference_seconds": round(t_slow, 3),
            "speedup": round(t_slow / t_fast, 1), "clips_per_second_vectorised": round(n_clips / t_fast),
            "max_abs_difference": max_diff, "fraction_of_clips_identical": agree,
        }
        print(f"{variant:9s} {n_clips} clips: vectorised {t_fast:.3f} s ({n_clips / t_fast:,.0f} clips/s), "
              f"loop reference {t_slow:.2f} s -> {t_slow / t_fast:.0f}x faster; max |diff| {max_diff:.2e}, "
              f"{100 * agree:.1f}% of clips identical")
    atomic.write_json(ROOT / "benchmarks" / "out" / "bench_dmarker.json", results)


if __name__ == "__main__":
    main()

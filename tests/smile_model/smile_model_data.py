"""A tiny smile dataset in the published on-disk format, built in a temporary folder (random landmarks).

Spontaneous videos get a slower, longer lip-corner widening than posed ones, so a model can learn something;
everything else is noise. Used by the tests and the benchmark's data-loading measurement.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LIP_CORNERS = (62, 308)


def make_tiny_dataset(root: Path, n_videos: int = 12, frames: int = 24, n_folds: int = 3, seed: int = 0,
                      one_class_fold: int | None = None) -> Path:
    """BBC-style names (genuine_/posed_, one subject per video); ``one_class_fold`` makes that fold's training set
    hold posed videos only (a bad-input case)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "npy").mkdir(parents=True, exist_ok=True)
    base = rng.uniform(0.2, 0.8, size=(478, 3)).astype(np.float32)
    base[:, 2] = rng.uniform(-0.05, 0.05, size=478)
    videos, labels = [], {}
    for i in range(n_videos):
        label = i % 2
        name = f"{'genuine' if label else 'posed'}_v{i:03d}"
        t = np.linspace(0, 1, frames)[:, None]
        widen = (0.04 if label else 0.02) * np.sin(np.pi * t) ** (1 if label else 3)
        seq = base[None] + rng.normal(0, 0.003, size=(frames, 478, 3)).astype(np.float32)
        seq[:, LIP_CORNERS[0], 0] -= widen[:, 0]
        seq[:, LIP_CORNERS[1], 0] += widen[:, 0]
        np.save(root / "npy" / f"{name}.npy", seq.astype(np.float32))
        videos.append(name)
        labels[name] = label
    for k in range(1, n_folds + 1):
        test = [v for j, v in enumerate(videos) if j % n_folds == k - 1]
        train = [v for v in videos if v not in test]
        if one_class_fold == k:
            train = [v for v in train if labels[v] == 0]
        (root / "labels" / str(k)).mkdir(parents=True, exist_ok=True)
        (root / "labels" / str(k) / "train.json").write_text(json.dumps({v: labels[v] for v in train}))
        (root / "labels" / str(k) / "test.json").write_text(json.dumps({v: labels[v] for v in test}))
    return root


def micro_backbone(**overrides):
    """A backbone small enough for many forward/backward passes in a test (same components as the paper one)."""
    from common.smile.backbone_config import BackboneConfig

    base = {"n_points": 12, "k": 3, "lpfa_width": 8, "cic": ((8, 8, 2), (8, 16, 2)), "n_curves": 3,
                "curve_length": 2, "point_width": 16, "n_tokens": 2, "dim": 16, "spatial_dim": 16, "spatial_depth": 2,
                "temporal_depth": 1, "heads": 2, "dim_head": 8, "mlp_dim": 32, "dropout": 0.0}
    base.update(overrides)
    return BackboneConfig(**base)


def random_batch(b: int = 8, t: int = 4, seed: int = 0):
    """(clip (b, t, 478, 3), dmarker (b, 225), label (b,)) with both classes."""
    import torch

    g = torch.Generator().manual_seed(seed)
    clip = torch.rand(b, t, 478, 3, generator=g)
    dmarker = torch.randn(b, 225, generator=g)
    label = (torch.arange(b) % 2).float()
    return clip, dmarker, label

"""Seeding and determinism: the same seed gives the same CPU result, bit for bit."""
from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int, deterministic: bool = True) -> np.random.Generator:
    """Seed Python, NumPy and torch; return a NumPy Generator for code that takes one explicitly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # the statistics and data tools work without torch
        return np.random.default_rng(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
    return np.random.default_rng(seed)


def torch_generator(seed: int):
    """A torch.Generator for DataLoader shuffling, independent of the global stream."""
    import torch

    g = torch.Generator()
    g.manual_seed(seed)
    return g

"""Tiny FER2013-format data: each class draws a bright square at its own place on a noisy background."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TINY = {"input_size": 32, "token_grid": 2, "dim": 16, "depth": 1, "heads": 2, "ff_dim": 32, "batch_size": 8}


def write_fer2013_csv(folder: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """``fer2013.csv`` (header ``emotion,pixels,Usage``) with ``per_class[usage]`` images of each of 7 classes."""
    rng = np.random.default_rng(seed)
    lines = ["emotion,pixels,Usage"]
    for usage, n in per_class.items():
        for c in range(7):
            for _ in range(n):
                img = rng.integers(0, 60, (48, 48))
                r, col = divmod(c, 3)
                img[4 + 14 * r: 16 + 14 * r, 4 + 14 * col: 16 + 14 * col] = 230
                lines.append(f"{c},{' '.join(map(str, img.ravel()))},{usage}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fer2013.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_fer2013(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fer") / "FER2013"
    write_fer2013_csv(root, {"Training": 4, "PublicTest": 2, "PrivateTest": 2})
    return root

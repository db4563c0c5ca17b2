"""Atomic file writing: a reader never sees a half-written file, and a killed process leaves none behind."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only if the block succeeds.

    ``keep_suffix`` ends the temporary name with the target's suffix too, for writers that choose the format by it
    (e.g. OpenCV's VideoWriter).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".tmp" + (target.suffix if keep_suffix else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_npy(target: str | os.PathLike, array) -> None:
    """np.save through a temporary file (np.save would append .npy to a name without it, so write via a handle)."""
    import numpy as np

    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def save_torch(target: str | os.PathLike, obj: Any) -> None:
    import torch

    with atomic_path(target) as tmp:
        torch.save(obj, tmp)


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete ``.*.tmp`` leftovers of a killed writer under ``folder``; return how many were removed."""
    n = 0
    for p in Path(folder).rglob(".*.tmp*"):
        p.unlink(missing_ok=True)
        n += 1
    return n

"""Checkpoints that carry their own config and provenance, so a model can be rebuilt without being told its shape."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from common import io as atomic

FORMAT = "repro-checkpoint/1"
REQUIRED_KEYS = ("format", "study", "config", "model_state", "provenance")


class CheckpointError(ValueError):
    """A checkpoint is unreadable, from another format version, or missing keys."""


def save_checkpoint(path: str | Path, *, study: str, config: Mapping[str, Any], model_state: Mapping[str, Any],
                    provenance: Mapping[str, Any], **extra: Any) -> Path:
    """Write ``{format, study, config, model_state, provenance, **extra}`` atomically."""
    payload = {"format": FORMAT, "study": study, "config": dict(config), "model_state": dict(model_state),
               "provenance": dict(provenance), **extra}
    atomic.save_torch(path, payload)
    return Path(path)


def load_checkpoint(path: str | Path, study: str | None = None) -> dict[str, Any]:
    """Read and check a checkpoint; every problem names the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many kinds for a corrupt file
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: not a repository checkpoint (top level is {type(payload).__name__})")
    if payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {payload.get('format')!r}, this code reads {FORMAT!r}")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint is missing keys {missing}")
    if study is not None and payload["study"] != study:
        raise CheckpointError(f"{path}: a {payload['study']!r} checkpoint, expected {study!r}")
    return payload

"""The D-Marker scaler: per-feature standardisation fitted on a training fold, saved with the model."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.smile.dmarker import DMARKER_DIM


@dataclass
class DMarkerScaler:
    """Per-feature standardisation z = (x - mean) / std, fitted on the training fold only (std 0 -> 1)."""

    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def fit(self, features: np.ndarray) -> "DMarkerScaler":
        x = np.asarray(features)
        if x.ndim != 2 or x.shape[1] != DMARKER_DIM or x.shape[0] == 0:
            raise ValueError(f"DMarkerScaler.fit expects (n >= 1, {DMARKER_DIM}) features, got {x.shape}")
        # two passes in float64 over row blocks: exact enough, and no float64 copy of a large clip-scope matrix
        blocks = range(0, x.shape[0], 65536)
        total = np.zeros(DMARKER_DIM)
        for s in blocks:
            part = np.asarray(x[s:s + 65536], dtype=np.float64)
            if not np.isfinite(part).all():
                raise ValueError("DMarkerScaler.fit: features contain NaN or inf")
            total += part.sum(0)
        mean = total / x.shape[0]
        sq = np.zeros(DMARKER_DIM)
        for s in blocks:
            sq += ((np.asarray(x[s:s + 65536], dtype=np.float64) - mean) ** 2).sum(0)
        std = np.sqrt(sq / x.shape[0])
        self.mean, self.scale = mean, np.where(std > 1e-12, std, 1.0)
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        if self.mean is None:
            raise RuntimeError("DMarkerScaler.transform called before fit")
        x = np.asarray(features, dtype=np.float64)
        if x.shape[-1] != DMARKER_DIM:
            raise ValueError(f"expected (..., {DMARKER_DIM}) features, got {x.shape}")
        return ((x - self.mean) / self.scale).astype(np.float32)

    def fit_transform(self, features: np.ndarray) -> np.ndarray:
        return self.fit(features).transform(features)

    def state_dict(self) -> dict:
        if self.mean is None:
            return {"mean": None, "scale": None}
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "DMarkerScaler":
        if state.get("mean") is None:
            return cls()
        return cls(np.asarray(state["mean"], dtype=np.float64), np.asarray(state["scale"], dtype=np.float64))

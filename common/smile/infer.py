"""Trained smile models applied to a new landmark sequence: P(spontaneous) per clip, over clips that tile the video.

Each clip is prepared exactly as the evaluation loader prepares it (:func:`common.smile.clips.model_clip`, the run's
D-Marker variant / scope / scaler); a model's probability for the video is the mean over clips, as in evaluation.
Consecutive windows ``0, L, 2L, ...`` plus one ending at the last frame cover every frame once. An ensemble averages
its members' clip probabilities.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from common.checkpoints import CheckpointError


def window_starts(n_frames: int, clip_len: int) -> list[int]:
    if n_frames <= clip_len:
        return [0]
    starts = list(range(0, n_frames - clip_len + 1, clip_len))
    if starts[-1] + clip_len < n_frames:
        starts.append(n_frames - clip_len)
    return starts


class SmileModel:
    """One trained smile model rebuilt from its checkpoint payload (as written by :mod:`common.smile.run`)."""

    def __init__(self, payload: Mapping[str, Any], source: str):
        from common.smile.dmarker_scaler import DMarkerScaler
        from common.smile.models import model_from_checkpoint

        try:
            model, cfg = model_from_checkpoint(payload)
            self.dmarker_variant = str(cfg["dmarker_variant"])
            self.dmarker_scope = str(cfg["dmarker_scope"])
            self.clip_len = int(cfg["clip_len"])
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"{source}: cannot rebuild the smile model ({type(exc).__name__}: {exc})") from exc
        state = payload.get("dmarker_scaler")
        scaler = DMarkerScaler.from_state_dict(state) if isinstance(state, Mapping) else None
        self.scaler = scaler if scaler is not None and scaler.mean is not None else None
        self.model, self.cfg = model.eval(), dict(cfg)

    def clip_probabilities(self, landmarks: np.ndarray, fps: float, aspect: float, starts: Sequence[int]) -> np.ndarray:
        import torch

        from common.smile.clips import model_clip
        from common.smile.dmarker import video_dmarkers

        clips = np.stack([model_clip(landmarks, s, self.clip_len) for s in starts])
        table = video_dmarkers(landmarks, self.dmarker_variant, fps, self.dmarker_scope, self.clip_len, aspect=aspect)
        dm = table[list(starts)] if self.dmarker_scope == "clip" else np.repeat(table[:1], len(starts), axis=0)
        dm = self.scaler.transform(dm) if self.scaler is not None else dm.astype(np.float32)
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(clips), torch.from_numpy(np.ascontiguousarray(dm, dtype=np.float32)))
        # one logit per clip; label 1 = spontaneous in every smile dataset here
        return torch.sigmoid(logits.float().reshape(len(starts))).numpy().astype(np.float64)


class SmileEnsemble:
    """Models of one trained configuration (same clip length and D-Marker settings); probabilities are averaged."""

    def __init__(self, members: Sequence[SmileModel]):
        if not members:
            raise ValueError("an ensemble needs at least one model")
        first = members[0]
        for m in members[1:]:
            if (m.clip_len, m.dmarker_variant, m.dmarker_scope) != (first.clip_len, first.dmarker_variant,
                                                                      first.dmarker_scope):
                raise CheckpointError("the ensemble's checkpoints disagree on clip_len / dmarker_variant / "
                                      "dmarker_scope; they are not one configuration")
        self.members = list(members)
        self.clip_len, self.dmarker_variant = first.clip_len, first.dmarker_variant

    def predict(self, landmarks: np.ndarray, fps: float, aspect: float = 1.0) -> dict[str, Any]:
        starts = window_starts(len(landmarks), self.clip_len)
        per_model = np.stack([m.clip_probabilities(landmarks, fps, aspect, starts) for m in self.members])
        clip_p = per_model.mean(axis=0)
        return {"p_spontaneous": float(clip_p.mean()), "clip_p": clip_p.tolist(), "starts": starts,
                "clip_len": self.clip_len, "member_p": per_model.mean(axis=1).tolist()}

"""The torch dataset of smile clips (:class:`SmileClips`): landmark windows plus their D-Markers (or DeepMarkerNet's
216-d target) for training (one window per item) and evaluation (n windows per video)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from common.smile.clips import (CLIP_LEN, EVAL_WINDOWS, N_EVAL_CLIPS, eval_window_starts, model_clip, norm_range,
                                train_window_start)
from common.smile.data import DataError, SmileDataset
from common.smile.deepmarkernet_target import deepmarkernet_target
from common.smile.dmarker_scaler import DMarkerScaler

try:
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # the data tools work without torch; SmileClips needs it
    _TorchDataset = object


AUX_TARGETS = ("dmarker", "deepmarkernet")


def aux_target_for(variant: str) -> str:
    """What the ``dmarker`` key of a batch holds for ``variant``: DeepMarkerNet regresses its own 216-d target."""
    return "deepmarkernet" if variant == "deepmarkernet" else "dmarker"


class SmileClips(_TorchDataset):
    """16-frame landmark clips plus their D-Markers for training (one window per item) or evaluation (n windows).

    Train item: {"clip": (L, 478, 3) float32 normalised, "dmarker": (225,), "label": scalar, "index": int};
    eval item: "clip" (n_eval_clips, L, 478, 3), "dmarker" (n_eval_clips, 225). Training windows are re-drawn by
    :meth:`set_epoch` as a function of (seed, epoch, index); evaluation windows are fixed by (seed, index), or with
    ``eval_windows="per_epoch"`` (released) re-drawn from (seed, epoch, index) too.
    ``scaler`` must be a :class:`DMarkerScaler` fitted on the training fold only (see :meth:`dmarker_features`).
    ``landmark_norm`` names the min/max constants (:data:`common.smile.clips.LANDMARK_NORMS`) applied to the network
    input and, for the released D-Marker, to the clip it is measured on. ``target="deepmarkernet"`` puts
    DeepMarkerNet's 216-d auxiliary target of each window (computed on the network-input clip, never scaled) in the
    ``dmarker`` key instead of the D-Marker.
    """

    def __init__(self, dataset: SmileDataset, videos: Sequence[str], mode: str = "train", clip_len: int = CLIP_LEN,
                 n_eval_clips: int = N_EVAL_CLIPS, seed: int = 0, dmarker_variant: str = "paper",
                 dmarker_scope: str = "video", scaler: DMarkerScaler | None = None,
                 window_sampling: str = "all_starts", landmark_norm: str = "uva-nemo", eval_windows: str = "fixed",
                 target: str = "dmarker"):
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        unknown = [v for v in videos if v not in dataset.labels]
        if unknown:
            raise DataError(f"{dataset.name}: {len(unknown)} video(s) not in the dataset, e.g. {unknown[:3]}")
        if clip_len < 1 or n_eval_clips < 1:
            raise ValueError("clip_len and n_eval_clips must be >= 1")
        if eval_windows not in EVAL_WINDOWS:
            raise ValueError(f"unknown eval_windows {eval_windows!r}; accepted: {', '.join(EVAL_WINDOWS)}")
        if target not in AUX_TARGETS:
            raise ValueError(f"unknown target {target!r}; accepted: {', '.join(AUX_TARGETS)}")
        if target == "deepmarkernet" and scaler is not None:
            raise ValueError("DeepMarkerNet's target is regressed unscaled, as released; pass scaler=None")
        self.dataset, self.videos, self.mode = dataset, list(videos), mode
        self.clip_len, self.n_eval_clips, self.seed = int(clip_len), int(n_eval_clips), int(seed)
        self.window_sampling, self.eval_windows, self.target = window_sampling, eval_windows, target
        self.landmark_norm, self.norm_range = landmark_norm, norm_range(landmark_norm)
        self.scaler = scaler
        self.table = (dataset.dmarker_table(dmarker_variant, dmarker_scope, self.clip_len, norm=landmark_norm)
                      if target == "dmarker" else None)
        self.scope = dmarker_scope
        self.labels = np.array([dataset.labels[v] for v in self.videos], dtype=np.float32)
        self._n_frames = [dataset.n_frames(v) for v in self.videos]
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.videos)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def starts(self, index: int) -> np.ndarray:
        """Window start(s) of item ``index`` under the current epoch (train: 1, eval: n_eval_clips)."""
        n = self._n_frames[index]
        if self.mode == "train":
            return np.array([train_window_start(n, self.seed, self.epoch, index, self.clip_len, self.window_sampling)])
        epoch = self.epoch if self.eval_windows == "per_epoch" else None
        return eval_window_starts(n, self.seed, index, self.n_eval_clips, self.clip_len, self.window_sampling,
                                  epoch=epoch)

    def _dmarker_rows(self, index: int, starts: np.ndarray) -> np.ndarray:
        rows = self.table.rows(self.videos[index])
        out = rows[starts] if self.scope == "clip" else np.repeat(rows[:1], len(starts), axis=0)
        out = np.asarray(out, dtype=np.float32)
        return self.scaler.transform(out) if self.scaler is not None else out

    def __getitem__(self, index: int) -> dict:
        import torch

        arr = self.dataset.array(self.videos[index])
        starts = self.starts(index)
        clips = np.stack([model_clip(arr, int(s), self.clip_len, *self.norm_range) for s in starts])
        dm = deepmarkernet_target(clips) if self.target == "deepmarkernet" else self._dmarker_rows(index, starts)
        if self.mode == "train":
            clips, dm = clips[0], dm[0]
        return {"clip": torch.from_numpy(clips), "dmarker": torch.from_numpy(np.ascontiguousarray(dm)),
                "label": torch.tensor(self.labels[index], dtype=torch.float32), "index": index}

    def dmarker_features(self) -> np.ndarray:
        """Raw (unscaled) D-Markers of these videos: (n_videos, 225) for scope video, all windows for scope clip."""
        if self.table is None:
            raise ValueError("these clips carry DeepMarkerNet's target, not D-Markers: there is nothing to scale")
        return np.concatenate([np.asarray(self.table.rows(v), dtype=np.float32) for v in self.videos])

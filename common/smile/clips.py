"""Seeded 16-frame window sampling and the released landmark normalisation.

The released loaders (FUS = DeepMarkerNet = MeshSmileNet) draw one window per video per epoch with
``np.random.randint(0, T - 16)``: the upper bound is exclusive, so the last start ``T - 16`` is never drawn, and no
seed is set. Here every start ``0 .. T-L`` (inclusive) is reachable and the draw is a pure function of
``(seed, epoch, index)``. ``window_sampling="released"`` keeps the exclusive bound, for comparison only.

Zero padding: when ``T <= L`` the whole video is one window, padded with zero frames at the end *after*
normalisation, as in the released loader.

Evaluation windows: ``eval_windows="fixed"`` draws each test video's windows once, from (seed, index);
``"per_epoch"`` (released) redraws them every epoch, from (seed, epoch, index), as the released loader's
``__getitem__`` does.

Normalisation: x' = (x - min) / (max - min) per axis, computed in float64 and cast to float32 (as released). Two
constant sets exist (:data:`LANDMARK_NORMS`): the UvA-NEMO min/max, which 59 of the 60 released notebooks use for
every dataset, and the constants of the released BBC Hadamard notebook alone.
"""
from __future__ import annotations

import numpy as np

CLIP_LEN = 16
N_EVAL_CLIPS = 5

# Released min/max of UvA-NEMO x, y, z; the released notebooks use them for every dataset
# (docs/smile-method.md, "Clips and landmark normalisation").
UVA_LANDMARK_MIN = np.array([0.06372425, 0.05751023, -0.08976112])
UVA_LANDMARK_MAX = np.array([0.63246971, 1.01475966, 0.14436169])
# Only Code/BBC/Hadamard-multip.ipynb uses these.
BBC_HADAMARD_LANDMARK_MIN = np.array([0.21279547, 0.19596553, -0.13428977])
BBC_HADAMARD_LANDMARK_MAX = np.array([0.7755264, 0.96657193, 0.27711481])

LANDMARK_NORMS = {"uva-nemo": (UVA_LANDMARK_MIN, UVA_LANDMARK_MAX),
                  "bbc-hadamard": (BBC_HADAMARD_LANDMARK_MIN, BBC_HADAMARD_LANDMARK_MAX)}

WINDOW_SAMPLINGS = ("all_starts", "released")
EVAL_WINDOWS = ("fixed", "per_epoch")
# Distinct stream tags so train and eval draws never share random numbers.
_TRAIN_STREAM, _EVAL_STREAM = 0x7121, 0xE7A1


def norm_range(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(min_xyz, max_xyz) of a named constant set (:data:`LANDMARK_NORMS`)."""
    if name not in LANDMARK_NORMS:
        raise ValueError(f"unknown landmark normalisation {name!r}; accepted: {', '.join(LANDMARK_NORMS)}")
    return LANDMARK_NORMS[name]


def normalise_landmarks(x: np.ndarray, lo: np.ndarray = UVA_LANDMARK_MIN,
                        hi: np.ndarray = UVA_LANDMARK_MAX) -> np.ndarray:
    """x' = (x - min_xyz) / (max_xyz - min_xyz), per coordinate, in float64, returned as float32 (as released)."""
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    return ((np.asarray(x, dtype=np.float64) - lo) / (hi - lo)).astype(np.float32)


def n_window_starts(n_frames: int, clip_len: int = CLIP_LEN, window_sampling: str = "all_starts") -> int:
    """How many distinct starts a sampler can draw: T-L+1 (all_starts), T-L (released, last one excluded), >= 1."""
    if n_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {n_frames}")
    _check_sampling(window_sampling)
    full = n_frames - clip_len + 1
    if window_sampling == "released":
        full -= 1  # randint(0, T-L) excludes T-L
    return max(full, 1)


def train_window_start(n_frames: int, seed: int, epoch: int, index: int, clip_len: int = CLIP_LEN,
                       window_sampling: str = "all_starts") -> int:
    """The training window start of item ``index`` at ``epoch``: uniform over the reachable starts."""
    rng = np.random.default_rng([seed, epoch, index, _TRAIN_STREAM])
    return int(rng.integers(0, n_window_starts(n_frames, clip_len, window_sampling)))


def eval_window_starts(n_frames: int, seed: int, index: int, n_clips: int = N_EVAL_CLIPS, clip_len: int = CLIP_LEN,
                       window_sampling: str = "all_starts", epoch: int | None = None) -> np.ndarray:
    """``n_clips`` independent uniform starts (with replacement, as released).

    ``epoch=None``: fixed per (seed, index); an epoch number: drawn afresh per (seed, epoch, index) (released).
    """
    key = [seed, index, _EVAL_STREAM] if epoch is None else [seed, epoch, index, _EVAL_STREAM]
    rng = np.random.default_rng(key)
    return rng.integers(0, n_window_starts(n_frames, clip_len, window_sampling), size=n_clips)


def take_window(seq: np.ndarray, start: int, clip_len: int = CLIP_LEN) -> tuple[np.ndarray, int]:
    """Frames ``start .. start+L-1`` of ``seq`` (any leading-frame array), zero-padded at the end to ``L`` frames.

    Returns the window (float dtype of ``seq``; float32 for other input) and the number of real frames.
    """
    part = np.asarray(seq[start:start + clip_len])
    if part.dtype.kind != "f":
        part = part.astype(np.float32)
    n_real = part.shape[0]
    if n_real == clip_len:
        return part, n_real
    out = np.zeros((clip_len,) + part.shape[1:], dtype=part.dtype)
    out[:n_real] = part
    return out, n_real


def model_clip(seq: np.ndarray, start: int, clip_len: int = CLIP_LEN, lo: np.ndarray = UVA_LANDMARK_MIN,
               hi: np.ndarray = UVA_LANDMARK_MAX) -> np.ndarray:
    """The network input: window normalised with the released constants, then zero padded (released order)."""
    part = normalise_landmarks(seq[start:start + clip_len], lo, hi)
    if part.shape[0] == clip_len:
        return part
    out = np.zeros((clip_len,) + part.shape[1:], dtype=np.float32)
    out[:part.shape[0]] = part
    return out


def all_windows(seq: np.ndarray, clip_len: int = CLIP_LEN) -> tuple[np.ndarray, np.ndarray]:
    """Every window of ``seq`` (T, ...) as a (n_starts, L, ...) array plus each window's real length.

    For T >= L this is a zero-copy sliding view; for T < L one zero-padded window.
    """
    seq = np.asarray(seq)
    n_frames = seq.shape[0]
    if n_frames >= clip_len:
        windows = np.lib.stride_tricks.sliding_window_view(seq, clip_len, axis=0)  # (n, ..., L)
        windows = np.moveaxis(windows, -1, 1)
        return windows, np.full(windows.shape[0], clip_len, dtype=np.int64)
    window, n_real = take_window(seq, 0, clip_len)
    return window[None], np.array([n_real], dtype=np.int64)


def _check_sampling(window_sampling: str) -> None:
    if window_sampling not in WINDOW_SAMPLINGS:
        raise ValueError(f"unknown window_sampling {window_sampling!r}; accepted: {', '.join(WINDOW_SAMPLINGS)}")

"""The D-Marker: 25 dynamics features x [onset, apex, offset] x [eyes, cheeks, lips] = 225
(``docs/smile-method.md``, "D-Marker"): input checks, and batches of clips or every window of a video run
through the formulas of :mod:`common.smile.dmarker_formulas` (both variants, ``paper`` and ``released``, are
described there).

Everything is vectorised over a batch of clips; :func:`video_dmarkers` computes every window of a video at once.
"""
from __future__ import annotations

import numpy as np

from common.face.topology import DMARKER_POINTS, N_POINTS
from common.smile.clips import CLIP_LEN, UVA_LANDMARK_MAX, UVA_LANDMARK_MIN, all_windows
from common.smile.dmarker_formulas import (FEATURES, PHASES, REGIONS, amplitude_signals, frame_coordinates,
                                           phase_features, phase_masks)

DMARKER_DIM = 225
VARIANTS = ("paper", "released")
# Bumped whenever a variant's output changes, so on-disk D-Marker caches of an older formula are never served
# (released 2: padded frames count as frames, signals in float32, matching the release's own outputs; paper 2:
# D_eye measured in the face plane).
FORMULA_REVISION = {"paper": 2, "released": 2}
SCOPES = ("video", "clip")
# MediaPipe indices of p1..p11 (RPT Table 1).
LANDMARK_INDICES = np.array(DMARKER_POINTS)  # the 11 mesh points the D-Marker reads
N_SELECTED = len(LANDMARK_INDICES)
_CHUNK = 1024  # clips per vectorised block: bounds temporary memory and keeps temporaries cache-sized


def feature_names() -> list[str]:
    """The 225 names in vector order, e.g. ``eyes/onset/duration_inc``."""
    return [f"{r}/{p}/{f}" for r in REGIONS for p in PHASES for f in FEATURES]


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown D-Marker variant {variant!r}; accepted: {', '.join(VARIANTS)}")
    return variant



def _prepare(points: np.ndarray, lengths, variant: str, fps):
    points = np.asarray(points)
    if points.ndim != 4 or points.shape[-1] != 3 or points.shape[-2] not in (N_SELECTED, N_POINTS):
        raise ValueError(f"expected clips of shape (N, L, {N_POINTS}, 3) (or (N, L, {N_SELECTED}, 3)), "
                         f"got {points.shape}")
    if points.shape[-2] == N_POINTS:
        points = points[:, :, LANDMARK_INDICES]
    n_clips, clip_len = points.shape[:2]
    if clip_len < 1:
        raise ValueError("clips need at least one frame")
    if not np.isfinite(points).all():
        bad = np.argwhere(~np.isfinite(points))[0]
        raise ValueError(f"landmarks contain NaN or inf (first at clip {bad[0]}, frame {bad[1]})")
    lengths = np.full(n_clips, clip_len) if lengths is None else np.asarray(lengths).reshape(-1)
    if lengths.shape[0] != n_clips or (lengths < 1).any() or (lengths > clip_len).any():
        raise ValueError(f"lengths must be {n_clips} values in 1..{clip_len}")
    valid = np.arange(clip_len)[None, :] < lengths[:, None]
    if variant == "released":
        omega = np.ones(n_clips)
    else:
        if fps is None:
            raise ValueError("the paper D-Marker needs the video frame rate (omega = fps); pass fps=")
        omega = np.broadcast_to(np.asarray(fps, dtype=np.float64), (n_clips,)).copy()
        if not (np.isfinite(omega).all() and (omega > 0).all()):
            raise ValueError(f"fps must be positive and finite, got {fps!r}")
    return points, valid, omega


def dmarker_batch(clips: np.ndarray, variant: str = "paper", fps=None, lengths=None, aspect: float = 1.0,
                  norm_range=(UVA_LANDMARK_MIN, UVA_LANDMARK_MAX)) -> np.ndarray:
    """D-Markers of a batch of clips (N, L, 478, 3) -> (N, 225) float32.

    ``lengths`` (N,) = real frames per clip (the rest is padding): the paper variant ignores padded frames; the
    released variant sees them as zeros, as the released loader does. ``fps`` (scalar or (N,)) is required by the
    paper variant; ``aspect`` = frame width / height (paper variant, to undo MediaPipe's per-axis normalisation);
    ``norm_range`` = (min_xyz, max_xyz) of the released min-max normalisation.
    """
    check_variant(variant)
    points, valid, omega = _prepare(clips, lengths, variant, fps)
    out = np.empty((points.shape[0], DMARKER_DIM), dtype=np.float32)
    for s in range(0, points.shape[0], _CHUNK):
        sl = slice(s, s + _CHUNK)
        out[sl] = _dmarker_block(points[sl].astype(np.float64), valid[sl], omega[sl], variant, aspect, norm_range)
    return out


def _dmarker_block(points, valid, omega, variant, aspect, norm_range) -> np.ndarray:
    coords = frame_coordinates(points, variant, aspect, *norm_range)
    return _features_from_transformed(coords, valid, omega, variant)


def _features_from_transformed(q, valid, omega, variant) -> np.ndarray:
    if variant == "released":
        # The release zero-pads a short video after normalisation and treats the padded frames as real frames of
        # zeros; it measures the signals on the float32 clip (spec: near-equal steps flip under float64).
        if not valid.all():
            q = np.where(valid[..., None, None], q, 0.0)
            valid = np.ones_like(valid)
        q = q.astype(np.float32)
    sig, left, right = amplitude_signals(q, valid, variant)
    sig, left, right = (np.asarray(a, dtype=np.float64) for a in (sig, left, right))
    masks = phase_masks(sig[:, 2], valid, variant)
    feats = phase_features(sig, left, right, masks, variant, omega)  # (N, R, P, 25)
    return feats.reshape(q.shape[0], DMARKER_DIM)


def dmarker(seq: np.ndarray, variant: str = "paper", fps=None, aspect: float = 1.0,
            norm_range=(UVA_LANDMARK_MIN, UVA_LANDMARK_MAX)) -> np.ndarray:
    """D-Marker of one sequence (T, 478, 3) -> (225,) float32."""
    seq = np.asarray(seq)
    if seq.ndim != 3:
        raise ValueError(f"expected a sequence of shape (T, {N_POINTS}, 3), got {seq.shape}")
    return dmarker_batch(seq[None], variant, fps, None, aspect, norm_range)[0]


def video_dmarkers(seq: np.ndarray, variant: str = "paper", fps=None, scope: str = "video",
                   clip_len: int = CLIP_LEN, aspect: float = 1.0,
                   norm_range=(UVA_LANDMARK_MIN, UVA_LANDMARK_MAX)) -> np.ndarray:
    """All D-Markers a training run can ask for, in one vectorised call.

    scope="video": (1, 225) for the whole sequence. scope="clip": (n_starts, 225), row s = the window starting at
    frame s (n_starts = T-L+1, or 1 zero-padded window when T < L).
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown D-Marker scope {scope!r}; accepted: {', '.join(SCOPES)}")
    check_variant(variant)
    points = np.asarray(seq)[:, LANDMARK_INDICES]  # read only the 11 points (cheap on a memory map)
    if scope == "video":
        return dmarker_batch(points[None], variant, fps, None, aspect, norm_range)
    _, _, omega = _prepare(points[None], None, variant, fps)
    q = frame_coordinates(points.astype(np.float64), variant, aspect, *norm_range)  # once per frame, not per window
    windows, lengths = all_windows(q, clip_len)
    valid = np.arange(windows.shape[1])[None, :] < lengths[:, None]
    out = np.empty((windows.shape[0], DMARKER_DIM), dtype=np.float32)
    for s in range(0, windows.shape[0], _CHUNK):
        sl = slice(s, s + _CHUNK)
        out[sl] = _features_from_transformed(windows[sl], valid[sl], np.full(len(valid[sl]), omega[0]), variant)
    return out


def dmarker_signals(seq: np.ndarray, variant: str = "paper", fps=None, aspect: float = 1.0,
                    norm_range=(UVA_LANDMARK_MIN, UVA_LANDMARK_MAX)) -> dict:
    """The per-frame curves behind the D-Marker, for plots.

    Returns {"lip", "eye", "cheek": (T,) float arrays, "phases": {"onset"|"apex"|"offset": (start, stop)}} where
    (start, stop) is a Python slice of frames (stop exclusive; start == stop for an empty phase), and "fps".
    """
    check_variant(variant)
    seq = np.asarray(seq)
    points, valid, _ = _prepare(seq[None], None, variant, fps if fps is not None else 1.0)
    coords = frame_coordinates(points.astype(np.float64), variant, aspect, *norm_range)
    sig, _, _ = amplitude_signals(coords, valid, variant)
    masks = phase_masks(sig[:, 2], valid, variant)[0]
    phases = {}
    for name, mask in zip(PHASES, masks):
        frames = np.flatnonzero(mask)
        phases[name] = (int(frames[0]), int(frames[-1]) + 1) if frames.size else (0, 0)
    return {"eye": sig[0, 0], "cheek": sig[0, 1], "lip": sig[0, 2], "phases": phases, "fps": fps}

"""Small synthetic landmark sequences and dataset folders for the smile-data tests (synthetic, not real data)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Frontal face in MediaPipe-like normalised image coordinates (x right, y down, z away from the camera).
FACE_POINTS = {  # dyadic coordinates, so hand-computed D-Marker values are exact in floating point
    33: (0.3125, 0.375, 0.0), 159: (0.375, 0.34375, 0.0), 133: (0.4375, 0.375, 0.0),  # right eye: corner, lid, corner
    362: (0.5625, 0.375, 0.0), 386: (0.625, 0.34375, 0.0), 263: (0.6875, 0.375, 0.0),  # left eye
    50: (0.375, 0.5, 0.0), 280: (0.625, 0.5, 0.0),  # cheeks
    1: (0.5, 0.5, -0.0625),  # nose tip
    62: (0.4375, 0.625, 0.0), 308: (0.5625, 0.625, 0.0),  # lip corners (width 0.125)
}


def face_sequence(n_frames: int, seed: int = 0, lip_spread=None) -> np.ndarray:
    """(T, 478, 3) float32: fixed random points plus the D-Marker points of FACE_POINTS.

    ``lip_spread`` (T,) moves each lip corner outwards by that amount in x (a smile of known amplitude).
    """
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.7, size=(478, 3)).astype(np.float64)
    base[:, 2] = rng.uniform(-0.05, 0.05, size=478)
    for idx, p in FACE_POINTS.items():
        base[idx] = p
    seq = np.repeat(base[None], n_frames, axis=0)
    if lip_spread is not None:
        seq[:, 62, 0] -= lip_spread
        seq[:, 308, 0] += lip_spread
    return seq.astype(np.float32)


def smile_profile(n_frames: int, rise: int, hold: int, amp: float) -> np.ndarray:
    """0 for 1 frame, linear rise to ``amp`` over ``rise`` frames, hold, linear return, then 0."""
    up = np.linspace(0, amp, rise + 1)
    prof = np.concatenate([up, np.full(hold, amp), up[::-1]])
    out = np.zeros(n_frames)
    out[: min(n_frames, prof.size)] = prof[:n_frames]
    return out


def write_dataset(root: Path, name: str, videos: dict, frames: int = 24, suffix: str = ".npy", folds=None,
                  seed: int = 0) -> Path:
    """Write npy/<video><suffix> for each {video: label}; ``folds`` = list of (train list, test list) or None."""
    root = Path(root)
    (root / "npy").mkdir(parents=True, exist_ok=True)
    for i, video in enumerate(sorted(videos)):
        spread = smile_profile(frames, 4 + i % 3, 3, 0.01 + 0.005 * videos[video])
        np.save(root / "npy" / f"{video}{suffix}", face_sequence(frames, seed + i, spread))
    if folds is not None:
        for k, (train, test) in enumerate(folds, start=1):
            d = root / "labels" / str(k)
            d.mkdir(parents=True, exist_ok=True)
            (d / "train.json").write_text(json.dumps({v: videos[v] for v in train}))
            (d / "test.json").write_text(json.dumps({v: videos[v] for v in test}))
    return root


def make_test_video(out_path: Path, seconds: float = 2.0, fps: float = 25) -> Path:
    """A short real-looking smile video: the demo-data one when available, else a translated astronaut photo."""
    try:
        from datasets.demo.video import make_smile_video
    except ImportError:
        make_smile_video = None
    if make_smile_video is not None:
        return Path(make_smile_video(out_path, seed=0, fps=fps, seconds=seconds))
    import cv2
    from skimage.data import astronaut

    img = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)[:300, 80:380]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (img.shape[1], img.shape[0]))
    for t in range(int(seconds * fps)):
        shift = np.float32([[1, 0, 3 * np.sin(t / 5)], [0, 1, 2 * np.cos(t / 7)]])
        writer.write(cv2.warpAffine(img, shift, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT))
    writer.release()
    return out_path

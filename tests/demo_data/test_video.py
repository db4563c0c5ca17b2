"""The smile video: MediaPipe finds the face in every frame, and the mouth widens exactly in the smile phases."""
from __future__ import annotations

import json

import cv2
import numpy as np


def test_smile_video_face_in_every_frame_and_phases(demo_root):
    from common.face import FaceMesh
    from common.face.topology import MOUTH_CORNERS

    folder = demo_root / "smile-video"
    truth = json.loads((folder / "smile.json").read_text())
    assert truth["synthetic"] is True and truth["fps"] == 25
    phases = truth["phases"]
    assert [phases[k] for k in ("neutral_start", "onset", "apex", "offset", "neutral_end")] == sorted(phases.values())
    cap = cv2.VideoCapture(str(folder / "smile.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == 25
    mesher = FaceMesh(tracking=False, min_detection_confidence=0.3)
    widths = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            meshes = mesher.pixels(frame[:, :, ::-1])
            assert meshes, f"no face found in frame {len(widths)}"
            widths.append(np.linalg.norm(meshes[0][MOUTH_CORNERS[0], :2] - meshes[0][MOUTH_CORNERS[1], :2]))
    finally:
        mesher.close()
        cap.release()
    assert len(widths) == truth["n_frames"]
    widths = np.array(widths)
    neutral = widths[slice(*phases["neutral_start"])].mean()
    apex = widths[slice(*phases["apex"])].mean()
    assert apex > 1.15 * neutral  # the extracted lip corners move apart during the smile
    landmarks = np.load(folder / "smile.landmarks.npy")
    assert landmarks.shape == (truth["n_frames"], 478, 3) and landmarks.dtype == np.float32


def test_make_smile_video_rejects_bad_arguments(tmp_path):
    import pytest

    from datasets.demo.video import make_smile_video

    with pytest.raises(ValueError, match=r"\.mp4"):
        make_smile_video(tmp_path / "smile.avi")
    with pytest.raises(ValueError, match="positive"):
        make_smile_video(tmp_path / "smile.mp4", fps=0)
    assert list(tmp_path.iterdir()) == []

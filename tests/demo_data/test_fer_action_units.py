"""The expression images show the action units of their label, measured on the rendered landmarks.

Each emotion is rendered next to a neutral render with the same random stream (same face, morph, pose, lighting,
occlusion), so the landmark difference is the expression alone. It is measured in inter-ocular distances of the
neutral render (image y points down), on the output crop after every pose change.
"""
from __future__ import annotations

import numpy as np
import pytest

N_PAIRS = 6
BROWS = (105, 334, 66, 296)
INNER_BROWS = (107, 336)


def _geometry(pts: np.ndarray) -> dict[str, float]:
    iod = float(np.linalg.norm(pts[[362, 263]].mean(0) - pts[[33, 133]].mean(0)))
    return {"corners_y": float(pts[[61, 291], 1].mean()) / iod, "brows_y": float(pts[list(BROWS), 1].mean()) / iod,
            "lips_gap": float(pts[14, 1] - pts[13, 1]) / iod, "upper_lip_y": float(pts[0, 1]) / iod,
            "mouth_width": float(np.linalg.norm(pts[291] - pts[61])) / iod,
            "inner_brow_gap": float(np.linalg.norm(pts[INNER_BROWS[0]] - pts[INNER_BROWS[1]])) / iod}


# What each EMFACS prototype must do to the landmarks (change vs neutral, in IOD, with its sign).
EXPECTED = {
    "happy": [("corners_y", -0.02)],  # AU12 pulls the lip corners up
    "surprise": [("brows_y", -0.03), ("lips_gap", 0.1)],  # AU1+2 raise the brows, AU27 opens the mouth
    "sad": [("corners_y", 0.015)],  # AU15 pulls the lip corners down
    "angry": [("brows_y", 0.015), ("inner_brow_gap", -0.01)],  # AU4 lowers and draws the brows together
    "disgust": [("upper_lip_y", -0.015)],  # AU10 raises the upper lip
    "fear": [("brows_y", -0.02), ("mouth_width", 0.03)],  # AU1+2 up, AU20 stretches the lips
}


@pytest.mark.parametrize("emotion", sorted(EXPECTED))
def test_rendered_landmarks_show_the_labelled_action_units(emotion):
    from datasets.demo.action_units import EMOTION_AUS
    from datasets.demo.fer import RAFDB_STYLE, render_expression

    for i in range(N_PAIRS):
        _, pts, meta = render_expression(emotion, np.random.default_rng([77, i]), RAFDB_STYLE)
        _, neutral_pts, neutral_meta = render_expression("neutral", np.random.default_rng([77, i]), RAFDB_STYLE)
        assert meta["identity"] == neutral_meta["identity"] and neutral_meta["aus"] == {}
        assert set(meta["aus"]) == set(EMOTION_AUS[emotion]) and meta["emotion"] == emotion
        g, g0 = _geometry(pts), _geometry(neutral_pts)
        scale = min(meta["intensity"], 1.0)
        for key, change in EXPECTED[emotion]:
            delta = g[key] - g0[key]
            assert np.sign(delta) == np.sign(change) and abs(delta) >= abs(change) * scale * 0.5, \
                (emotion, i, key, round(delta, 4), meta["intensity"])


def test_dataset_labels_follow_the_rendered_expression():
    """FER2013 rows carry the rendered emotion as label except its deliberate annotator noise (~10 %)."""
    from datasets.demo.fer import FER2013_CLASSES, build_fer2013_rows

    fer_rows, _, meta = build_fer2013_rows(5, 0.1)
    faces = [m for m in meta if m["rendered"] is not None and m["rendered"] != "contempt"]
    agree = np.mean([m["label"] == m["rendered"] for m in faces])
    assert 0.8 <= agree < 1.0, agree
    assert all(row[0] == FER2013_CLASSES.index(m["label"]) for row, m in zip(fer_rows, meta))

"""The genuine/posed difference lives in the raw landmark motion, not in the neutral face or the D-Marker only.

A plain logistic regression on summary statistics of raw landmark velocities (no D-Marker, no face-frame
normalisation: only the whole-mesh translation is removed, the speed is scaled by the face size and measured over
0.1 s), trained and
tested on the dataset's own subject-independent folds, must beat chance by a margin a random labelling reaches with
probability < 1e-3; the same classifier on the first (neutral) frame's shape must not.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

# lip corners, lip centres, lower and upper eyelids, cheeks, nose tip, chin
MOTION_POINTS = (61, 291, 13, 14, 145, 374, 159, 386, 205, 425, 1, 152)


def velocity_features(arr: np.ndarray, fps: float, aspect: float) -> np.ndarray:
    xy = arr[..., :2].astype(np.float64) * np.array([aspect, 1.0])
    xy = xy - xy.mean(axis=1, keepdims=True)
    face = np.linalg.norm(xy[:, 33] - xy[:, 263], axis=-1).mean()
    k = max(int(round(0.1 * fps)), 1)  # velocity over 0.1 s: per-frame differences are dominated by tracker jitter
    pts = xy[:, list(MOTION_POINTS)]
    v = (pts[k:] - pts[:-k]) * (fps / k) / face  # (T-k, P, 2), face widths per second
    speed = np.linalg.norm(v, axis=-1)
    return np.concatenate([speed.mean(0), speed.max(0), np.percentile(speed, 75, axis=0), v[..., 1].min(0),
                           v[..., 1].max(0), v[..., 0].std(0), v[..., 1].std(0)])


def neutral_shape_features(arr: np.ndarray, fps: float, aspect: float) -> np.ndarray:
    xy = arr[0, :, :2].astype(np.float64) * np.array([aspect, 1.0])
    xy = xy - xy.mean(axis=0)
    return (xy / np.linalg.norm(xy[33] - xy[263]))[list(MOTION_POINTS)].ravel()


def fold_accuracy(ds, features) -> tuple[int, int]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    table = {v: features(ds.array(v), ds.fps(v), ds.aspect(v)) for v in ds.videos}
    correct = total = 0
    for fold in ds.folds:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
        clf.fit(np.stack([table[v] for v in fold.train]), [ds.labels[v] for v in fold.train])
        pred = clf.predict(np.stack([table[v] for v in fold.test]))
        correct += int(np.sum(pred == np.array([ds.labels[v] for v in fold.test])))
        total += len(fold.test)
    return correct, total


@pytest.fixture(scope="module")
def uva(tmp_path_factory):
    from common.smile.data import load_smile_dataset
    from datasets.demo import generate

    root = tmp_path_factory.mktemp("motion")
    generate(["UvA-NEMO"], out=root, seed=3, progress=False)  # default size: ~140 videos of 48 subjects, ~50/50
    return load_smile_dataset("UvA-NEMO", root / "UvA-NEMO", cache_dir=False)


def test_raw_landmark_velocities_separate_genuine_from_posed(uva):
    correct, total = fold_accuracy(uva, velocity_features)
    p = binomtest(correct, total, 0.5, alternative="greater").pvalue
    assert total >= 100
    assert p < 1e-3, f"velocity classifier {correct}/{total} = {correct / total:.3f}: not clearly above chance"


def test_the_neutral_face_alone_does_not_give_the_label(uva):
    correct, total = fold_accuracy(uva, neutral_shape_features)
    assert binomtest(correct, total, 0.5, alternative="greater").pvalue > 1e-3, f"{correct}/{total}"


def window_velocity_features(length: int):
    """Per-window features of ``length`` consecutive frames (half-overlapping): what a clip model can see."""
    def features(arr: np.ndarray, fps: float, aspect: float) -> np.ndarray:
        xy = arr[..., :2].astype(np.float64) * np.array([aspect, 1.0])
        xy = xy - xy.mean(axis=1, keepdims=True)
        pts = xy[:, list(MOTION_POINTS)] / np.linalg.norm(xy[:, 33] - xy[:, 263], axis=-1).mean()
        rows = []
        for s in range(0, len(pts) - length + 1, max(length // 2, 1)):
            w = pts[s:s + length]
            v = np.diff(w, axis=0) * fps
            rows.append(np.concatenate([np.abs(v).mean(0).ravel(), v.mean(0).ravel(), (w - w.mean(0)).std(0).ravel()]))
        return np.stack(rows)
    return features


def window_accuracy(ds, length: int) -> float:
    """Logistic regression on windows (each labelled with its video's class); a test video's probability is the mean
    over its windows, as the deep branch's evaluation averages its windows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = window_velocity_features(length)
    table = {v: features(ds.array(v), ds.fps(v), ds.aspect(v)) for v in ds.videos}
    correct = total = 0
    for fold in ds.folds:
        x = np.concatenate([table[v] for v in fold.train])
        y = np.concatenate([[ds.labels[v]] * len(table[v]) for v in fold.train])
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000)).fit(x, y)
        for v in fold.test:
            correct += int((clf.predict_proba(table[v])[:, 1].mean() > 0.5) == ds.labels[v])
            total += 1
    return correct / total


def test_the_difference_lives_in_seconds_long_dynamics(uva):
    """Why the deep branch does not learn at demo size: an 8-frame window at 50 fps (0.16 s, the demo clip) holds
    little of the class difference, which grows with the window (onset/apex/offset timing spans seconds). The
    whole-video velocity summary separates the classes far better than any short window."""
    whole = fold_accuracy(uva, velocity_features)
    whole = whole[0] / whole[1]
    short, longer = window_accuracy(uva, 8), window_accuracy(uva, 32)
    assert short < longer < whole, (short, longer, whole)
    assert whole - short > 0.15, (short, whole)

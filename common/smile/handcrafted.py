"""Hand-crafted baseline in the spirit of Dibeklioglu et al.: D-Marker features -> linear SVM or logistic regression.

Features are standardised with a :class:`DMarkerScaler` fitted on the training fold only, then a linear classifier
(scikit-learn) is trained on the same folds as the deep models. Scope "video": one D-Marker per video (the paper's
use). Scope "clip": training windows are samples (at most ``max_train_clips`` evenly spaced per video) and a test
video's score is the mean decision value over the same seeded evaluation windows the deep models see (``n_eval_clips``).
"""
from __future__ import annotations

import numpy as np

from common.smile.clips import CLIP_LEN, N_EVAL_CLIPS, eval_window_starts
from common.smile.dmarker_scaler import DMarkerScaler
from common.smile.metrics import binary_metrics

HANDCRAFTED_MODELS = ("svm", "logreg")


# Default regularisation. The SVM uses C = 0.1: on standardised D-Markers C = 1 often needs thousands of liblinear
# iterations to converge (seconds per fold) for the same training accuracy.
DEFAULT_C = {"svm": 0.1, "logreg": 1.0}


def _classifier(model: str, seed: int, C: float | None):
    if model not in HANDCRAFTED_MODELS:
        raise ValueError(f"unknown hand-crafted model {model!r}; accepted: {', '.join(HANDCRAFTED_MODELS)}")
    C = DEFAULT_C[model] if C is None else C
    if model == "svm":
        from sklearn.svm import LinearSVC

        return LinearSVC(C=C, random_state=seed, max_iter=5000, dual="auto")
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=5000, random_state=seed)


def evaluate_handcrafted(dataset, fold, model: str = "svm", dmarker_variant: str = "paper", seed: int = 0,
                         dmarker_scope: str = "video", clip_len: int = CLIP_LEN, n_eval_clips: int = N_EVAL_CLIPS,
                         C: float | None = None, max_train_clips: int = 16, return_predictions: bool = False,
                         landmark_norm: str = "uva-nemo") -> dict:
    """Train on ``fold.train``, evaluate on ``fold.test``; returns the metrics plus n_train / n_test.

    Scope "clip" trains on at most ``max_train_clips`` evenly spaced windows per training video.

    ``landmark_norm`` names the min/max constants the released D-Marker is measured in.

    With ``return_predictions`` the dict also holds ``y_true``, ``y_pred`` and ``y_score`` (lists, test order).
    """
    if model not in HANDCRAFTED_MODELS:
        raise ValueError(f"unknown hand-crafted model {model!r}; accepted: {', '.join(HANDCRAFTED_MODELS)}")
    if len(set(dataset.labels[v] for v in fold.train)) < 2:
        raise ValueError(f"{dataset.name} fold {fold.k}: the training set has a single class")
    table = dataset.dmarker_table(dmarker_variant, dmarker_scope, clip_len, norm=landmark_norm)
    x_parts, y_parts = [], []
    for v in fold.train:
        rows = np.asarray(table.rows(v), dtype=np.float64)
        if rows.shape[0] > max_train_clips:  # evenly spaced windows: neighbours overlap 15/16 and add little
            rows = rows[np.linspace(0, rows.shape[0] - 1, max_train_clips).round().astype(int)]
        x_parts.append(rows)
        y_parts.append(np.full(rows.shape[0], dataset.labels[v]))
    x_train, y_train = np.concatenate(x_parts), np.concatenate(y_parts)
    scaler = DMarkerScaler().fit(x_train)
    clf = _classifier(model, seed, C).fit(scaler.transform(x_train), y_train)

    scores = []
    for index, v in enumerate(fold.test):
        rows = np.asarray(table.rows(v), dtype=np.float64)
        if dmarker_scope == "clip":
            rows = rows[eval_window_starts(dataset.n_frames(v), seed, index, n_eval_clips, clip_len)]
        scores.append(float(clf.decision_function(scaler.transform(rows)).mean()))
    y_true = np.array([dataset.labels[v] for v in fold.test])
    y_score = np.array(scores)
    y_pred = (y_score >= 0).astype(int)
    # the same metric code as the deep models, thresholding the SVM / logistic decision score at 0
    out = binary_metrics(y_true, y_score, threshold=0.0)
    out.update(n_train=len(fold.train), n_test=len(fold.test))
    if return_predictions:
        out.update(y_true=y_true.tolist(), y_pred=y_pred.tolist(), y_score=y_score.tolist())
    return out

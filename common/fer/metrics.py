"""Classification metrics of the HAFEM study, named as in results/README.md.

accuracy, balanced_accuracy, precision_macro, recall_macro, f1_macro, auc_ovr (one-vs-rest, macro over the classes
present in y_true), f1/<class>, and the confusion matrix (rows = true class, columns = predicted).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro F1 over the classes present in ``y_true`` (the early-stopping criterion; same rule as below)."""
    labels = [c for c in range(n_classes) if c in set(np.asarray(y_true).tolist())]
    return float(precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro",
                                                 zero_division=0)[2])


def auc_ovr(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC over the classes that occur in ``y_true`` (NaN if fewer than two do)."""
    present = np.unique(y_true)
    if present.size < 2:
        return float("nan")
    aucs = [roc_auc_score(y_true == c, proba[:, c]) for c in present]
    return float(np.mean(aucs))


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str],
                           prefix: str = "") -> dict[str, float]:
    """All per-split metrics; ``prefix`` (e.g. ``"zeroshot/RAF-DB/"``) is prepended to every name."""
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] != y_true.shape[0] or proba.shape[1] != len(classes):
        raise ValueError(f"proba {proba.shape} does not match {y_true.shape[0]} samples x {len(classes)} classes")
    y_pred = proba.argmax(1)
    labels = list(range(len(classes)))
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = np.isin(labels, y_true)
    out = {
        "accuracy": accuracy_score(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        # macro over the classes present in the evaluated set (a class with no test sample has no recall)
        "precision_macro": float(p[present].mean()) if present.any() else float("nan"),
        "recall_macro": float(r[present].mean()) if present.any() else float("nan"),
        "f1_macro": float(f[present].mean()) if present.any() else float("nan"),
        "auc_ovr": auc_ovr(y_true, proba),
    }
    for c, name in enumerate(classes):
        if present[c]:
            out[f"f1/{name}"] = float(f[c])
    return {prefix + k: float(v) for k, v in out.items()}


def confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> dict:
    cm = confusion_matrix(y_true, y_pred, labels=list(range(len(classes))))
    return {"classes": list(classes), "matrix": cm.tolist(), "rows": "true", "columns": "predicted"}


def predictions_record(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> dict:
    """The per-sample record for McNemar's test and bootstrap intervals (results/README.md)."""
    return {"y_true": np.asarray(y_true).astype(int).tolist(), "y_pred": np.asarray(proba).argmax(1).astype(int).tolist(),
            "proba": np.round(np.asarray(proba, dtype=np.float64), 6).tolist(), "classes": list(classes)}

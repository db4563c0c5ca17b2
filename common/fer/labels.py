"""Class-order tables of the four FER datasets, the common 7-class space, and the FER+ vote-to-label rules.

Every dataset numbers its expressions differently (``docs/datasets.md``). Class names here use one vocabulary
(``angry, disgust, fear, happy, sad, surprise, neutral, contempt``); ``OFFICIAL_NAMES`` keeps each dataset's own
spelling for display. Cross-dataset evaluation (train on FER2013, test on RAF-DB / AffectNet) maps every label into
``COMMON7``, the FER2013 order; ``contempt`` has no counterpart there and is dropped (and counted) by the caller.

FER+ label modes follow microsoft/FERPlus ``src/ferplus.py`` (Barsoum et al., arXiv 1608.01041); the rules are
re-stated in :func:`ferplus_target`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

COMMON7 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# fer2013.csv ``emotion`` column: 0 Angry .. 6 Neutral.
FER2013_CLASSES = COMMON7
# FER+ (src/train.py): neutral 0, happiness 1, surprise 2, sadness 3, anger 4, disgust 5, fear 6, contempt 7.
FERPLUS_CLASSES = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt")
# The 10 vote columns of fer2013new.csv / data/*/label.csv, in file order: the 8 classes, then unknown and NF.
FERPLUS_VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                        "unknown", "NF")
# RAF-DB basic, list_patition_label.txt: labels 1..7 = Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral
# (stored here 0-based, i.e. file label - 1).
RAFDB_CLASSES = ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral")
# AffectNet ``expression`` codes 0..7; 8 None, 9 Uncertain, 10 No-Face are not expressions and are dropped.
AFFECTNET_CLASSES_8 = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt")
AFFECTNET_CLASSES_7 = AFFECTNET_CLASSES_8[:7]
AFFECTNET_NON_EXPRESSION_CODES = {8: "None", 9: "Uncertain", 10: "No-Face"}

OFFICIAL_NAMES = {
    "FER2013": ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"),
    "FERPlus": ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"),
    "RAF-DB": ("Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"),
    "AffectNet": ("Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger", "Contempt"),
}


def class_table(dataset: str, n_classes: int | None = None) -> tuple[str, ...]:
    """The class order of ``dataset`` (AffectNet: ``n_classes`` 7 or 8, default 8 as in HAFEM's Table 2)."""
    if dataset == "FER2013":
        return FER2013_CLASSES
    if dataset == "FERPlus":
        return FERPLUS_CLASSES
    if dataset == "RAF-DB":
        return RAFDB_CLASSES
    if dataset == "AffectNet":
        n = 8 if n_classes is None else n_classes
        if n not in (7, 8):
            raise ValueError(f"AffectNet has a 7-class and an 8-class protocol, got n_classes={n_classes!r}")
        return AFFECTNET_CLASSES_8 if n == 8 else AFFECTNET_CLASSES_7
    raise ValueError(f"no class table for dataset {dataset!r}; known: FER2013, FERPlus, RAF-DB, AffectNet")


def index_map(from_classes: Sequence[str], to_classes: Sequence[str] = COMMON7) -> np.ndarray:
    """``m[i]`` = position of ``from_classes[i]`` in ``to_classes``, or -1 when it has none (e.g. contempt)."""
    to = {name: j for j, name in enumerate(to_classes)}
    return np.array([to.get(name, -1) for name in from_classes], dtype=np.int64)


def map_labels(labels: np.ndarray, from_classes: Sequence[str], to_classes: Sequence[str] = COMMON7) -> np.ndarray:
    """Hard labels re-indexed into ``to_classes``; unmappable classes become -1 (the caller drops and counts them)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(from_classes)):
        raise ValueError(f"label out of range 0..{len(from_classes) - 1}: {labels.min()}..{labels.max()}")
    return index_map(from_classes, to_classes)[labels]


def map_soft_labels(soft: np.ndarray, from_classes: Sequence[str], to_classes: Sequence[str] = COMMON7) -> np.ndarray:
    """Soft targets moved into ``to_classes``; mass on unmappable classes is removed and each row renormalised."""
    soft = np.asarray(soft, dtype=np.float64)
    m = index_map(from_classes, to_classes)
    out = np.zeros((soft.shape[0], len(to_classes)))
    for i, j in enumerate(m):
        if j >= 0:
            out[:, j] += soft[:, i]
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0).astype(np.float32)


# ----------------------------------------------------------------------------------------------- FER+ label modes

FERPLUS_MODES = ("majority", "probability", "crossentropy", "multi_target")
_N_EMOTIONS = 8  # columns 8 (unknown) and 9 (NF) are not classes


def _votes_after_outlier_removal(votes: Sequence[float]) -> np.ndarray:
    v = np.asarray(votes, dtype=np.float64)
    if v.shape != (10,):
        raise ValueError(f"FER+ expects 10 vote counts (8 emotions, unknown, NF), got shape {v.shape}")
    if np.any(v < 0) or not np.all(np.isfinite(v)):
        raise ValueError(f"FER+ vote counts must be finite and >= 0, got {v.tolist()}")
    return np.where(v <= 1.0, 0.0, v)  # a single vote is treated as an outlier


def ferplus_target(votes: Sequence[float], mode: str = "majority") -> tuple[np.ndarray | None, str]:
    """Turn one image's 10 FER+ vote counts into an 8-class target, or ``None`` with the reason it is dropped.

    In every mode, emotions with <= 1 vote are first set to 0. With s = the remaining vote total:

    - ``majority``: keep the top column if it holds > 0.5 s; the target is one-hot. Dropped as ``"no majority"``
      otherwise, and as ``"unknown/NF"`` when the majority column is unknown or NF.
    - ``probability`` / ``crossentropy``: take columns in rounds, each round all columns tied at the current maximum,
      until they cover >= 0.75 s or 3 columns are taken. Reaching unknown/NF stops the rounds; it is kept only when it
      is the very first column taken (then the image is dropped as ``"unknown/NF"``). Dropped as ``"under 50%"`` if the
      kept votes are <= 0.5 s, and as ``"too many ties"`` if more than 3 columns were taken. The target is the kept
      votes normalised to sum 1 (``probability`` then samples a one-hot target from it at every use).
    - ``multi_target``: keep every column with >= 0.3 s; dropped as ``"under 50%"`` if the kept votes are <= 0.5 s,
      as ``"unknown/NF"`` if the largest kept column is unknown/NF. The target is the kept set, uniform (FER+ trains
      it with -log sum of the kept classes' probabilities; ``target > 0`` recovers the set).

    An image whose top column is unknown or NF is dropped in every mode, as in ``FERPlusReader.load_folders``.
    """
    if mode not in FERPLUS_MODES:
        raise ValueError(f"unknown FER+ label mode {mode!r}; accepted: {', '.join(FERPLUS_MODES)}")
    raw = _votes_after_outlier_removal(votes)
    total = raw.sum()
    kept = np.zeros(10)
    if mode == "majority":
        top = int(np.argmax(raw))
        if not raw[top] > 0.5 * total:
            return None, "no majority"
        kept[top] = raw[top]
    elif mode in ("probability", "crossentropy"):
        remaining = raw.copy()
        covered, taken, stopped = 0.0, 0, False
        while covered < 0.75 * total and taken < 3 and not stopped:
            peak = remaining.max()
            for i in np.flatnonzero(remaining == peak):  # ascending column order, as in the reference loop
                kept[i] = peak
                remaining[i] = 0.0
                covered += peak
                taken += 1
                if i >= _N_EMOTIONS:
                    stopped = True
                    if kept.sum() > peak:  # emotions were taken before unknown/NF: leave it out
                        kept[i] = 0.0
                        taken -= 1
                    break
        if kept.sum() <= 0.5 * total:
            return None, "under 50%"
        if taken > 3:
            return None, "too many ties"
    else:  # multi_target
        kept = np.where(raw >= 0.3 * total, raw, 0.0)
        if kept.sum() <= 0.5 * total:
            return None, "under 50%"
    if int(np.argmax(kept)) >= _N_EMOTIONS:
        return None, "unknown/NF"
    target = kept[:_N_EMOTIONS]
    if mode == "multi_target":
        target = (target > 0).astype(np.float64)
    return (target / target.sum()).astype(np.float32), "kept"


def ferplus_targets(votes: np.ndarray, mode: str = "majority") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Vectorised :func:`ferplus_target` over a (N, 10) vote table.

    Returns ``(targets (N, 8) float32 with zero rows for dropped images, keep (N,) bool, reasons list[str])``.
    """
    votes = np.asarray(votes)
    if votes.ndim != 2 or votes.shape[1] != 10:
        raise ValueError(f"expected a (N, 10) FER+ vote table, got shape {votes.shape}")
    targets = np.zeros((len(votes), _N_EMOTIONS), dtype=np.float32)
    keep = np.zeros(len(votes), dtype=bool)
    reasons: list[str] = []
    for i, row in enumerate(votes):
        target, reason = ferplus_target(row, mode)
        reasons.append(reason)
        if target is not None:
            targets[i] = target
            keep[i] = True
    return targets, keep, reasons

"""Where a run's compound-loss weights come from (``loss_weights``): fixed, k-fold cross-validation, or the optuna
search's best values.

HAFEM §3: "The 5-fold cross validation approach led to optimal weights λ1 = 0.60, λ2 = 0.25, λ3 = 0.15". The paper
names neither the candidates nor the fold split; ours: the ``cv_grid`` candidates, each trained ``cv_epochs`` epochs on
k − 1 folds of the *training* split and scored by macro-F1 on the held-out fold (stratified folds, seeded by the
run's seed); the candidate with the best mean macro-F1 wins (ties: the earlier candidate). Validation and test splits
are not touched. ``tuned`` runs :func:`common.fer.tuning.search` first (validation split) and uses its best weights
and peak lr; a path to an earlier run's ``tuning.json`` uses that file's best values. Whatever the source, the chosen
values replace ``w_ce`` / ``w_center`` / ``w_dls`` (and ``lr_max`` for tuned) in the run's config, and the record of
how they were chosen goes into ``run.json``.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

SOURCES = ("fixed", "cv", "tuned")
WEIGHT_KEYS = ("w_ce", "w_center", "w_dls")


def check_source(value: str) -> str | None:
    if value in SOURCES or value.endswith(".json"):
        return None
    return f"must be one of {', '.join(SOURCES)} or a path to a tuning.json file"


def parse_grid(text: str) -> list[tuple[float, float, float]]:
    """``"0.6/0.25/0.15,1/0/0"`` -> [(0.6, 0.25, 0.15), (1.0, 0.0, 0.0)]; every candidate three weights >= 0."""
    grid = []
    for item in [t.strip() for t in text.split(",") if t.strip()]:
        parts = item.split("/")
        try:
            weights = tuple(float(x) for x in parts)
        except ValueError:
            raise ValueError(f"cv_grid candidate {item!r}: weights must be numbers, e.g. '0.60/0.25/0.15'") from None
        if len(weights) != 3 or any(w < 0 for w in weights) or sum(weights) == 0:
            raise ValueError(f"cv_grid candidate {item!r}: needs three non-negative weights CE/center/DLS, not all 0")
        grid.append(weights)
    if not grid:
        raise ValueError("cv_grid has no candidates")
    return grid


def stratified_folds(labels: np.ndarray, k: int, seed: int, classes=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` stratified (train, held-out) index pairs; k < 2 or k above the smallest class's count is a ValueError."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    if k < 2:
        raise ValueError(f"cv_folds={k}: cross-validation needs at least 2 folds")
    values, counts = np.unique(labels, return_counts=True)
    smallest = int(np.argmin(counts))
    if k > counts[smallest]:
        name = classes[values[smallest]] if classes is not None else values[smallest]
        raise ValueError(f"cv_folds={k} exceeds the smallest training class: {name!r} has {counts[smallest]} images "
                         f"(every fold must hold each class); use cv_folds <= {counts[smallest]}")
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def cross_validate(cfg: Mapping[str, Any], data, seed: int) -> dict[str, Any]:
    """Mean held-out macro-F1 of each ``cv_grid`` candidate over ``cv_folds`` stratified folds of the training split."""
    from common.fer.data import make_loaders
    from common.fer.training import MAIN_VARIANT, train_variant

    grid = parse_grid(cfg["cv_grid"])
    folds = stratified_folds(data.train.labels, cfg["cv_folds"], seed, data.classes)
    scores = np.zeros((len(grid), len(folds)))
    for f, (fit_idx, held_idx) in enumerate(folds):
        fold_data = replace(data, train=data.train.subset(fit_idx), val=data.train.subset(held_idx),
                            test=data.train.subset(held_idx))
        loaders = make_loaders(cfg, fold_data, seed)
        for c, weights in enumerate(grid):
            trained = train_variant(cfg, fold_data, MAIN_VARIANT, seed, loss="compound", loss_weights=weights,
                                    epochs=cfg["cv_epochs"], loaders=loaders, progress=False)
            scores[c, f] = trained.result.best_val_f1
    means = scores.mean(axis=1)
    best = int(np.argmax(means))  # first maximum: ties go to the earlier candidate
    return {"source": "cv", "objective": "held-out macro-F1 (best epoch), mean over folds", "folds": len(folds),
            "epochs_per_fold": cfg["cv_epochs"], "seed": seed, "split": "train",
            "candidates": [{"weights": list(w), "fold_f1": scores[i].tolist(), "mean_f1": float(means[i])}
                           for i, w in enumerate(grid)],
            "chosen": dict(zip(WEIGHT_KEYS, grid[best])), "paper": {"w_ce": 0.60, "w_center": 0.25, "w_dls": 0.15}}


def read_tuning_file(path: str | Path) -> dict[str, float]:
    """The best ``w_ce`` / ``w_center`` / ``w_dls`` / ``lr_max`` of a ``tuning.json`` written by a run."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"loss_weights={str(path)!r}: no such tuning file (a run's tuning.json)")
    try:
        best = json.loads(path.read_text())["best"]["params"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a tuning.json (no best.params entry): {exc}") from exc
    missing = [k for k in (*WEIGHT_KEYS, "lr_max") if k not in best]
    if missing:
        raise ValueError(f"{path}: best.params lacks {missing}")
    bad = {k: best[k] for k in (*WEIGHT_KEYS, "lr_max") if not isinstance(best[k], (int, float)) or best[k] < 0}
    if bad or best["lr_max"] <= 0:
        raise ValueError(f"{path}: best.params has invalid values {bad or {'lr_max': best['lr_max']}}")
    return {k: float(best[k]) for k in (*WEIGHT_KEYS, "lr_max")}


def resolve(cfg: Mapping[str, Any], data) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """(config with the chosen weights, the record for run.json, the tuning study when ``tuned`` ran one)."""
    from common.fer import tuning

    cfg = dict(cfg)
    source = cfg["loss_weights"]
    study = None
    if source == "fixed":
        return cfg, {"source": "fixed", "chosen": {k: cfg[k] for k in WEIGHT_KEYS}}, None
    if source == "cv":
        record = cross_validate(cfg, data, cfg["seed"])
        cfg.update(record["chosen"])
        return cfg, record, None
    if source == "tuned":
        if cfg["tune_trials"] < 1:
            raise ValueError("loss_weights='tuned' runs the optuna search first: tune_trials must be >= 1")
        study = tuning.search(cfg, data, n_trials=cfg["tune_trials"], epochs=cfg["tune_epochs"])
        chosen = {k: float(v) for k, v in study["best"]["params"].items()}
        record = {"source": "tuned", "objective": study["objective"], "trials": len(study["trials"]),
                  "chosen": chosen}
    else:
        chosen = read_tuning_file(source)
        record = {"source": "tuning file", "file": str(Path(source).expanduser().resolve()), "chosen": chosen}
    cfg.update(chosen)
    return cfg, record, study

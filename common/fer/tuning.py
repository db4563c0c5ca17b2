"""Bayesian search (optuna TPE) of the compound-loss weights and the peak learning rate, on the validation split.

The paper reports λ = (0.60, 0.25, 0.15) "from 5-fold cross validation" without the search space; ours is stated in
:data:`SEARCH_SPACE`. The objective is the best validation macro-F1 within ``epochs``; the test split is not touched.
The search is reported (``tuning.json``) beside the paper's values; the main model keeps the configured weights, so a
run's numbers do not depend on the number of trials.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SEARCH_SPACE = {
    "w_ce": (0.2, 1.0, False),
    "w_center": (0.0, 0.5, False),
    "w_dls": (0.0, 0.5, False),
    "lr_max": (1e-4, 3e-3, True),  # (low, high, log scale)
}


def search(cfg: Mapping[str, Any], data, n_trials: int, epochs: int, seed: int | None = None) -> dict[str, Any]:
    """Run ``n_trials`` TPE trials; return every trial and the best parameters (JSON-ready)."""
    import optuna

    from common.fer.data import make_loaders
    from common.fer.training import MAIN_VARIANT, train_variant

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = cfg["seed"] if seed is None else seed
    loaders = make_loaders(cfg, data, seed)

    def objective(trial: optuna.Trial) -> float:
        p = {name: trial.suggest_float(name, lo, hi, log=log) for name, (lo, hi, log) in SEARCH_SPACE.items()}
        trained = train_variant(cfg, data, MAIN_VARIANT, seed, loss="compound",
                                loss_weights=(p["w_ce"], p["w_center"], p["w_dls"]), epochs=epochs,
                                lr_max=p["lr_max"], loaders=loaders, progress=False)
        return trained.result.best_val_f1

    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(n_trials // 3, 1)))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=n_trials, show_progress_bar=True)
    return {
        "objective": "validation macro-F1 (best epoch)", "epochs_per_trial": epochs, "sampler": "TPE",
        "seed": seed, "search_space": {k: list(v) for k, v in SEARCH_SPACE.items()},
        "paper": {"w_ce": 0.60, "w_center": 0.25, "w_dls": 0.15, "lr_max": 1e-3},
        "trials": [{"number": t.number, "value": t.value, "params": t.params} for t in study.trials],
        "best": {"value": study.best_value, "params": study.best_params},
    }

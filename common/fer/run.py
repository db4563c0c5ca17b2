"""The HAFEM notebook's study: every seed in its own run folder, written through :mod:`common.results`.

One run folder per seed (``seed`` in the folder name and in every row), so paired tests across methods pair rows by
seed. The notebook's own ``seed`` comes last: when its ``run.json`` is complete, every seed is done.

Per seed: the full model (val-selected checkpoint, test metrics, predictions, confusion matrix, curves); on FER2013
only, as in the paper, the ablation ladder, the timm Table-3 baselines and the zero-shot tests on RAF-DB / AffectNet
(:mod:`common.fer.comparisons`; with ``comparison_seeds='own'`` only in the notebook's seed). In the notebook's own
seed: the optuna search of the loss weights and lr (validation only), Grad-CAM / SHAP and the model's batch-1 speed.
The test split is used for reporting only, never for selection. Every trained variant keeps a resumable training
state under ``<run>/state/`` until its run is complete, so a killed or preempted notebook started again continues
where it stopped. Data: :mod:`common.fer.data`; training:
:mod:`common.fer.training`; tables and figures: :mod:`common.fer.figures`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from common import engine
from common.fer import explain, finetune, loss_weights, speed, tuning
from common.fer.baselines import NOT_REBUILDABLE
from common.fer.comparisons import (ablation_ladder, baseline_names, compares_in_seed, comparisons_enabled,
                                    run_ablation, run_baselines, run_zeroshot)
from common.fer.data import FerData, generated_data, load_data, make_loaders
from common.fer.model import MODELS, count_parameters
from common.fer.study import FINETUNE_DATASET, HAFEM, parse_seeds
from common.fer.training import MAIN_VARIANT, Trained, record_evaluation, save_model, train_variant
from common.results import RunWriter, open_run


def seed_order(cfg: Mapping[str, Any]) -> list[int]:
    """The configured seeds with the notebook's own ``seed`` last (it may be outside ``seeds``: then it is added)."""
    seeds = [s for s in parse_seeds(cfg) if s != cfg["seed"]]
    return seeds + [cfg["seed"]]


def seed_config(cfg: Mapping[str, Any], seed: int) -> Mapping[str, Any]:
    return HAFEM.resolve({k: v for k, v in {**dict(cfg), "seed": seed}.items() if k != "study"})


def setup(cfg: Mapping[str, Any]) -> None:
    """Threads, and flush-to-zero for subnormal floats: the ImageNet Lite0 weights drive activations and Adam moments
    into the subnormal range, where x86 CPUs run up to ~10x slower (measured: one demo epoch 45 s -> 6 s)."""
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    torch.set_flush_denormal(True)


@dataclass
class SeedOutcome:
    seed: int
    folder: Path
    metrics: dict[str, float]
    trained: Trained
    data: FerData
    loaders: tuple
    comparisons: dict[str, Any] = field(default_factory=dict)
    explained: dict[str, Any] = field(default_factory=dict)
    writer: RunWriter | None = None
    weights_record: dict[str, Any] = field(default_factory=dict)


def finetune_enabled(cfg: Mapping[str, Any]) -> bool:
    return cfg["finetune_from"] != "none" and cfg["dataset"] == FINETUNE_DATASET


def run_seed(cfg: Mapping[str, Any], seed: int, data: FerData | None = None, root: Path | None = None,
             finish: bool = True, weights_record: Mapping[str, Any] | None = None) -> SeedOutcome:
    """Everything of one seed in its own run folder; ``finish=False`` leaves it open for the notebook-only steps.

    ``cfg`` carries the loss weights already chosen (:func:`common.fer.loss_weights.resolve` in :func:`run_study`);
    ``weights_record`` says how, for run.json."""
    scfg = seed_config(cfg, seed)
    data = data or load_data(scfg)
    writer = open_run(scfg, data.fingerprint, root=root)
    loaders = make_loaders(scfg, data, seed)
    states = writer.folder / "state"
    main = train_variant(scfg, data, MAIN_VARIANT, seed, loaders=loaders, state_dir=states)
    metrics = record_evaluation(writer, scfg, data, main, loaders[2])
    save_model(writer, scfg, data, main)
    comparisons: dict[str, Any] = {}
    if compares_in_seed(cfg, seed):
        comparisons["ablation"] = run_ablation(writer, scfg, data, seed, loaders, metrics, main, states)
        comparisons["baselines"] = run_baselines(writer, scfg, data, seed, loaders, states)
        comparisons["zeroshot"] = run_zeroshot(writer, scfg, data, main)
    if finetune_enabled(scfg):
        comparisons["finetune"] = finetune.run_finetune(writer, scfg, data, seed, loaders, root, states)
    outcome = SeedOutcome(seed, writer.folder, metrics, main, data, loaders, comparisons, writer=writer,
                          weights_record=dict(weights_record or {}))
    if finish:
        finish_run(writer, scfg, data, outcome, weights_note=main.model.weights_note)
    return outcome


def finish_run(writer: RunWriter, cfg: Mapping[str, Any], data: FerData, outcome: SeedOutcome,
               **extra: Any) -> Path:
    """Mark the run complete (with what it trained, which weights each model started from, where the loss weights
    came from, the CBAM placement and any fine-tune); drop its states."""
    if outcome.weights_record:
        extra["loss_weights"] = outcome.weights_record
    if "finetune" in outcome.comparisons:
        extra["finetune"] = outcome.comparisons["finetune"]
    extra["cbam_placement"] = {"placement": cfg["cbam_placement"], "stages": cfg["cbam_stages"],
                               "params_total": count_parameters(outcome.trained.model)}
    weights = {}
    compared = "ablation" in outcome.comparisons
    for name in [MAIN_VARIANT] + (list(baseline_names(cfg)) if compared else []):
        weights[name] = MODELS.info(name).get("paper_name", name)
    folder = writer.finish(data_reports=data.reports, classes=list(data.classes),
                           ablation=[{"label": r["label"], "cbam": r["cbam"]} for r in ablation_ladder(cfg)]
                           if compared else [],
                           baselines_not_rebuildable=NOT_REBUILDABLE, paper_names=weights, epochs_1_based=True,
                           synthetic_data=generated_data(cfg["dataset"], cfg, cfg["data_root"]), **extra)
    engine.discard_states(folder / "state")
    return folder


def run_study(cfg: Mapping[str, Any], root: Path | None = None, data: FerData | None = None) -> list[SeedOutcome]:
    """Train and evaluate every seed, then tune / explain / time in the notebook's own seed; return the outcomes.

    The last outcome (the notebook's seed) keeps its run open until the tuning, explanations and speed are written.
    """
    setup(cfg)
    data = data or load_data(cfg)
    cfg, record, study = loss_weights.resolve(cfg, data)
    outcomes = []
    order = seed_order(cfg)
    for seed in order:
        outcomes.append(run_seed(cfg, seed, data, root, finish=seed != cfg["seed"], weights_record=record))
    last = outcomes[-1]
    writer = last.writer
    extra: dict[str, Any] = {}
    if study is None and comparisons_enabled(cfg) and cfg["tune_trials"] > 0:
        study = tuning.search(cfg, data, n_trials=cfg["tune_trials"], epochs=cfg["tune_epochs"])
    if study is not None:
        writer.save_json("tuning.json", study)
        extra["tuning_best"] = study["best"]
    if cfg["explain"]:
        engine.release_free_memory()
        last.explained = explain.explain_model(last.trained.model, data, cfg, writer.folder)
        extra["explain_files"] = last.explained["files"]
    if cfg["measure_speed"]:
        device = str(engine.resolve_device(cfg["device"]))
        fps = speed.model_fps(last.trained.model, cfg["input_size"], batch_size=1, device=device, seconds=2.0)
        e2e = speed.end_to_end_fps(speed.torch_infer(last.trained.model.cpu()), speed.sample_frames(2),
                                   cfg["input_size"], batch_size=1, seconds=2.0)
        writer.add(0, {"fps_model": fps["fps"], "fps_end_to_end": e2e["fps"]}, n_train=len(data.train), n_test=0,
                   selection="", variant=MAIN_VARIANT)
        extra["speed"] = {"model": fps, "end_to_end": e2e}
    finish_run(writer, seed_config(cfg, cfg["seed"]), data, last, weights_note=last.trained.model.weights_note,
               **extra)
    return outcomes

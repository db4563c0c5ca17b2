"""One smile run = one dataset x one variant over its folds: check everything, train, evaluate, write raw results.

``run_study(params)`` is what the notebook template calls. Per fold it records (through :mod:`common.results`)
the test metrics of the validation-selected, the test-selected (released behaviour, optimistic) and the last epoch,
plus sizes, timings and parameter counts; curves go to ``curves/fold<k>.json`` and the selected model to
``checkpoints/fold<k>.pt`` (config, provenance and model spec, so :func:`common.smile.models.model_from_checkpoint`
rebuilds it alone). Every input problem is raised before the first fold trains.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from common import paths
from common.checkpoints import save_checkpoint
from common.config import get_study
from common.engine import FitSettings, discard_states, fit, loader_options, resolve_device
from common.results import RunWriter, open_run
from common.seeding import seed_everything, torch_generator
from common.smile.clip_dataset import SmileClips, aux_target_for
from common.smile.data import SmileDataset, load_smile_dataset
from common.smile.dmarker import DMARKER_DIM
from common.smile.dmarker_scaler import DMarkerScaler
from common.smile.engine import METRICS, TASK
from common.smile.folds import order_folds, subject_independent_split
from common.smile.study import RELEASED_LABEL
from common.smile.models import BASELINES, build_from_spec, count_parameters, is_handcrafted, model_spec

PAPER_PARAM_REDUCTION_CLAIM = 0.26  # README/ABS: "26.0% parameter reduction vs DeepMarkerNet"


class RunInputError(ValueError):
    """The configuration does not fit the data (one-class fold, unknown fold number, D-Marker width...)."""


# ----------------------------------------------------------------------------------------------- config and data

def resolve_config(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """Validate notebook/batch parameters (``None`` = take the profile's value) into a resolved config."""
    given = {k: v for k, v in dict(params).items() if k != "study"}
    return get_study("smile").resolve(given)


def generated_data(cfg: Mapping[str, Any]) -> bool:
    """Whether the run reads the generated (synthetic) demo data folder."""
    return paths.data_root(cfg["dataset"], cfg["profile"], cfg["data_root"] or None).is_relative_to(paths.DEMO_DATA_DIR)


def open_dataset(cfg: Mapping[str, Any]) -> SmileDataset:
    """Load the dataset of ``cfg``; the generated demo set is generated on first use."""
    root = paths.data_root(cfg["dataset"], cfg["profile"], cfg["data_root"] or None)
    if generated_data(cfg) and not (root / "npy").is_dir():
        try:
            from datasets.demo import ensure_demo_data
        except ImportError as exc:
            raise RunInputError(f"{root}: no demo data, and datasets.demo.ensure_demo_data is unavailable ({exc})")
        ensure_demo_data([cfg["dataset"]])
    return load_smile_dataset(cfg["dataset"], root, unlisted_arrays=cfg["unlisted_arrays"])


def select_folds(dataset: SmileDataset, spec: str, order: str = "numeric"):
    if spec == "all":
        return order_folds(dataset.folds, order)
    wanted = [int(p) for p in spec.split(",")]
    known = [f.k for f in dataset.folds]
    missing = [k for k in wanted if k not in known]
    if missing:
        raise RunInputError(f"{dataset.root}: folds {missing} requested, the dataset has folds {known}")
    return order_folds([dataset.fold(k) for k in wanted], order)


def split_train_val(cfg, dataset: SmileDataset, fold) -> tuple[list[str], list[str]]:
    if cfg["val_fraction"] == 0.0:
        return list(fold.train), []
    return subject_independent_split(fold.train, dataset.subjects, dataset.labels, cfg["val_fraction"],
                                     cfg["seed"] + fold.k)


def check_fold(cfg, dataset: SmileDataset, fold) -> None:
    """A clear error (naming dataset, fold and the fix) for folds that cannot be trained honestly."""
    where = f"{dataset.name} fold {fold.k} ({dataset.root / 'labels' / str(fold.k) / 'train.json'})"
    classes = {dataset.labels[v] for v in fold.train}
    if len(classes) < 2:
        raise RunInputError(f"{where}: the training set holds only class {classes.pop()}; a binary classifier "
                            "cannot be trained on it")
    if not fold.test:
        raise RunInputError(f"{where}: the test set is empty")
    train, val = split_train_val(cfg, dataset, fold)
    if len({dataset.labels[v] for v in train}) < 2:
        raise RunInputError(f"{where}: after holding out {len(val)} validation videos the training part holds one "
                            "class; lower val_fraction or use val_fraction=0 with selection='last'")


def check_inputs(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> None:
    """One forward pass on a real batch; a D-Marker width the model does not expect is named explicitly."""
    want = getattr(model, "dmarker_dim", None) or getattr(getattr(model, "fusion", None), "dmarker_dim", None)
    got = batch["dmarker"].shape[-1]
    if want is not None and got != want:
        raise RunInputError(f"the data gives {got}-d D-Markers, the model expects {want}")
    model.eval()
    with torch.no_grad():
        model(batch["clip"][:2], batch["dmarker"][:2])


# ---------------------------------------------------------------------------------------------------- one fold

def preflight_model(cfg: Mapping[str, Any], dataset: SmileDataset, fold, spec: Mapping[str, Any]) -> None:
    """Build the model and push two real training items through it (eval mode, no random numbers consumed)."""
    from torch.utils.data import default_collate

    items = SmileClips(dataset, list(fold.train)[:2], mode="train", clip_len=cfg["clip_len"],
                       n_eval_clips=cfg["n_eval_clips"], seed=cfg["seed"], dmarker_variant=cfg["dmarker_variant"],
                       dmarker_scope=cfg["dmarker_scope"], window_sampling=cfg["window_sampling"],
                       landmark_norm=cfg["landmark_norm"], target=aux_target_for(cfg["variant"]))
    check_inputs(build_from_spec(spec), default_collate([items[i] for i in range(len(items))]))


@dataclass
class FoldResult:
    k: int
    n_train: int
    n_test: int
    metrics: dict[str, dict[str, float]]        # selection -> metrics on the test fold
    extra: dict[str, float]                     # epochs_run, train_seconds, params..., infer_ms_per_video
    curves: dict[str, list]
    state: dict | None = None
    scaler: dict | None = None
    selected_epoch: int | None = None           # 1-based
    stop_reason: str = ""
    resumed_after: int | None = None            # epoch a saved training state continued after


def make_loaders(dataset: SmileDataset, train: list[str], evals: list[list[str]], *, clip_len: int,
                 n_eval_clips: int, batch_size: int, seed: int, dmarker_variant: str, dmarker_scope: str,
                 scaling: str = "standard", window_sampling: str = "all_starts", landmark_norm: str = "uva-nemo",
                 eval_windows: str = "fixed", target: str = "dmarker", loader_kw: Mapping[str, Any] | None = None):
    """(train loader, [eval loaders], scaler state). The scaler is fitted on ``train`` only (D-Markers only).

    ``loader_kw``: extra DataLoader options (:func:`common.engine.loader_options`: pinned memory, workers)."""
    common = {"clip_len": clip_len, "n_eval_clips": n_eval_clips, "seed": seed, "dmarker_variant": dmarker_variant,
              "dmarker_scope": dmarker_scope, "window_sampling": window_sampling, "landmark_norm": landmark_norm,
              "eval_windows": eval_windows, "target": target}
    loader_kw = dict(loader_kw or {})
    train_ds = SmileClips(dataset, train, mode="train", **common)
    scaler = (DMarkerScaler().fit(train_ds.dmarker_features())
              if scaling == "standard" and target == "dmarker" else None)
    train_ds.scaler = scaler
    # drop_last as released, unless that would leave no batch (tiny folds)
    train_loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, drop_last=len(train) > batch_size,
                              generator=torch_generator(seed), **loader_kw)
    eval_loaders = [DataLoader(SmileClips(dataset, v, mode="eval", scaler=scaler, **common), batch_size=batch_size,
                               **loader_kw) if v else None for v in evals]
    return train_loader, eval_loaders, (scaler.state_dict() if scaler else None)


def fold_identity(cfg: Mapping[str, Any], fold_k: int) -> dict[str, Any]:
    """What a fold's saved training state must match to be resumed: the study, the fold and the config (minus the
    settings that only choose which folds run, how often states are saved and whether checkpoints are written)."""
    ignored = ("folds", "fold_order", "save_checkpoints", "save_state_every", "num_workers")
    return {"study": "smile", "fold": int(fold_k), "config": {k: v for k, v in cfg.items() if k not in ignored}}


def run_fold(cfg: Mapping[str, Any], dataset: SmileDataset, fold, progress=None,
             state_path: Path | None = None) -> FoldResult:
    """Train one fold of a torch variant through :func:`common.engine.fit`, evaluating every epoch on validation
    and test; with ``state_path`` the fold resumes from (and keeps) its training state."""
    seed_everything(cfg["seed"])
    device = resolve_device(cfg["device"])
    train, val = split_train_val(cfg, dataset, fold)
    train_loader, (val_loader, test_loader), scaler = make_loaders(
        dataset, train, [val, list(fold.test)], clip_len=cfg["clip_len"], n_eval_clips=cfg["n_eval_clips"],
        batch_size=cfg["batch_size"], seed=cfg["seed"] + fold.k, dmarker_variant=cfg["dmarker_variant"],
        dmarker_scope=cfg["dmarker_scope"], scaling=cfg["dmarker_scaling"], window_sampling=cfg["window_sampling"],
        landmark_norm=cfg["landmark_norm"], eval_windows=cfg["eval_windows"], target=aux_target_for(cfg["variant"]),
        loader_kw=loader_options(device, cfg["num_workers"]))
    model = build_from_spec(model_spec(cfg))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    scheduler = (torch.optim.lr_scheduler.MultiStepLR(optimizer, [cfg["lr_step_epoch"]], cfg["lr_gamma"])
                 if cfg["lr_step_epoch"] > 0 else None)
    settings = FitSettings(epochs=cfg["epochs"], device=str(device), amp=cfg["amp"], grad_clip=cfg["grad_clip"],
                           patience=cfg["patience"], keep=cfg["selection"], time_cap_minutes=cfg["max_train_minutes"],
                           state_path=state_path, save_every=cfg["save_state_every"],
                           identity=fold_identity(cfg, fold.k))
    out = fit(model, optimizer, train_loader, {"val": val_loader, "test": test_loader}, TASK, settings,
              scheduler=scheduler)
    if progress is not None:
        last = out.selections["last"].metrics
        progress.set_postfix(fold=fold.k, epochs=out.epochs_run, test=f"{last['test']['accuracy']:.2f}",
                             val=f"{last['val']['accuracy']:.2f}" if "val" in last else "-", refresh=False)
    metrics = {sel: {**{m: s.metrics["test"][m] for m in METRICS}, "best_epoch": float(s.epoch)}
               for sel, s in out.selections.items()}
    # infer_ms_per_video: one test pass (window loading + model on all n_eval_clips windows) per test video
    extra = {"epochs_run": float(out.epochs_run), "train_seconds": out.train_seconds,
             "time_capped": float(out.stop_reason == "time_cap"),
             **{k: float(v) for k, v in count_parameters(model).items()},
             "infer_ms_per_video": 1000.0 * float(np.median(out.timings["test"])) / len(fold.test)}
    return FoldResult(fold.k, len(train), len(fold.test), metrics, extra, out.curves, out.state, scaler,
                      out.selections[out.kept].epoch, out.stop_reason, out.resumed_after)


def run_handcrafted_fold(cfg: Mapping[str, Any], dataset: SmileDataset, fold) -> FoldResult:
    from common.smile.handcrafted import evaluate_handcrafted

    t0 = time.perf_counter()
    out = evaluate_handcrafted(dataset, fold, model=BASELINES.info(cfg["variant"])["classifier"],
                               dmarker_variant=cfg["dmarker_variant"], seed=cfg["seed"],
                               dmarker_scope=cfg["dmarker_scope"], clip_len=cfg["clip_len"],
                               n_eval_clips=cfg["n_eval_clips"], landmark_norm=cfg["landmark_norm"])
    seconds = time.perf_counter() - t0
    metrics = {"": {m: out[m] for m in ("accuracy", "balanced_accuracy", "f1", "roc_auc")}}
    extra = {"train_seconds": seconds, "params_total": float(DMARKER_DIM + 1), "params_trainable": float(DMARKER_DIM + 1)}
    return FoldResult(fold.k, out["n_train"], out["n_test"], metrics, extra, {})


# ------------------------------------------------------------------------------------------------------ a run

@dataclass
class StudyRun:
    cfg: Mapping[str, Any]
    folder: Path
    folds: list[FoldResult] = field(default_factory=list)

    def table(self):
        """One row per fold: sizes, epochs and accuracy / balanced accuracy / AUC under each selection."""
        import pandas as pd

        rows = []
        for r in self.folds:
            row = {"fold": r.k, "n_train": r.n_train, "n_test": r.n_test}
            row.update({k: r.extra[k] for k in ("epochs_run", "train_seconds") if k in r.extra})
            for sel, m in r.metrics.items():
                tag = f"[{sel}]" if sel else ""
                row.update({f"accuracy{tag}": m["accuracy"], f"balanced_accuracy{tag}": m["balanced_accuracy"],
                            f"roc_auc{tag}": m["roc_auc"]})
                if "best_epoch" in m:
                    row[f"epoch{tag}"] = int(m["best_epoch"])
            rows.append(row)
        return pd.DataFrame(rows).set_index("fold")

    def curves(self) -> dict[int, dict[str, list]]:
        return {r.k: r.curves for r in self.folds if r.curves}


def parameter_comparison(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters of HadaSmileNet (hadamard) and DeepMarkerNet under this config's backbone, beside the 26 % claim."""
    counts = {}
    for variant in ("hadamard", "deepmarkernet"):
        counts[variant] = count_parameters(build_from_spec(model_spec({**cfg, "variant": variant})))["params_total"]
    return {**counts, "hadamard_over_deepmarkernet": counts["hadamard"] / counts["deepmarkernet"],
            "reduction_vs_deepmarkernet": 1 - counts["hadamard"] / counts["deepmarkernet"],
            "paper_claimed_reduction": PAPER_PARAM_REDUCTION_CLAIM}


def write_fold(writer: RunWriter, cfg, result: FoldResult, provenance: dict, spec: dict | None) -> None:
    for selection, metrics in result.metrics.items():
        writer.add(result.k, metrics, result.n_train, result.n_test, selection=selection)
    writer.add(result.k, result.extra, result.n_train, result.n_test, selection="")
    if result.curves:
        writer.save_json(f"curves/fold{result.k}.json", result.curves)
    if cfg["save_checkpoints"] and result.state is not None:
        save_checkpoint(writer.folder / "checkpoints" / f"fold{result.k}.pt", study="smile", config=dict(cfg),
                        model_state=result.state, provenance=provenance, model_spec=spec,
                        selection=cfg["selection"] if cfg["selection"] in result.metrics else "last",
                        fold=result.k, best_epoch=result.selected_epoch, dmarker_scaler=result.scaler)


def run_study(params: Mapping[str, Any], progress: bool = True, results_root: Path | None = None) -> StudyRun:
    """Run every selected fold of one dataset x variant and write raw rows + run.json (status complete)."""
    from tqdm import tqdm  # text bar: executed notebooks stay lean (no widget state)

    cfg = resolve_config(params)
    torch.set_num_threads(cfg["threads"] or torch.get_num_threads())  # a configured count, never the load's
    handcrafted = is_handcrafted(cfg["variant"])
    spec = None if handcrafted else model_spec(cfg)
    if spec is not None:
        build_from_spec(spec)  # unknown names / impossible sizes fail here, before any data work
    dataset = open_dataset(cfg)
    folds = select_folds(dataset, cfg["folds"], cfg["fold_order"])
    for fold in folds:
        check_fold(cfg, dataset, fold)
    if spec is not None:
        preflight_model(cfg, dataset, folds[0], spec)
    writer = open_run(cfg, dataset.fingerprint(), root=results_root,
                      synthetic_data=generated_data(cfg))
    run = StudyRun(cfg, writer.folder)
    bar = tqdm(folds, desc=f"{cfg['dataset']} {cfg['variant']}", disable=not progress, mininterval=1.0)
    states = writer.folder / "state"
    for fold in bar:
        result = (run_handcrafted_fold(cfg, dataset, fold) if handcrafted else
                  run_fold(cfg, dataset, fold, bar, state_path=states / f"fold{fold.k}.pt"))
        write_fold(writer, cfg, result, writer.provenance, spec)
        run.folds.append(result)
    bar.close()
    extra = {"n_folds": len(run.folds), "selections_recorded": sorted({s for r in run.folds for s in r.metrics}),
             "test_selection_note": "selection='test' rows pick the epoch on the test fold (released behaviour); "
                                    "they are optimistic and kept only to measure that optimism",
             "epochs_1_based": True, "protocol": cfg["protocol"], "fold_sequence": [f.k for f in folds],
             "stop_reasons": {str(r.k): r.stop_reason for r in run.folds if r.stop_reason},
             "resumed_folds": {str(r.k): r.resumed_after for r in run.folds if r.resumed_after is not None}}
    capped = [r.k for r in run.folds if r.stop_reason == "time_cap"]
    if capped:
        extra["time_capped_folds"] = capped
        extra["time_cap_note"] = (f"max_train_minutes={cfg['max_train_minutes']} ended training early in folds "
                                  f"{capped}: their numbers depend on this machine's speed")
    if cfg["protocol"] == "released":
        extra["protocol_label"] = RELEASED_LABEL
    if spec is not None:
        extra["model_spec"] = spec
        extra["param_comparison"] = parameter_comparison(cfg)
    writer.finish(**extra)
    discard_states(states)
    return run


def plot_curves(run: StudyRun, max_folds: int = 12):
    """Training curves per fold (loss; validation and test accuracy), one small panel each. Returns the figure."""
    import matplotlib.pyplot as plt

    curves = dict(list(run.curves().items())[:max_folds])
    if not curves:
        return None
    n = len(curves)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False, dpi=72)
    for ax, (k, c) in zip(axes.flat, curves.items()):
        ax.plot(c["epoch"], c["train_loss"], label="train loss")
        if any(v is not None for v in c.get("val_accuracy", ())):  # no validation split: released protocol
            ax.plot(c["epoch"], c["val_accuracy"], label="val acc")
        ax.plot(c["epoch"], c["test_accuracy"], label="test acc", linestyle=":")
        ax.set_title(f"fold {k}", fontsize=9)
        ax.set_ylim(bottom=0)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    tag = " (SYNTHETIC demo data)" if generated_data(run.cfg) else ""
    fig.suptitle(f"{run.cfg['dataset']} / {run.cfg['variant']}{tag}", fontsize=10)
    fig.tight_layout()
    return fig

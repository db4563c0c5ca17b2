"""HAFEM training: build a variant, train it through :func:`common.fer.engine.fit`, record its test evaluation and
save its val-selected checkpoint."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from common import engine
from common.checkpoints import save_checkpoint
from common.fer.data import FerData, make_loaders
from common.fer.engine import FitResult, TrainSettings, fit, predict_proba
from common.fer.loss import LOSSES
from common.fer.metrics import classification_metrics, confusion, predictions_record
from common.fer.model import build_fer_model, count_parameters
from common.results import RunWriter
from common.seeding import seed_everything

MAIN_VARIANT = "hafem"


def settings_from(cfg: Mapping[str, Any], seed: int, epochs: int | None = None, lr_max: float | None = None,
                  progress: bool = True) -> TrainSettings:
    epochs = epochs or cfg["epochs"]
    return TrainSettings(epochs=epochs, lr_max=lr_max or cfg["lr_max"], lr_min=cfg["lr_min"],
                         warmup_epochs=min(cfg["warmup_epochs"], epochs), weight_decay=cfg["weight_decay"],
                         layer_decay=cfg["layer_decay"], patience=cfg["patience"], mixup_prob=cfg["mixup_prob"],
                         mixup_alpha=cfg["mixup_alpha"], seed=seed, device=str(engine.resolve_device(cfg["device"])),
                         amp=cfg["amp"], grad_clip=cfg["grad_clip"], save_every=cfg["save_state_every"],
                         progress=progress)


@dataclass
class Trained:
    variant: str
    model: torch.nn.Module
    result: FitResult
    loss: str


def variant_identity(cfg: Mapping[str, Any], variant: str, model_name: str, loss: str, weights, epochs: int,
                     lr_max: float) -> dict[str, Any]:
    """What a variant's saved training state must match to be resumed."""
    ignored = ("num_workers", "save_state_every", "threads", "explain", "measure_speed", "tune_trials", "tune_epochs",
               "shap_samples", "zeroshot_targets", "comparisons", "seeds", "cv_folds", "cv_epochs", "cv_grid",
               "loss_weights")
    return {"study": "hafem", "variant": variant, "model": model_name, "loss": loss, "loss_weights": list(weights),
            "epochs": epochs, "lr_max": lr_max, "config": {k: v for k, v in cfg.items() if k not in ignored}}


def train_variant(cfg: Mapping[str, Any], data: FerData, variant: str, seed: int, loss: str | None = None,
                  loss_weights: tuple[float, float, float] | None = None, epochs: int | None = None,
                  lr_max: float | None = None, model_name: str | None = None, loaders=None,
                  progress: bool = True, state_dir: Path | None = None, init_state=None,
                  init_note: str = "") -> Trained:
    """Seed, build ``model_name`` (default ``variant``), train with early stopping on validation macro-F1; with
    ``state_dir`` the training resumes from (and keeps) ``<state_dir>/<variant>.pt``. ``init_state`` (a full state
    dict, loaded strictly) starts from trained weights instead, described by ``init_note``."""
    seed_everything(seed)
    model = build_fer_model(cfg, len(data.classes), model_name or variant)
    if init_state is not None:
        model.load_state_dict(init_state, strict=True)
        model.weights_note = init_note or "initialised from a given state dict"
    if progress:
        print(f"{variant} (seed {seed}): {model.weights_note}")
    loss = loss or cfg["loss"]
    weights = loss_weights or (cfg["w_ce"], cfg["w_center"], cfg["w_dls"])
    criterion = LOSSES.create(loss, num_classes=len(data.classes), feat_dim=model.feature_dim,
                              class_counts=data.class_counts, weights=weights, smoothing=cfg["smoothing"],
                              multi_target=getattr(data.train, "label_mode", "") == "multi_target")
    train, val, _ = loaders or make_loaders(cfg, data, seed)
    settings = settings_from(cfg, seed, epochs, lr_max, progress)
    if state_dir is not None:
        settings.state_path = Path(state_dir) / f"{variant}.pt"
        settings.identity = variant_identity(cfg, variant, model_name or variant, loss, weights, settings.epochs,
                                             settings.lr_max)
    result = fit(model, criterion, train, val, settings, desc=f"{variant} seed {seed}")
    return Trained(variant, model, result, loss)


def record_evaluation(writer: RunWriter, cfg: Mapping[str, Any], data: FerData, trained: Trained, test_loader,
                      label: str | None = None) -> dict[str, float]:
    """Test metrics of the val-selected model as rows (selection ``val``), plus predictions / confusion / curves."""
    variant = label or trained.variant
    proba, y = predict_proba(trained.model, test_loader, engine.resolve_device(cfg["device"]), desc=f"test {variant}")
    metrics = classification_metrics(y, proba, data.classes)
    extra = {"params_total": count_parameters(trained.model), "train_seconds": trained.result.train_seconds,
             "epochs_run": trained.result.epochs_run, "best_epoch": trained.result.best_epoch,
             "stopped_early": float(trained.result.stop_reason == "patience")}
    writer.add(0, {**metrics, **extra}, n_train=len(data.train), n_test=len(y), selection="val", variant=variant)
    writer.save_json(f"predictions/{variant}.json", predictions_record(y, proba, data.classes))
    writer.save_json(f"confusion/{variant}.json", confusion(y, proba.argmax(1), data.classes))
    writer.save_json(f"curves/{variant}.json", {"best_epoch": trained.result.best_epoch, **trained.result.curves})
    return metrics


def save_model(writer: RunWriter, cfg: Mapping[str, Any], data: FerData, trained: Trained) -> Path:
    """The val-selected weights with config and provenance, rebuildable by ``model_from_checkpoint``."""
    return save_checkpoint(writer.folder / "checkpoints" / f"{trained.variant}.pt", study="hafem", config=dict(cfg),
                           model_state=trained.result.best_state, provenance=writer.provenance, selection="val",
                           variant=trained.variant, classes=list(data.classes), best_epoch=trained.result.best_epoch,
                           best_val_f1=trained.result.best_val_f1,
                           weights_note=getattr(trained.model, "weights_note", ""))

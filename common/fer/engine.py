"""The HAFEM study's part of the training engine: AdamW with layer-wise lr decay, a per-step cosine schedule with
warm-up, mixup, and early stopping on the validation macro-F1 (:func:`fit` runs :func:`common.engine.fit`).

Paper (§ experiments): AdamW(β = 0.9, 0.999, ε = 1e-8, weight decay 5e-4), layer-wise lr decay 0.9, cosine annealing
with 10 warm-up epochs between η_max = 1e-3 and η_min = 1e-6 over 140 epochs, mixed precision with gradient scaling
(on CUDA only: CPU autocast would change the numbers and not the speed), early stopping with patience 20 on the
validation macro-F1. Selection is on the validation split only; the test split is never looked at during training.
Epochs are 1-based: epoch e covers schedule positions e-1 .. e.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from common import engine
from common.fer.augment import mixup
from common.fer.loss import as_distribution
from common.fer.metrics import macro_f1

# ---------------------------------------------------------------------------------------------------------- optimiser


def _backbone_units(backbone: nn.Module) -> list[tuple[str, nn.Module]]:
    """The backbone's children in forward order, with the block container (blocks / layers / stages) expanded."""
    units = []
    for name, child in backbone.named_children():
        if name in ("blocks", "stages", "layers") and isinstance(child, (nn.Sequential, nn.ModuleList)):
            units += [(f"{name}.{i}", sub) for i, sub in enumerate(child)]
        elif name.startswith("layer") and name[5:].isdigit():
            units.append((name, child))
        else:
            units.append((name, child))
    return units


def layer_ids(model: nn.Module, extra: Iterable[tuple[str, nn.Parameter]] = ()) -> dict[int, int]:
    """Map ``id(param)`` -> layer index: backbone units 0..L-1 in order, everything after the backbone L.

    Parameters a backbone unit does not own (none in timm models) and ``extra`` ones (the loss's centres) get L.
    """
    ids: dict[int, int] = {}
    backbone = getattr(model, "backbone", None)
    units = _backbone_units(backbone) if backbone is not None else []
    for i, (_, unit) in enumerate(units):
        for p in unit.parameters():
            ids[id(p)] = i
    top = len(units)
    for p in list(model.parameters()) + [p for _, p in extra]:
        ids.setdefault(id(p), top)
    return ids


def param_groups_lrd(model: nn.Module, weight_decay: float, layer_decay: float,
                     extra: Iterable[tuple[str, nn.Parameter]] = ()) -> list[dict[str, Any]]:
    """AdamW groups with ``lr_scale = layer_decay ** (L - layer)``; no weight decay on biases, norms, embeddings.

    The layer nearest the head trains at the full rate; each unit closer to the input at 0.9× the one above it.
    """
    extra = list(extra)
    ids = layer_ids(model, extra)
    top = max(ids.values())
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    named = [(n, p) for n, p in model.named_parameters()] + [(f"loss.{n}", p) for n, p in extra]
    for name, p in named:
        if not p.requires_grad:
            continue
        no_decay = p.ndim <= 1 or name.endswith((".pos", "centers"))
        layer = ids[id(p)]
        key = (layer, no_decay)
        if key not in groups:
            groups[key] = {"params": [], "weight_decay": 0.0 if no_decay else weight_decay, "layer": layer,
                           "lr_scale": layer_decay ** (top - layer)}
        groups[key]["params"].append(p)
    return [groups[k] for k in sorted(groups)]


def make_optimizer(model: nn.Module, lr: float, weight_decay: float = 5e-4, layer_decay: float = 0.9,
                   extra: Iterable[tuple[str, nn.Parameter]] = ()) -> torch.optim.AdamW:
    groups = param_groups_lrd(model, weight_decay, layer_decay, extra)
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)


def cosine_warmup_lr(t: float, lr_max: float, lr_min: float, warmup: float, total: float) -> float:
    """lr at epoch position ``t`` (fractional): linear lr_min -> lr_max over ``warmup`` epochs, then
    lr_min + ½ (lr_max − lr_min)(1 + cos(π (t − warmup)/(total − warmup))) down to lr_min at ``total``."""
    if warmup > 0 and t < warmup:
        return lr_min + (lr_max - lr_min) * t / warmup
    span = max(total - warmup, 1e-12)
    progress = min(max((t - warmup) / span, 0.0), 1.0)
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


# ------------------------------------------------------------------------------------------------------ loops


@dataclass
class TrainSettings:
    epochs: int
    lr_max: float = 1e-3
    lr_min: float = 1e-6
    warmup_epochs: float = 10
    weight_decay: float = 5e-4
    layer_decay: float = 0.9
    patience: int = 20
    mixup_prob: float = 0.4
    mixup_alpha: float = 0.4
    seed: int = 0
    device: str = "cpu"
    amp: bool = True
    grad_clip: float = 0.0
    progress: bool = True
    state_path: Path | None = None          # resumable training state (None = none)
    save_every: int = 1
    identity: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int                          # 1-based
    best_val_f1: float
    epochs_run: int
    train_seconds: float
    curves: dict[str, list[float]] = field(default_factory=dict)
    stop_reason: str = "epochs"
    resumed_after: int | None = None


@torch.no_grad()
def predict_proba(model: nn.Module, loader, device: str | torch.device = "cpu", desc: str | None = None,
                  return_features: bool = False):
    """Softmax probabilities (N, C) and integer targets (N,) (argmax for soft targets); optionally features."""
    model.eval()
    probs, targets, feats = [], [], []
    it = tqdm(loader, desc=desc, leave=False) if desc else loader
    for images, target in it:
        logits, f = model(images.to(device, non_blocking=True), return_features=True)
        probs.append(torch.softmax(logits.float(), -1).cpu())
        t = target if target.dim() == 1 else target.argmax(-1)
        targets.append(t.long().cpu())
        if return_features:
            feats.append(f.float().cpu())
    p = torch.cat(probs).numpy() if probs else np.zeros((0, 0))
    y = torch.cat(targets).numpy() if targets else np.zeros(0, dtype=np.int64)
    if return_features:
        return p, y, torch.cat(feats).numpy()
    return p, y


def hafem_task(criterion: nn.Module, settings: TrainSettings, generator: torch.Generator) -> engine.Task:
    """Mixup + the (compound) loss per batch, the cosine-with-warm-up lr per step, validation macro-F1."""
    n_classes = criterion.num_classes

    def batch_loss(model: nn.Module, batch) -> engine.StepOutput:
        images, target = batch
        mixed = mixup(images, as_distribution(target, n_classes), alpha=settings.mixup_alpha, p=settings.mixup_prob,
                      generator=generator)
        logits, feats = model(mixed.x, return_features=True)
        loss, parts = criterion(logits.float(), feats.float(), mixed.y)
        b = images.shape[0]
        return engine.StepOutput(loss, b, {k: v * b for k, v in parts.items()})

    def schedule(optimizer, epoch: int, step: int, steps: int) -> None:
        set_lr(optimizer, cosine_warmup_lr(epoch - 1 + step / steps, settings.lr_max, settings.lr_min,
                                           settings.warmup_epochs, settings.epochs))

    def validate(model: nn.Module, loader, device) -> dict[str, float]:
        proba, y = predict_proba(model, loader, device)
        pred = proba.argmax(1)
        return {"f1_macro": macro_f1(y, pred, proba.shape[1]), "accuracy": float(np.mean(pred == y))}

    return engine.Task(loss=batch_loss, evaluate=validate, select={"val": lambda m: m["f1_macro"]},
                       curve_metrics=("f1_macro",), before_step=schedule, modules=(criterion,))


def fit(model: nn.Module, criterion: nn.Module, train_loader, val_loader, settings: TrainSettings,
        desc: str = "train") -> FitResult:
    """Train with early stopping on validation macro-F1; return the best (val-selected) weights and curves."""
    optimizer = make_optimizer(model, settings.lr_max, settings.weight_decay, settings.layer_decay,
                               extra=list(criterion.named_parameters()))
    generator = torch.Generator().manual_seed(settings.seed + 7919)
    out = engine.fit(model, optimizer, train_loader, {"val": val_loader}, hafem_task(criterion, settings, generator),
                     engine.FitSettings(epochs=settings.epochs, device=settings.device, amp=settings.amp,
                                        grad_clip=settings.grad_clip, patience=settings.patience, keep="val",
                                        state_path=settings.state_path, save_every=settings.save_every,
                                        identity=settings.identity, progress=settings.progress, desc=desc),
                     generators=(generator,))
    best = out.selections["val"]
    return FitResult(best_state=out.state, best_epoch=best.epoch, best_val_f1=best.metrics["val"]["f1_macro"],
                     epochs_run=out.epochs_run, train_seconds=out.train_seconds, curves=out.curves,
                     stop_reason=out.stop_reason, resumed_after=out.resumed_after)

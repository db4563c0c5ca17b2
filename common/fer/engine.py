"""Training and evaluation: AdamW with layer-wise lr decay, cosine schedule with warm-up, early stopping on val F1.

Paper (§ experiments): AdamW(β = 0.9, 0.999, ε = 1e-8, weight decay 5e-4), layer-wise lr decay 0.9, cosine annealing
with 10 warm-up epochs between η_max = 1e-3 and η_min = 1e-6 over 140 epochs, mixed precision with gradient scaling
(GPU only here: CPU autocast would change the numbers and not the speed), early stopping with patience 20 on the
validation macro-F1. Selection is on the validation split only; the test split is never looked at during training.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

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
    grad_clip: float = 0.0
    progress: bool = True


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val_f1: float
    epochs_run: int
    train_seconds: float
    curves: dict[str, list[float]] = field(default_factory=dict)


def train_one_epoch(model: nn.Module, loader, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    settings: TrainSettings, epoch: int, generator: torch.Generator,
                    scaler: torch.amp.GradScaler | None = None) -> dict[str, float]:
    """One pass over ``loader``; the lr follows the schedule per step. Returns mean loss terms."""
    model.train()
    criterion.train()
    n_classes = criterion.num_classes
    steps = max(len(loader), 1)
    sums: dict[str, float] = {}
    count = 0
    use_amp = scaler is not None
    for step, (images, target) in enumerate(loader):
        set_lr(optimizer, cosine_warmup_lr(epoch + step / steps, settings.lr_max, settings.lr_min,
                                           settings.warmup_epochs, settings.epochs))
        images = images.to(settings.device, non_blocking=True)
        q = as_distribution(target.to(settings.device), n_classes)
        mixed = mixup(images, q, alpha=settings.mixup_alpha, p=settings.mixup_prob, generator=generator)
        images, q = mixed.x, mixed.y
        with torch.autocast("cuda", enabled=use_amp):
            logits, feats = model(images, return_features=True)
            loss, parts = criterion(logits, feats, q)
        optimizer.zero_grad(set_to_none=True)
        if use_amp:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if settings.grad_clip > 0:
            nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], settings.grad_clip)
        if use_amp:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss at epoch {epoch}, step {step}: {parts}")
        b = images.shape[0]
        count += b
        sums["loss"] = sums.get("loss", 0.0) + loss.item() * b
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v * b
    return {k: v / max(count, 1) for k, v in sums.items()}


@torch.no_grad()
def predict_proba(model: nn.Module, loader, device: str = "cpu", desc: str | None = None,
                  return_features: bool = False):
    """Softmax probabilities (N, C) and integer targets (N,) (argmax for soft targets); optionally features."""
    model.eval()
    probs, targets, feats = [], [], []
    it = tqdm(loader, desc=desc, leave=False) if desc else loader
    for images, target in it:
        logits, f = model(images.to(device), return_features=True)
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


def fit(model: nn.Module, criterion: nn.Module, train_loader, val_loader, settings: TrainSettings,
        on_epoch: Callable[[int, Mapping[str, float]], None] | None = None, desc: str = "train") -> FitResult:
    """Train with early stopping on validation macro-F1; return the best (val-selected) weights and curves."""
    device = settings.device
    model.to(device)
    criterion.to(device)
    optimizer = make_optimizer(model, settings.lr_max, settings.weight_decay, settings.layer_decay,
                               extra=list(criterion.named_parameters()))
    scaler = torch.amp.GradScaler("cuda") if device.startswith("cuda") else None
    generator = torch.Generator().manual_seed(settings.seed + 7919)
    curves: dict[str, list[float]] = {}
    best_f1, best_epoch, best_state, stale = -1.0, -1, None, 0
    t0 = time.time()
    bar = tqdm(range(settings.epochs), desc=desc, disable=not settings.progress)
    epoch = -1
    for epoch in bar:
        stats = train_one_epoch(model, train_loader, criterion, optimizer, settings, epoch, generator, scaler)
        proba, y = predict_proba(model, val_loader, device)
        stats["val_f1_macro"] = macro_f1(y, proba.argmax(1), proba.shape[1])
        stats["lr"] = optimizer.param_groups[-1]["lr"]
        for k, v in stats.items():
            curves.setdefault(k, []).append(float(v))
        bar.set_postfix(loss=f"{stats['loss']:.3f}", val_f1=f"{stats['val_f1_macro']:.3f}")
        if on_epoch is not None:
            on_epoch(epoch, stats)
        if stats["val_f1_macro"] > best_f1:
            best_f1, best_epoch, stale = stats["val_f1_macro"], epoch, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            stale += 1
            if stale >= settings.patience:
                break
    if best_state is None:
        raise RuntimeError("training ran no epoch (epochs must be >= 1)")
    model.load_state_dict(best_state)
    return FitResult(best_state=best_state, best_epoch=best_epoch + 1, best_val_f1=best_f1, epochs_run=epoch + 1,
                     train_seconds=time.time() - t0, curves=curves)

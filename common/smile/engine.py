"""The smile study's part of the training engine: the loss of one batch, per-video evaluation, epoch ranking.

:data:`TASK` plugs these into :func:`common.engine.fit`. Evaluation averages the sigmoid outputs of each video's
``n_eval_clips`` windows (``docs/smile-method.md``, "Deep branch, fusions and training"). Everything is deterministic
on CPU for a fixed seed: windows come from (seed, epoch, index), shuffling from a seeded generator, initialisation and
dropout from the seeded global stream.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from einops import rearrange
from torch import nn

from common.engine import StepOutput, Task, to_device
from common.smile.metrics import bce, binary_metrics

METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc")


def batch_loss(model: nn.Module, batch) -> StepOutput:
    """BCE (plus the model's auxiliary terms) of one training batch; ``accuracy`` sums the correct windows."""
    loss, logits = model.loss(batch["clip"], batch["dmarker"], batch["label"])
    correct = ((logits.detach() > 0).float() == batch["label"]).sum()
    return StepOutput(loss, int(batch["label"].shape[0]), {"accuracy": correct})


@torch.no_grad()
def predict(model: nn.Module, loader, device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray, float]:
    """Per-video probability = mean over its windows of sigmoid(logit); returns (proba, labels, seconds)."""
    model.eval()
    device = torch.device(device)
    t0 = time.perf_counter()
    probs, labels = [], []
    for batch in loader:
        clip, dm = to_device(batch["clip"], device), to_device(batch["dmarker"], device)
        b, n = dm.shape[:2]
        logits = model(rearrange(clip, "b n t p c -> (b n) t p c"), rearrange(dm, "b n f -> (b n) f"))
        probs.append(rearrange(torch.sigmoid(logits.float()), "(b n) -> b n", b=b, n=n).mean(dim=1).cpu())
        labels.append(batch["label"])
    seconds = time.perf_counter() - t0
    return torch.cat(probs).numpy().astype(np.float64), torch.cat(labels).numpy(), seconds


def evaluate(model: nn.Module, loader, device: torch.device | str = "cpu") -> dict:
    """Metrics of ``loader``'s videos plus ``loss`` (BCE of the averaged probabilities), ``proba`` and ``seconds``."""
    proba, labels, seconds = predict(model, loader, device)
    out = binary_metrics(labels, proba)
    out.update(loss=bce(labels, proba), proba=proba, labels=labels, seconds=seconds)
    return out


def split_metrics(model: nn.Module, loader, device: torch.device) -> dict[str, float]:
    out = evaluate(model, loader, device)
    return {k: float(out[k]) for k in (*METRICS, "loss")}


# validation: accuracy, ties -> lower validation loss; test (released): saved whenever test accuracy improves
TASK = Task(loss=batch_loss, evaluate=split_metrics,
            select={"val": lambda m: (m["accuracy"], -m["loss"]), "test": lambda m: m["accuracy"]},
            curve_metrics=("loss", "accuracy"))

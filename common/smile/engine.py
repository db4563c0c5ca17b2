"""Training and evaluation loops (ConvNeXt-style ``train_one_epoch`` / ``evaluate``).

Evaluation averages the sigmoid outputs of each video's ``n_eval_clips`` windows (spec §5). Everything is
deterministic on CPU for a fixed seed: windows come from (seed, epoch, index), shuffling from a seeded generator,
initialisation and dropout from the seeded global torch stream.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from einops import rearrange
from torch import nn

from common.smile.metrics import bce, binary_metrics


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, epoch: int,
                    scheduler=None) -> dict[str, float]:
    """One pass over ``loader``; returns mean loss, training accuracy (on the sampled windows) and seconds."""
    model.train()
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)
    t0 = time.perf_counter()
    total_loss, correct, seen = 0.0, 0, 0
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        loss, logits = model.loss(batch["clip"], batch["dmarker"], batch["label"])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"epoch {epoch}: training loss became {loss.item()}")
        loss.backward()
        optimizer.step()
        n = batch["label"].shape[0]
        total_loss += loss.item() * n
        correct += int(((logits.detach() > 0).float() == batch["label"]).sum())
        seen += n
    if scheduler is not None:
        scheduler.step()
    if seen == 0:
        raise ValueError("the training loader yielded no batch (fewer videos than batch_size with drop_last?)")
    return {"loss": total_loss / seen, "accuracy": correct / seen, "seconds": time.perf_counter() - t0}


@torch.no_grad()
def predict(model: nn.Module, loader) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-video probability = mean over its windows of sigmoid(logit); returns (proba, labels, seconds)."""
    model.eval()
    t0 = time.perf_counter()
    probs, labels = [], []
    for batch in loader:
        clip, dm = batch["clip"], batch["dmarker"]
        b, n = dm.shape[:2]
        clip = rearrange(clip, "b n t p c -> (b n) t p c")
        logits = model(clip, rearrange(dm, "b n f -> (b n) f"))
        probs.append(rearrange(torch.sigmoid(logits), "(b n) -> b n", b=b, n=n).mean(dim=1))
        labels.append(batch["label"])
    seconds = time.perf_counter() - t0
    return torch.cat(probs).numpy().astype(np.float64), torch.cat(labels).numpy(), seconds


def evaluate(model: nn.Module, loader) -> dict:
    """Metrics of ``loader``'s videos plus ``loss`` (BCE of the averaged probabilities), ``proba`` and ``seconds``."""
    proba, labels, seconds = predict(model, loader)
    out = binary_metrics(labels, proba)
    out.update(loss=bce(labels, proba), proba=proba, labels=labels, seconds=seconds)
    return out

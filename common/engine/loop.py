"""The fit loop of both studies: epochs, selection, early stopping, time cap and resume (:func:`fit`).

A study gives :func:`fit` its model, optimiser, loaders and a :class:`Task` (how one batch becomes a loss, how one
split is evaluated, how an epoch is ranked on a split); the engine owns everything else, the same way for both:

* **Device**: ``auto`` (CUDA when torch sees it, else CPU), ``cpu``, ``cuda`` or ``mps``; a device that is not there
  is a :class:`~common.engine.device.DeviceError` before anything runs. On CUDA, mixed precision is on by default:
  bfloat16 where the GPU supports it, float16 with a gradient scaler otherwise (CPU runs stay in float32,
  bit-reproducible). :func:`~common.engine.device.loader_options` gives pinned memory on CUDA and seeded workers.
* **Epochs are 1-based everywhere**: the curves' ``epoch`` column, every selected epoch, and the
  ``set_epoch(epoch)`` call made on the dataset of every loader the engine iterates (training and evaluation alike,
  before each pass), so random windows / augmentations / per-epoch test draws replay per seed.
* **Selection**: every split named in ``Task.select`` that has a loader is evaluated after each epoch; for each,
  the epoch with the highest key is recorded (ties keep the earlier epoch) with the metrics of *all* splits at that
  epoch, plus ``last``. The weights of one selection (``keep``) are returned. Early stopping counts epochs without
  improvement on ``patience_on`` (validation). An optional time cap (off by default) stops training after that many
  training minutes and says so in ``stop_reason``: it makes results depend on the machine, so results record it.
* **Resume within a run**: with a ``state_path`` the full training state (model, optimiser, scheduler, gradient
  scaler, the Python / NumPy / torch / CUDA random states and every loader generator, the epoch, the best-so-far
  weights and metrics, curves) is written atomically every ``save_every`` epochs and at SIGTERM / SIGUSR1 (the
  current epoch is finished first, then :class:`TrainingInterrupted` is raised). Started again, :func:`fit`
  continues after the saved epoch; on CPU the result is bit-identical to an uninterrupted run. A finished fit leaves
  a small final state (the kept weights and the records), so a restarted study replays finished fits without
  training. A state written for another config or code version is refused (:class:`StateMismatchError` names the
  first differing field) and never overwritten; an unreadable one is a :class:`~common.engine.state.StateError`.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from common.engine.device import Precision, release_free_memory, resolve_device, set_loader_epoch, to_device
from common.engine.state import (STATE_FORMAT, ExitSignals, TrainingInterrupted, code_version, loader_generators,
                                 read_state, save_state, set_rng_state)


class StepOutput(NamedTuple):
    """One training batch: the loss to minimise, the batch size, and per-batch *sums* to average over the epoch
    (e.g. ``{"accuracy": number correct}``; tensors or floats)."""

    loss: torch.Tensor
    n: int
    sums: Mapping[str, Any] = {}


@dataclass
class Task:
    """What a study plugs into :func:`fit`.

    ``loss(model, batch)`` -> StepOutput (batch already on the device, called under autocast);
    ``evaluate(model, loader, device)`` -> {metric: float} of one split (called under ``no_grad``);
    ``select``: split -> key function on that split's metrics (higher is better), e.g. ``{"val": ...}``;
    ``curve_metrics``: metrics of each split kept in the curves (as ``<split>_<metric>``);
    ``before_step(optimizer, epoch, step, steps)``: e.g. a per-step learning-rate schedule (``step`` 0-based);
    ``modules``: trained modules besides the model (a loss with parameters), moved to the device with it.
    """

    loss: Callable[[nn.Module, Any], StepOutput]
    evaluate: Callable[[nn.Module, Any, torch.device], Mapping[str, float]]
    select: Mapping[str, Callable[[Mapping[str, float]], Any]]
    curve_metrics: tuple[str, ...] = ()
    before_step: Callable[[torch.optim.Optimizer, int, int, int], None] | None = None
    modules: tuple[nn.Module, ...] = ()


@dataclass
class FitSettings:
    epochs: int
    device: str = "auto"
    amp: bool = True                  # mixed precision on CUDA (bf16 where supported, else fp16 + scaler)
    grad_clip: float = 0.0            # max global gradient norm, 0 = off
    patience: int = 0                 # epochs without improvement on ``patience_on`` before stopping, 0 = off
    patience_on: str = "val"
    keep: str = "val"                 # selection whose weights are returned: a split in Task.select, or "last"
    time_cap_minutes: float = 0.0     # stop after this much training time, 0 = off (recorded in stop_reason)
    state_path: Path | None = None    # training-state file for resume, None = no state
    save_every: int = 1               # epochs between state saves (0 = only at exit signals and at the end)
    identity: Mapping[str, Any] = field(default_factory=dict)  # what a saved state must match to be resumed
    progress: bool = False
    desc: str = "train"


@dataclass
class Selected:
    epoch: int                                    # 1-based
    metrics: dict[str, dict[str, float]]          # split -> metrics at that epoch


@dataclass
class FitResult:
    state: dict[str, torch.Tensor]                # weights of the kept selection, on the CPU
    kept: str                                     # which selection they are
    selections: dict[str, Selected]               # "val" / "test" (splits in Task.select) and "last"
    curves: dict[str, list]
    epochs_run: int
    train_seconds: float
    stop_reason: str                              # "epochs", "patience" or "time_cap"
    timings: dict[str, list[float]] = field(default_factory=dict)   # seconds per epoch (train, <split>)
    resumed_after: int | None = None              # epoch the fit continued after (None: started fresh)
    device: str = "cpu"
    precision: str = "fp32"



def _floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)}


def _cpu_copy(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _new_tracker() -> dict[str, Any]:
    return {"epoch": 0, "curves": {}, "timings": {}, "best": {}, "since_best": 0, "train_seconds": 0.0,
            "kept_state": None, "stop_reason": None, "last": None}


def _train_epoch(model, loader, optimizer, task: Task, settings: FitSettings, precision: Precision, scaler,
                 epoch: int) -> tuple[dict[str, float], float]:
    """One pass; returns the epoch means (``loss`` and the task's sums over samples) and the first step's lr."""
    model.train()
    for m in task.modules:
        m.train()
    set_loader_epoch(loader, epoch)
    try:
        steps = max(len(loader), 1)
    except TypeError:
        steps = 1
    params = [p for g in optimizer.param_groups for p in g["params"]]
    totals: dict[str, Any] = {}
    seen, lr = 0, optimizer.param_groups[-1]["lr"]
    for step, batch in enumerate(loader):
        if task.before_step is not None:
            task.before_step(optimizer, epoch, step, steps)
        if step == 0:
            lr = optimizer.param_groups[-1]["lr"]
        batch = to_device(batch, precision.device)
        with precision.autocast():
            out = task.loss(model, batch)
        if not torch.isfinite(out.loss):
            raise FloatingPointError(f"epoch {epoch}, step {step + 1}: training loss became {out.loss.item()}")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(out.loss).backward()
            if settings.grad_clip > 0:
                scaler.unscale_(optimizer)
        else:
            out.loss.backward()
        if settings.grad_clip > 0:
            nn.utils.clip_grad_norm_(params, settings.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        totals["loss"] = totals.get("loss", 0.0) + out.loss.detach().float() * out.n
        for k, v in out.sums.items():
            totals[k] = totals.get(k, 0.0) + (v.detach().float() if isinstance(v, torch.Tensor) else v)
        seen += out.n
    if seen == 0:
        raise ValueError("the training loader yielded no batch (fewer items than batch_size with drop_last?)")
    return {k: float(v) / seen for k, v in totals.items()}, float(lr)


def _evaluate(model, loader, task: Task, precision: Precision, epoch: int) -> dict[str, float]:
    model.eval()
    set_loader_epoch(loader, epoch)
    with torch.no_grad(), precision.autocast():
        return _floats(task.evaluate(model, loader, precision.device))


def _record(tracker: dict[str, Any], epoch: int, lr: float, train: Mapping[str, float],
            metrics: Mapping[str, Mapping[str, float]], task: Task, keep: str, model: nn.Module) -> None:
    curves = tracker["curves"]
    row = {"epoch": epoch, "lr": lr, **{f"train_{k}": v for k, v in train.items()}}
    for split, m in metrics.items():
        row.update({f"{split}_{name}": m.get(name) for name in task.curve_metrics})
    for key, value in row.items():
        curves.setdefault(key, []).append(value)
    for split, key_fn in task.select.items():
        if split not in metrics:
            continue
        key = key_fn(metrics[split])
        best = tracker["best"].get(split)
        if best is None or key > best["key"]:
            tracker["best"][split] = {"key": key, "epoch": epoch, "metrics": copy.deepcopy(dict(metrics))}
            if split == keep:
                tracker["kept_state"] = _cpu_copy(model.state_dict())
            if split == tracker.get("patience_on"):
                tracker["since_best"] = 0
        elif split == tracker.get("patience_on"):
            tracker["since_best"] += 1
    tracker["last"] = {"epoch": epoch, "metrics": copy.deepcopy(dict(metrics))}
    tracker["epoch"] = epoch



def fit(model: nn.Module, optimizer: torch.optim.Optimizer, train_loader, evals: Mapping[str, Any], task: Task,
        settings: FitSettings, scheduler=None, generators: Iterable[torch.Generator] = ()) -> FitResult:
    """Train ``settings.epochs`` epochs (or until early stopping / the time cap), evaluating ``evals`` after each;
    resume from ``settings.state_path`` when it holds a state of this fit. See the module docstring."""
    from tqdm.auto import tqdm

    if settings.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {settings.epochs}")
    release_free_memory()  # what earlier stages of the process freed, before this training allocates its own
    device = resolve_device(settings.device)
    precision = Precision.choose(device, settings.amp)
    model.to(device)
    for m in task.modules:
        m.to(device)
    scaler = precision.make_scaler()
    evals = {k: v for k, v in evals.items() if v is not None}
    keep = settings.keep if settings.keep in evals and settings.keep in task.select else "last"
    gens = loader_generators([train_loader, *evals.values()], generators)
    identity = {**settings.identity, "engine": {
        "format": STATE_FORMAT, "code_version": code_version(), "epochs": settings.epochs,
        "device": device.type, "precision": precision.name, "grad_clip": settings.grad_clip,
        "patience": settings.patience, "keep": keep, "time_cap_minutes": settings.time_cap_minutes}}
    path = Path(settings.state_path) if settings.state_path else None
    tracker, resumed_after, was_finished = _new_tracker(), None, False
    if path is not None and path.exists():
        payload = read_state(path, identity)
        tracker, was_finished = payload["tracker"], bool(payload["finished"])
        resumed_after = tracker["epoch"]
        if not was_finished:
            model.load_state_dict(payload["model"])
            optimizer.load_state_dict(payload["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(payload["scheduler"])
            if scaler is not None and payload["scaler"] is not None:
                scaler.load_state_dict(payload["scaler"])
            for m, s in zip(task.modules, payload["modules"]):
                m.load_state_dict(s)
            set_rng_state(payload["rng"], gens, path)
    tracker["patience_on"] = settings.patience_on
    cap = settings.time_cap_minutes * 60.0
    bar = tqdm(total=settings.epochs, initial=tracker["epoch"], desc=settings.desc, disable=not settings.progress)
    with ExitSignals(enabled=path is not None) as signals:
        while not was_finished and tracker["stop_reason"] is None and tracker["epoch"] < settings.epochs:
            epoch = tracker["epoch"] + 1
            t0 = time.perf_counter()
            train, lr = _train_epoch(model, train_loader, optimizer, task, settings, precision, scaler, epoch)
            if scheduler is not None:
                scheduler.step()
            train_seconds = time.perf_counter() - t0
            metrics, seconds = {}, {"train": train_seconds}
            for split, loader in evals.items():
                t1 = time.perf_counter()
                metrics[split] = _evaluate(model, loader, task, precision, epoch)
                seconds[split] = time.perf_counter() - t1
            _record(tracker, epoch, lr, train, metrics, task, keep, model)
            tracker["train_seconds"] += train_seconds
            for k, v in seconds.items():
                tracker["timings"].setdefault(k, []).append(v)
            if settings.patience and tracker["since_best"] >= settings.patience:
                tracker["stop_reason"] = "patience"
            elif cap and tracker["train_seconds"] > cap:
                tracker["stop_reason"] = "time_cap"
            bar.update(1)
            bar.set_postfix(loss=f"{train['loss']:.3f}", **{s: f"{m.get(task.curve_metrics[0], math.nan):.3f}"
                                                            for s, m in metrics.items() if task.curve_metrics},
                            refresh=False)
            done = tracker["stop_reason"] is not None or epoch == settings.epochs
            periodic = settings.save_every and epoch % settings.save_every == 0
            if path is not None and not done and (signals.received or periodic):
                save_state(path, identity, tracker, finished=False, model=model, optimizer=optimizer,
                            scheduler=scheduler, scaler=scaler, modules=task.modules, generators=gens)
            if signals.received and not done:
                bar.close()
                raise TrainingInterrupted(signals.received, epoch, path)
    bar.close()
    if tracker["epoch"] == 0:
        raise RuntimeError("training ran no epoch")
    tracker["stop_reason"] = tracker["stop_reason"] or "epochs"
    if keep == "last" and not was_finished:
        tracker["kept_state"] = _cpu_copy(model.state_dict())
    state = tracker["kept_state"]
    model.load_state_dict(state)
    if path is not None and not was_finished:
        save_state(path, identity, tracker, finished=True)
    release_free_memory()  # the activations of the last steps
    selections = {split: Selected(b["epoch"], b["metrics"]) for split, b in tracker["best"].items()}
    selections["last"] = Selected(tracker["last"]["epoch"], tracker["last"]["metrics"])
    return FitResult(state=state, kept=keep, selections=selections, curves=tracker["curves"],
                     epochs_run=tracker["epoch"], train_seconds=tracker["train_seconds"],
                     stop_reason=tracker["stop_reason"], timings=tracker["timings"], resumed_after=resumed_after,
                     device=str(device), precision=precision.name)

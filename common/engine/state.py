"""Training-state files and exit signals: what :func:`common.engine.fit` saves to resume a run.

A state holds the model, optimiser, scheduler, gradient scaler, the Python / NumPy / torch / CUDA random states
and every loader generator, and the tracker (epoch, best-so-far weights and metrics, curves); it is written
atomically (:func:`save_state`) and read back only for the same identity (config, code version, engine
settings): :func:`read_state` raises :class:`StateMismatchError` naming the first differing field, or
:class:`StateError` for an unreadable file. :class:`ExitSignals` records SIGTERM / SIGUSR1 during a fit.
"""
from __future__ import annotations

import functools
import json
import random
import signal
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common import io as atomic

STATE_FORMAT = "repro-train-state/1"
EXIT_SIGNALS = ("SIGTERM", "SIGUSR1")  # what Slurm sends before preempting / at the time limit (--signal=USR1@...)


class StateError(RuntimeError):
    """A training-state file cannot be read or is not a training state."""


class StateMismatchError(StateError):
    """A training-state file was written for another config or code version (the file is left untouched)."""


class TrainingInterrupted(RuntimeError):
    """An exit signal arrived: the state after ``epoch`` is saved in ``path``; run again to continue."""

    def __init__(self, signal_name: str, epoch: int, path: Path):
        super().__init__(f"{signal_name} received: training state after epoch {epoch} saved to {path}; "
                         "run the same command again to continue from there")
        self.signal_name, self.epoch, self.path = signal_name, epoch, path


@functools.cache
def code_version() -> str:
    """Fingerprint of the repository's ``common`` sources (a resume across code changes is refused)."""
    from common.paths import ROOT
    from common.provenance import fingerprint_files

    return fingerprint_files(sorted((ROOT / "common").rglob("*.py")), ROOT)[:16]


def _plain(value: Any) -> Any:
    """JSON-normal form (tuples -> lists, paths -> str) so identities compare by value."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def first_difference(saved: Mapping[str, Any], current: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
    """(field, saved value, current value) of the first field that differs, in the current identity's order."""
    a, b = _flatten(_plain(saved)), _flatten(_plain(current))
    missing = object()
    for key in list(b) + [k for k in a if k not in b]:
        if a.get(key, missing) != b.get(key, missing):
            return key, a.get(key, "<absent>"), b.get(key, "<absent>")
    return None


def read_state(path: Path, identity: Mapping[str, Any]) -> dict[str, Any]:
    """Load a training state and check it belongs to this fit; every problem names the file."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file raises many kinds
        raise StateError(f"{path}: training state cannot be read ({exc.__class__.__name__}: {exc}); it is corrupt. "
                         "Delete it to train this part from the start") from exc
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise StateError(f"{path}: not a training state of format {STATE_FORMAT!r} (found {found!r})")
    diff = first_difference(payload.get("identity", {}), identity)
    if diff is not None:
        key, old, new = diff
        raise StateMismatchError(f"{path}: training state written for {key}={old!r}, this run has {key}={new!r}; "
                                 "refusing to resume and leaving the file untouched (run with the original settings "
                                 "and code, or delete the file to start afresh)")
    return payload


def loader_generators(loaders: Iterable[Any], extra: Iterable[torch.Generator]) -> list[torch.Generator]:
    """Every torch.Generator that drives the loaders (shuffling, worker seeds) plus ``extra``, each once."""
    found: dict[int, torch.Generator] = {}
    for loader in loaders:
        for owner in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
            g = getattr(owner, "generator", None)
            if isinstance(g, torch.Generator):
                found.setdefault(id(g), g)
    for g in extra:
        found.setdefault(id(g), g)
    return list(found.values())


def rng_state(generators: list[torch.Generator]) -> dict[str, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": cuda, "generators": [g.get_state() for g in generators]}


def set_rng_state(state: Mapping[str, Any], generators: list[torch.Generator], path: Path) -> None:
    if len(state["generators"]) != len(generators):
        raise StateMismatchError(f"{path}: the state holds {len(state['generators'])} loader generators, this run "
                                 f"uses {len(generators)}")
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for g, s in zip(generators, state["generators"]):
        g.set_state(s)


def discard_states(folder: Path) -> None:
    """Remove a finished run's training states (its results are written; the states only served resuming)."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)



def save_state(path: Path, identity: Mapping[str, Any], tracker: Mapping[str, Any], *, finished: bool,
                model: nn.Module | None = None, optimizer=None, scheduler=None, scaler=None, modules=(),
                generators=()) -> None:
    payload: dict[str, Any] = {"format": STATE_FORMAT, "identity": _plain(identity), "finished": finished,
                               "tracker": dict(tracker)}
    if not finished:  # a finished state needs only the kept weights and the records (they are in the tracker)
        payload.update(model=model.state_dict(), optimizer=optimizer.state_dict(),
                       scheduler=scheduler.state_dict() if scheduler is not None else None,
                       scaler=scaler.state_dict() if scaler is not None else None,
                       modules=[m.state_dict() for m in modules], rng=rng_state(list(generators)))
    atomic.save_torch(path, payload)



class ExitSignals:
    """Record SIGTERM / SIGUSR1 while training (main thread only); the loop saves and stops at the epoch's end."""

    current: "ExitSignals | None" = None

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        self.received = signal.Signals(signum).name

    def __enter__(self) -> "ExitSignals":
        if self.enabled:
            for name in EXIT_SIGNALS:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self._previous[sig] = signal.signal(sig, self._handle)
        ExitSignals.current = self
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        ExitSignals.current = None


def exit_signal_received() -> str | None:
    """Name of the exit signal the running fit has received (None if none, or no fit is running)."""
    return ExitSignals.current.received if ExitSignals.current is not None else None


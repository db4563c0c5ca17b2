"""Where and how the engine computes: the device (``auto`` / ``cpu`` / ``cuda`` / ``mps``), mixed precision on
CUDA (bf16 where supported, else fp16 with a gradient scaler), DataLoader options (pinned memory, seeded workers)
and moving batches to the device."""
from __future__ import annotations

import contextlib
import random
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from common.engine.state import EXIT_SIGNALS
from common.engine_params import DEVICES


class DeviceError(RuntimeError):
    """The requested device is not available."""



def resolve_device(requested: str = "auto") -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else CPU; an explicit device that is absent raises DeviceError."""
    name = str(requested)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise DeviceError(f"device={name!r}: accepted are {', '.join(DEVICES)}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device={name!r} requested but torch sees no CUDA device (torch {torch.__version__}, "
                          f"built for CUDA {torch.version.cuda}); use device='auto' or 'cpu'")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"device={name!r} requested but torch sees no Apple MPS device")
    return torch.device(name)


@dataclass(frozen=True)
class Precision:
    """Autocast dtype on the device (None = float32) and whether float16 needs a gradient scaler."""

    device: torch.device
    dtype: torch.dtype | None = None

    @classmethod
    def choose(cls, device: torch.device, amp: bool = True) -> "Precision":
        if not amp or device.type != "cuda":
            return cls(device, None)
        return cls(device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def make_scaler(self) -> "torch.amp.GradScaler | None":
        return torch.amp.GradScaler(self.device.type) if self.dtype == torch.float16 else None


def seed_worker(worker_id: int) -> None:
    """DataLoader worker init: NumPy and ``random`` from torch's per-worker seed (itself from the loader's
    generator), so worker processes replay per seed whatever their number. Workers ignore the exit signals, so the
    main process can finish the epoch and save its state (a worker still ends when its parent dies)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    for name in EXIT_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def loader_options(device: torch.device | str, num_workers: int = 0) -> dict[str, Any]:
    """DataLoader keyword arguments: pinned memory on CUDA, seeded worker processes (never persistent, so every
    pass sees the dataset's current epoch)."""
    device = torch.device(device)
    opts: dict[str, Any] = {"num_workers": int(num_workers), "pin_memory": device.type == "cuda"}
    if num_workers:
        opts["worker_init_fn"] = seed_worker
    return opts


def to_device(batch: Any, device: torch.device) -> Any:
    """Tensors of a (nested) batch moved to ``device`` (asynchronously from pinned memory)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def set_loader_epoch(loader: Any, epoch: int) -> None:
    """Tell the loader's dataset the (1-based) epoch, if it listens."""
    dataset = getattr(loader, "dataset", None)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)


_LIBC: Any = None  # the C library, once looked up (False where there is none to load)


def release_free_memory() -> None:
    """Collect garbage and hand the C heap's free pages back to the system (glibc ``malloc_trim``; elsewhere a no-op).

    A training leaves hundreds of MB of freed activation memory in the heap, and the next training or explanation of
    the same process allocates beside it rather than in it (measured on the demo HAFEM: 1,173 MB resident after a
    training and ``del``, 894 MB after the trim); trimming between the stages keeps a notebook's peak near that of its
    largest stage. Memory management only: no computed number changes.
    """
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    global _LIBC
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        try:
            _LIBC = ctypes.CDLL(name) if name else False
        except OSError:
            _LIBC = False
    if _LIBC and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


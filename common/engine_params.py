"""The training engine's study parameters, shared by both studies (kept apart from :mod:`common.engine` so that
resolving a config does not import torch)."""
from __future__ import annotations

from common.config import Param, non_negative

DEVICES = ("auto", "cpu", "cuda", "mps")


def engine_params() -> tuple[Param, ...]:
    """Device, mixed precision, gradient clipping, loader workers and state saving (defaults fit every profile)."""
    return (
        Param("device", str, "auto", "auto = cuda when torch sees a GPU, else cpu; cuda / mps / cpu = that device "
              "(an absent one is an error)", choices=DEVICES),
        Param("amp", bool, True, "mixed precision on CUDA (bf16 where supported, else fp16 with a gradient scaler); "
              "CPU runs are always float32"),
        Param("grad_clip", float, 0.0, "clip the global gradient norm to this value (0 = off)", check=non_negative),
        Param("num_workers", int, 0, "DataLoader worker processes (seeded; results do not depend on the number)",
              check=non_negative),
        Param("save_state_every", int, 1, "epochs between saves of the resumable training state (0 = only at "
              "SIGTERM/SIGUSR1 and at the end)", check=non_negative),
    )

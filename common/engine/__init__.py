"""One training engine for both studies (``from common import engine``): :func:`fit` and what it is built from.

* :mod:`common.engine.loop`: the fit loop (:class:`Task`, :class:`FitSettings`, :func:`fit`, :class:`FitResult`);
  its docstring describes epochs, selection, early stopping, the time cap and resume.
* :mod:`common.engine.state`: training-state files (save, read, identity check) and the exit signals.
* :mod:`common.engine.device`: device, mixed precision, DataLoader options, batches to the device.
"""
from common.engine.device import (DeviceError, Precision, loader_options, release_free_memory, resolve_device,
                                  seed_worker, set_loader_epoch, to_device)
from common.engine.loop import FitResult, FitSettings, Selected, StepOutput, Task, fit
from common.engine.state import (EXIT_SIGNALS, STATE_FORMAT, StateError, StateMismatchError, TrainingInterrupted,
                                 code_version, discard_states, exit_signal_received, first_difference, read_state,
                                 rng_state, set_rng_state)

__all__ = ["DeviceError", "Precision", "loader_options", "release_free_memory", "resolve_device", "seed_worker", "set_loader_epoch",
           "to_device", "FitResult", "FitSettings", "Selected", "StepOutput", "Task", "fit", "EXIT_SIGNALS",
           "STATE_FORMAT", "StateError", "StateMismatchError", "TrainingInterrupted", "code_version", "discard_states",
           "exit_signal_received", "first_difference", "read_state", "rng_state", "set_rng_state"]

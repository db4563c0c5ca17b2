"""Requeue on preemption or time limit (submitit): a requeued job calls the same function again, and the study then
continues every fold / variant from the training state :mod:`common.engine` saved (``<run>/state/``).

On Slurm, submitit asks for a signal (USR2 by default, ``signal_delay_s`` before the time limit, and at preemption);
its handler pickles :class:`ResumableCall` with its arguments, requeues the job and exits. Jobs sent together with
``executor.batch()`` form one Slurm job array.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import submitit


class ResumableCall(submitit.helpers.Checkpointable):
    """``ResumableCall()(fn, *args)`` runs ``fn(*args)``; at preemption / timeout submitit requeues the same call."""

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


def submit_array(executor: submitit.Executor, fn: Callable[..., Any],
                 calls: Iterable[Sequence[Any]]) -> list[submitit.Job]:
    """One requeueable job per argument tuple, submitted together (a job array on Slurm)."""
    with executor.batch():
        jobs = [executor.submit(ResumableCall(), fn, *args) for args in calls]
    return jobs

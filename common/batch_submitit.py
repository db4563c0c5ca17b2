"""Sending a batch through submitit: a Slurm job array (requeued at preemption / time limit, see
:mod:`common.requeue`) or submitit's local executor; each job runs :func:`common.batch_local.execute`."""
from __future__ import annotations

import argparse
from pathlib import Path

from common.batch_local import execute
from common.batch_runs import Outcome, Run


def make_executor(args: argparse.Namespace):
    """submitit executor: ``slurm`` (job arrays, requeue at preemption / time limit) or ``submitit-local``."""
    import submitit

    folder = Path(args.results) / "batch" / "submitit"
    if args.executor == "slurm":
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=args.slurm_max_requeues)
        extra = {"slurm_partition": args.slurm_partition} if args.slurm_partition else {}
        executor.update_parameters(timeout_min=args.timeout_min, gpus_per_node=args.slurm_gpus,
                                   cpus_per_task=args.slurm_cpus, slurm_array_parallelism=args.slurm_array_parallelism,
                                   slurm_signal_delay_s=args.slurm_signal_delay_s, **extra)
    else:
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=args.timeout_min)
    return executor


def run_submitit(runs: list[Run], args: argparse.Namespace) -> list[Outcome]:
    """Send the runs as one job array through submitit; a preempted or timed-out job is requeued and its notebook
    resumes every fold / variant from the training state saved by :mod:`common.engine`."""
    from common.requeue import submit_array

    jobs = submit_array(make_executor(args), execute, [(run, args.timeout, args.force) for run in runs])
    outcomes = []
    for run, job in zip(runs, jobs):
        try:
            outcomes.append(job.result())
        except Exception as exc:  # noqa: BLE001
            outcomes.append(Outcome(run, "failed", error=f"job {job.job_id} failed: {exc}", log=str(job.paths.stderr)))
    return outcomes

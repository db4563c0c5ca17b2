"""Batch runner: expand study x dataset x variant x seed, validate everything, run the notebooks with papermill.

    python -m common.batch --study smile --dataset all --variant all --profile demo -j 2
    python -m common.batch --study hafem --dataset FER2013 --set epochs=3
    python -m common.batch --study smile --dataset BBC --variant hadamard --protocol released --profile demo
    python -m common.batch --study all --profile demo --dry-run
    python -m common.batch ... --executor slurm --slurm-partition gpu --slurm-gpus 1

Every parameter is validated before the first notebook starts. A run whose config hash already has a complete
``run.json`` is skipped, so a killed batch resumes where it stopped. ``--force`` re-runs complete runs beside the old
result (under ``results/batch/staging/``) and swaps the new folder in only when it completes, so a failing re-run
never destroys the last good result (the failed attempt stays in staging for reading until a re-run succeeds). A
failing notebook fails alone: its ``run.json`` is marked "failed" with the error and the log path, the batch goes on,
then prints the failures with their log paths and exits non-zero. Executed
notebooks and logs are written into each run's folder under ``results/raw/`` (see ``results/README.md``).

Threads: each kernel gets OMP/MKL/OpenBLAS = 1 thread unless the caller's environment sets them (parallelism comes
from ``-j``); a study that wants more sets them through its own ``threads`` parameter, which is part of the config
hash. Thread counts must never come from the machine: CPU reductions split by thread count change the last bits of
sums, and training amplifies them into different tables.
"""
from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from common import io as atomic
from common.batch_local import LOOPBACK_HINT, kernel_environment, loopback_problem, run_local
from common.batch_runs import Outcome, Run, check_data, expand
from common.batch_submitit import run_submitit
from common.config import ConfigError, get_study, known_studies
from common.paths import RESULTS_DIR, ROOT
from common.results import is_complete


def summarise(outcomes: list[Outcome], skipped: list[Run], results_root: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    record = {
        "finished_utc": stamp,
        "done": [o.run.label for o in outcomes if o.status == "done"],
        "skipped_complete": [r.label for r in skipped],
        "failed": [{"run": o.run.label, "error": o.error, "log": o.log} for o in outcomes if o.status == "failed"],
        "seconds": {o.run.label: round(o.seconds, 2) for o in outcomes},
    }
    path = results_root / "batch" / f"{stamp}.json"
    atomic.write_json(path, record)
    return path


def protocol_overrides(studies: list[str], protocol: str | None) -> list[str]:
    """``--protocol X`` as the override ``protocol=X``; every requested study must have that parameter."""
    if protocol is None:
        return []
    lacking = [s for s in studies if "protocol" not in get_study(s).params]
    if lacking:
        raise ConfigError(f"--protocol applies to studies with a 'protocol' parameter; {', '.join(lacking)} has none "
                          "(request --study smile)")
    return [f"protocol={protocol}"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (the number of notebooks run at once), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m common.batch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", nargs="+", default=["all"], help=f"one or more of {known_studies()} or 'all'")
    p.add_argument("--dataset", nargs="+", default=None, help="dataset names or 'all' (default)")
    p.add_argument("--variant", nargs="+", default=None, help="variant names or 'all' (default)")
    p.add_argument("--profile", default="demo", help="demo (default) or paper")
    p.add_argument("--protocol", default=None,
                   help="evaluation protocol of the studies that have one (smile): paper (default) or released "
                        "(the authors' notebooks; results labelled 'as released (test-fold selection)')")
    p.add_argument("--seed", nargs="+", type=int, default=[0])
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override any study parameter, e.g. --set epochs=5 selection=last")
    p.add_argument("-j", "--jobs", type=_positive_int, default=max(1, os.cpu_count() or 1),
                   help="parallel notebooks (>= 1)")
    p.add_argument("--timeout", type=int, default=None, help="seconds per notebook cell (default: none)")
    p.add_argument("--force", action="store_true", help="re-run even runs that are complete")
    p.add_argument("--dry-run", action="store_true", help="validate and list the runs, execute nothing")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--results", default=str(RESULTS_DIR), help="results root (default: results/)")
    p.add_argument("--executor", choices=("local", "submitit-local", "slurm"), default="local")
    p.add_argument("--timeout-min", type=int, default=240, help="submitit job time limit")
    p.add_argument("--slurm-partition", default=None)
    p.add_argument("--slurm-gpus", type=int, default=1)
    p.add_argument("--slurm-cpus", type=int, default=4)
    p.add_argument("--slurm-array-parallelism", type=int, default=64, help="jobs of the array running at once")
    p.add_argument("--slurm-signal-delay-s", type=int, default=300,
                   help="seconds before the time limit at which the job is signalled and requeued (> one epoch)")
    p.add_argument("--slurm-max-requeues", type=int, default=10, help="requeues at the time limit per job")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results_root = Path(args.results).resolve()
    # Kernels and workers read the results root from the environment (common.paths).
    os.environ["REPRO_RESULTS"] = str(results_root)
    import common.paths as paths

    paths.RESULTS_DIR, paths.RAW_RESULTS_DIR = results_root, results_root / "raw"
    import common.results as results_module

    results_module.RAW_RESULTS_DIR = results_root / "raw"
    studies = known_studies() if args.study == ["all"] else args.study
    try:
        for s in studies:
            if s not in known_studies():
                raise ConfigError(f"unknown study {s!r}. Accepted: {', '.join(known_studies())}, all")
        runs = expand(studies, args.dataset, args.variant, args.profile, args.seed,
                      args.overrides + protocol_overrides(studies, args.protocol))
        if not args.dry_run:
            check_data(runs)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    todo = [r for r in runs if args.force or not is_complete(Path(r.folder))]
    skipped = [r for r in runs if r not in todo]
    print(f"{len(runs)} runs: {len(todo)} to execute, {len(skipped)} already complete")
    if args.dry_run:
        for r in runs:
            print(("skip  " if r in skipped else "run   ") + r.label + "  ->  " + os.path.relpath(r.folder, ROOT))
        return 0
    problem = loopback_problem() if todo else None
    if problem is not None:
        print(f"error: cannot run notebooks: {LOOPBACK_HINT} ({problem})", file=sys.stderr)
        return 2
    kernel_environment(args.jobs)
    if args.executor == "local":
        outcomes = run_local(todo, args.jobs, args.timeout, progress=not args.no_progress, force=args.force)
    else:
        outcomes = run_submitit(todo, args)
    summary = summarise(outcomes, skipped, results_root)
    failed = [o for o in outcomes if o.status == "failed"]
    done = sum(o.status == "done" for o in outcomes)
    print(f"done {done}, skipped {len(skipped)}, failed {len(failed)}  (summary: {summary})")
    for o in failed:
        print(f"FAILED {o.run.label}: {o.error}\n       log: {o.log}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

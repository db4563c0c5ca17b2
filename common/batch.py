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
import json
import os
import shutil
import socket
import sys
import time
import traceback
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from common import io as atomic
from common.config import ConfigError, Param, StudySpec, get_study, known_studies
from common.notebooks import notebook_path
from common.paths import RESULTS_DIR, ROOT, data_root
from common.results import is_complete, mark_failed, replace_run, run_dir, run_status

LOOPBACK_HINT = ("the notebook kernels talk to the batch over TCP on 127.0.0.1, and the loopback interface does not "
                 "work here (a network namespace with 'lo' down, e.g. `unshare -n`). Bring it up "
                 "(`ip link set lo up`), or run a notebook's steps directly in Python (common.smile.run.run_study / common.fer.run.run_study)")


@dataclass(frozen=True)
class Run:
    """One notebook execution: the explicit parameters given to it and the folder its results go to."""

    study: str
    notebook: str
    params: tuple[tuple[str, Any], ...]
    folder: str

    @property
    def label(self) -> str:
        p = dict(self.params)
        protocol = f"/{p['protocol']}" if p.get("protocol") not in (None, "paper") else ""
        return f"{self.study}/{p['dataset']}/{p['variant']}/seed{p['seed']}{protocol}"


@dataclass
class Outcome:
    run: Run
    status: str  # "done", "skipped", "failed"
    seconds: float = 0.0
    error: str = ""
    log: str = ""


def parse_value(param: Param, text: str) -> Any:
    """Convert a command-line string to the parameter's type, naming the parameter on failure."""
    try:
        if param.type is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")
        if param.type is int:
            return int(text)
        if param.type is float:
            return float(text)
        return text
    except ValueError:
        raise ConfigError(f"parameter {param.name!r} must be {param.type.__name__}, got {text!r}") from None


def parse_overrides(spec: StudySpec, items: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        spec.check_keys({key: None})
        if key in ("dataset", "variant", "seed", "profile"):
            raise ConfigError(f"use --{key} rather than --set {key}=...")
        out[key] = parse_value(spec.params[key], value)
    return out


def _choose(spec: StudySpec, key: str, requested: list[str] | None) -> list[str]:
    """The requested names this study knows (all of them for None / 'all')."""
    accepted = [str(v) for v in spec.params[key].accepted()]
    if not requested or requested == ["all"]:
        return accepted
    return [n for n in dict.fromkeys(requested) if n in accepted]


def _reject_unknown(specs: list[StudySpec], key: str, requested: list[str] | None) -> None:
    """A requested name must be known to at least one of the requested studies."""
    if not requested or requested == ["all"]:
        return
    known = {str(v) for spec in specs for v in spec.params[key].accepted()}
    for name in requested:
        if name not in known:
            accepted = sorted(known)
            raise ConfigError(f"unknown {key} {name!r}. Accepted: {', '.join(accepted)}, all")


def expand(studies: list[str], datasets: list[str] | None, variants: list[str] | None, profile: str,
           seeds: list[int], overrides: list[str]) -> list[Run]:
    """All runs of the request, each validated by resolving its config (raises ConfigError before anything runs)."""
    specs = [get_study(s) for s in studies]
    _reject_unknown(specs, "dataset", datasets)
    _reject_unknown(specs, "variant", variants)
    runs: list[Run] = []
    for spec in specs:
        spec.params["profile"].validate(profile)
        fixed = parse_overrides(spec, overrides)
        single = len(spec.params["variant"].accepted()) == 1
        for dataset in _choose(spec, "dataset", datasets):
            for variant in _choose(spec, "variant", variants):
                for seed in seeds:
                    params = {"dataset": dataset, "variant": variant, "profile": profile, "seed": seed, **fixed}
                    cfg = spec.resolve(params)
                    nb = notebook_path(spec.name, dataset, variant, single)
                    if not nb.exists():
                        raise ConfigError(f"{nb.relative_to(ROOT)} does not exist: run `python -m common.notebooks`")
                    # every resolved value: the notebook's parameters cell shows the demo values, so a run of
                    # another profile must set them all
                    given = tuple(sorted((k, v) for k, v in cfg.items() if k != "study"))
                    runs.append(Run(spec.name, str(nb), given, str(run_dir(cfg))))
    return runs


def check_data(runs: list[Run], generate_demo: bool = True) -> None:
    """Make sure every run's data exists: generate demo data on first use; stop early for missing real data."""
    needed: dict[str, set[str]] = {}
    for run in runs:
        p = dict(run.params)
        needed.setdefault(p["profile"], set()).add((p["dataset"], p.get("data_root", "")))
    demo = sorted(ds for ds, root in needed.get("demo", set()) if not root)
    if demo and generate_demo:
        from datasets.demo import ensure_demo_data

        ensure_demo_data(demo)
    for profile, items in needed.items():
        for dataset, root in sorted(items):
            folder = data_root(dataset, profile, root or None)
            if not folder.exists():
                raise ConfigError(
                    f"data folder for {dataset!r} not found: {folder}. Put the dataset there, or pass "
                    f"--set data_root=/path/to/{dataset}"
                )


def loopback_problem() -> str | None:
    """None if a TCP connection to 127.0.0.1 works (what Jupyter kernels need), else what failed."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            with socket.create_connection(server.getsockname(), timeout=5):
                pass
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _raw_root(folder: Path) -> Path:
    """``results/raw`` of a run folder ``raw/<study>/<profile>/<dataset>/<variant>/<seed-hash>``."""
    return folder.parents[4]


def _kernel_env(**values: str):
    """Set environment variables for the kernel this worker starts next; returns a function restoring them."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)

    def restore() -> None:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return restore


def _notebook(run: Run, folder: Path, timeout: int | None) -> None:
    import papermill as pm

    with open(folder / "log.txt", "w") as log:
        pm.execute_notebook(
            run.notebook, str(folder / "executed.ipynb"), parameters=dict(run.params), kernel_name="python3",
            cwd=str(ROOT), progress_bar=False, log_output=False, stdout_file=log, stderr_file=log,
            execution_timeout=timeout,
        )


def _mark_attempt_failed(search: Path, attempt: str, folder: Path, error: str, log: Path) -> None:
    """Mark ``folder`` and every run this attempt left "running" under ``search`` (e.g. HAFEM's other seeds)."""
    mark_failed(folder, error, log)
    for record in search.rglob("run.json"):
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("status") == "running" and data.get("batch_attempt") == attempt:
            mark_failed(record.parent, error, log)


def execute(run: Run, timeout: int | None = None, force: bool = False) -> Outcome:
    """Execute one notebook into its run folder; never raises (a failure is an Outcome).

    With ``force`` and a complete run already in place, the notebook writes into a staging results root beside it and
    its complete run folders replace the old ones only on success; a failure leaves the old result untouched.
    """
    target = Path(run.folder)
    raw = _raw_root(target)
    attempt = uuid.uuid4().hex[:12]
    staging = raw.parent / "batch" / "staging" / f"{target.name}-{attempt}" if force and is_complete(target) else None
    folder = staging / "raw" / target.relative_to(raw) if staging is not None else target
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "log.txt"
    env = {"REPRO_BATCH_ATTEMPT": attempt}
    if staging is not None:
        env["REPRO_RESULTS"] = str(staging)
    restore = _kernel_env(**env)
    t0 = time.time()
    try:
        _notebook(run, folder, timeout)
        error = None if is_complete(folder) else "notebook finished but wrote no complete run.json"
    except Exception as exc:  # noqa: BLE001 - a failed notebook must not stop the batch (SystemExit passes: submitit's
        # requeue at preemption exits through it, and the requeued job resumes from the saved training states)
        text = "".join(traceback.format_exception(exc))
        if "Kernel didn't respond" in text and loopback_problem():
            text += f"\nhint: {LOOPBACK_HINT}\n"
        with open(log_path, "a") as log:
            log.write("\n" + text)
        message = str(exc).strip().splitlines()
        error = message[-1] if message else type(exc).__name__
        if "Kernel didn't respond" in error and loopback_problem():
            error += f" (hint: {LOOPBACK_HINT})"
    finally:
        restore()
    if error is not None:
        _mark_attempt_failed(staging / "raw" if staging is not None else target.parent.parent, attempt, folder,
                             error, log_path)
        if staging is not None:
            error += f" (the previous complete result in {target} is kept; this attempt is in {folder})"
        return Outcome(run, "failed", time.time() - t0, error, str(log_path))
    if staging is not None:
        for record in sorted((staging / "raw").rglob("run.json")):
            if run_status(record.parent) == "complete":
                rel = record.parent.relative_to(staging / "raw")
                replace_run(record.parent, raw / rel, staging / "replaced")
        for leftover in staging.parent.glob(f"{target.name}-*"):  # this one, and failed attempts kept for reading
            shutil.rmtree(leftover, ignore_errors=True)
        log_path = target / "log.txt"
    return Outcome(run, "done", time.time() - t0, log=str(log_path))


def _kernel_environment(jobs: int) -> None:
    """One BLAS/OpenMP thread per kernel unless the caller set them: never a count read from the machine (see the
    module docstring), and parallel kernels (``-j``) do not oversubscribe the cores."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # an accidental hub download fails fast instead of hanging
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def longest_first(runs: list[Run]) -> list[Run]:
    """The runs ordered by their study's ``run_weight``, heaviest first (stable): with ``-j 2`` the longest notebook
    then runs beside the many short ones instead of after them."""
    def weight(run: Run) -> float:
        spec = get_study(run.study)
        return spec.run_weight(dict(run.params)) if spec.run_weight else 1.0

    return sorted(runs, key=weight, reverse=True)


def run_local(runs: list[Run], jobs: int, timeout: int | None, progress: bool = True,
              force: bool = False) -> list[Outcome]:
    from tqdm.auto import tqdm

    runs = longest_first(runs)
    outcomes: list[Outcome] = []
    bar = tqdm(total=len(runs), desc="notebooks", unit="run", disable=not progress)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending = {pool.submit(execute, r, timeout, force): r for r in runs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                run = pending.pop(fut)
                try:
                    outcome = fut.result()
                except BaseException as exc:  # noqa: BLE001 - e.g. a worker killed by the OS
                    outcome = Outcome(run, "failed", error=f"worker died: {exc!r}", log=str(Path(run.folder) / "log.txt"))
                    mark_failed(Path(run.folder), outcome.error, outcome.log)
                outcomes.append(outcome)
                bar.set_postfix_str(f"{outcome.status}: {run.label}")
                bar.update()
    bar.close()
    return outcomes


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
    _kernel_environment(args.jobs)
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

"""Running a batch's notebooks on this machine: one papermill execution per run (:func:`execute`, also what a
submitit job calls), the atomic ``--force`` re-run through a staging folder, kernel environment and threads,
and :func:`run_local`, the process pool behind ``-j``."""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
import traceback
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from common.batch_runs import Outcome, Run
from common.config import get_study
from common.paths import ROOT
from common.results import is_complete, mark_failed, replace_run, run_status

LOOPBACK_HINT = ("the notebook kernels talk to the batch over TCP on 127.0.0.1, and the loopback interface does not "
                 "work here (a network namespace with 'lo' down, e.g. `unshare -n`). Bring it up "
                 "(`ip link set lo up`), or run a notebook's steps directly in Python (common.smile.run.run_study / common.fer.run.run_study)")


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


def kernel_environment(jobs: int) -> None:
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

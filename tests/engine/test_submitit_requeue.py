"""submitit job arrays: a job preempted mid-fold is requeued and finishes from the saved training state with the
result of an uninterrupted run (submitit's local executor, which requeues like Slurm)."""
import csv
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
import torch

from common.paths import ROOT


def _rows(folder):
    with open(Path(folder) / "rows.csv", newline="") as fh:
        return [(r["selection"], r["metric"], r["value"]) for r in csv.DictReader(fh)
                if r["metric"] not in ("train_seconds", "infer_ms_per_video")]


def test_a_preempted_job_is_requeued_and_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    import submitit

    from common.requeue import submit_array
    from tests.engine import requeue_target

    sys.path.insert(0, str(ROOT / "tests" / "smile_model"))
    from smile_model_data import make_tiny_dataset

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = make_tiny_dataset(tmp_path / "BBC", n_videos=16, frames=30, n_folds=3)
    executor = submitit.LocalExecutor(folder=tmp_path / "jobs")
    executor.update_parameters(timeout_min=10)
    job = submit_array(executor, requeue_target.train_smile,
                       [(str(data), str(tmp_path / "results"), str(tmp_path / "attempts.txt"))])[0]
    deadline = time.monotonic() + 240
    while "BLOCKED" not in (job.paths.stdout.read_text() if job.paths.stdout.exists() else ""):
        assert time.monotonic() < deadline and not job.done(), job.paths.stderr.read_text()[-3000:]
        time.sleep(0.2)
    state = next((tmp_path / "results").rglob("state")) / "fold1.pt"
    assert torch.load(state, weights_only=False)["tracker"]["epoch"] == 1
    pid = int(re.search(r"BLOCKED (\d+)", job.paths.stdout.read_text()).group(1))
    os.kill(pid, signal.SIGUSR2)  # what a preempted submitit job receives (submitit asks Slurm for USR2)
    folder = job.result()
    assert (tmp_path / "attempts.txt").read_text().count("start") == 2  # requeued once, then finished
    assert "Requeued" in job.paths.stderr.read_text() + job.paths.stdout.read_text()
    assert json.loads((Path(folder) / "run.json").read_text())["status"] == "complete"
    reference = requeue_target.train_smile(str(data), str(tmp_path / "reference"), str(tmp_path / "ref.txt"),
                                           block_first_attempt=False)
    assert _rows(folder) == _rows(reference)
    a = torch.load(Path(folder) / "checkpoints" / "fold1.pt", weights_only=False)["model_state"]
    b = torch.load(Path(reference) / "checkpoints" / "fold1.pt", weights_only=False)["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_slurm_executor_gets_array_requeue_and_signal_settings(tmp_path, monkeypatch):
    """Without a cluster: a stand-in ``srun`` lets submitit build its Slurm executor; check what the batch sets."""
    from common.batch import build_parser
    from common.batch_submitit import make_executor

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    args = build_parser().parse_args(["--executor", "slurm", "--results", str(tmp_path), "--slurm-partition", "gpu",
                                      "--slurm-signal-delay-s", "600", "--slurm-max-requeues", "7"])
    executor = make_executor(args)
    params = executor._executor.parameters
    assert params["signal_delay_s"] == 600 and params["array_parallelism"] == 64 and params["partition"] == "gpu"
    assert params["gpus_per_node"] == 1 and executor._executor.max_num_timeout == 7

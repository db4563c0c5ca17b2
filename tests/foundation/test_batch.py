"""The batch runner: validation before anything runs, resumption after a kill, failures that fail alone."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common import batch
from common.paths import ROOT

# Cheap runs of the real smile notebooks: the handcrafted baselines train in well under a second per fold.
FAST = ["--study", "smile", "--dataset", "BBC", "--set", "folds=1,2", "--no-progress", "-j", "1"]


def _run_batch(args, results, env_extra=None, **popen):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-m", "common.batch", *args, "--results", str(results)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **popen)


def _complete_runs(results):
    out = []
    for run_json in Path(results, "raw").rglob("run.json"):
        if json.loads(run_json.read_text()).get("status") == "complete":
            out.append(run_json.parent)
    return sorted(out)


@pytest.fixture(scope="module")
def demo_bbc():
    from datasets.demo import ensure_demo_data

    ensure_demo_data(["BBC", "SPOS"])


@pytest.mark.parametrize("args, message", [
    (["--study", "smile", "--dataset", "BBX"], "unknown dataset 'BBX'"),
    (["--study", "smile", "--variant", "hadamart"], "unknown variant 'hadamart'"),
    (["--study", "smile", "--profile", "fast"], "'fast' is not accepted"),
    (["--study", "smile", "--set", "epochs=three"], "'epochs' must be int, got 'three'"),
    (["--study", "smile", "--set", "epoch=3"], "unknown parameter(s) for study 'smile': epoch"),
    (["--study", "smile", "--set", "epochs=0"], "must be > 0"),
    (["--study", "smiles"], "unknown study 'smiles'"),
    (["--study", "smile", "--profile", "paper", "--dataset", "BBC", "--set", "data_root=/nonexistent/BBC"],
     "data folder for 'BBC' not found: /nonexistent/BBC"),
])
def test_bad_requests_stop_before_anything_runs(tmp_path, capsys, args, message):
    code = batch.main([*args, "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert not (tmp_path / "raw").exists()


def test_dry_run_expands_the_whole_grid(tmp_path, capsys):
    assert batch.main(["--study", "all", "--dry-run", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    from common.config import get_study

    smile, hafem = get_study("smile"), get_study("hafem")
    n = len(smile.params["dataset"].accepted()) * len(smile.params["variant"].accepted()) + 4
    assert f"{n} runs: {n} to execute, 0 already complete" in out
    assert not (tmp_path / "raw").exists()


@pytest.mark.slow
def test_killed_batch_resumes_without_duplicated_or_truncated_rows(tmp_path, demo_bbc):
    variants = ["--variant", "dmarker_logreg", "dmarker_svm", "dmarker_mlp"]
    proc = _run_batch([*FAST, *variants, "--set", "epochs=1"], tmp_path)
    deadline = time.time() + 240
    while not _complete_runs(tmp_path) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    first = _complete_runs(tmp_path)
    assert first, proc.communicate()[0] if proc.poll() is not None else "no run completed in time"
    os.killpg(proc.pid, signal.SIGKILL)  # the batch and its kernels, mid-run
    proc.wait()
    finished_before = {p: (p / "run.json").stat().st_mtime_ns for p in first}

    again = _run_batch([*FAST, *variants, "--set", "epochs=1"], tmp_path)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert f"{len(finished_before)} already complete" in out
    done = _complete_runs(tmp_path)
    assert len(done) == 3
    for folder, mtime in finished_before.items():
        assert (folder / "run.json").stat().st_mtime_ns == mtime  # not re-run
    for folder in done:
        with open(folder / "rows.csv") as fh:
            rows = list(csv.DictReader(fh))
        keys = [(r["fold"], r["selection"], r["metric"]) for r in rows]
        assert len(keys) == len(set(keys)), f"duplicated rows in {folder}"
        assert {r["fold"] for r in rows} == {"1", "2"}
        assert all(r["value"] not in ("", None) for r in rows)
        assert not list(folder.rglob(".*.tmp"))


@pytest.mark.slow
def test_one_failing_notebook_fails_alone(tmp_path, demo_bbc):
    from common.paths import DEMO_DATA_DIR

    data = tmp_path / "demo"
    for name in ("BBC", "SPOS"):
        shutil.copytree(DEMO_DATA_DIR / name, data / name)
    broken = sorted((data / "SPOS" / "npy").glob("*.npy"))[0]
    broken.write_bytes(b"not an array")
    args = ["--study", "smile", "--dataset", "BBC", "SPOS", "--variant", "dmarker_logreg", "--set", "folds=1",
            "--no-progress", "-j", "2"]
    proc = _run_batch(args, tmp_path / "results", {"REPRO_DEMO_DATA": str(data)})
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out
    assert "done 1, skipped 0, failed 1" in out
    assert "FAILED smile/SPOS/dmarker_logreg/seed0" in out and "log.txt" in out
    log = next(Path(tmp_path, "results", "raw", "smile", "demo", "SPOS").rglob("log.txt")).read_text()
    assert broken.name in log
    assert len(_complete_runs(tmp_path / "results")) == 1


@pytest.mark.slow
def test_submitit_local_executor_runs_the_same_notebook(tmp_path, demo_bbc):
    proc = _run_batch([*FAST, "--variant", "dmarker_logreg", "--set", "folds=1", "--executor", "submitit-local"],
                      tmp_path)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert len(_complete_runs(tmp_path)) == 1
    assert (tmp_path / "batch" / "submitit").is_dir()

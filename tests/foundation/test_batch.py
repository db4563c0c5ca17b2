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
from common.batch_local import longest_first, loopback_problem
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


def test_the_longest_notebooks_start_first():
    from common.batch_runs import expand

    runs = expand(["smile", "hafem"], None, None, "demo", [0], [])
    ordered = longest_first(runs)
    assert ordered[0].label == "hafem/FER2013/hafem/seed0"  # the FER2013 comparisons: the one long notebook
    assert {r.study for r in ordered[:4]} == {"hafem"}
    assert [r for r in ordered if r.study == "smile"] == [r for r in runs if r.study == "smile"]  # stable
    assert sorted(ordered, key=lambda r: r.label) == sorted(runs, key=lambda r: r.label)


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
    log_path = next(Path(tmp_path, "results", "raw", "smile", "demo", "SPOS").rglob("log.txt"))
    assert broken.name in log_path.read_text()
    assert len(_complete_runs(tmp_path / "results")) == 1
    record = json.loads((log_path.parent / "run.json").read_text())  # marked failed, not left "running"
    assert record["status"] == "failed" and record["log"] == str(log_path) and broken.name in record["error"]


@pytest.mark.slow
def test_submitit_local_executor_runs_the_same_notebook(tmp_path, demo_bbc):
    proc = _run_batch([*FAST, "--variant", "dmarker_logreg", "--set", "folds=1", "--executor", "submitit-local"],
                      tmp_path)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert len(_complete_runs(tmp_path)) == 1
    assert (tmp_path / "batch" / "submitit").is_dir()


# --- issue 14: -j 0, loopback, --force that keeps the last good result, failed runs marked "failed" -----------------

@pytest.mark.parametrize("extra", [[], ["--dry-run"]])
def test_zero_jobs_is_a_clear_error_also_in_a_dry_run(tmp_path, capsys, extra):
    with pytest.raises(SystemExit) as stop:
        batch.main(["--study", "smile", "--dataset", "BBC", "-j", "0", *extra, "--results", str(tmp_path)])
    assert stop.value.code == 2
    assert "-j/--jobs: must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "raw").exists()


def _unshared_network(code: str) -> subprocess.CompletedProcess | None:
    """Run ``code`` in a new network namespace (loopback down), or None where this machine does not allow one."""
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        if probe.returncode == 0:
            return subprocess.run([*prefix, sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                  timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return None


def test_missing_loopback_is_detected_before_any_kernel_starts(tmp_path, demo_bbc):
    assert loopback_problem() is None  # this machine has loopback
    code = (f"import sys; from common import batch; "
            f"sys.exit(batch.main({[*FAST, '--variant', 'dmarker_logreg', '--results', str(tmp_path)]!r}))")
    out = _unshared_network(code)
    if out is None:
        pytest.skip("no network namespaces here (unshare -n / -rn not permitted)")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "loopback" in out.stderr and "ip link set lo up" in out.stderr
    assert "Kernel didn't respond" not in out.stdout + out.stderr
    assert not _complete_runs(tmp_path)


@pytest.mark.slow
def test_force_on_broken_data_keeps_the_last_good_result(tmp_path, demo_bbc):
    from common.paths import DEMO_DATA_DIR

    data = tmp_path / "demo"
    shutil.copytree(DEMO_DATA_DIR / "BBC", data / "BBC")
    args = [*FAST, "--variant", "dmarker_logreg", "--set", "folds=1"]
    env = {"REPRO_DEMO_DATA": str(data)}
    out, _ = _run_batch(args, tmp_path / "results", env).communicate(timeout=300)
    [good] = _complete_runs(tmp_path / "results")
    rows_before = (good / "rows.csv").read_text()
    started_before = json.loads((good / "run.json").read_text())["started_utc"]
    broken = sorted((data / "BBC" / "npy").glob("*.npy"))[0]
    broken.write_bytes(b"not an array")
    proc = _run_batch([*args, "--force"], tmp_path / "results", env)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "failed 1" in out and "previous complete result" in out, out
    assert _complete_runs(tmp_path / "results") == [good]  # the last good result is untouched
    assert (good / "rows.csv").read_text() == rows_before
    assert json.loads((good / "run.json").read_text())["started_utc"] == started_before
    [attempt] = [p for p in (tmp_path / "results" / "batch" / "staging").rglob("run.json")]
    record = json.loads(attempt.read_text())
    assert record["status"] == "failed" and broken.name in Path(record["log"]).read_text()
    assert record["error"] and record["log"].endswith("log.txt")
    # with the data repaired, --force swaps the new complete run in and clears its staging folder
    shutil.copy(DEMO_DATA_DIR / "BBC" / "npy" / broken.name, broken)
    proc = _run_batch([*args, "--force"], tmp_path / "results", env)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert _complete_runs(tmp_path / "results") == [good]
    assert json.loads((good / "run.json").read_text())["status"] == "complete"
    assert (good / "executed.ipynb").is_file() and (good / "log.txt").is_file()
    assert not list((tmp_path / "results" / "batch" / "staging").glob(f"{good.name}-*"))  # failed attempt too

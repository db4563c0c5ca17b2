"""A smile study killed mid-fold (kill -9, or SIGTERM as Slurm sends it) and started again finishes with the same
rows, curves and checkpoints, bit for bit on CPU, as a run that was never interrupted."""
import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.paths import ROOT

CHILD = Path(__file__).with_name("smile_child.py")
TIMINGS = {"train_seconds", "infer_ms_per_video"}


def _env():
    env = dict(os.environ)
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return env


def start(data, results, block=None):
    args = [sys.executable, str(CHILD), str(data), str(results)] + ([block] if block else [])
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)


def finish(data, results):
    proc = start(data, results)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return Path(out.split("DONE ")[1].strip())


def wait_blocked(proc):
    for line in proc.stdout:
        if line.strip() == "BLOCKED":
            return
    raise AssertionError(f"child ended before blocking: {proc.stderr.read()[-3000:]}")


def outcome(folder: Path):
    with open(folder / "rows.csv", newline="") as fh:
        rows = [(r["fold"], r["selection"], r["metric"], r["value"]) for r in csv.DictReader(fh)
                if r["metric"] not in TIMINGS]
    curves = {k: json.loads((folder / "curves" / f"fold{k}.json").read_text()) for k in (1, 2)}
    checkpoints = {}
    for k in (1, 2):
        payload = torch.load(folder / "checkpoints" / f"fold{k}.pt", weights_only=False)
        checkpoints[k] = (payload["model_state"], payload["best_epoch"], payload["dmarker_scaler"])
    return rows, curves, checkpoints


def assert_identical(a, b):
    assert a[0] == b[0] and a[1] == b[1]
    for k in (1, 2):
        sa, sb = a[2][k][0], b[2][k][0]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[n], sb[n]) for n in sa)
        assert a[2][k][1:] == b[2][k][1:]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "tests" / "smile_model"))
    from smile_model_data import make_tiny_dataset

    root = tmp_path_factory.mktemp("resume")
    data = make_tiny_dataset(root / "BBC", n_videos=16, frames=30, n_folds=3)
    reference = outcome(finish(data, root / "reference"))
    return data, root, reference


def test_kill_9_mid_fold_then_restart_gives_bit_identical_results(tiny):
    data, root, reference = tiny
    results = root / "killed"
    proc = start(data, results, block="2:3")  # fold 2 of 2, in the middle of epoch 3
    wait_blocked(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    states = next(results.rglob("state"))
    assert torch.load(states / "fold1.pt", weights_only=False)["finished"]  # fold 1 done: replayed, not retrained
    assert torch.load(states / "fold2.pt", weights_only=False)["tracker"]["epoch"] == 2
    folder = finish(data, results)
    assert_identical(outcome(folder), reference)
    assert not (folder / "state").exists()


def test_sigterm_saves_the_running_epoch_and_the_restart_is_bit_identical(tiny):
    data, root, reference = tiny
    results = root / "terminated"
    proc = start(data, results, block="2:3")
    wait_blocked(proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "SIGTERM received: training state after epoch 3 saved to" in err
    state = next(results.rglob("state")) / "fold2.pt"
    assert torch.load(state, weights_only=False)["tracker"]["epoch"] == 3
    assert_identical(outcome(finish(data, results)), reference)

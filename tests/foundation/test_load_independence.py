"""Same config, same rows: a notebook's results must not depend on machine load or the thread count (issue 14, 4).

One smile and one HAFEM demo config run through the entry points their notebooks call (``common.smile.run.run_study``;
``common.fer.run.setup`` / ``load_data`` / ``run_study``), twice in fresh processes: once plainly with one thread, once
with torch and OpenMP set to three threads and a CPU-bound process running beside it. Every non-timing row must be
identical bit for bit. The smile config (UvA-NEMO demo, gated_concat, fold 1) is one whose tensors are large enough
for PyTorch to split its reductions across threads: without a configured thread count it differs between the two.
"""
import csv
import json
import os
import subprocess
import sys

from common.paths import ROOT

TIMING = ("_seconds", "_ms_per_video", "fps_")

RUN = r'''
import csv, json, sys
from pathlib import Path
import torch
threads, out = int(sys.argv[1]), Path(sys.argv[2])
torch.set_num_threads(threads)  # what a busy or bigger machine would give a kernel
from common.config import get_study
from common.fer import run as fer_run
from common.smile import run as smile_run

smile = smile_run.run_study({"dataset": "UvA-NEMO", "variant": "gated_concat", "profile": "demo", "seed": 0,
                             "folds": "1", "save_checkpoints": False}, progress=False, results_root=out)
cfg = get_study("hafem").resolve({"dataset": "FER2013", "variant": "hafem", "profile": "demo", "seed": 0,
                                  "seeds": "0", "epochs": 2, "max_train": 64, "max_eval": 28, "comparisons": "none",
                                  "explain": False, "measure_speed": False, "tune_trials": 0})
fer_run.setup(cfg)
hafem = fer_run.run_study(cfg, root=out, data=fer_run.load_data(cfg))
rows = []
for folder in [smile.folder] + [o.folder for o in hafem]:
    with open(Path(folder) / "rows.csv", newline="") as fh:
        rows += list(csv.DictReader(fh))
print(json.dumps(rows))
'''


def _rows(tmp_path, name, threads, hog=False):
    from datasets.demo import ensure_demo_data

    ensure_demo_data(["UvA-NEMO", "FER2013"], progress=False)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(1 if hog else 0)]
    try:
        out = subprocess.run([sys.executable, "-c", RUN, str(threads), str(tmp_path / name)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    finally:
        for p in hogs:
            p.kill()
            p.wait()
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    return [r for r in rows if not any(t in r["metric"] for t in TIMING)]


def test_rows_do_not_depend_on_load_or_thread_count(tmp_path):
    plain = _rows(tmp_path, "plain", threads=1)
    busy = _rows(tmp_path, "busy", threads=3, hog=True)
    assert {r["study"] for r in plain} == {"smile", "hafem"} and len(plain) > 30
    assert len(plain) == len(busy)
    for a, b in zip(plain, busy):
        assert a == b, f"{a['study']} {a['dataset']} fold {a['fold']} {a['selection']} {a['metric']}: " \
                       f"{a['value']} (1 thread, idle) != {b['value']} (3 threads, loaded)"

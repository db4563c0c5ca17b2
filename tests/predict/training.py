"""Tiny trained models for predict: the real study code (common.smile.run, common.fer.run) on small demo data.

Used by the tests (session fixture) and by benchmarks/bench_predict.py when no checkpoint exists under results/.
The models are trained on synthetic demo data, so every prediction made with them is labelled as such.
"""
from __future__ import annotations

from pathlib import Path

SMILE_SUBJECTS = 12  # UvA-NEMO demo: 10 subject-independent folds need >= 10 subjects
FER_SCALE = 0.08  # FER2013 demo: a few hundred 48x48 images


def train_demo_checkpoints(results: str | Path, data: str | Path | None = None, progress: bool = False) -> Path:
    """Generate small demo UvA-NEMO and FER2013 sets and train one Hadamard fold and one HAFEM seed on them.

    Checkpoints land in ``<results>/raw/{smile,hafem}/demo/...`` exactly as the notebooks write them.
    """
    from common.fer import run as fer_run
    from common.fer.study import HAFEM
    from common.smile import run as smile_run
    from datasets.demo import generate

    results = Path(results)
    data = Path(data) if data is not None else results.parent / "demo-data"
    generate(["UvA-NEMO", "FER2013"], out=data, sizes={"UvA-NEMO": SMILE_SUBJECTS, "FER2013": FER_SCALE},
             force=False, progress=progress)
    smile_run.run_study({"dataset": "UvA-NEMO", "variant": "hadamard", "profile": "demo", "epochs": 2, "folds": "1",
                         "data_root": str(data / "UvA-NEMO")}, progress=progress, results_root=results / "raw")
    cfg = HAFEM.resolve({"dataset": "FER2013", "profile": "demo", "data_root": str(data / "FER2013"), "epochs": 1,
                         "seeds": "", "max_train": 64, "max_eval": 32, "batch_size": 16, "warmup_epochs": 0,
                         "comparisons": "none", "explain": False, "measure_speed": False, "tune_trials": 0,
                         "threads": 0})
    fer_run.run_seed(cfg, cfg["seed"], root=results / "raw")
    return results

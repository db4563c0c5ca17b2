"""The paper path on every CI run: both studies' own entry points (what the notebooks call) at paper model size, for
two optimisation steps (two epochs of one step) on one fold of a tiny generated set. The run is stopped by SIGUSR1
after the first step, as Slurm signals a job, then started again: shapes, finite losses, the written state and
checkpoint, and the resume are checked. Sizes are set below so the pair stays cheap."""
import json
import os
import signal
import threading
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from common.checkpoints import load_checkpoint
from common.engine import TrainingInterrupted
from common.paths import ROOT

SMOKE_VIDEOS = 6          # 3 folds: fold 1 trains on 4 videos, tests on 2
SMOKE_FRAMES = 20         # >= 16-frame clips
SMOKE_EVAL_CLIPS = 2      # windows per evaluated video (paper 5): evaluation cost only, not model size
SMOKE_FER_IMAGES = 2      # images per split (max_train / max_eval); batch = all of them -> one step per epoch


def interrupt_after_first_step(task):
    """The same task; its first training step sends this process SIGUSR1 (the epoch finishes, the state is saved)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed from the main thread")
    calls = []

    def loss(model, batch):
        if not calls:
            os.kill(os.getpid(), signal.SIGUSR1)
        calls.append(1)
        return task.loss(model, batch)

    return replace(task, loss=loss)


@pytest.fixture(scope="module")
def smile_data(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "tests" / "smile_model"))
    from smile_model_data import make_tiny_dataset

    return make_tiny_dataset(tmp_path_factory.mktemp("paper") / "BBC", n_videos=SMOKE_VIDEOS, frames=SMOKE_FRAMES,
                             n_folds=3)


# released protocol: no validation split, epoch picked on the test fold, 5 test windows redrawn per epoch, released
# D-Marker per clip; honest (paper protocol): validation selection.
@pytest.mark.parametrize("case", [{"protocol": "released", "batch_size": 4},
                                  {"protocol": "paper", "selection": "val", "val_fraction": 0.25, "batch_size": 3,
                                   "n_eval_clips": SMOKE_EVAL_CLIPS}],
                         ids=["released-protocol", "honest-protocol"])
def test_smile_paper_size_two_steps_checkpoint_and_resume(smile_data, tmp_path, monkeypatch, case):
    from common.smile import run as smile_run
    from common.smile.models import model_from_checkpoint

    params = {"dataset": "BBC", "variant": "hadamard", "profile": "paper", "data_root": str(smile_data),
              "epochs": 2, "folds": "1", "lr_step_epoch": 0, **case}
    cfg = smile_run.resolve_config(params)
    assert (cfg["n_points"], cfg["knn_k"], cfg["clip_len"], cfg["backbone_size"]) == (478, 20, 16, "paper")
    monkeypatch.setattr(smile_run, "TASK", interrupt_after_first_step(smile_run.TASK))
    with pytest.raises(TrainingInterrupted, match="after epoch 1"):
        smile_run.run_study(params, progress=False, results_root=tmp_path)
    state = next(tmp_path.rglob("state")) / "fold1.pt"
    saved = torch.load(state, weights_only=False)
    assert saved["tracker"]["epoch"] == 1 and saved["optimizer"]["state"]  # one AdamW step taken and saved
    monkeypatch.undo()
    run = smile_run.run_study(params, progress=False, results_root=tmp_path)
    record = json.loads((run.folder / "run.json").read_text())
    assert record["status"] == "complete" and record["resumed_folds"] == {"1": 1}
    curves = run.folds[0].curves
    assert curves["epoch"] == [1, 2] and np.isfinite(curves["train_loss"]).all()
    payload = load_checkpoint(run.folder / "checkpoints" / "fold1.pt", "smile")
    assert payload["best_epoch"] in (1, 2) and payload["selection"] == cfg["selection"]
    assert cfg["selection"] == ("test" if case["protocol"] == "released" else "val")
    model, mcfg = model_from_checkpoint(payload)
    clip = torch.randn(2, mcfg["clip_len"], 478, 3)
    with torch.no_grad():
        logits = model(clip, torch.randn(2, payload["model_spec"].get("dmarker_dim", 225)))
    assert logits.shape == (2,) and torch.isfinite(logits).all()


def test_hafem_paper_size_b5_two_steps_checkpoint_and_resume(tmp_path, monkeypatch):
    from common.fer import engine as fer_engine
    from common.fer import run as fer_run
    from common.fer.model import model_from_checkpoint
    from common.fer.study import HAFEM
    from tests.fer_model.conftest import write_fer2013_csv

    root = tmp_path / "FER2013"
    write_fer2013_csv(root, {"Training": 1, "PublicTest": 1, "PrivateTest": 1})
    cfg = HAFEM.resolve({"profile": "paper", "data_root": str(root), "epochs": 2, "warmup_epochs": 1, "seeds": "",
                         "pretrained": "none", "baseline_pretrained": "none", "comparisons": "none",
                         "explain": False, "measure_speed": False, "tune_trials": 0, "max_train": SMOKE_FER_IMAGES,
                         "max_eval": SMOKE_FER_IMAGES, "batch_size": SMOKE_FER_IMAGES, "threads": 0})
    assert (cfg["backbone"], cfg["input_size"], cfg["dim"], cfg["depth"], cfg["heads"], cfg["ff_dim"],
            cfg["token_grid"]) == ("efficientnet_b5", 224, 2048, 6, 8, 4096, 7)
    original = fer_engine.hafem_task
    monkeypatch.setattr(fer_engine, "hafem_task", lambda *a, **k: interrupt_after_first_step(original(*a, **k)))
    with pytest.raises(TrainingInterrupted, match="after epoch 1"):
        fer_run.run_seed(cfg, cfg["seed"], root=tmp_path / "results")
    state = next((tmp_path / "results").rglob("state")) / "hafem.pt"
    assert torch.load(state, weights_only=False, mmap=True)["tracker"]["epoch"] == 1
    monkeypatch.undo()
    outcome = fer_run.run_seed(cfg, cfg["seed"], root=tmp_path / "results")
    result = outcome.trained.result
    assert result.resumed_after == 1 and result.epochs_run == 2
    assert result.curves["epoch"] == [1, 2] and np.isfinite(result.curves["train_loss"]).all()
    payload = load_checkpoint(outcome.folder / "checkpoints" / "hafem.pt", "hafem")
    model, _ = model_from_checkpoint(payload)
    with torch.no_grad():
        logits, feats = model(torch.randn(1, 3, 224, 224), return_features=True)
    assert logits.shape == (1, 7) and feats.shape == (1, 2048) and torch.isfinite(logits).all()
    assert not (outcome.folder / "state").exists()

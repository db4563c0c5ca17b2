"""End to end on a tiny dataset in the published format: rows, run.json, curves, checkpoints, determinism, and
clear errors before training for bad input."""
import ast
import csv
import json

import numpy as np
import pytest
from smile_model_data import make_tiny_dataset

from common.checkpoints import load_checkpoint
from common.config import ConfigError, get_study
from common.smile import run as smile_run
from common.smile.engine import evaluate
from common.smile.metrics import binary_metrics
from common.smile.models import model_from_checkpoint

FAST = {"dataset": "BBC", "epochs": 3, "folds": "1,2", "n_eval_clips": 2, "batch_size": 4}
TIMINGS = {"train_seconds", "infer_ms_per_video"}


def _rows(folder):
    with open(folder / "rows.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def tiny_root(tmp_path):
    return make_tiny_dataset(tmp_path / "BBC", n_videos=16, frames=30, n_folds=3)


def _run(root, tmp_path, **params):
    return smile_run.run_study({**FAST, "data_root": str(root), **params}, progress=False,
                               results_root=tmp_path / "results")


def test_run_writes_rows_curves_checkpoints_and_a_complete_run_json(tiny_root, tmp_path):
    run = _run(tiny_root, tmp_path, variant="hadamard")
    rows = _rows(run.folder)
    assert {r["fold"] for r in rows} == {"1", "2"}
    for fold in ("1", "2"):
        got = {(r["selection"], r["metric"]) for r in rows if r["fold"] == fold}
        for sel in ("val", "test", "last"):
            assert {(sel, m) for m in ("accuracy", "balanced_accuracy", "f1", "roc_auc", "best_epoch")} <= got
        assert {("", m) for m in ("epochs_run", "train_seconds", "params_total", "params_trainable",
                                  "infer_ms_per_video")} <= got
    record = json.loads((run.folder / "run.json").read_text())
    assert record["status"] == "complete" and record["n_rows"] == len(rows)
    assert record["param_comparison"]["paper_claimed_reduction"] == 0.26
    assert record["config"]["variant"] == "hadamard"
    curves = json.loads((run.folder / "curves" / "fold1.json").read_text())
    assert len(curves["train_loss"]) == 3 and len(curves["val_accuracy"]) == 3
    # the test-selected epoch is the best test accuracy over epochs, so never below the val-selected or last one
    for fold in ("1", "2"):
        acc = {r["selection"]: float(r["value"]) for r in rows if r["fold"] == fold and r["metric"] == "accuracy"}
        assert acc["test"] == max(curves_acc for curves_acc in
                                  json.loads((run.folder / "curves" / f"fold{fold}.json").read_text())["test_accuracy"])
        assert acc["test"] >= acc["val"] and acc["test"] >= acc["last"]
    table = run.table()
    assert list(table.index) == [1, 2] and "accuracy[val]" in table.columns


def test_checkpoint_reproduces_the_selected_model(tiny_root, tmp_path):
    run = _run(tiny_root, tmp_path, variant="mh_attention", folds="1")
    payload = load_checkpoint(run.folder / "checkpoints" / "fold1.pt", study="smile")
    assert payload["selection"] == "val" and payload["fold"] == 1 and payload["provenance"]["config_hash"]
    model, cfg = model_from_checkpoint(payload)
    assert cfg["variant"] == "mh_attention"
    from common.smile.data import load_smile_dataset
    from common.smile.dmarker_scaler import DMarkerScaler

    ds = load_smile_dataset("BBC", tiny_root)
    fold = ds.fold(1)
    scaler = DMarkerScaler.from_state_dict(payload["dmarker_scaler"])
    from torch.utils.data import DataLoader

    from common.smile.clip_dataset import SmileClips

    loader = DataLoader(SmileClips(ds, fold.test, mode="eval", clip_len=cfg["clip_len"],
                                   n_eval_clips=cfg["n_eval_clips"], seed=cfg["seed"] + 1, scaler=scaler),
                        batch_size=4)
    out = evaluate(model, loader)
    rows = [r for r in _rows(run.folder) if r["selection"] == "val" and r["metric"] == "accuracy"]
    assert out["accuracy"] == pytest.approx(float(rows[0]["value"]))


def test_same_seed_gives_identical_metrics(tiny_root, tmp_path):
    a = _run(tiny_root, tmp_path / "a", variant="hadamard", folds="1")
    b = _run(tiny_root, tmp_path / "b", variant="hadamard", folds="1")

    def values(folder):
        return [(r["fold"], r["selection"], r["metric"], r["value"]) for r in _rows(folder)
                if r["metric"] not in TIMINGS]

    assert values(a.folder) == values(b.folder)
    assert json.loads((a.folder / "curves" / "fold1.json").read_text()) == \
        json.loads((b.folder / "curves" / "fold1.json").read_text())


def test_handcrafted_and_dmarker_only_baselines_run(tiny_root, tmp_path):
    run = _run(tiny_root, tmp_path, variant="dmarker_logreg")
    rows = _rows(run.folder)
    assert {r["selection"] for r in rows} == {""}
    assert {r["metric"] for r in rows} >= {"accuracy", "balanced_accuracy", "f1", "roc_auc", "train_seconds"}
    run = _run(tiny_root, tmp_path, variant="dmarker_mlp", folds="1")
    assert {r["selection"] for r in _rows(run.folder)} == {"", "val", "test", "last"}


def test_bad_names_are_rejected_before_anything_is_written(tiny_root, tmp_path):
    with pytest.raises(ConfigError, match="hadamart"):
        _run(tiny_root, tmp_path, variant="hadamart")
    with pytest.raises(ConfigError, match="backbone"):
        _run(tiny_root, tmp_path, variant="hadamard", backbone="pointnet")
    with pytest.raises(ConfigError, match="val_fraction"):
        _run(tiny_root, tmp_path, variant="hadamard", val_fraction=0.0)
    with pytest.raises(smile_run.RunInputError, match="folds \\[7\\]"):
        _run(tiny_root, tmp_path, variant="hadamard", folds="7")
    assert not (tmp_path / "results").exists()


def test_one_class_training_fold_is_rejected_before_training(tmp_path):
    root = make_tiny_dataset(tmp_path / "BBC", n_videos=12, frames=30, n_folds=3, one_class_fold=2)
    with pytest.raises(smile_run.RunInputError, match="fold 2 .*only class 0"):
        _run(root, tmp_path, variant="hadamard", folds="all")
    assert not (tmp_path / "results").exists()


def test_dmarker_width_mismatch_is_rejected_before_training(tiny_root, tmp_path, monkeypatch):
    from common.smile import models

    monkeypatch.setattr(models, "DMARKER_DIM", 216)  # a model built for DeepMarkerNet's 216-d layout
    with pytest.raises(smile_run.RunInputError, match="225-d D-Markers, the model expects 216"):
        _run(tiny_root, tmp_path, variant="hadamard")
    assert not (tmp_path / "results").exists()


def test_metrics_match_scikit_learn():
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    p = np.round(rng.random(40), 1)  # ties on purpose
    got = binary_metrics(y, p)
    pred = (p >= 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert got["f1"] == pytest.approx(f1_score(y, pred))
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert np.isnan(binary_metrics(np.zeros(3), np.array([0.1, 0.7, 0.2]))["roc_auc"])


def test_study_parameters_and_template_agree():
    import jupytext

    from common.paths import TEMPLATES_DIR

    spec = get_study("smile")
    nb = jupytext.read(TEMPLATES_DIR / "smile_study.py")
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    names = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cells[0].source).body}
    assert set(names) == set(spec.params)
    concrete = {"dataset", "variant", "profile", "seed", "data_root"}
    assert all((names[k] is None) == (k not in concrete) for k in names)
    for profile in ("demo", "paper"):
        cfg = spec.resolve({**names, "profile": profile})
        assert all(isinstance(v, (str, int, float, bool)) for v in cfg.values())
    with pytest.raises(ConfigError, match="selection"):
        spec.resolve({"selection": "best"})
    with pytest.raises(ConfigError, match="folds"):
        spec.resolve({"folds": "1;2"})
    with pytest.raises(ConfigError, match="knn_k"):
        spec.resolve({"knn_k": 40, "n_points": 32})


def test_without_validation_split_only_test_and_last_are_recorded(tiny_root, tmp_path):
    run = _run(tiny_root, tmp_path, variant="gated_concat", folds="1", val_fraction=0.0, selection="last", epochs=2)
    rows = _rows(run.folder)
    assert {r["selection"] for r in rows} == {"", "test", "last"}
    assert {r["n_train"] for r in rows} == {str(len(__import__("json").loads(
        (tiny_root / "labels" / "1" / "train.json").read_text())))}
    payload = load_checkpoint(run.folder / "checkpoints" / "fold1.pt")
    assert payload["selection"] == "last" and payload["best_epoch"] == 2  # epochs are 1-based
    assert "epoch" not in payload


def test_early_stopping_stops_after_patience_epochs_without_improvement(tiny_root, tmp_path):
    run = _run(tiny_root, tmp_path, variant="hadamard", folds="1", epochs=12, patience=1, lr=1e-6)
    curves = json.loads((run.folder / "curves" / "fold1.json").read_text())
    ran = len(curves["epoch"])
    assert ran < 12
    best = int(next(float(r["value"]) for r in _rows(run.folder)
                    if r["selection"] == "val" and r["metric"] == "best_epoch"))
    assert curves["epoch"] == list(range(1, ran + 1))  # 1-based
    assert ran - best == 1  # stopped exactly `patience` epochs after the best validation epoch

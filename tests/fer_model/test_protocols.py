"""Loss weights by cross-validation or from the search, and the RAF-DB fine-tune from a FER2013 checkpoint."""
import json

import numpy as np
import pytest
import torch

from common.checkpoints import save_checkpoint
from common.config import ConfigError
from common.fer import finetune, loss_weights, run
from common.fer import data as fer_data
from common.fer import labels as L
from common.fer.model import build_fer_model
from tests.fer_data.fer_writers import write_rafdb
from tests.fer_model.test_run import SPEC, read_rows, tiny_cfg

QUICK = {"seeds": "", "comparisons": "none", "explain": False, "measure_speed": False, "tune_trials": 0}


# --- loss weights ---------------------------------------------------------------------------------------------

def test_folds_are_stratified_seeded_and_bad_counts_are_named():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 3)
    folds = loss_weights.stratified_folds(labels, 3, seed=0)
    assert len(folds) == 3
    for fit, held in folds:
        assert set(labels[held]) == {0, 1, 2} and not set(fit) & set(held)
    assert sorted(np.concatenate([h for _, h in folds]).tolist()) == list(range(len(labels)))
    again = loss_weights.stratified_folds(labels, 3, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    with pytest.raises(ValueError, match="'disgust' has 3 images.*cv_folds <= 3"):
        loss_weights.stratified_folds(labels, 5, seed=0, classes=("angry", "happy", "disgust"))
    with pytest.raises(ValueError, match="at least 2 folds"):
        loss_weights.stratified_folds(labels, 1, seed=0)


def test_loss_weight_parameters_are_validated():
    with pytest.raises(ConfigError, match="cv_folds"):
        SPEC.resolve({"cv_folds": 1})
    with pytest.raises(ConfigError, match="cv_grid.*'0.5/0.5'"):
        SPEC.resolve({"cv_grid": "0.6/0.25/0.15,0.5/0.5"})
    with pytest.raises(ConfigError, match="loss_weights"):
        SPEC.resolve({"loss_weights": "best"})
    with pytest.raises(ConfigError, match="loss is 'ce'"):
        SPEC.resolve({"loss_weights": "cv", "loss": "ce"})
    assert SPEC.resolve({})["loss_weights"] == "fixed"
    assert loss_weights.parse_grid("0.6/0.25/0.15, 1/0/0") == [(0.6, 0.25, 0.15), (1.0, 0.0, 0.0)]


def test_variant_is_the_fixed_label_of_the_main_model():
    """HAFEM has one method: ``variant`` only names the run and the main model's rows, so nothing else is accepted
    (an ablation rung or a baseline is not a variant of the run, it is trained inside it)."""
    from common.fer.training import MAIN_VARIANT

    variant = SPEC.params["variant"]
    assert variant.accepted() == [MAIN_VARIANT] and variant.default == MAIN_VARIANT
    assert "fixed label" in variant.help
    assert SPEC.resolve({})["variant"] == MAIN_VARIANT
    with pytest.raises(ConfigError, match="variant.*hafem_no_cbam"):
        SPEC.resolve({"variant": "hafem_no_cbam"})


def test_tuning_file_values_become_the_run_settings_and_bad_files_are_named(tmp_path):
    good = tmp_path / "tuning.json"
    good.write_text(json.dumps({"best": {"value": 0.5, "params": {"w_ce": 0.7, "w_center": 0.1, "w_dls": 0.2,
                                                                   "lr_max": 2e-3}}}))
    cfg = SPEC.resolve({"loss_weights": str(good)})
    out, record, study = loss_weights.resolve(cfg, data=None)
    assert (out["w_ce"], out["w_center"], out["w_dls"], out["lr_max"]) == (0.7, 0.1, 0.2, 2e-3) and study is None
    assert record["source"] == "tuning file" and record["file"] == str(good.resolve())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"best": {"params": {"w_ce": 0.7}}}))
    with pytest.raises(ValueError, match="bad.json: best.params lacks"):
        loss_weights.read_tuning_file(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        loss_weights.read_tuning_file(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="tune_trials must be >= 1"):
        loss_weights.resolve(SPEC.resolve({"loss_weights": "tuned", "tune_trials": 0}), data=None)


def test_cv_chooses_weights_on_the_training_split_and_the_run_records_them(tiny_fer2013, tmp_path):
    cfg = tiny_cfg(tiny_fer2013, **QUICK, loss_weights="cv", cv_folds=2, cv_epochs=1,
                   cv_grid="0.6/0.25/0.15,1/0/0")
    data = fer_data.load_data(cfg)
    chosen_cfg, record, _ = loss_weights.resolve(cfg, data)
    assert record["source"] == "cv" and record["folds"] == 2 and len(record["candidates"]) == 2
    means = [c["mean_f1"] for c in record["candidates"]]
    best = record["candidates"][int(np.argmax(means))]["weights"]
    assert [chosen_cfg[k] for k in loss_weights.WEIGHT_KEYS] == best
    assert loss_weights.resolve(cfg, data)[1] == record  # same seed, same choice
    with pytest.raises(ValueError, match="has 4 images"):  # 4 training images per class
        loss_weights.resolve({**cfg, "cv_folds": 5}, data)
    folder = run.run_study(cfg, root=tmp_path, data=data)[-1].folder
    saved = json.loads((folder / "run.json").read_text())
    assert saved["loss_weights"] == json.loads(json.dumps(record))
    assert [saved["config"][k] for k in loss_weights.WEIGHT_KEYS] == best
    assert saved["cbam_placement"]["placement"] == "after_backbone" and saved["cbam_placement"]["params_total"] > 0


def test_tuned_runs_the_search_first_and_trains_with_its_best_values(tiny_fer2013, tmp_path):
    cfg = tiny_cfg(tiny_fer2013, **{**QUICK, "tune_trials": 2}, loss_weights="tuned")
    folder = run.run_study(cfg, root=tmp_path)[-1].folder
    saved = json.loads((folder / "run.json").read_text())
    study = json.loads((folder / "tuning.json").read_text())
    assert saved["loss_weights"]["source"] == "tuned"
    for key, value in study["best"]["params"].items():
        assert saved["config"][key] == pytest.approx(value)


# --- multi_target ----------------------------------------------------------------------------------------------

def test_ferplus_multi_target_is_offered_and_trains_with_the_set_loss():
    from common.fer.loss import LOSSES

    assert SPEC.resolve({"dataset": "FERPlus", "ferplus_mode": "multi_target"})["ferplus_mode"] == "multi_target"
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    q = torch.tensor([[0.5, 0.5, 0.0]])
    p = torch.softmax(logits, -1)[0]
    crit = LOSSES.create("ce", num_classes=3, multi_target=True)
    assert crit(logits, None, q)[0].item() == pytest.approx(-float(torch.log(p[0] + p[1])), rel=1e-6)
    plain = LOSSES.create("ce", num_classes=3)
    assert plain(logits, None, q)[0].item() == pytest.approx(-float(0.5 * torch.log(p[0]) + 0.5 * torch.log(p[1])))


# --- fine-tune -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_rafdb(tmp_path_factory):
    root = tmp_path_factory.mktemp("raf") / "RAF-DB"
    entries = [(f"train_{i:05d}.jpg", c) for i, c in enumerate([c for c in range(1, 8) for _ in range(4)], start=1)]
    entries += [(f"test_{i:04d}.jpg", c) for i, c in enumerate([c for c in range(1, 8) for _ in range(2)], start=1)]
    write_rafdb(root, entries, size=32)
    return root


def _checkpoint(path, cfg, classes):
    model = build_fer_model(cfg, len(classes), "hafem")
    return save_checkpoint(path, study="hafem", config=dict(cfg), model_state=model.state_dict(), provenance={},
                           variant="hafem", classes=list(classes), best_epoch=1), model


def test_finetune_checkpoint_must_match_architecture_and_classes(tiny_fer2013, tmp_path):
    cfg = tiny_cfg(tiny_fer2013, dataset="RAF-DB")
    path, model = _checkpoint(tmp_path / "ok.pt", {**cfg, "dataset": "FER2013"}, L.FER2013_CLASSES)
    state, note = finetune.source_state(path, cfg, L.RAFDB_CLASSES)
    order = [L.FER2013_CLASSES.index(c) for c in L.RAFDB_CLASSES]  # rows follow the class names
    assert torch.equal(state["head.weight"], model.state_dict()["head.weight"][order]) and "FER2013" in note
    wide, _ = _checkpoint(tmp_path / "wide.pt", {**cfg, "dim": 24, "ff_dim": 48}, L.FER2013_CLASSES)
    with pytest.raises(ValueError, match="wide.pt.*dim: checkpoint 24, this run 16; ff_dim: checkpoint 48"):
        finetune.source_state(wide, cfg, L.RAFDB_CLASSES)
    staged, _ = _checkpoint(tmp_path / "staged.pt", {**cfg, "cbam_placement": "stages"}, L.FER2013_CLASSES)
    with pytest.raises(ValueError, match="cbam_placement: checkpoint 'stages', this run 'after_backbone'"):
        finetune.source_state(staged, cfg, L.RAFDB_CLASSES)
    eight, _ = _checkpoint(tmp_path / "eight.pt", cfg, L.FERPLUS_CLASSES)
    with pytest.raises(ValueError, match="eight.pt: the checkpoint has 8 classes.*RAF-DB has 7"):
        finetune.source_state(eight, cfg, L.RAFDB_CLASSES)
    with pytest.raises(ConfigError, match="RAF-DB"):
        SPEC.resolve({"dataset": "FERPlus", "finetune_from": str(path)})


def test_rafdb_finetune_starts_from_the_fer2013_run_and_is_recorded(tiny_fer2013, tiny_rafdb, tmp_path):
    with pytest.raises(FileNotFoundError, match="run the FER2013 notebook first"):
        finetune.latest_source(tiny_cfg(tiny_rafdb, dataset="RAF-DB"), tmp_path)
    run.run_study(tiny_cfg(tiny_fer2013, **QUICK), root=tmp_path)
    cfg = tiny_cfg(tiny_rafdb, **QUICK, dataset="RAF-DB", finetune_from="latest", finetune_epochs=1)
    folder = run.run_study(cfg, root=tmp_path)[-1].folder
    rows = read_rows(folder)
    assert {r["variant"] for r in rows} == {"hafem", finetune.FINETUNE_VARIANT}
    tuned = [r for r in rows if r["variant"] == finetune.FINETUNE_VARIANT and r["metric"] == "accuracy"]
    assert len(tuned) == 1 and tuned[0]["n_test"] == "14"
    saved = json.loads((folder / "run.json").read_text())
    assert "/hafem/demo/FER2013/" in saved["finetune"]["source"] and saved["finetune"]["epochs"] == 1
    assert (folder / "predictions" / f"{finetune.FINETUNE_VARIANT}.json").is_file()

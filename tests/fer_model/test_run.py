import csv
import json

import numpy as np
import pytest

from common.checkpoints import load_checkpoint
from common.config import ConfigError, get_study
from common.fer import comparisons, run
from common.fer import data as fer_data
from common.fer.model import model_from_checkpoint
from common.results import is_complete
from tests.fer_model.conftest import TINY

SPEC = get_study("hafem")


def tiny_cfg(root, **over):
    given = {"profile": "demo", "data_root": str(root), "epochs": 1, "seeds": "0,1", "zeroshot_targets": "",
             "tune_trials": 1, "tune_epochs": 1, "shap_samples": 8, "max_train": 0, "max_eval": 0,
             "warmup_epochs": 0, "pretrained": "none", **TINY}
    given.update(over)
    return SPEC.resolve(given)


def read_rows(folder):
    with open(folder / "rows.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_run_study_writes_per_seed_rows_and_complete_runs(tiny_fer2013, tmp_path):
    cfg = tiny_cfg(tiny_fer2013)
    outcomes = run.run_study(cfg, root=tmp_path)
    assert [o.seed for o in outcomes] == [1, 0]  # the notebook's own seed last
    assert cfg["comparison_seeds"] == "own"  # the demo trains the comparisons in the notebook's seed only
    for o in outcomes:
        assert is_complete(o.folder)
        rows = read_rows(o.folder)
        assert {r["seed"] for r in rows} == {str(o.seed)}
        variants = {r["variant"] for r in rows}
        ablation = json.loads((o.folder / "run.json").read_text())["ablation"]
        if o.seed == cfg["seed"]:
            assert "hafem" in variants and len([v for v in variants if v.startswith("ablation")]) == 5
            assert {"resnet18", "vit_tiny_patch16_224", "efficientnet_b0", "swin_demo"} <= variants
            assert len(ablation) == 5
        else:
            assert variants == {"hafem"} and ablation == []
        metrics = {r["metric"] for r in rows if r["variant"] == "hafem"}
        assert {"accuracy", "precision_macro", "recall_macro", "f1_macro", "auc_ovr", "f1/happy"} <= metrics
        assert all(r["selection"] == "val" for r in rows if r["metric"] == "accuracy")
        pred = json.loads((o.folder / "predictions" / "hafem.json").read_text())
        assert len(pred["y_true"]) == len(pred["proba"]) == 14 and pred["classes"][3] == "happy"
        cm = json.loads((o.folder / "confusion" / "hafem.json").read_text())
        assert np.asarray(cm["matrix"]).sum() == 14
    last = outcomes[-1].folder
    record = json.loads((last / "run.json").read_text())
    assert record["status"] == "complete" and record["config"]["seed"] == 0
    assert record["synthetic_data"] is False  # data_root points at the test's files, not the generated demo set
    assert not (last / "state").exists()  # training states are dropped once the run is complete
    assert record["n_rows"] == len(read_rows(last)) and "tuning_best" in record and record["speed"]["model"]["fps"] > 0
    assert (last / "tuning.json").is_file() and (last / "explain" / "shap.json").is_file()
    maps = np.load(last / "explain" / "gradcam_maps.npy")
    faces = np.load(last / "explain" / "gradcam_faces.npy")
    cams = json.loads((last / "explain" / "gradcam.json").read_text())
    assert 7 <= len(maps) <= 14 and maps.shape[1:] == (32, 32) and maps.min() >= 0 and maps.max() <= 1
    assert faces.shape == (*maps.shape, 3) and len(cams["outcome"]) == len(maps)  # a correct / wrong face per class
    regions = (last / "explain" / "regions.csv").read_text().splitlines()
    assert len(regions) == 1 + 2 * 7 * 5  # Grad-CAM and SHAP, 7 classes, 5 regions (the squares have no face mesh)
    assert {"fps_model", "fps_end_to_end"} <= {r["metric"] for r in read_rows(last)}
    # the val-selected checkpoint rebuilds a model that reproduces the recorded predictions
    payload = load_checkpoint(last / "checkpoints" / "hafem.pt", "hafem")
    assert payload["selection"] == "val"
    model, mcfg = model_from_checkpoint(payload)
    pred = json.loads((last / "predictions" / "hafem.json").read_text())
    data = fer_data.load_data(mcfg | {"data_root": str(tiny_fer2013)})
    _, _, test = fer_data.make_loaders(mcfg, data, 0)
    from common.fer.engine import predict_proba

    proba, y = predict_proba(model, test)
    assert y.tolist() == pred["y_true"]
    assert np.allclose(proba, np.asarray(pred["proba"]), atol=1e-5)


def test_comparison_seeds_choose_which_seeds_train_the_comparisons():
    own, every = SPEC.resolve({"seed": 2}), SPEC.resolve({"seed": 2, "comparison_seeds": "all"})
    assert [comparisons.compares_in_seed(own, s) for s in (0, 1, 2)] == [False, False, True]
    assert [comparisons.compares_in_seed(every, s) for s in (0, 1, 2)] == [True, True, True]
    assert not comparisons.compares_in_seed(SPEC.resolve({"dataset": "RAF-DB", "seed": 2}), 2)  # FER2013 only
    assert SPEC.resolve({"profile": "paper"})["comparison_seeds"] == "all"
    with pytest.raises(ConfigError, match="comparison_seeds"):
        SPEC.resolve({"comparison_seeds": "some"})


def test_same_seed_same_result(tiny_fer2013, tmp_path):
    cfg = tiny_cfg(tiny_fer2013, seeds="", comparisons="none", explain=False, measure_speed=False, tune_trials=0)
    a = read_rows(run.run_study(cfg, root=tmp_path / "a")[-1].folder)
    b = read_rows(run.run_study(cfg, root=tmp_path / "b")[-1].folder)
    keep = lambda rows: [(r["variant"], r["metric"], r["value"]) for r in rows if r["metric"] != "train_seconds"]
    assert keep(a) == keep(b)


def test_study_parameters_are_validated():
    with pytest.raises(ConfigError, match="seeds"):
        SPEC.resolve({"seeds": "0,x"})
    with pytest.raises(ConfigError, match="FER2013 only"):
        SPEC.resolve({"dataset": "RAF-DB", "comparisons": "all"})
    with pytest.raises(ConfigError, match="divisible"):
        SPEC.resolve({"dim": 30, "heads": 4})
    with pytest.raises(ConfigError, match="timm"):
        SPEC.resolve({"backbone": "efficientnet_b99"})
    paper = SPEC.resolve({"profile": "paper"})
    assert (paper["backbone"], paper["dim"], paper["depth"], paper["heads"], paper["ff_dim"], paper["token_grid"]) == \
        ("efficientnet_b5", 2048, 6, 8, 4096, 7)
    assert (paper["epochs"], paper["warmup_epochs"], paper["patience"], paper["lr_max"], paper["lr_min"]) == \
        (140, 10, 20, 1e-3, 1e-6)
    # ImageNet weights by default: timm's ImageNet-12k B5 (closest to the paper's ImageNet-21K), fetched on request
    assert paper["pretrained"] == "timm:efficientnet_b5.sw_in12k" and paper["baseline_pretrained"] == "timm"
    demo = SPEC.resolve({"profile": "demo"})
    assert demo["pretrained"] == "package:efficientnet_lite0" and demo["baseline_pretrained"] == "none"
    with pytest.raises(ConfigError, match="unknown timm baselines \\['resnet51'\\]"):
        SPEC.resolve({"baselines": "resnet50,resnet51"})


def test_stratified_cap_keeps_every_class():
    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    idx = fer_data.stratified_cap(labels, 20, seed=0)
    assert len(idx) <= 20 and set(labels[idx]) == {0, 1, 2}
    assert np.array_equal(idx, fer_data.stratified_cap(labels, 20, seed=0))


def test_ablation_ladder_and_baselines_are_parameters_with_profile_defaults():
    demo_cfg, paper_cfg = SPEC.resolve({"profile": "demo"}), SPEC.resolve({"profile": "paper"})
    demo = [r["label"] for r in comparisons.ablation_ladder(demo_cfg)]
    paper = [r["label"] for r in comparisons.ablation_ladder(paper_cfg)]
    assert demo[0] == "ablation1_resnet18" and paper[0] == "ablation1_resnet50"
    assert paper[1] == "ablation2_efficientnet_b5" and paper[-1].endswith("+compound_loss")
    # no behaviour switch on the profile name: the same parameters give the same ladder in either profile
    mixed = SPEC.resolve({"profile": "demo", "ablation_resnet": "resnet50", "backbone": "efficientnet_b5"})
    assert [r["label"] for r in comparisons.ablation_ladder(mixed)][:2] == paper[:2]
    assert comparisons.baseline_names(paper_cfg) == ("resnet50", "vit_base_patch16_224", "efficientnet_b4",
                                                     "swin_tiny_patch4_window7_224")
    assert comparisons.baseline_names(SPEC.resolve({"profile": "paper", "baselines": "resnet18"})) == ("resnet18",)


def test_alignment_follows_what_the_dataset_ships():
    from types import SimpleNamespace

    aligned = SimpleNamespace(aligned=True, landmarks=None)
    with_points = SimpleNamespace(aligned=False, landmarks=[np.zeros((68, 2)), None])
    photos = SimpleNamespace(aligned=False, landmarks=None)
    assert fer_data.alignment_for(aligned, "auto") == "none"
    assert fer_data.alignment_for(with_points, "auto") == "68point"
    assert fer_data.alignment_for(photos, "auto") == "5point"
    assert fer_data.alignment_for(aligned, "5point") == "5point"

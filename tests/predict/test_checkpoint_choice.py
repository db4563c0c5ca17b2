"""Which checkpoints predict uses (the rule of common.predict.checkpoints) and the errors for unusable ones; no model
is built here."""
import json

import pytest
import torch

from common.checkpoints import FORMAT, CheckpointError, save_checkpoint
from common.config import config_hash
from common.predict import NoCheckpointError, choose_models, describe_checkpoint, find_checkpoints, main

ROWS_HEADER = "study,dataset,variant,profile,seed,fold,selection,metric,value,n_train,n_test\n"


def _cfg(profile="demo", dataset="UvA-NEMO", variant="hadamard", seed=0, study="smile", **extra):
    return {"study": study, "dataset": dataset, "variant": variant, "profile": profile, "seed": seed, "epochs": 2,
            "data_root": "", **extra}


def _run(results, cfg, status="complete", val=None, test=None, selection="val"):
    """A smile run folder as common.smile.run writes it: checkpoints/fold<k>.pt holding epoch 2, curves/fold<k>.json
    with the validation accuracy per recorded epoch, rows.csv with each fold's test accuracy. ``val``/``test``:
    {fold: score}."""
    run = results / "raw" / cfg["study"] / cfg["profile"] / cfg["dataset"] / cfg["variant"] / \
        f"seed{cfg['seed']}-{config_hash(cfg)}"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": status, "config_hash": config_hash(cfg)}))
    (run / "curves").mkdir()
    rows = ROWS_HEADER
    paths = []
    for k, v in (val or {1: 0.5}).items():
        (run / "curves" / f"fold{k}.json").write_text(json.dumps({"epoch": [1, 2], "val_accuracy": [0.0, v]}))
        score = (test or {}).get(k, 0.5)
        rows += f"smile,{cfg['dataset']},{cfg['variant']},{cfg['profile']},{cfg['seed']},{k},{selection},accuracy," \
                f"{score},10,2\n"
        paths.append(save_checkpoint(run / "checkpoints" / f"fold{k}.pt", study=cfg["study"], config=cfg,
                                     model_state={}, provenance={"config_hash": config_hash(cfg)},
                                     selection=selection, fold=k, best_epoch=2))
    (run / "rows.csv").write_text(rows)
    return paths


def test_a_tiny_validation_split_cannot_pick_a_lone_checkpoint(tmp_path):
    """The issue's case: one fold scores 1.0 on its ~3 validation videos but 0.0 on its test fold; the choice is the
    configuration with the best MEAN validation score, and all its folds are used."""
    _run(tmp_path, _cfg(variant="concat"), val={1: 0.4, 2: 0.5, 8: 1.0}, test={1: 0.5, 2: 0.6, 8: 0.0})
    _run(tmp_path, _cfg(variant="hadamard"), val={1: 0.8, 2: 0.9, 3: 0.85}, test={1: 0.7, 2: 0.8, 3: 0.9})
    chosen = choose_models("smile", tmp_path)
    assert chosen.first.variant == "hadamard" and [m.fold for m in chosen.members] == [1, 2, 3]
    assert chosen.val_score == pytest.approx(0.85) and chosen.held_out_score == pytest.approx(0.8)
    assert chosen.n_candidates == 6
    assert "mean val_accuracy 0.8500 over its 3 checkpoint(s), the highest of 2 trained configuration(s)" in \
        chosen.selected_by and "ensemble" in chosen.selected_by
    s = chosen.summary()
    assert [m["held_out_score"] for m in s["members"]] == [0.7, 0.8, 0.9]
    assert [m["val_score"] for m in s["members"]] == [0.8, 0.9, 0.85]
    assert s["held_out_metric"] == "test accuracy" and chosen.held_out_near_chance(2) is False
    assert "synthetic demo data — not a real-world model" in s["trained_on"]


def test_seeds_of_one_configuration_form_one_ensemble_and_near_chance_is_flagged(tmp_path):
    _run(tmp_path, _cfg(seed=0), val={1: 0.6}, test={1: 0.5})
    _run(tmp_path, _cfg(seed=1), val={1: 0.7}, test={1: 0.6})
    chosen = choose_models("smile", tmp_path)
    assert sorted(m.seed for m in chosen.members) == [0, 1] and chosen.val_score == pytest.approx(0.65)
    assert chosen.held_out_score == pytest.approx(0.55) and chosen.held_out_near_chance(2) is True


def test_one_named_dataset_and_real_data_first(tmp_path):
    _run(tmp_path, _cfg(dataset="BBC"), val={1: 1.0})
    _run(tmp_path, _cfg(profile="demo"), val={1: 0.9})
    _run(tmp_path, _cfg(profile="paper"), val={1: 0.6})
    assert choose_models("smile", tmp_path).first.profile == "paper"  # UvA-NEMO by default, real data first
    assert "not a real-world model" not in choose_models("smile", tmp_path).trained_on
    assert choose_models("smile", tmp_path, dataset="BBC").first.dataset == "BBC"
    with pytest.raises(NoCheckpointError, match="there are checkpoints of BBC, UvA-NEMO: pass --dataset"):
        choose_models("smile", tmp_path, dataset="MMI")


def test_only_the_requested_variant_and_complete_runs_count(tmp_path):
    _run(tmp_path, _cfg(variant="concat"), val={1: 0.99})
    _run(tmp_path, _cfg(seed=3), status="running", val={1: 0.95})
    _run(tmp_path, _cfg(seed=4), val={1: 0.5})
    usable, skipped = find_checkpoints("smile", tmp_path, "hadamard")
    assert [c.seed for c in usable] == [4]
    assert len(skipped) == 1 and "not complete" in skipped[0]
    assert choose_models("smile", tmp_path, variant="hadamard").first.seed == 4
    assert choose_models("smile", tmp_path).first.variant == "concat"  # without --variant every variant competes


def test_validation_selected_configurations_come_first(tmp_path):
    _run(tmp_path, _cfg(variant="concat"), val={1: 0.99}, selection="last")
    _run(tmp_path, _cfg(variant="hadamard"), val={1: 0.6})
    assert choose_models("smile", tmp_path).first.variant == "hadamard"


def test_no_checkpoint_names_the_training_command(tmp_path):
    with pytest.raises(NoCheckpointError) as info:
        choose_models("smile", tmp_path)
    command = "python -m common.batch --study smile --dataset UvA-NEMO --variant hadamard --profile demo"
    assert command in str(info.value)
    with pytest.raises(NoCheckpointError, match="--study hafem --dataset FER2013"):
        choose_models("hafem", tmp_path)


def test_checkpoint_of_another_format_version_is_rejected_by_name(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": "repro-checkpoint/0", "study": "smile", "config": _cfg(), "model_state": {},
                "provenance": {}}, path)
    with pytest.raises(CheckpointError, match=r"old\.pt: checkpoint format 'repro-checkpoint/0'"):
        describe_checkpoint(path, "smile")


def test_checkpoint_with_missing_keys_is_rejected(tmp_path):
    path = tmp_path / "nokeys.pt"
    torch.save({"format": FORMAT, "study": "smile", "config": _cfg()}, path)
    missing = r"nokeys\.pt: checkpoint is missing keys \['model_state', 'provenance'\]"
    with pytest.raises(CheckpointError, match=missing):
        describe_checkpoint(path, "smile")


def test_checkpoint_config_without_dataset_is_rejected(tmp_path):
    cfg = _cfg()
    del cfg["dataset"]
    path = save_checkpoint(tmp_path / "c.pt", study="smile", config=cfg, model_state={}, provenance={})
    with pytest.raises(CheckpointError, match=r"lacks \['dataset'\]"):
        describe_checkpoint(path, "smile")


def test_checkpoint_of_the_other_study_is_rejected(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", study="hafem", config=_cfg(), model_state={}, provenance={})
    with pytest.raises(CheckpointError, match="a 'hafem' checkpoint, expected 'smile'"):
        describe_checkpoint(path, "smile")


def test_bad_checkpoints_under_results_are_skipped_with_a_reason(tmp_path):
    good = _run(tmp_path, _cfg(seed=0))[0]
    (good.parent / "fold9.pt").write_bytes(b"not a torch file")
    usable, skipped = find_checkpoints("smile", tmp_path)
    assert [c.path for c in usable] == [good]
    assert len(skipped) == 1 and "fold9.pt: cannot be read as a torch checkpoint" in skipped[0]


def test_cli_with_a_broken_explicit_checkpoint_exits_5_and_writes_only_a_partial_report(tmp_path, astronaut_png):
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"\x00garbage")
    out = tmp_path / "out"
    code = main([str(astronaut_png), "--fer-checkpoint", str(ckpt), "--out", str(out), "--results", str(tmp_path)])
    assert code == 5
    names = sorted(p.name for p in out.iterdir())
    assert names == ["astronaut.png.partial.json", "astronaut.png.partial.png"]
    summary = json.loads((out / "astronaut.png.partial.json").read_text())
    assert summary["status"] == "partial"
    assert summary["error"]["type"] == "CheckpointError" and "broken.pt" in summary["error"]["message"]


def test_epoch_is_looked_up_in_the_recorded_curves_not_rederived(tmp_path):
    """The checkpoint's epoch is matched against the curves' own epoch list, whatever base the run counted from."""
    path = _run(tmp_path, _cfg(), val={1: 0.7})[0]
    curves = path.parent.parent / "curves" / "fold1.json"
    curves.write_text(json.dumps({"epoch": [0, 1, 2], "val_accuracy": [0.1, 0.2, 0.7]}))
    assert describe_checkpoint(path, "smile").val_score == 0.7
    curves.write_text(json.dumps({"epoch": [0, 1], "val_accuracy": [0.1, 0.2]}))  # epoch 2 not recorded
    assert describe_checkpoint(path, "smile").val_score is None


def test_hafem_seeds_ranked_by_their_recorded_validation_f1(tmp_path):
    """HAFEM checkpoints carry best_val_f1; the seeds of one configuration are one ensemble; baselines saved in the
    same run folder are not the expression model unless asked for."""
    for seed, f1 in ((0, 0.7), (1, 0.6)):
        cfg = _cfg(seed=seed, dataset="FER2013", variant="hafem", study="hafem")
        run = tmp_path / "raw" / "hafem" / "demo" / "FER2013" / "hafem" / f"seed{seed}-{config_hash(cfg)}"
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"status": "complete"}))
        (run / "rows.csv").write_text(ROWS_HEADER + f"hafem,FER2013,hafem,demo,{seed},0,val,accuracy,0.{seed + 3},1,1\n"
                                      + f"hafem,FER2013,resnet18,demo,{seed},0,val,accuracy,0.9,1,1\n")
        for variant, score in (("hafem", f1), ("resnet18", 0.99)):
            save_checkpoint(run / "checkpoints" / f"{variant}.pt", study="hafem", config=cfg, model_state={},
                            provenance={}, selection="val", variant=variant, best_epoch=2, best_val_f1=score,
                            classes=["a", "b"])
    chosen = choose_models("hafem", tmp_path)
    assert chosen.first.variant == "hafem" and sorted(m.seed for m in chosen.members) == [0, 1]
    assert chosen.val_score == pytest.approx(0.65) and chosen.held_out_score == pytest.approx(0.35)
    assert "mean val_f1_macro 0.6500" in chosen.selected_by
    assert choose_models("hafem", tmp_path, variant="resnet18").held_out_score == pytest.approx(0.9)


def test_cached_choice_follows_new_checkpoints(tmp_path):
    from common.predict import Options
    from common.predict.pipeline import cached_choice

    options = Options(results=tmp_path)
    _run(tmp_path, _cfg(seed=0, variant="concat"), val={1: 0.6})
    assert cached_choice("smile", options).first.variant == "concat"
    _run(tmp_path, _cfg(seed=1), val={1: 0.8})  # a better configuration finishes while the process lives
    assert cached_choice("smile", options).first.variant == "hadamard"

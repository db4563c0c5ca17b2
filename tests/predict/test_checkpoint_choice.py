"""Checkpoint discovery under results/ and the errors for unusable checkpoints (no model is built here)."""
import json

import pytest
import torch

from common.checkpoints import FORMAT, CheckpointError, save_checkpoint
from common.config import config_hash
from common.predict import NoCheckpointError, choose_checkpoint, describe_checkpoint, find_checkpoints, main


def _cfg(profile="demo", dataset="UvA-NEMO", variant="hadamard", seed=0):
    return {"study": "smile", "dataset": dataset, "variant": variant, "profile": profile, "seed": seed, "epochs": 1,
            "data_root": ""}


def _run(results, cfg, status="complete", folds=(1,), val=None, **extra):
    """A run folder as common.results writes it, with real-format checkpoints (an empty state: nothing is built)."""
    run = results / "raw" / cfg["study"] / cfg["profile"] / cfg["dataset"] / cfg["variant"] / \
        f"seed{cfg['seed']}-{config_hash(cfg)}"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": status, "config_hash": config_hash(cfg)}))
    paths = []
    for k in folds:
        payload = dict(extra)
        if val is not None:
            payload["val_accuracy"] = val[k] if isinstance(val, dict) else val
        paths.append(save_checkpoint(run / "checkpoints" / f"fold{k}.pt", study=cfg["study"], config=cfg,
                                     model_state={}, provenance={"config_hash": config_hash(cfg)},
                                     selection="val", **payload))
    return paths


def test_picks_highest_validation_accuracy_and_says_why(tmp_path):
    _run(tmp_path, _cfg(seed=0), folds=(1, 2), val={1: 0.6, 2: 0.9})
    _run(tmp_path, _cfg(seed=1), folds=(1,), val=0.7)
    choice = choose_checkpoint("smile", tmp_path)
    assert choice.path.name == "fold2.pt" and choice.seed == 0 and choice.fold == 2
    assert choice.val_metric == "val_accuracy" and choice.val_score == pytest.approx(0.9)
    assert choice.n_candidates == 3
    assert "highest val_accuracy (0.9000) on the validation split among 3" in choice.selected_by
    assert choice.config_hash == config_hash(_cfg(seed=0))
    assert "synthetic demo data — not a real-world model" in choice.trained_on


def test_real_data_runs_come_before_demo_runs(tmp_path):
    _run(tmp_path, _cfg(profile="demo"), val=1.0)
    _run(tmp_path, _cfg(profile="paper"), val=0.8)
    choice = choose_checkpoint("smile", tmp_path)
    assert choice.profile == "paper"
    assert "not a real-world model" not in choice.trained_on


def test_only_the_requested_variant_and_complete_runs_count(tmp_path):
    _run(tmp_path, _cfg(variant="concat"), val=0.99)
    _run(tmp_path, _cfg(seed=3), status="running", val=0.95)
    _run(tmp_path, _cfg(seed=4), val=0.5)
    usable, skipped = find_checkpoints("smile", tmp_path, "hadamard")
    assert [c.seed for c in usable] == [4]
    assert len(skipped) == 1 and "not complete" in skipped[0]
    assert choose_checkpoint("smile", tmp_path).seed == 4
    assert choose_checkpoint("smile", tmp_path, variant="concat").variant == "concat"


def test_no_checkpoint_names_the_training_command(tmp_path):
    with pytest.raises(NoCheckpointError) as info:
        choose_checkpoint("smile", tmp_path)
    command = "python -m common.batch --study smile --dataset UvA-NEMO --variant hadamard --profile demo"
    assert command in str(info.value)
    with pytest.raises(NoCheckpointError, match="--study hafem"):
        choose_checkpoint("hafem", tmp_path)


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
    good = _run(tmp_path, _cfg(seed=0), val=0.5)[0]
    bad_dir = good.parent
    (bad_dir / "fold9.pt").write_bytes(b"not a torch file")
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


def test_validation_score_read_from_the_run_curves_at_the_best_epoch(tmp_path):
    """HAFEM runs keep their selection metric (validation macro-F1) in curves/<variant>.json, not in the checkpoint."""
    ranked = {}
    for seed, curve in ((0, [0.2, 0.7, 0.5]), (1, [0.6, 0.65, 0.1])):
        cfg = _cfg(seed=seed, dataset="FER2013", variant="hafem") | {"study": "hafem"}
        path = _run(tmp_path, cfg, variant="hafem", best_epoch=2 if seed == 0 else 1)[0]
        (path.parent.parent / "curves").mkdir()
        (path.parent.parent / "curves" / "hafem.json").write_text(json.dumps({"best_epoch": 0, "val_f1_macro": curve}))
        ranked[seed] = describe_checkpoint(path, "hafem")
    assert (ranked[0].val_metric, ranked[0].val_score) == ("val_f1_macro", 0.7)
    assert ranked[1].val_score == 0.6
    choice = choose_checkpoint("hafem", tmp_path)
    assert choice.seed == 0 and "highest val_f1_macro (0.7000)" in choice.selected_by


def test_cached_choice_follows_new_checkpoints(tmp_path):
    from common.predict import Options, _cached_choice

    options = Options(results=tmp_path)
    _run(tmp_path, _cfg(seed=0), val=0.6)
    assert _cached_choice("smile", options, None, None).seed == 0
    _run(tmp_path, _cfg(seed=1), val=0.8)  # a better run finishes while the process lives
    assert _cached_choice("smile", options, None, None).seed == 1

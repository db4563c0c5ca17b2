"""protocol=released: the resolved config, fresh test windows per epoch, the normalisation constants, short videos,
DeepMarkerNet's target in the batch, the lexicographic fold order, the batch flag and an end-to-end run."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from common.config import ConfigError, get_study
from common.smile import clips as clips_mod
from common.smile import folds as folds_mod
from common.smile import study
from common.smile.clips import model_clip, norm_range
from common.smile.clip_dataset import SmileClips, aux_target_for
from common.smile.data import load_smile_dataset
from common.smile.deepmarkernet_target import DMN_TARGET_DIM, deepmarkernet_target
from common.smile.dmarker import dmarker_batch
from common.smile.dmarker_scaler import DMarkerScaler
from smile_data_helpers import face_sequence, write_dataset

torch.set_num_threads(1)
SPEC = get_study("smile")


def resolve(**given):
    return SPEC.resolve(given)


# ------------------------------------------------------------------------------------------------ resolved config
@pytest.mark.parametrize("profile", ["demo", "paper"])
def test_released_fills_the_notebooks_behaviour_at_either_size(profile):
    paper, released = resolve(profile=profile), resolve(profile=profile, protocol="released")
    assert paper["protocol"] == "paper" and released["protocol"] == "released"
    assert {k: released[k] for k in study.released_settings("UvA-NEMO", "hadamard")} == {
        "selection": "test", "val_fraction": 0.0, "patience": 0, "n_eval_clips": 5, "eval_windows": "per_epoch",
        "clip_len": 16, "window_sampling": "released", "dmarker_variant": "released", "dmarker_scope": "clip",
        "dmarker_scaling": "none", "fusion_impl": "released", "landmark_norm": "uva-nemo"}
    # sizes and schedule stay the profile's: the two switches are orthogonal
    for key in ("model_dim", "n_points", "knn_k", "epochs", "lr", "spatial_depth", "batch_size"):
        assert released[key] == paper[key]
    # the honest defaults
    assert (paper["selection"], paper["eval_windows"], paper["dmarker_scaling"], paper["fold_order"]) == \
        ("val", "fixed", "standard", "numeric")
    assert released["fold_order"] == "numeric"  # a separate option


def test_only_the_bbc_hadamard_notebook_has_its_own_constants():
    assert resolve(protocol="released", dataset="BBC", variant="hadamard")["landmark_norm"] == "bbc-hadamard"
    for dataset, variant in (("BBC", "concat"), ("UvA-NEMO", "hadamard"), ("SPOS", "hadamard"), ("BBC", "meshsmilenet")):
        assert resolve(protocol="released", dataset=dataset, variant=variant)["landmark_norm"] == "uva-nemo"
    assert resolve(dataset="BBC", variant="hadamard")["landmark_norm"] == "uva-nemo"  # paper protocol


def test_a_conflicting_explicit_value_is_an_error_an_equal_one_is_not():
    with pytest.raises(ConfigError, match=r"'selection'='val' conflicts with protocol='released', which fixes "
                                          r"selection='test'.*protocol='paper'"):
        resolve(protocol="released", selection="val")
    with pytest.raises(ConfigError, match="landmark_norm='bbc-hadamard'"):
        resolve(protocol="released", dataset="BBC", variant="hadamard", landmark_norm="uva-nemo")
    assert resolve(protocol="released", selection="test", n_eval_clips=5)["selection"] == "test"
    # free parameters stay free, and a resolved config resolves to itself (notebooks resolve twice)
    cfg = resolve(protocol="released", dataset="BBC", variant="hadamard", epochs=2, fold_order="lexicographic")
    assert cfg["epochs"] == 2 and cfg["fold_order"] == "lexicographic"
    again = SPEC.resolve({k: v for k, v in cfg.items() if k != "study"})
    assert dict(again) == dict(cfg)


def test_unknown_protocol_and_values_name_the_accepted_ones():
    with pytest.raises(ConfigError, match="Accepted: paper, released"):
        resolve(protocol="notebooks")
    with pytest.raises(ConfigError, match="Accepted: uva-nemo, bbc-hadamard"):
        resolve(landmark_norm="bbc")
    with pytest.raises(ConfigError, match="Accepted: numeric, lexicographic"):
        resolve(fold_order="string")
    with pytest.raises(ConfigError, match="Accepted: fixed, per_epoch"):
        resolve(eval_windows="fresh")


def test_study_names_agree_with_the_data_modules():
    from statistical_analysis import tables

    assert study.LANDMARK_NORM_NAMES == tuple(clips_mod.LANDMARK_NORMS)
    assert study.EVAL_WINDOW_MODES == clips_mod.EVAL_WINDOWS
    assert study.FOLD_ORDER_NAMES == folds_mod.FOLD_ORDERS
    assert study.RELEASED_LABEL == tables.RELEASED_LABEL == "as released (test-fold selection)"


# ------------------------------------------------------------------------------------------------ clip dataset
@pytest.fixture
def bbc(tmp_path):
    videos = {f"genuine_{i:02d}": 1 for i in range(4)} | {f"posed_{i:02d}": 0 for i in range(4)}
    names = sorted(videos)
    root = write_dataset(tmp_path / "BBC", "BBC", videos, frames=60, folds=[(names[2:], names[:2]),
                                                                            (names[:2] + names[4:], names[2:4])])
    short = face_sequence(10, seed=9, lip_spread=np.linspace(0, 0.02, 10))
    np.save(root / "npy" / "genuine_short.npy", short)
    for k in (1, 2):  # the short video joins every fold's training set
        path = root / "labels" / str(k) / "train.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "genuine_short": 1}))
    return load_smile_dataset("BBC", root, cache_dir=False)


def test_test_windows_are_drawn_afresh_every_epoch_under_per_epoch(bbc):
    videos = [v for v in bbc.videos if v != "genuine_short"]
    fresh = SmileClips(bbc, videos, "eval", seed=4, eval_windows="per_epoch", dmarker_variant="released",
                       dmarker_scope="clip")
    fixed = SmileClips(bbc, videos, "eval", seed=4, eval_windows="fixed", dmarker_variant="released",
                       dmarker_scope="clip")
    per_epoch, constant = [], []
    for epoch in (1, 2, 3):
        fresh.set_epoch(epoch)
        fixed.set_epoch(epoch)
        per_epoch.append(np.stack([fresh.starts(i) for i in range(len(videos))]))
        constant.append(np.stack([fixed.starts(i) for i in range(len(videos))]))
    assert all((c == constant[0]).all() for c in constant)
    assert not (per_epoch[0] == per_epoch[1]).all() and not (per_epoch[1] == per_epoch[2]).all()
    fresh.set_epoch(2)
    np.testing.assert_array_equal(np.stack([fresh.starts(i) for i in range(len(videos))]), per_epoch[1])  # seeded
    # the released windows never start at T - L, and each window's D-Marker is that window's row
    assert per_epoch[0].max() <= 60 - 16 - 1
    item = fresh[0]
    rows = bbc.dmarker_table("released", "clip", 16).rows(videos[0])
    np.testing.assert_array_equal(item["dmarker"].numpy(), np.asarray(rows)[fresh.starts(0)])
    assert item["clip"].shape == (5, 16, 478, 3)


def test_normalisation_constants_reach_the_network_input_and_the_dmarker(bbc):
    video = bbc.videos[0]
    seq = np.asarray(bbc.array(video))
    items = {}
    for norm in ("uva-nemo", "bbc-hadamard"):
        ds = SmileClips(bbc, [video], "train", seed=0, landmark_norm=norm, dmarker_variant="released",
                        dmarker_scope="clip", window_sampling="released")
        items[norm] = ds[0]
        start = int(ds.starts(0)[0])
        lo, hi = norm_range(norm)
        want = ((seq[start:start + 16].astype(np.float64) - lo) / (hi - lo)).astype(np.float32)
        np.testing.assert_array_equal(items[norm]["clip"].numpy(), want)
        # released D-Marker: measured on the clip the network sees
        np.testing.assert_allclose(items[norm]["dmarker"].numpy(),
                                   dmarker_batch(want[None], "released", norm_range=(np.zeros(3), np.ones(3)))[0],
                                   atol=1e-5)
    assert np.abs(items["uva-nemo"]["dmarker"].numpy() - items["bbc-hadamard"]["dmarker"].numpy()).max() > 1e-3
    # the paper D-Marker is pose-normalised: the constants do not change it (one table serves both)
    assert bbc.dmarker_table("paper", "video", norm="bbc-hadamard") is bbc.dmarker_table("paper", "video")
    with pytest.raises(ValueError, match="accepted: uva-nemo, bbc-hadamard"):
        SmileClips(bbc, [video], "train", landmark_norm="bbc")


def test_short_videos_are_padded_after_normalisation_and_the_padding_counts(bbc):
    ds = SmileClips(bbc, ["genuine_short"], "eval", seed=1, dmarker_variant="released", dmarker_scope="clip",
                    window_sampling="released", eval_windows="per_epoch")
    ds.set_epoch(3)
    item = ds[0]
    assert (ds.starts(0) == 0).all()  # the whole video is the one window
    clip = item["clip"].numpy()
    assert clip.shape == (5, 16, 478, 3) and not clip[:, 10:].any() and clip[:, :10].all()
    # the D-Marker of the padded clip, padded frames counted as zero frames (the release), not dropped
    counted = dmarker_batch(clip[:1], "released", norm_range=(np.zeros(3), np.ones(3)))[0]
    np.testing.assert_allclose(item["dmarker"].numpy()[0], counted, atol=1e-5)
    lo, hi = norm_range("uva-nemo")
    dropped = dmarker_batch(np.asarray(bbc.array("genuine_short"))[None], "released", norm_range=(lo, hi))[0]
    assert np.abs(counted - dropped).max() > 1e-3


def test_deepmarkernet_gets_its_own_216_d_target_in_the_dmarker_key(bbc):
    assert aux_target_for("deepmarkernet") == "deepmarkernet" and aux_target_for("hadamard") == "dmarker"
    train = SmileClips(bbc, bbc.videos, "train", seed=2, target="deepmarkernet")
    item = train[1]
    assert item["dmarker"].shape == (DMN_TARGET_DIM,)
    np.testing.assert_array_equal(item["dmarker"].numpy(), deepmarkernet_target(item["clip"].numpy()[None])[0])
    ev = SmileClips(bbc, bbc.videos, "eval", seed=2, target="deepmarkernet", n_eval_clips=5)
    assert ev[0]["dmarker"].shape == (5, DMN_TARGET_DIM)
    with pytest.raises(ValueError, match="unscaled"):
        SmileClips(bbc, bbc.videos, "train", target="deepmarkernet", scaler=DMarkerScaler())
    with pytest.raises(ValueError, match="nothing to scale"):
        train.dmarker_features()
    with pytest.raises(ValueError, match="accepted: dmarker, deepmarkernet"):
        SmileClips(bbc, bbc.videos, "train", target="dmn")


def test_eval_window_stream_without_an_epoch_is_unchanged():
    a = clips_mod.eval_window_starts(100, 3, 7, 5, 16, "all_starts")
    b = clips_mod.eval_window_starts(100, 3, 7, 5, 16, "all_starts", epoch=None)
    rng = np.random.default_rng([3, 7, 0xE7A1])
    np.testing.assert_array_equal(a, rng.integers(0, 85, size=5))
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------------- fold order
def test_lexicographic_fold_order_is_the_releases():
    folds = [folds_mod.Fold(k, [f"a{k}"], [f"b{k}"]) for k in range(1, 11)]
    assert [f.k for f in folds_mod.order_folds(folds[::-1], "numeric")] == list(range(1, 11))
    assert [f.k for f in folds_mod.order_folds(folds, "lexicographic")] == [1, 10, 2, 3, 4, 5, 6, 7, 8, 9]
    with pytest.raises(folds_mod.FoldError, match="accepted: numeric, lexicographic"):
        folds_mod.order_folds(folds, "alphabetic")


# ----------------------------------------------------------------------------------------------- batch and run
def test_the_batch_takes_protocol_like_any_parameter(capsys):
    from common import batch
    from common.batch_runs import expand

    runs = expand(["smile"], ["BBC"], ["hadamard"], "demo", [0],
                        batch.protocol_overrides(["smile"], "released"))
    assert dict(runs[0].params)["protocol"] == "released" and runs[0].label.endswith("/released")
    honest = expand(["smile"], ["BBC"], ["hadamard"], "demo", [0], [])
    assert honest[0].folder != runs[0].folder  # a separate run folder (config hash)
    with pytest.raises(ConfigError, match="hafem has none"):
        batch.protocol_overrides(["smile", "hafem"], "released")
    assert batch.main(["--study", "smile", "--dataset", "BBC", "--variant", "hadamard", "--protocol", "released",
                       "--set", "selection=val", "--dry-run"]) == 2
    assert "conflicts with protocol='released'" in capsys.readouterr().err


def test_a_released_run_end_to_end(bbc, tmp_path):
    from common.smile.run import run_study

    run = run_study({"dataset": "BBC", "variant": "hadamard", "protocol": "released", "data_root": str(bbc.root),
                     "epochs": 2, "batch_size": 4, "fold_order": "lexicographic", "save_checkpoints": False},
                    progress=False, results_root=tmp_path / "results")
    record = json.loads((run.folder / "run.json").read_text())
    assert record["protocol"] == "released" and record["protocol_label"] == "as released (test-fold selection)"
    assert record["config"]["landmark_norm"] == "bbc-hadamard" and record["config"]["val_fraction"] == 0.0
    with open(run.folder / "rows.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["selection"] for r in rows} == {"test", "last", ""}  # no validation split
    n_train = {int(r["n_train"]) for r in rows}
    assert n_train == {len(bbc.fold(1).train)}  # the whole training fold trained on
    from common.smile.run import plot_curves

    fig = plot_curves(run)  # what the notebook draws next: curves without a validation split
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["train loss", "test acc"]

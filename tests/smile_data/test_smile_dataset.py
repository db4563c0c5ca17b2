"""Dataset loaders, the clip dataset, the D-Marker cache and the hand-crafted baseline (synthetic arrays)."""
import json
import warnings

import numpy as np
import pytest
import torch

from common.smile.clip_dataset import SmileClips
from common.smile.data import SMILE_DATASETS, DataError, load_smile_dataset
from common.smile.dmarker_scaler import DMarkerScaler
from common.smile.dmarker import video_dmarkers
from common.smile.folds import SubjectLeakageError
from common.smile.handcrafted import evaluate_handcrafted
from smile_data_helpers import face_sequence, write_dataset

torch.set_num_threads(1)


def uva_videos(n_subjects=6):
    return {f"{s:03d}_{c}_smile_{i}": int(c == "spontaneous")
            for s in range(1, n_subjects + 1) for c in ("deliberate", "spontaneous") for i in (1, 2)}


def two_folds(videos):
    names = sorted(videos)
    first = [v for v in names if v[:3] in ("001", "002", "003")]
    second = [v for v in names if v not in first]
    return [(second, first), (first, second)]


@pytest.fixture
def uva(tmp_path):
    videos = uva_videos()
    write_dataset(tmp_path / "UvA-NEMO", "UvA-NEMO", videos, frames=24, suffix=".mp4.npy", folds=two_folds(videos))
    return tmp_path / "UvA-NEMO", videos


def test_registry_names():
    assert SMILE_DATASETS.list() == ["BBC", "MMI", "SPOS", "UvA-NEMO"]
    with pytest.raises(KeyError, match="Accepted"):
        load_smile_dataset("UVA", "/nowhere")


def test_load_published_format(uva, tmp_path):
    root, videos = uva
    ds = load_smile_dataset("UvA-NEMO", root, cache_dir=tmp_path / "cache")
    assert ds.videos == sorted(videos) and ds.labels == videos
    assert [f.k for f in ds.folds] == [1, 2] and len(ds.folds[0].test) == 12
    assert ds.subjects["004_spontaneous_smile_2"] == "004"
    arr = ds.array("001_deliberate_smile_1")
    assert isinstance(arr, np.memmap) and arr.shape == (24, 478, 3) and not arr.flags.writeable
    assert ds.fps("001_deliberate_smile_1") == 50.0  # UvA-NEMO nominal rate without a sidecar
    fp = ds.fingerprint()
    assert len(fp) == 64 and fp == load_smile_dataset("UvA-NEMO", root, cache_dir=False).fingerprint()


def test_sidecar_fps_and_mismatch(uva, tmp_path):
    root, _ = uva
    side = root / "npy" / "001_deliberate_smile_1.json"
    side.write_text(json.dumps({"fps": 30, "n_frames": 24, "width": 640, "height": 480}))
    ds = load_smile_dataset("UvA-NEMO", root, cache_dir=False)
    assert ds.fps("001_deliberate_smile_1") == 30.0 and ds.aspect("001_deliberate_smile_1") == pytest.approx(4 / 3)
    side.write_text(json.dumps({"fps": 30, "n_frames": 99}))
    with pytest.raises(DataError, match="n_frames=99"):
        load_smile_dataset("UvA-NEMO", root, cache_dir=False)
    side.write_text(json.dumps({"fps": -1}))
    with pytest.raises(DataError, match="fps must be"):
        load_smile_dataset("UvA-NEMO", root, cache_dir=False)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((24, 468, 3), np.float32), r"shape \(24, 468, 3\)"),
    (np.zeros((0, 478, 3), np.float32), "shape"),
    (np.zeros((24, 478, 3), np.int16), "dtype int16"),
])
def test_bad_array_header_names_the_file(uva, bad, message):
    root, _ = uva
    path = root / "npy" / "002_spontaneous_smile_1.mp4.npy"
    np.save(path, bad)
    with pytest.raises(DataError, match=message) as err:
        load_smile_dataset("UvA-NEMO", root, cache_dir=False)
    assert str(path) in str(err.value)


def test_empty_and_garbage_files(uva):
    root, _ = uva
    path = root / "npy" / "002_spontaneous_smile_1.mp4.npy"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        load_smile_dataset("UvA-NEMO", root, cache_dir=False)
    path.write_bytes(b"not an npy file at all")
    with pytest.raises(DataError, match="not a readable .npy"):
        load_smile_dataset("UvA-NEMO", root, cache_dir=False)


def test_nan_values_are_reported_before_training(uva, tmp_path):
    root, _ = uva
    seq = face_sequence(24)
    seq[5, 10, 0] = np.nan
    np.save(root / "npy" / "003_deliberate_smile_2.mp4.npy", seq)
    ds = load_smile_dataset("UvA-NEMO", root, cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match="NaN or inf in 1 frame.*first at frame 5") as err:
        ds.dmarker_table("paper", "video", progress=False)
    assert "003_deliberate_smile_2.mp4.npy" in str(err.value)
    assert not list((tmp_path / "cache").rglob("*.npy"))  # nothing partial cached
    with pytest.raises(DataError, match="NaN or inf"):
        ds.array("003_deliberate_smile_2", check_values=True)


def test_fold_file_naming_a_missing_array(uva):
    root, _ = uva
    (root / "npy" / "005_deliberate_smile_1.mp4.npy").unlink()
    with pytest.raises(DataError, match="names video '005_deliberate_smile_1'") as err:
        load_smile_dataset("UvA-NEMO", root, cache_dir=False)
    assert "labels/" in str(err.value) and "does not exist" in str(err.value)


def test_array_without_fold_entry_fails_unless_ignored(uva):
    root, _ = uva
    np.save(root / "npy" / "099_deliberate_smile_1.mp4.npy", face_sequence(20))
    with pytest.raises(DataError, match="no label/fold entry.*099_deliberate_smile_1.mp4.npy"):
        load_smile_dataset("UvA-NEMO", root, cache_dir=False)
    with pytest.warns(UserWarning, match="099_deliberate_smile_1.mp4.npy"):
        ds = load_smile_dataset("UvA-NEMO", root, cache_dir=False, unlisted_arrays="ignore")
    assert "099_deliberate_smile_1" not in ds.videos and ds.problems


def test_published_folds_with_subject_overlap_are_rejected(tmp_path):
    videos = uva_videos(4)
    names = sorted(videos)
    leaky = [(names[1:], names[:1])]  # subject 001 in both train and test
    write_dataset(tmp_path / "u", "UvA-NEMO", videos, frames=20, suffix=".mp4.npy", folds=leaky)
    with pytest.raises(SubjectLeakageError, match="001"):
        load_smile_dataset("UvA-NEMO", tmp_path / "u", cache_dir=False)


def test_generated_folds_without_fold_files(tmp_path):
    videos = {f"{c}_{s}-{i}": int(c == "spontaneous") for s in ("ann", "bo", "cy", "di")
              for c in ("posed", "spontaneous") for i in (1, 2)}
    write_dataset(tmp_path / "SPOS", "SPOS", videos, frames=20)
    with pytest.warns(UserWarning, match="only 4 subjects"):
        ds = load_smile_dataset("SPOS", tmp_path / "SPOS", cache_dir=False)
    assert ds.labels == videos  # labels from the names
    assert len(ds.folds) == 4 and all(f.source == "generated" for f in ds.folds)  # 7 asked, 4 subjects
    assert [len({ds.subjects[v] for v in f.test}) for f in ds.folds] == [1, 1, 1, 1]


def test_mmi_needs_labels_and_uses_subjects_csv(tmp_path):
    videos = {str(1000 + i): i % 2 for i in range(12)}
    write_dataset(tmp_path / "MMI", "MMI", videos, frames=20)
    with pytest.raises(DataError, match="cannot be derived"):
        load_smile_dataset("MMI", tmp_path / "MMI", cache_dir=False)
    (tmp_path / "MMI" / "labels.json").write_text(json.dumps(videos))
    (tmp_path / "MMI" / "subjects.csv").write_text(
        "video,subject\n" + "".join(f"{v},S{int(v) % 4}\n" for v in videos))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a subject table means no warning
        ds = load_smile_dataset("MMI", tmp_path / "MMI", cache_dir=False, n_folds=3)
    assert len(ds.folds) == 3
    for f in ds.folds:
        assert not {ds.subjects[v] for v in f.train} & {ds.subjects[v] for v in f.test}


def test_missing_npy_folder(tmp_path):
    with pytest.raises(DataError, match="landmark folder not found"):
        load_smile_dataset("BBC", tmp_path)


def test_smile_clips_items_and_determinism(uva, tmp_path):
    root, _ = uva
    ds = load_smile_dataset("UvA-NEMO", root, cache_dir=tmp_path / "cache")
    fold = ds.folds[0]
    train = SmileClips(ds, fold.train, "train", seed=3, dmarker_variant="released", dmarker_scope="clip")
    scaler = DMarkerScaler().fit(train.dmarker_features())
    train.scaler = scaler
    assert train.dmarker_features().shape == (len(fold.train) * 9, 225)  # 24 - 16 + 1 windows each
    item = train[2]
    assert item["clip"].shape == (16, 478, 3) and item["clip"].dtype == torch.float32
    assert item["dmarker"].shape == (225,) and item["label"].dtype == torch.float32 and item["index"] == 2
    # the D-Marker row belongs to the drawn window
    start = int(train.starts(2)[0])
    raw = ds.array(fold.train[2])
    expect = video_dmarkers(raw[start:start + 16], "released", scope="video")[0]
    np.testing.assert_allclose(item["dmarker"].numpy(), scaler.transform(expect), rtol=1e-5, atol=1e-5)
    again = SmileClips(ds, fold.train, "train", seed=3, dmarker_variant="released", dmarker_scope="clip",
                       scaler=scaler)
    assert torch.equal(again[2]["clip"], item["clip"])
    starts_by_epoch = set()
    for epoch in range(30):
        train.set_epoch(epoch)
        starts_by_epoch.add(int(train.starts(2)[0]))
    assert starts_by_epoch == set(range(9))

    ev = SmileClips(ds, fold.test, "eval", seed=3, dmarker_variant="paper", scaler=None)
    e = ev[0]
    assert e["clip"].shape == (5, 16, 478, 3) and e["dmarker"].shape == (5, 225)
    assert torch.equal(e["dmarker"][0], e["dmarker"][4])  # video scope: one D-Marker for all windows
    loader = torch.utils.data.DataLoader(ev, batch_size=4)
    batch = next(iter(loader))
    assert batch["clip"].shape == (4, 5, 16, 478, 3) and batch["label"].shape == (4,)


def test_dmarker_cache_is_reused_from_disk(uva, tmp_path, monkeypatch):
    root, _ = uva
    ds = load_smile_dataset("UvA-NEMO", root, cache_dir=tmp_path / "cache")
    table = ds.dmarker_table("paper", "clip", progress=False)
    assert len(list((tmp_path / "cache" / "dmarker").rglob("paper-clip-L16*.npy"))) == 1
    fresh = load_smile_dataset("UvA-NEMO", root, cache_dir=tmp_path / "cache")
    import common.smile.dmarker_table as table_module

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(table_module, "video_dmarkers", fail)
    cached = fresh.dmarker_table("paper", "clip", progress=False)
    np.testing.assert_array_equal(np.asarray(cached.features), table.features)
    assert cached.offsets == table.offsets
    # a changed array changes the fingerprint, so the stale cache is not used
    np.save(root / "npy" / "001_deliberate_smile_1.mp4.npy", face_sequence(30, seed=9))
    changed = load_smile_dataset("UvA-NEMO", root, cache_dir=tmp_path / "cache")
    assert changed.fingerprint() != fresh.fingerprint()
    with pytest.raises(AssertionError, match="recomputed"):
        changed.dmarker_table("paper", "clip", progress=False)


def test_smile_clips_pickle_cheaply_for_spawned_workers(uva, tmp_path):
    import pickle

    root, _ = uva
    ds = load_smile_dataset("UvA-NEMO", root, cache_dir=tmp_path / "cache")
    clips = SmileClips(ds, ds.folds[0].test, "eval", dmarker_variant="released", dmarker_scope="clip")
    blob = pickle.dumps(clips)
    assert len(blob) < clips.table.features.nbytes  # the cached table is re-mapped, not copied
    copy = pickle.loads(blob)
    assert torch.equal(copy[1]["dmarker"], clips[1]["dmarker"]) and torch.equal(copy[1]["clip"], clips[1]["clip"])


def test_smile_clips_rejects_unknown_videos(uva):
    root, _ = uva
    ds = load_smile_dataset("UvA-NEMO", root, cache_dir=False)
    with pytest.raises(DataError, match="not in the dataset"):
        SmileClips(ds, ["nope"], "train")
    with pytest.raises(ValueError, match="mode"):
        SmileClips(ds, ds.videos, "test")


def test_handcrafted_baseline_separates_a_learnable_signal(tmp_path):
    videos = uva_videos(10)
    write_dataset(tmp_path / "u", "UvA-NEMO", videos, frames=24, suffix=".mp4.npy")
    ds = load_smile_dataset("UvA-NEMO", tmp_path / "u", cache_dir=False, n_folds=2)
    for model in ("svm", "logreg"):
        out = evaluate_handcrafted(ds, ds.folds[0], model=model, dmarker_variant="paper", return_predictions=True)
        assert set(out) >= {"accuracy", "balanced_accuracy", "f1", "roc_auc", "n_train", "n_test"}
        assert out["n_test"] == len(ds.folds[0].test) == len(out["y_pred"])
        # the synthetic spontaneous smiles are wider (helper: amplitude grows with the label): learnable
        assert out["accuracy"] >= 0.9 and out["roc_auc"] >= 0.9
    clip = evaluate_handcrafted(ds, ds.folds[1], model="logreg", dmarker_variant="released", dmarker_scope="clip")
    assert 0.0 <= clip["accuracy"] <= 1.0
    with pytest.raises(ValueError, match="unknown hand-crafted model"):
        evaluate_handcrafted(ds, ds.folds[0], model="forest")
    with pytest.warns(UserWarning, match="only 10 subjects"):
        assert len(load_smile_dataset("UvA-NEMO", tmp_path / "u", cache_dir=False, n_folds=30).folds) == 10

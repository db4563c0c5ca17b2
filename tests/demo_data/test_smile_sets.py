"""Structure of the generated smile landmark sets, the real loader on them, and the D-Marker baseline's accuracy."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from datasets.demo.smile import SMILE_SPECS, SPOS_SUBJECTS

NAME_PATTERNS = {
    "UvA-NEMO": r"\d{3}_(spontaneous|deliberate)_smile_\d+",
    "MMI": r"\d+",
    "SPOS": r"(spontaneous|posed)_(tomas|nelly|riku|yi|ying|rui|xiaopeng)-\d+",
    "BBC": r"(Genuine|posed)_smilecontent q\d{2}",
}
SMILE_NAMES = tuple(NAME_PATTERNS)


def _folds(root):
    folds = {}
    for k_dir in (root / "labels").iterdir():
        folds[int(k_dir.name)] = {s: json.loads((k_dir / f"{s}.json").read_text()) for s in ("train", "test")}
    return [folds[k] for k in sorted(folds)]


@pytest.mark.parametrize("name", SMILE_NAMES)
def test_smile_layout_names_and_arrays(demo_root, name):
    root = demo_root / name
    spec = SMILE_SPECS[name]
    assert "not the real" in (root / "SYNTHETIC.md").read_text()
    folds = _folds(root)
    assert len(folds) == spec.n_folds
    labels = {}
    for f in folds:
        assert not set(f["train"]) & set(f["test"])
        labels.update(f["train"])
        labels.update(f["test"])
    for f in folds:  # every fold covers every video
        assert set(f["train"]) | set(f["test"]) == set(labels)
    assert set(labels.values()) == {0, 1}
    for video, label in labels.items():
        assert re.fullmatch(NAME_PATTERNS[name], video), video
        if name != "MMI":  # the class is in the name
            assert ("spontaneous" in video or "Genuine" in video) == bool(label), video
        suffix = ".mp4.npy" if name == "UvA-NEMO" else ".npy"
        arr = np.load(root / "npy" / f"{video}{suffix}", mmap_mode="r")
        side = json.loads((root / "npy" / f"{video}.json").read_text())
        assert arr.dtype == np.float32 and arr.ndim == 3 and arr.shape[1:] == (478, 3)
        assert side["n_frames"] == arr.shape[0] and side["synthetic"] is True
        assert (side["fps"] == 50) if name == "UvA-NEMO" else (25 <= side["fps"] <= 30)
        assert 2.0 - 1e-6 <= arr.shape[0] / side["fps"] <= 5.0 + 1e-6
        assert np.isfinite(arr).all()
        # MediaPipe normalised coordinates: the face is in the frame (the chin may leave it a little, as in real
        # UvA-NEMO, whose published max y is 1.015)
        assert -0.05 < arr[..., :2].min() and arr[..., :2].max() < 1.05


def test_smile_sizes_and_class_balance(demo_root):
    counts = {}
    for name in SMILE_NAMES:
        f = _folds(demo_root / name)[0]
        labels = {**f["train"], **f["test"]}
        counts[name] = (len(labels), sum(labels.values()) / len(labels))
    assert 120 <= counts["UvA-NEMO"][0] <= 160 and 0.4 <= counts["UvA-NEMO"][1] <= 0.6
    assert 45 <= counts["MMI"][0] <= 80 and counts["MMI"][1] >= 0.65
    assert 40 <= counts["SPOS"][0] <= 65 and counts["SPOS"][1] >= 0.65
    assert counts["BBC"] == (20, 0.5)


def test_smile_subject_structure(demo_root):
    # SPOS: leave-one-subject-out over the 7 real subject names, in the published order
    spos = _folds(demo_root / "SPOS")
    for f, subject in zip(spos, SPOS_SUBJECTS):
        assert {v.split("_", 1)[1].rsplit("-", 1)[0] for v in f["test"]} == {subject}
    # BBC: one video per subject (qNN), 2 test videos per fold
    bbc = _folds(demo_root / "BBC")
    assert all(len(f["test"]) == 2 for f in bbc)
    numbers = [v.split(" q")[1] for v in {**bbc[0]["train"], **bbc[0]["test"]}]
    assert sorted(numbers) == [f"{i:02d}" for i in range(1, 21)]
    # UvA: subject-independent by the NNN_ prefix
    for f in _folds(demo_root / "UvA-NEMO"):
        assert not {v[:3] for v in f["train"]} & {v[:3] for v in f["test"]}
    # MMI: subjects.csv covers every session, folds are subject-independent through it
    with open(demo_root / "MMI" / "subjects.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    subject = {r["video"]: r["subject"] for r in rows}
    for f in _folds(demo_root / "MMI"):
        assert set(f["train"]) | set(f["test"]) == set(subject)
        assert not {subject[v] for v in f["train"]} & {subject[v] for v in f["test"]}


@pytest.mark.parametrize("name", SMILE_NAMES)
def test_real_smile_loader_reads_demo_set(demo_root, name):
    data = pytest.importorskip("common.smile.data")
    ds = data.load_smile_dataset(name, demo_root / name, cache_dir=False, strict=True)
    assert len(ds.folds) == SMILE_SPECS[name].n_folds
    assert [f.k for f in ds.folds] == list(range(1, len(ds.folds) + 1))
    video = ds.videos[0]
    assert ds.array(video).shape[1:] == (478, 3)
    assert ds.fps(video) == json.loads((demo_root / name / "npy" / f"{video}.json").read_text())["fps"]
    assert len(set(ds.subjects.values())) == SMILE_SPECS[name].n_subjects


@pytest.mark.parametrize("name", SMILE_NAMES)
def test_dmarker_baseline_between_chance_and_perfect(demo_root, name):
    """The hand-crafted D-Marker + linear SVM baseline learns the demo task but does not solve it."""
    data = pytest.importorskip("common.smile.data")
    handcrafted = pytest.importorskip("common.smile.handcrafted")
    from sklearn.metrics import balanced_accuracy_score

    ds = data.load_smile_dataset(name, demo_root / name, cache_dir=False)
    y_true, y_pred = [], []
    for fold in ds.folds:
        out = handcrafted.evaluate_handcrafted(ds, fold, model="svm", dmarker_variant="paper", seed=0,
                                               return_predictions=True)
        y_true += list(out["y_true"])
        y_pred += list(out["y_pred"])
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    accuracy = float(np.mean(y_true == y_pred))
    balanced = float(balanced_accuracy_score(y_true, y_pred))
    assert balanced >= 0.6, f"{name}: balanced accuracy {balanced:.3f} is near chance (0.5)"
    assert accuracy < 0.97, f"{name}: accuracy {accuracy:.3f}: the demo task is trivially separable"

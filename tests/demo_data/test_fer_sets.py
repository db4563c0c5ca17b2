"""Structure of the generated expression sets in the four official formats, and the real loaders on them."""
from __future__ import annotations

import csv
import re

import cv2
import numpy as np
import pytest

FERPLUS_HEADER = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                  "contempt", "unknown", "NF"]


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_fer2013_csv(demo_root):
    rows = _rows(demo_root / "FER2013" / "fer2013.csv")
    assert rows[0] == ["emotion", "pixels", "Usage"]
    usages = [r[2] for r in rows[1:]]
    # Training rows first, then PublicTest, then PrivateTest, like the real file
    assert usages == sorted(usages, key=["Training", "PublicTest", "PrivateTest"].index)
    assert 1000 <= usages.count("Training") <= 1600 and usages.count("PublicTest") > 0 and usages.count("PrivateTest") > 0
    codes = np.array([int(r[0]) for r in rows[1:]])
    train_counts = np.bincount(codes[: usages.count("Training")], minlength=7)
    assert set(codes) == set(range(7))
    # imbalance like the real training set: Happy (3) most frequent, Disgust (1) rarest
    assert train_counts.argmax() == 3 and train_counts.argmin() == 1
    for r in rows[1:]:
        px = r[1].split(" ")
        assert len(px) == 48 * 48 and all(0 <= int(v) <= 255 for v in px[:50])
    assert "not the real" in (demo_root / "FER2013" / "SYNTHETIC.md").read_text()


def test_ferplus_votes(demo_root):
    new = _rows(demo_root / "FERPlus" / "fer2013new.csv")
    old = _rows(demo_root / "FERPlus" / "fer2013.csv")
    assert new[0] == FERPLUS_HEADER
    assert len(new) == len(old)
    assert (demo_root / "FERPlus" / "fer2013.csv").read_bytes() == (demo_root / "FER2013" / "fer2013.csv").read_bytes()
    votes = np.array([[int(v) for v in r[2:]] for r in new[1:]])
    assert (votes.sum(axis=1) == 10).all()
    for i, r in enumerate(new[1:]):
        assert r[0] == old[i + 1][2]  # same Usage, row by row
        assert r[1] in ("", f"fer{i:07d}.png")
    empty = np.array([r[1] == "" for r in new[1:]])
    assert empty.any() and (votes[empty, -1] == 10).all()  # excluded rows carry NF = 10
    top = votes[:, :8].max(axis=1)
    assert (top <= 5).any() and (top == 10).any()  # real disagreement, some unanimous rows
    argmax = votes.argmax(axis=1)
    assert (argmax == 9).sum() >= 2  # some NF majorities
    assert votes[:, 8].sum() > 0  # some unknown votes


def test_ferplus_label_modes_differ(demo_root):
    D = pytest.importorskip("common.fer.datasets")
    sizes = {m: len(D.load_fer_split("FERPlus", demo_root / "FERPlus", "train", label_mode=m))
             for m in ("majority", "probability", "crossentropy")}
    assert sizes["majority"] < sizes["crossentropy"], sizes
    soft = D.load_fer_split("FERPlus", demo_root / "FERPlus", "train", label_mode="crossentropy").soft_labels
    assert soft is not None and (soft.max(axis=1) < 1).any()


def test_rafdb_layout(demo_root):
    basic = demo_root / "RAF-DB" / "basic"
    lines = (basic / "EmoLabel" / "list_patition_label.txt").read_text().splitlines()
    names, labels = zip(*(line.split(" ") for line in lines))
    assert all(re.fullmatch(r"train_\d{5}\.jpg|test_\d{4}\.jpg", n) for n in names)
    assert {int(v) for v in labels} == set(range(1, 8))
    train = np.bincount([int(v) for n, v in zip(names, labels) if n.startswith("train")], minlength=8)
    assert train.argmax() == 4  # 4 = Happiness, the largest RAF-DB class
    for n in names[:20] + names[-5:]:
        img = cv2.imread(str(basic / "Image" / "aligned" / n.replace(".jpg", "_aligned.jpg")))
        assert img is not None and img.shape == (100, 100, 3)


def test_affectnet_both_releases(demo_root):
    root = demo_root / "AffectNet"
    for official in ("training", "validation"):
        rows = _rows(root / "Manually_Annotated_file_lists" / f"{official}.csv")
        assert rows[0] == ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                           "facial_landmarks", "expression", "valence", "arousal"]
        codes = [int(r[6]) for r in rows[1:]]
        assert set(codes) == set(range(11))  # 0..7 expressions plus 8 None, 9 Uncertain, 10 No-Face
        for r in rows[1:30]:
            img = cv2.imread(str(root / "Manually_Annotated_Images" / r[0]))
            assert img is not None
            x, y, w, h = (float(v) for v in r[1:5])
            assert 0 <= x and 0 <= y and x + w <= img.shape[1] and y + h <= img.shape[0]
            if r[5]:
                lm = np.array(r[5].split(";"), dtype=float).reshape(68, 2)
                inside = (lm[:, 0] >= x - 2) & (lm[:, 0] <= x + w + 2) & (lm[:, 1] >= y - 2) & (lm[:, 1] <= y + h + 2)
                assert inside.mean() > 0.9
                assert lm[36:48, 1].mean() < lm[48:68, 1].mean()  # eyes above the mouth
            if int(r[6]) <= 7:
                assert -1 <= float(r[7]) <= 1 and -1 <= float(r[8]) <= 1
    for folder in ("train_set", "val_set"):
        labels = sorted((root / folder / "annotations").glob("*_exp.npy"))
        codes = np.array([int(str(np.load(p))) for p in labels])
        assert set(codes) == set(range(8))
        img = cv2.imread(str(root / folder / "images" / labels[0].name.replace("_exp.npy", ".jpg")))
        assert img.shape == (224, 224, 3)
        counts = np.bincount(codes, minlength=8)
        if folder == "val_set":  # balanced, contempt one short (as 500/499 in the real release)
            assert len(set(counts[:7])) == 1 and counts[7] == counts[0] - 1
        else:
            assert counts.argmax() == 1  # Happiness dominates the real training set


@pytest.mark.parametrize("name, options", [
    ("FER2013", {}), ("FERPlus", {"label_mode": "majority"}), ("FERPlus", {"label_mode": "probability"}),
    ("RAF-DB", {}), ("AffectNet", {"release": "csv"}), ("AffectNet", {"release": "npy"}),
    ("AffectNet", {"release": "csv", "n_classes": 7}),
])
def test_real_fer_loaders_read_demo_sets(demo_root, name, options):
    D = pytest.importorskip("common.fer.datasets")
    for split in ("train", "val", "test"):
        s = D.load_fer_split(name, demo_root / name, split, **options)
        assert len(s.labels) > 0
        assert len(np.unique(s.labels)) == len(s.classes) or split != "test"
        img = np.asarray(s.images[0])
        assert img.dtype == np.uint8 and img.ndim == 3


def test_fer_sets_use_only_sharp_faces_of_many_people(demo_root):
    """The images come from sharp packaged faces only (no upscaled 25-px LFW crops), of at least 12 people."""
    from datasets.demo.faces import MIN_SHARP_IOD_PX, inter_ocular_px, real_face_photos
    from datasets.demo.fer import identity_pool

    photos = real_face_photos()
    assert len(photos) >= 100  # the smile sets' meshes still include LFW
    pool = [photos[i] for i in identity_pool(1)]
    assert all(not p.name.startswith("skimage/lfw") and inter_ocular_px(p) >= MIN_SHARP_IOD_PX for p in pool)
    people = {p.name.split("@")[0] for p in pool}  # frames of one video are one person
    assert len(people) >= 12 and "skimage/astronaut" in people

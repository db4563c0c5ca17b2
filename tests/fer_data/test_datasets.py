"""Every loader on tiny files written in the official formats, and the bad-input messages."""
import os

import numpy as np
import pytest

from common.fer import datasets as D
from common.fer import labels as L
from common.fer.datasets.split import stratified_split
from common.registry import UnknownNameError

from fer_writers import (AFFECTNET_HEADER, solid, write_affectnet_csv, write_affectnet_npy, write_fer2013,
                         write_ferplus, write_image, write_rafdb)


def test_registry_lists_the_four_datasets():
    assert D.FER_DATASETS.list() == ["AffectNet", "FER2013", "FERPlus", "RAF-DB"]
    with pytest.raises(UnknownNameError, match="RAF-DB"):
        D.load_fer_split("RAFDB", "/nowhere")


# ------------------------------------------------------------------------------------------------------ FER2013

def test_fer2013_splits_by_usage(tmp_path):
    rows = [(3, "Training"), (0, "PublicTest"), (6, "Training"), (5, "PrivateTest"), (1, "PublicTest")]
    pixels = write_fer2013(tmp_path / "fer2013.csv", rows)
    train = D.load_fer_split("FER2013", tmp_path, "train")
    val = D.load_fer_split("FER2013", tmp_path, "val")
    test = D.load_fer_split("FER2013", tmp_path, "test")
    assert train.labels.tolist() == [3, 6] and val.labels.tolist() == [0, 1] and test.labels.tolist() == [5]
    assert train.sources == ["fer2013.csv:row0", "fer2013.csv:row2"]
    img = train.images[1]
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    expected = np.array(pixels[2].split(), dtype=np.uint8).reshape(48, 48)  # row-major 48x48
    np.testing.assert_array_equal(img[:, :, 0], expected)
    np.testing.assert_array_equal(img[:, :, 2], expected)
    assert train.classes == L.FER2013_CLASSES and train.aligned
    assert train.report.kept == 2 and not train.report.skipped


@pytest.mark.parametrize("header", ["emotion,pixel,Usage", "label,pixels,Usage", "emotion,pixels"])
def test_fer2013_wrong_header_names_the_file(tmp_path, header):
    write_fer2013(tmp_path / "fer2013.csv", [(0, "Training")], header=header)
    with pytest.raises(D.FerDataError, match=r"fer2013\.csv: header .* is not the FER2013 header"):
        D.load_fer_split("FER2013", tmp_path, "train")


@pytest.mark.parametrize("pixels, message", [
    (" ".join(["7"] * 2303), "has 2303 values, expected 2304"),
    (" ".join(["7"] * 2305), "has 2305 values"),
    (" ".join(["7"] * 2303 + ["256"]), r"must lie in 0\.\.255"),
    (" ".join(["7"] * 2303 + ["-1"]), r"must lie in 0\.\.255"),
    (" ".join(["7"] * 2303 + ["1.5"]), "'1.5' is not an integer"),
])
def test_fer2013_bad_pixels_name_the_row(tmp_path, pixels, message):
    write_fer2013(tmp_path / "fer2013.csv", [(0, "Training"), (1, "Training")])
    lines = (tmp_path / "fer2013.csv").read_text().splitlines()
    lines[2] = f"1,{pixels},Training"
    (tmp_path / "fer2013.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(D.FerDataError, match=r"fer2013\.csv row 1 \(line 3\): .*" + message):
        D.load_fer_split("FER2013", tmp_path, "train")


@pytest.mark.parametrize("emotion, usage, message", [
    (7, "Training", "unknown class code 7"),
    ("x", "Training", "emotion 'x' is not an integer"),
    (0, "Test", "unknown Usage 'Test'"),
])
def test_fer2013_bad_codes_name_the_row(tmp_path, emotion, usage, message):
    write_fer2013(tmp_path / "fer2013.csv", [(0, "Training"), (emotion, usage)])
    with pytest.raises(D.FerDataError, match=r"row 1 \(line 3\): " + message):
        D.load_fer_split("FER2013", tmp_path, "train")


def test_missing_file_and_bad_split_and_options(tmp_path):
    with pytest.raises(D.FerDataError, match="file not found: .*fer2013.csv"):
        D.load_fer_split("FER2013", tmp_path, "train")
    write_fer2013(tmp_path / "fer2013.csv", [(0, "Training")])
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        D.load_fer_split("FER2013", tmp_path, "valid")
    with pytest.raises(TypeError, match="does not take label_mode"):
        D.load_fer_split("FER2013", tmp_path, "train", label_mode="majority")


# ------------------------------------------------------------------------------------------------------ FERPlus

FERPLUS_ROWS = [
    ("Training", "fer0000000.png", [6, 0, 1, 1, 0, 0, 0, 0, 2, 0]),   # majority neutral
    ("Training", "fer0000001.png", [4, 0, 0, 1, 3, 2, 0, 0, 0, 0]),   # no majority; crossentropy 4/7, 3/7
    ("Training", "", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),                # excluded by FER+ (no name)
    ("Training", "fer0000003.png", [0, 0, 0, 0, 0, 0, 0, 0, 2, 8]),   # NF
    ("Training", "fer0000004.png", [0, 0, 0, 0, 0, 0, 0, 9, 1, 0]),   # contempt
    ("PublicTest", "fer0000005.png", [4, 0, 0, 1, 3, 2, 0, 0, 0, 0]),  # no majority -> dropped in val
    ("PublicTest", "fer0000006.png", [0, 8, 2, 0, 0, 0, 0, 0, 0, 0]),  # happy
    ("PrivateTest", "fer0000007.png", [0, 0, 7, 3, 0, 0, 0, 0, 0, 0]),  # surprise
]


def _write_ferplus_csv(root):
    write_ferplus(root / "fer2013new.csv", FERPLUS_ROWS)
    return write_fer2013(root / "fer2013.csv", [(0, usage) for usage, _, _ in FERPLUS_ROWS])


def test_ferplus_csv_layout_majority(tmp_path):
    pixels = _write_ferplus_csv(tmp_path)
    train = D.load_fer_split("FERPlus", tmp_path, "train")
    assert train.labels.tolist() == [0, 7] and train.classes == L.FERPLUS_CLASSES and train.soft_labels is None
    assert train.report.rows_read == 5 and train.report.kept == 2
    assert train.report.skipped == {"no majority": 1, "no image name (excluded by FER+)": 1, "unknown/NF": 1}
    assert train.report.examples["unknown/NF"] == ["fer2013new.csv:row3"]
    np.testing.assert_array_equal(train.images[1][:, :, 0], np.array(pixels[4].split(), np.uint8).reshape(48, 48))
    val = D.load_fer_split("FERPlus", tmp_path, "val")
    assert val.labels.tolist() == [1] and val.report.skipped == {"no majority": 1}
    assert D.load_fer_split("FERPlus", tmp_path, "test").labels.tolist() == [2]


def test_ferplus_soft_modes_train_only(tmp_path):
    _write_ferplus_csv(tmp_path)
    ce = D.load_fer_split("FERPlus", tmp_path, "train", label_mode="crossentropy")
    assert len(ce) == 3 and ce.label_mode == "crossentropy"
    np.testing.assert_allclose(ce.soft_labels[1], [4 / 7, 0, 0, 0, 3 / 7, 0, 0, 0], atol=1e-6)
    assert ce.labels.tolist() == [0, 0, 7]
    val = D.load_fer_split("FERPlus", tmp_path, "val", label_mode="crossentropy")
    assert val.label_mode == "majority" and val.soft_labels is None
    assert any("majority" in n for n in val.report.notes)
    prob = D.load_fer_split("FERPlus", tmp_path, "train", label_mode="probability")
    assert prob.label_mode == "probability"
    with pytest.raises(ValueError, match="unknown FER\\+ label mode 'soft'"):
        D.load_fer_split("FERPlus", tmp_path, "train", label_mode="soft")


def test_ferplus_folder_layout(tmp_path):
    rows = [r for r in FERPLUS_ROWS if r[1]]
    for usage, folder in (("Training", "FER2013Train"), ("PublicTest", "FER2013Valid"),
                          ("PrivateTest", "FER2013Test")):
        d = tmp_path / "data" / folder
        d.mkdir(parents=True)
        lines = []
        for k, (u, name, votes) in enumerate(rows):
            if u == usage:
                write_image(d / name, solid(k, 48))
                lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
        (d / "label.csv").write_text("\n".join(lines) + "\n")
    train = D.load_fer_split("FERPlus", tmp_path, "train")
    assert train.labels.tolist() == [0, 7] and train.sources[0].endswith("FER2013Train/fer0000000.png")
    assert train.images[0].shape == (48, 48, 3)
    assert train.report.skipped == {"no majority": 1, "unknown/NF": 1}
    assert D.load_fer_split("FERPlus", tmp_path / "data", "val").labels.tolist() == [1]
    # a PNG listed in label.csv but absent
    (tmp_path / "data" / "FER2013Test" / "fer0000007.png").unlink()
    with pytest.raises(D.FerDataError, match="(?s)missing.*fer0000007.png"):
        D.load_fer_split("FERPlus", tmp_path, "test")


def test_ferplus_bad_input(tmp_path):
    _write_ferplus_csv(tmp_path)
    text = (tmp_path / "fer2013new.csv").read_text().replace("Image name", "Image")
    (tmp_path / "fer2013new.csv").write_text(text)
    with pytest.raises(D.FerDataError, match=r"fer2013new\.csv: header .* is not the FER\+ header"):
        D.load_fer_split("FERPlus", tmp_path, "train")
    _write_ferplus_csv(tmp_path)
    lines = (tmp_path / "fer2013new.csv").read_text().splitlines()
    lines[2] = lines[2].replace(",4,", ",x,", 1)
    (tmp_path / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(D.FerDataError, match=r"row 1 \(line 3\): vote count 'x' is not an integer"):
        D.load_fer_split("FERPlus", tmp_path, "train")
    _write_ferplus_csv(tmp_path)
    write_fer2013(tmp_path / "fer2013.csv", [(0, "Training")] * 3)
    with pytest.raises(D.FerDataError, match="has 8 rows but .*fer2013.csv has 3"):
        D.load_fer_split("FERPlus", tmp_path, "train")
    write_fer2013(tmp_path / "fer2013.csv", [(0, "PublicTest")] * 8)
    with pytest.raises(D.FerDataError, match="row 0: Usage 'Training' differs"):
        D.load_fer_split("FERPlus", tmp_path, "train")
    with pytest.raises(D.FerDataError, match="no FERPlus data under"):
        D.load_fer_split("FERPlus", tmp_path / "empty", "train")


# ------------------------------------------------------------------------------------------------------- RAF-DB

def _raf_entries(n_train=40, n_test=6):
    train = [(f"train_{i + 1:05d}.jpg", 1 + i % 7) for i in range(n_train)]
    test = [(f"test_{i + 1:04d}.jpg", 1 + (i * 3) % 7) for i in range(n_test)]
    return train + test


def test_rafdb_labels_and_carved_validation(tmp_path):
    entries = _raf_entries()
    write_rafdb(tmp_path, entries)
    test = D.load_fer_split("RAF-DB", tmp_path, "test")
    assert test.labels.tolist() == [c - 1 for _, c in entries[40:]]
    assert test.sources[0].endswith("basic/Image/aligned/test_0001_aligned.jpg") and test.aligned
    train = D.load_fer_split("RAF-DB", tmp_path, "train", val_fraction=0.25, split_seed=3)
    val = D.load_fer_split("RAF-DB", tmp_path, "val", val_fraction=0.25, split_seed=3)
    assert len(train) + len(val) == 40 and not set(train.sources) & set(val.sources)
    assert all("train_" in s for s in val.sources)  # never the test set
    # stratified: every class appears in both parts (each class has 5-6 items)
    assert set(val.labels.tolist()) == set(range(7)) and set(train.labels.tolist()) == set(range(7))
    assert train.report.kept == len(train) and val.report.kept == len(val)
    assert any("split_seed=3" in n for n in val.report.notes)
    # same seed, same split; other seed, other split
    again = D.load_fer_split("RAF-DB", tmp_path / "basic", "val", val_fraction=0.25, split_seed=3)
    assert again.sources == val.sources
    other = D.load_fer_split("RAF-DB", tmp_path, "val", val_fraction=0.25, split_seed=4)
    assert other.sources != val.sources
    # the image is decoded RGB with the colour that was written for it
    k = [name for name, _ in entries].index("test_0002.jpg")
    assert np.abs(test.images[1].astype(int) - solid(10 * k)).max() <= 3


@pytest.mark.parametrize("line, message", [
    ("train_00001.jpg 8", "unknown class code 8"),
    ("train_00001.jpg 0", "unknown class code 0"),
    ("train_00001.jpg", "expected '<name>.jpg <label>'"),
    ("image_00001.jpg 3", "image name .image_00001.jpg. does not look like"),
])
def test_rafdb_bad_partition_lines(tmp_path, line, message):
    write_rafdb(tmp_path, _raf_entries(4, 1))
    p = tmp_path / "basic" / "EmoLabel" / "list_patition_label.txt"
    p.write_text(p.read_text() + line + "\n")
    with pytest.raises(D.FerDataError, match=r"list_patition_label\.txt line 6: " + message):
        D.load_fer_split("RAF-DB", tmp_path, "test")


def test_rafdb_missing_and_unreadable_images(tmp_path):
    write_rafdb(tmp_path, _raf_entries(8, 2))
    aligned = tmp_path / "basic" / "Image" / "aligned"
    (aligned / "test_0002_aligned.jpg").unlink()
    with pytest.raises(D.FerDataError, match="(?s)1 of 2 RAF-DB test .*missing.*test_0002_aligned.jpg"):
        D.load_fer_split("RAF-DB", tmp_path, "test")
    # a damaged image stops the load of its split, not the first read of that image (maybe hours later)
    (aligned / "test_0002_aligned.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(D.FerDataError, match="(?s)1 of 2 RAF-DB test .*not images.*test_0002_aligned.jpg"):
        D.load_fer_split("RAF-DB", tmp_path, "test")
    # load_fer_splits checks every split before returning any: the damaged test image stops the train request too
    with pytest.raises(D.FerDataError, match="test_0002_aligned.jpg"):
        D.load_fer_splits("RAF-DB", tmp_path, ("train", "val", "test"))
    # a file that starts like a JPEG but is cut short still fails, naming the file, when decoded
    (aligned / "test_0002_aligned.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    split = D.load_fer_split("RAF-DB", tmp_path, "test")
    with pytest.raises(D.FerDataError, match="cannot decode image file .*test_0002_aligned.jpg"):
        split.images[1]


def test_empty_splits_are_rejected_naming_the_file(tmp_path):
    (tmp_path / "fer2013.csv").write_text("emotion,pixels,Usage\n")  # header only
    with pytest.raises(D.FerDataError, match=r"fer2013\.csv: no rows with Usage 'Training'"):
        D.load_fer_split("FER2013", tmp_path, "train")
    write_fer2013(tmp_path / "fer2013.csv", [(0, "Training"), (1, "PublicTest")])  # no PrivateTest rows
    with pytest.raises(D.FerDataError, match=r"fer2013\.csv: no rows with Usage 'PrivateTest'.*test split"):
        D.load_fer_split("FER2013", tmp_path, "test")
    folder = tmp_path / "ferplus" / "data" / "FER2013Train"
    folder.mkdir(parents=True)
    (folder / "label.csv").write_text("")  # an empty FER+ label.csv
    with pytest.raises(D.FerDataError, match=r"FER2013Train/label\.csv: no rows"):
        D.load_fer_split("FERPlus", tmp_path / "ferplus", "train")
    # rows that the protocol skips entirely (here: every image NF) also leave an empty split, which is refused
    write_image(folder / "fer0000000.png", solid(3, 48))
    (folder / "label.csv").write_text('fer0000000.png,"(0, 0, 48, 48)",0,0,0,0,0,0,0,0,2,8\n')
    with pytest.raises(D.FerDataError, match="FERPlus train split under .* has no usable item.*unknown/NF"):
        D.load_fer_split("FERPlus", tmp_path / "ferplus", "train")
    write_rafdb(tmp_path / "raf", _raf_entries(4, 0))
    with pytest.raises(D.FerDataError, match=r"list_patition_label\.txt: no test_\* images"):
        D.load_fer_split("RAF-DB", tmp_path / "raf", "test")


def test_content_digest_follows_file_bytes_and_pixels(tmp_path):
    from common.provenance import fingerprint_splits

    write_rafdb(tmp_path, _raf_entries(8, 2))
    first = fingerprint_splits({"test": D.load_fer_split("RAF-DB", tmp_path, "test")})
    image = tmp_path / "basic" / "Image" / "aligned" / "test_0002_aligned.jpg"
    data = bytearray(image.read_bytes())
    stat = image.stat()
    data[len(data) // 2] ^= 0xFF  # one byte in the middle; same size, mtime put back
    image.write_bytes(bytes(data))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint_splits({"test": D.load_fer_split("RAF-DB", tmp_path, "test")}) != first
    rows = [(3, "Training"), (0, "Training")]
    write_fer2013(tmp_path / "fer" / "fer2013.csv", rows, seed=0)
    a = fingerprint_splits({"train": D.load_fer_split("FER2013", tmp_path / "fer", "train")})
    write_fer2013(tmp_path / "fer" / "fer2013.csv", rows, seed=1)  # same labels and sources, other pixels
    assert fingerprint_splits({"train": D.load_fer_split("FER2013", tmp_path / "fer", "train")}) != a


# ---------------------------------------------------------------------------------------------------- AffectNet

AFFECTNET_ROWS = [(f"{k % 3}/img{k:03d}.jpg", (8, 4, 40, 44), k % 8) for k in range(32)] + [
    ("0/none.jpg", (8, 4, 40, 44), 8), ("1/uncertain.jpg", (8, 4, 40, 44), 9), ("2/noface.jpg", (8, 4, 40, 44), 10),
    ("0/negative.jpg", (8, 4, -1, 44), 3)]


def test_affectnet_csv_release(tmp_path):
    write_affectnet_csv(tmp_path, "training", AFFECTNET_ROWS)
    write_affectnet_csv(tmp_path, "validation", AFFECTNET_ROWS[:16])
    full_skips = {"code 8 (None): not an expression": 1, "code 9 (Uncertain): not an expression": 1,
                  "code 10 (No-Face): not an expression": 1, "negative face width/height": 1}
    test = D.load_fer_split("AffectNet", tmp_path, "test")
    assert test.labels.tolist() == [k % 8 for k in range(16)] and test.classes == L.AFFECTNET_CLASSES_8
    assert not test.aligned and any("official validation set" in n for n in test.report.notes)
    img = test.images[0]
    assert img.shape == (44, 40, 3)  # cropped to the box (x=8, y=4, w=40, h=44)
    assert abs(int(img[0, 0, 0]) - 8) <= 3 and abs(int(img[0, 0, 1]) - 4) <= 3  # x / y ramps start at the box
    np.testing.assert_allclose(test.landmarks[0][36], (0.3 * 40, 0.4 * 44), atol=0.01)  # in crop coordinates
    train = D.load_fer_split("AffectNet", tmp_path, "train", val_fraction=0.25)
    val = D.load_fer_split("AffectNet", tmp_path, "val", val_fraction=0.25)
    assert len(train) + len(val) == 32 and set(val.labels.tolist()) == set(range(8))
    for reason, n in full_skips.items():
        assert train.report.skipped[reason] == n and train.report.examples[reason]
    seven = D.load_fer_split("AffectNet", tmp_path, "test", n_classes=7)
    assert seven.classes == L.AFFECTNET_CLASSES_7 and 7 not in seven.labels
    assert seven.report.skipped == {"code 7 (Contempt): not in the 7-class protocol": 2}


def test_affectnet_npy_release_and_auto_choice(tmp_path):
    items = [(f"{k}", k % 8) for k in range(24)] + [("99", 8), ("100", 10)]
    write_affectnet_npy(tmp_path, "train_set", items)
    write_affectnet_npy(tmp_path, "val_set", items[:10], as_string=False)
    test = D.load_fer_split("AffectNet", tmp_path, "test")
    assert len(test) == 10 and test.aligned and sorted(test.labels.tolist()) == sorted(k % 8 for k in range(10))
    train = D.load_fer_split("AffectNet", tmp_path, "train")
    assert train.report.skipped["code 8 (None): not an expression"] == 1
    assert train.report.skipped["code 10 (No-Face): not an expression"] == 1
    # both releases side by side: auto picks the csv one, release= picks explicitly
    write_affectnet_csv(tmp_path, "validation", AFFECTNET_ROWS[:5])
    assert len(D.load_fer_split("AffectNet", tmp_path, "test")) == 5
    assert len(D.load_fer_split("AffectNet", tmp_path, "test", release="npy")) == 10


def test_affectnet_bad_input(tmp_path):
    write_affectnet_csv(tmp_path, "validation", AFFECTNET_ROWS[:3] + [("0/x.jpg", (1, 1, 10, 10), 11)])
    with pytest.raises(D.FerDataError, match=r"validation\.csv row 3 \(line 5\): unknown class code 11"):
        D.load_fer_split("AffectNet", tmp_path, "test")
    bad_header = AFFECTNET_HEADER.replace("expression", "emo")
    write_affectnet_csv(tmp_path, "validation", AFFECTNET_ROWS[:3], header=bad_header)
    with pytest.raises(D.FerDataError, match="header .* is not the AffectNet header"):
        D.load_fer_split("AffectNet", tmp_path, "test")
    write_affectnet_csv(tmp_path, "validation", AFFECTNET_ROWS[:3])
    (tmp_path / "Manually_Annotated_Images" / "1" / "img001.jpg").unlink()
    with pytest.raises(D.FerDataError, match="(?s)missing.*img001.jpg"):
        D.load_fer_split("AffectNet", tmp_path, "test")
    lines = (tmp_path / "Manually_Annotated_file_lists" / "validation.csv").read_text().splitlines()
    fields = lines[1].split(",")
    fields[5] = "1;2;3"
    lines[1] = ",".join(fields)
    (tmp_path / "Manually_Annotated_file_lists" / "validation.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(D.FerDataError, match="row 0 .*facial_landmarks has 3 values, expected 136"):
        D.load_fer_split("AffectNet", tmp_path, "test")
    with pytest.raises(D.FerDataError, match="no AffectNet release under"):
        D.load_fer_split("AffectNet", tmp_path / "nothing", "test")
    write_affectnet_npy(tmp_path / "npy", "val_set", [("1", 3)])
    np.save(tmp_path / "npy" / "val_set" / "annotations" / "1_exp.npy", np.array("happy"))
    with pytest.raises(D.FerDataError, match="1_exp.npy: not a readable AffectNet expression label"):
        D.load_fer_split("AffectNet", tmp_path / "npy", "test")


# ------------------------------------------------------------------------------------------------ cross-dataset

def test_to_common7_maps_and_counts_contempt(tmp_path):
    write_affectnet_npy(tmp_path, "val_set", [(f"{k}", k % 8) for k in range(16)])
    s = D.load_fer_split("AffectNet", tmp_path, "test")
    c7 = s.to_common7()
    assert c7.classes == L.COMMON7 and len(c7) == 14
    assert c7.report.skipped["contempt: no counterpart in the common 7 classes"] == 2
    assert c7.report.kept == len(c7)
    by_source = dict(zip(s.sources, s.labels))
    for src, lab in zip(c7.sources, c7.labels):
        assert L.COMMON7[lab] == L.AFFECTNET_CLASSES_8[by_source[src]]
    write_rafdb(tmp_path / "raf", _raf_entries(7, 7))
    raf = D.load_fer_split("RAF-DB", tmp_path / "raf", "test").to_common7()
    assert [L.COMMON7[k] for k in raf.labels] == [L.RAFDB_CLASSES[(i * 3) % 7] for i in range(7)]


def test_stratified_split_properties():
    labels = np.repeat(np.arange(4), [10, 5, 2, 1])
    tr, va = stratified_split(labels, 0.2, seed=0)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(labels)
    assert np.bincount(labels[va], minlength=4).tolist() == [2, 1, 1, 0]  # a singleton class stays in train
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(labels, 1.0, 0)

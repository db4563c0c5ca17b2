"""Published folds load as they are; generated folds are stratified, deterministic and subject-independent."""
import json
import warnings

import numpy as np
import pytest

from common.paths import SHARED_REALDATA_DIR
from common.smile.folds import (FoldError, SubjectLeakageError, assert_subject_independent, generate_folds,
                                labels_of_folds, load_folds, read_subjects_csv, released_order, spos_subject,
                                subject_independent_split, subjects_for, uva_subject, write_folds)

REAL = SHARED_REALDATA_DIR / "smile-folds"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real fold files not present at {REAL}")


@needs_real
@pytest.mark.parametrize("name, n_videos, n_pos, n_neg, k", [
    ("UvA-NEMO", 1240, 597, 643, 10), ("MMI", 184, 138, 46, 9), ("SPOS", 80, 66, 14, 7), ("BBC", 20, 10, 10, 10)])
def test_real_folds_counts_and_labels(name, n_videos, n_pos, n_neg, k):
    folds = load_folds(REAL / name)
    assert [f.k for f in folds] == list(range(1, k + 1))  # numeric order: fold 10 is last, not second
    labels = labels_of_folds(folds)
    assert len(labels) == n_videos and sum(labels.values()) == n_pos and n_videos - sum(labels.values()) == n_neg
    for f in folds:
        assert not set(f.train) & set(f.test)
        assert len(f.train) + len(f.test) == n_videos
    tests = sorted(set().union(*[f.test for f in folds]))
    assert len(tests) == n_videos  # every video is tested exactly once
    subjects = subjects_for(name, sorted(labels), warn=False)
    for f in folds:
        assert_subject_independent(f.train, f.test, subjects)


@needs_real
def test_real_fold_details():
    uva = load_folds(REAL / "UvA-NEMO")
    sizes = [len(f.test) for f in uva]
    assert min(sizes) == 114 and max(sizes) == 127 and uva[-1].k == 10
    assert "057_spontaneous_smile_3" in uva[0].test and uva[0].labels["057_spontaneous_smile_3"] == 1
    assert [len(f.test) for f in load_folds(REAL / "MMI")] == [38, 26, 25, 22, 20, 17, 13, 12, 11]
    spos = load_folds(REAL / "SPOS")
    assert [len(f.test) for f in spos] == [14, 9, 13, 8, 17, 7, 12]
    assert [len({spos_subject(v) for v in f.test}) for f in spos] == [1] * 7  # leave one subject out
    bbc = load_folds(REAL / "BBC")
    assert all(len(f.test) == 2 for f in bbc)
    assert "Genuine_smilecontent q01" in labels_of_folds(bbc)  # names with a space load unchanged


def test_numeric_order_and_ignored_junk(tmp_path):
    for k in (1, 2, 10):
        write_folds([_fold(k)], tmp_path)
    (tmp_path / ".DS_Store").write_text("junk")
    assert [f.k for f in load_folds(tmp_path)] == [1, 2, 10]
    assert [f.k for f in released_order(load_folds(tmp_path))] == [1, 10, 2]  # released "fold 1" is labels/10


def _fold(k):
    from common.smile.folds import Fold

    return Fold(k, [f"a{k}", f"b{k}"], [f"c{k}"], {f"a{k}": 0, f"b{k}": 1, f"c{k}": 1})


@pytest.mark.parametrize("content, message", [
    ("", "empty fold file"), ("{not json", "not valid JSON"), ('{"v": 2}', "labels must be 0"),
    ("[1, 2]", "JSON object"), ('{"v": true}', "labels must be 0")])
def test_bad_fold_files_name_the_file(tmp_path, content, message):
    write_folds([_fold(1)], tmp_path)
    bad = tmp_path / "1" / "test.json"
    bad.write_text(content)
    with pytest.raises(FoldError, match=message) as err:
        load_folds(tmp_path)
    assert str(bad) in str(err.value)


def test_fold_structure_errors(tmp_path):
    with pytest.raises(FoldError, match="not found"):
        load_folds(tmp_path / "nope")
    (tmp_path / "fold_a").mkdir()
    with pytest.raises(FoldError, match="named 1..K"):
        load_folds(tmp_path)
    (tmp_path / "fold_a").rmdir()
    write_folds([_fold(1)], tmp_path)
    (tmp_path / "1" / "test.json").write_text(json.dumps({"a1": 0}))
    with pytest.raises(FoldError, match="both train.json and test.json"):
        load_folds(tmp_path)
    (tmp_path / "1" / "test.json").unlink()
    with pytest.raises(FoldError, match="missing fold file"):
        load_folds(tmp_path)


def test_inconsistent_labels_across_folds(tmp_path):
    write_folds([_fold(1)], tmp_path)
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "train.json").write_text(json.dumps({"c1": 0}))
    (tmp_path / "2" / "test.json").write_text(json.dumps({"a1": 0}))
    with pytest.raises(FoldError, match="labelled 0 here but 1"):
        load_folds(tmp_path)


def test_subject_rules():
    assert uva_subject("057_spontaneous_smile_3") == "057"
    assert spos_subject("posed_tomas-37") == "tomas" and spos_subject("spontaneous_xiaopeng-5") == "xiaopeng"
    assert subjects_for("BBC", ["Genuine_smilecontent q01"]) == {"Genuine_smilecontent q01": "Genuine_smilecontent q01"}
    with pytest.raises(FoldError, match="NNN_"):
        uva_subject("smile_3")
    with pytest.warns(UserWarning, match="own subject"):
        assert subjects_for("MMI", ["1763"]) == {"1763": "1763"}
    assert subjects_for("MMI", ["1763", "1766"], {"1763": "s1", "1766": "s1"}) == {"1763": "s1", "1766": "s1"}
    with pytest.raises(FoldError, match="no row"):
        subjects_for("MMI", ["1763", "9"], {"1763": "s1"})


def test_subjects_csv(tmp_path):
    p = tmp_path / "subjects.csv"
    p.write_text("video,subject\n1763,S001\n1766,S001\n")
    assert read_subjects_csv(p) == {"1763": "S001", "1766": "S001"}
    p.write_text("session,person\n1,2\n")
    with pytest.raises(FoldError, match="video,subject"):
        read_subjects_csv(p)


def _uva_like(n_subjects=40, seed=0):
    rng = np.random.default_rng(seed)
    videos, labels = [], {}
    for s in range(n_subjects):
        for j in range(int(rng.integers(1, 6))):
            v = f"{s:03d}_{'spontaneous' if j % 2 else 'deliberate'}_smile_{j}"
            videos.append(v)
            labels[v] = j % 2
    return videos, labels, {v: uva_subject(v) for v in videos}


def test_generated_folds_are_subject_independent_stratified_and_deterministic():
    videos, labels, subjects = _uva_like()
    folds = generate_folds(videos, labels, subjects, 10, seed=0)
    assert [f.k for f in folds] == list(range(1, 11)) and all(f.source == "generated" for f in folds)
    assert sorted(v for f in folds for v in f.test) == sorted(videos)  # a partition
    for f in folds:
        assert not {subjects[v] for v in f.train} & {subjects[v] for v in f.test}
        assert len(f.test) > 0
    rate = np.mean(list(labels.values()))
    big = [f for f in folds if len(f.test) >= 8]
    assert all(abs(np.mean([labels[v] for v in f.test]) - rate) < 0.25 for f in big)
    sizes = [len(f.test) for f in folds]
    assert max(sizes) - min(sizes) <= 5
    again = generate_folds(list(reversed(videos)), labels, subjects, 10, seed=0)
    assert [f.test for f in again] == [f.test for f in folds]
    other = generate_folds(videos, labels, subjects, 10, seed=1)
    assert [f.test for f in other] != [f.test for f in folds]


def test_generated_folds_one_subject_each_when_k_equals_subjects():
    videos = [f"{c}_{s}-{i}" for s in ("ann", "bo", "cy") for c in ("posed", "spontaneous") for i in (1, 2)]
    labels = {v: int(v.startswith("spont")) for v in videos}
    subjects = subjects_for("SPOS", videos)
    folds = generate_folds(videos, labels, subjects, 3)
    assert sorted({subjects[v] for v in f.test}.pop() for f in folds) == ["ann", "bo", "cy"]
    with pytest.raises(FoldError, match="from 3 subject"):
        generate_folds(videos, labels, subjects, 4)


def test_leakage_assertion_fires():
    subjects = {"001_a": "001", "001_b": "001", "002_a": "002"}
    with pytest.raises(SubjectLeakageError, match="001"):
        assert_subject_independent(["001_a", "002_a"], ["001_b"], subjects, "validation")
    assert_subject_independent(["001_a", "001_b"], ["002_a"], subjects)


def test_subject_independent_split():
    videos, labels, subjects = _uva_like(60)
    train, val = subject_independent_split(videos, subjects, labels, 0.2, seed=0)
    assert sorted(train + val) == sorted(videos)
    assert not {subjects[v] for v in train} & {subjects[v] for v in val}
    assert 0.1 < len(val) / len(videos) < 0.3
    assert {labels[v] for v in val} == {0, 1}
    assert (train, val) == subject_independent_split(videos, subjects, labels, 0.2, seed=0)
    with pytest.raises(ValueError, match="val_fraction"):
        subject_independent_split(videos, subjects, labels, 1.5, seed=0)
    with pytest.raises(FoldError, match="2 subjects"):
        subject_independent_split(["001_a", "001_b"], {"001_a": "1", "001_b": "1"}, {"001_a": 0, "001_b": 1}, 0.2, 0)


def test_write_then_load_roundtrip(tmp_path):
    videos, labels, subjects = _uva_like(12)
    folds = generate_folds(videos, labels, subjects, 4)
    write_folds(folds, tmp_path / "labels")
    loaded = load_folds(tmp_path / "labels")
    assert [(f.k, f.train, f.test) for f in loaded] == [(f.k, f.train, f.test) for f in folds]
    assert not list((tmp_path / "labels").rglob("*.tmp"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert labels_of_folds(loaded) == dict(sorted(labels.items()))

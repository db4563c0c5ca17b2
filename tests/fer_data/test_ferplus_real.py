"""The FER+ label logic on the real vote files of microsoft/FERPlus (read from ../shared/realdata, never copied).

Skipped with a reason when the folder is absent (a fresh clone).
"""
import csv
from collections import Counter

import numpy as np
import pytest

from common.fer import datasets as D
from common.fer.datasets import fer2013 as FER
from common.fer import labels as L
from common.paths import SHARED_REALDATA_DIR

from fer_writers import write_fer2013, write_ferplus

FERPLUS_DIR = SHARED_REALDATA_DIR / "ferplus"
pytestmark = pytest.mark.skipif(not (FERPLUS_DIR / "fer2013new.csv").is_file(),
                                reason=f"real FER+ vote files not found under {FERPLUS_DIR}")


@pytest.fixture(scope="module")
def table():
    usages, names, votes = FER.read_ferplus_votes(FERPLUS_DIR / "fer2013new.csv")
    return np.array(usages), np.array(names), votes


def test_real_file_shape_and_split_sizes(table):
    usages, names, votes = table
    assert votes.shape == (35887, 10)
    assert Counter(usages.tolist()) == {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}
    assert (names == "").sum() > 0  # FER+ excludes some images by leaving the name empty
    # raters: 10 votes per image
    assert set(votes.sum(axis=1).tolist()) <= {9, 10, 11, 12}


def test_image_names_are_not_row_indices(table):
    """Why the csv loader pairs fer2013new.csv with fer2013.csv by row position and not by the number in the name."""
    _, names, _ = table
    named = np.flatnonzero(names != "")
    assert any(names[i] != f"fer{i:07d}.png" for i in named)
    assert len(set(names[named].tolist())) < len(named)  # a few names are duplicated


def test_majority_share_without_label_matches_spec(table):
    """fer-method.md §1.2 (computed independently from the same file): 10.2 % of PublicTest and 11.4 % of
    PrivateTest images have no label with > 50 % of the votes after dropping single votes."""
    usages, names, votes = table
    for usage, share in (("PublicTest", 10.2), ("PrivateTest", 11.4)):
        rows = (usages == usage) & (names != "")
        _, _, reasons = L.ferplus_targets(votes[rows], "majority")
        assert round(100 * reasons.count("no majority") / (usages == usage).sum(), 1) == share


@pytest.mark.parametrize("mode", ["majority", "probability", "crossentropy", "multi_target"])
def test_targets_are_distributions_and_respect_the_rules(table, mode):
    usages, names, votes = table
    rows = (usages == "Training") & (names != "")
    targets, keep, reasons = L.ferplus_targets(votes[rows], mode)
    kept = targets[keep]
    assert 0.8 * rows.sum() < keep.sum() < rows.sum()  # most images survive, some are dropped
    np.testing.assert_allclose(kept.sum(axis=1), 1.0, atol=1e-5)
    assert (kept >= 0).all() and (targets[~keep] == 0).all()
    assert set(reasons) <= {"kept", "no majority", "unknown/NF", "under 50%", "too many ties"}
    cleaned = np.where(votes[rows] <= 1, 0, votes[rows])[keep]
    total = cleaned.sum(axis=1)
    if mode == "majority":
        assert ((kept == 1).sum(axis=1) == 1).all()
        top = kept.argmax(axis=1)
        assert (cleaned[np.arange(len(top)), top] > 0.5 * total).all()
    else:
        support = (kept > 0).sum(axis=1)
        assert support.max() <= (8 if mode == "multi_target" else 3)
        if mode == "multi_target":  # the >= 30 % set may include unknown/NF, which counts toward the 50 % share
            chosen = cleaned >= 0.3 * total[:, None]
            np.testing.assert_array_equal(chosen[:, :8], kept > 0)
            covered = (cleaned * chosen).sum(axis=1)
        else:
            covered = (cleaned[:, :8] * (kept > 0)).sum(axis=1)
        assert (covered > 0.5 * total).all()  # every kept target integrates more than half of the votes
    if mode in ("probability", "crossentropy"):
        # the kept distribution is the normalised vote counts of the kept columns
        ratio = kept / np.maximum(cleaned[:, :8], 1e-9)
        nonzero = kept > 0
        per_row = [np.unique(np.round(r[m], 6)) for r, m in zip(ratio, nonzero)]
        assert all(len(u) == 1 for u in per_row)


def test_hand_picked_rows(table):
    usages, names, votes = table
    # row 0 (fer0000000.png) votes 4,0,0,1,3,2,0,0,0,0: single vote for sadness dropped -> 4+3+2 = 9;
    # no majority (4 <= 4.5); crossentropy takes neutral 4 then anger 3 (7 >= 6.75) -> (4/7, 3/7).
    assert names[0] == "fer0000000.png" and votes[0].tolist() == [4, 0, 0, 1, 3, 2, 0, 0, 0, 0]
    assert L.ferplus_target(votes[0], "majority") == (None, "no majority")
    target, _ = L.ferplus_target(votes[0], "crossentropy")
    np.testing.assert_allclose(target, [4 / 7, 0, 0, 0, 3 / 7, 0, 0, 0], atol=1e-6)
    # row 1 votes 6,0,1,1,0,0,0,0,2,0 -> 6 of 8 remaining: majority neutral
    assert votes[1].tolist() == [6, 0, 1, 1, 0, 0, 0, 0, 2, 0]
    np.testing.assert_array_equal(L.ferplus_target(votes[1], "majority")[0], np.eye(8)[0])
    # row 2 votes 5,0,0,3,1,0,0,0,1,0 -> 5+3 of 8: crossentropy (5/8 neutral, 3/8 sadness)
    np.testing.assert_allclose(L.ferplus_target(votes[2], "crossentropy")[0], [5 / 8, 0, 0, 3 / 8, 0, 0, 0, 0])


@pytest.mark.parametrize("folder, usage", [("FER2013Train", "Training"), ("FER2013Valid", "PublicTest"),
                                           ("FER2013Test", "PrivateTest")])
def test_label_csv_files(table, folder, usage):
    usages, names, votes = table
    label_names, label_votes = FER.read_ferplus_label_csv(FERPLUS_DIR / "data" / folder / "label.csv")
    named = set(names[(usages == usage) & (names != "")].tolist())
    assert set(label_names) == named  # one row per named image of that split (duplicate names written once)
    assert len(label_names) == len(set(label_names))
    targets, keep, _ = L.ferplus_targets(label_votes, "majority")
    assert 0.8 * len(label_names) < keep.sum() < len(label_names)
    assert ((targets[keep] == 1).sum(axis=1) == 1).all()


def test_loader_with_real_votes_and_synthetic_pixels(tmp_path, table):
    """The csv loader on the real vote rows (a slice of 40 per split, row-aligned with a synthetic fer2013.csv)."""
    usages, names, votes = table
    picks = np.concatenate([np.flatnonzero(usages == u)[:40] for u in ("Training", "PublicTest", "PrivateTest")])
    write_ferplus(tmp_path / "fer2013new.csv", [(usages[i], names[i], votes[i].tolist()) for i in picks])
    write_fer2013(tmp_path / "fer2013.csv", [(0, usages[i]) for i in picks])
    for split, usage in (("train", "Training"), ("val", "PublicTest"), ("test", "PrivateTest")):
        rows = picks[usages[picks] == usage]
        named = rows[names[rows] != ""]
        _, keep, _ = L.ferplus_targets(votes[named], "majority")
        s = D.load_fer_split("FERPlus", tmp_path, split, label_mode="crossentropy")
        assert s.report.rows_read == 40 and s.report.skipped["no image name (excluded by FER+)"] == len(rows) - len(
            named)
        if split == "train":
            _, keep_ce, _ = L.ferplus_targets(votes[named], "crossentropy")
            assert len(s) == keep_ce.sum() and s.label_mode == "crossentropy" and s.soft_labels is not None
        else:  # validation and test always use majority labels
            assert len(s) == keep.sum() and s.label_mode == "majority" and s.soft_labels is None


def test_ferplus_header_is_checked_against_the_real_header():
    with open(FERPLUS_DIR / "fer2013new.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert tuple(header) == FER.FERPLUS_HEADER

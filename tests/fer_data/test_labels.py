"""Class tables, the common 7-class mapping, and the FER+ label rules on hand-made vote vectors."""
import numpy as np
import pytest

from common.fer import labels as L


def test_class_tables_follow_the_official_orders():
    assert L.class_table("FER2013") == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert L.class_table("RAF-DB")[0] == "surprise" and L.class_table("RAF-DB")[6] == "neutral"
    assert L.class_table("FERPlus")[:2] == ("neutral", "happy") and L.class_table("FERPlus")[7] == "contempt"
    assert L.class_table("AffectNet") == L.AFFECTNET_CLASSES_8 and len(L.class_table("AffectNet", 7)) == 7
    assert L.AFFECTNET_CLASSES_8[6] == "angry"  # code 6 = Anger
    for name, table in L.OFFICIAL_NAMES.items():
        assert len(table) == len(L.class_table(name, 8 if name == "AffectNet" else None))
    with pytest.raises(ValueError, match="7-class and an 8-class"):
        L.class_table("AffectNet", 6)
    with pytest.raises(ValueError, match="no class table"):
        L.class_table("CK+")


def test_mapping_to_common7():
    # RAF-DB 1 Surprise (0-based 0) -> common "surprise" (5); 6 Anger (5) -> "angry" (0); 7 Neutral (6) -> 6
    assert L.map_labels(np.array([0, 5, 6, 3]), L.RAFDB_CLASSES).tolist() == [5, 0, 6, 3]
    # AffectNet 0 Neutral -> 6, 1 Happiness -> 3, 7 Contempt -> -1 (no counterpart)
    assert L.map_labels(np.array([0, 1, 7]), L.AFFECTNET_CLASSES_8).tolist() == [6, 3, -1]
    assert L.map_labels(np.arange(7), L.FER2013_CLASSES).tolist() == list(range(7))
    # every COMMON7 name is reachable from each dataset
    for table in (L.RAFDB_CLASSES, L.AFFECTNET_CLASSES_8, L.FERPLUS_CLASSES):
        assert sorted(m for m in L.index_map(table) if m >= 0) == list(range(7))
    with pytest.raises(ValueError, match="out of range"):
        L.map_labels(np.array([7]), L.RAFDB_CLASSES)


def test_soft_mapping_drops_contempt_mass_and_renormalises():
    soft = np.zeros((1, 8), np.float32)
    soft[0, 0], soft[0, 1], soft[0, 7] = 0.5, 0.25, 0.25  # neutral, happy, contempt (FER+ order)
    out = L.map_soft_labels(soft, L.FERPLUS_CLASSES)
    assert out.shape == (1, 7)
    assert out[0, 6] == pytest.approx(2 / 3) and out[0, 3] == pytest.approx(1 / 3)


# vote columns: neutral happiness surprise sadness anger disgust fear contempt unknown NF
@pytest.mark.parametrize("votes, mode, expected, reason", [
    # single votes are removed first: 6 of the remaining 8 is a majority
    ([6, 0, 1, 1, 0, 0, 0, 0, 2, 0], "majority", {0: 1.0}, "kept"),
    # 5 of 10 is not > 50 %
    ([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], "majority", None, "no majority"),
    # removing the single votes turns 5 of 9 into 5 of 7 (> 50 %)
    ([5, 2, 1, 0, 0, 0, 0, 0, 1, 1], "majority", {0: 1.0}, "kept"),
    ([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], "majority", None, "unknown/NF"),
    ([0, 0, 0, 0, 0, 0, 0, 0, 7, 3], "majority", None, "unknown/NF"),
    # crossentropy: 4 + 3 of 9 covers >= 75 % after two rounds
    ([4, 0, 0, 1, 3, 2, 0, 0, 0, 0], "crossentropy", {0: 4 / 7, 4: 3 / 7}, "kept"),
    # one round with a tie takes both tied columns
    ([4, 4, 0, 0, 0, 0, 0, 0, 2, 0], "crossentropy", {0: 0.5, 1: 0.5}, "kept"),
    # unknown tied with an emotion in the first round: the emotion is kept, unknown left out, rounds stop
    ([3, 0, 0, 2, 0, 0, 0, 0, 3, 2], "crossentropy", None, "under 50%"),
    ([6, 0, 0, 0, 0, 0, 0, 0, 4, 0], "crossentropy", {0: 1.0}, "kept"),
    # unknown alone on top: dropped
    ([2, 0, 0, 0, 0, 0, 0, 0, 8, 0], "crossentropy", None, "unknown/NF"),
    # four columns tied at the top: more than 3 taken
    ([2, 2, 2, 2, 2, 0, 0, 0, 0, 0], "crossentropy", None, "too many ties"),
    ([2, 2, 2, 2, 0, 0, 0, 0, 0, 0], "crossentropy", None, "too many ties"),
    # three tied columns of 2 hold all 6 remaining votes
    ([2, 2, 2, 0, 0, 0, 0, 0, 0, 0], "probability", {0: 1 / 3, 1: 1 / 3, 2: 1 / 3}, "kept"),
    # multi_target keeps >= 30 %: 4 and 3 of the remaining 9, uniform over the kept set
    ([4, 3, 0, 0, 2, 0, 0, 0, 1, 0], "multi_target", {0: 0.5, 1: 0.5}, "kept"),
    ([2, 2, 2, 2, 2, 0, 0, 0, 0, 0], "multi_target", None, "under 50%"),
    ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], "majority", None, "no majority"),
])
def test_ferplus_rules(votes, mode, expected, reason):
    target, why = L.ferplus_target(votes, mode)
    if reason != "kept":
        assert target is None and why == reason
        return
    assert why == "kept"
    want = np.zeros(8)
    for k, v in expected.items():
        want[k] = v
    np.testing.assert_allclose(target, want, atol=1e-6)


def test_ferplus_unknown_tie_case_is_dropped_for_share():
    # [3,0,0,2,...,3,2]: outliers none; total 10; round 1 takes neutral (3) then meets unknown (3) -> stop.
    # Kept 3 of 10 <= 50 % -> dropped. (The parametrised row above documents the same vector.)
    target, why = L.ferplus_target([3, 0, 0, 2, 0, 0, 0, 0, 3, 2], "crossentropy")
    assert target is None and why == "under 50%"


def test_ferplus_targets_vectorised_matches_single_rows():
    votes = np.array([[6, 0, 1, 1, 0, 0, 0, 0, 2, 0], [5, 5, 0, 0, 0, 0, 0, 0, 0, 0], [4, 0, 0, 1, 3, 2, 0, 0, 0, 0]])
    targets, keep, reasons = L.ferplus_targets(votes, "majority")
    assert keep.tolist() == [True, False, False] and reasons == ["kept", "no majority", "no majority"]
    assert targets[1].sum() == 0 and targets[0, 0] == 1


def test_ferplus_rejects_bad_votes_and_modes():
    with pytest.raises(ValueError, match="10 vote counts"):
        L.ferplus_target([1, 2, 3], "majority")
    with pytest.raises(ValueError, match=">= 0"):
        L.ferplus_target([-1, 0, 0, 0, 0, 0, 0, 0, 0, 0], "majority")
    with pytest.raises(ValueError, match="unknown FER\\+ label mode"):
        L.ferplus_target([10, 0, 0, 0, 0, 0, 0, 0, 0, 0], "soft")
    with pytest.raises(ValueError, match=r"\(N, 10\)"):
        L.ferplus_targets(np.zeros((3, 8)), "majority")

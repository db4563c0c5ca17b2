"""FER+ ships its votes twice: ``fer2013new.csv`` (one row per FER2013 row) and the ``data/FER2013{Train,Valid,Test}/
label.csv`` files. They disagree for some images; :func:`compare_label_sources` counts where, and how many images
each source labels under the FER+ majority rule (``labels.ferplus_target``). The claims table prints the counts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.fer import labels as L
from common.fer.datasets.fer2013 import FERPLUS_FOLDERS, read_ferplus_label_csv, read_ferplus_votes

USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def _majority(votes) -> int:
    return sum(L.ferplus_target(v, "majority")[0] is not None for v in votes)


def compare_label_sources(root: str | Path) -> dict[str, dict[str, int]]:
    """Per FER+ folder: images whose votes differ, and majority-labelled counts in either source.

    ``root`` holds ``fer2013new.csv`` and ``data/FER2013*/label.csv``. Images are matched by name; a name missing
    from either side is an error (the released files hold the same names).
    """
    root = Path(root)
    usages, names, votes = read_ferplus_votes(root / "fer2013new.csv")
    out = {}
    for split, folder in FERPLUS_FOLDERS.items():
        rows = [i for i, u in enumerate(usages) if u == USAGE[split]]
        new = {names[i]: votes[i] for i in rows if names[i]}
        label_names, label_votes = read_ferplus_label_csv(root / "data" / folder / "label.csv")
        old = dict(zip(label_names, label_votes))
        if set(new) != set(old):
            raise ValueError(f"{root}: {folder} names differ between fer2013new.csv and label.csv "
                             f"({len(set(new) - set(old))} only in the first, {len(set(old) - set(new))} only in "
                             "the second)")
        out[folder] = {"images": len(old), "votes_differ": sum(not np.array_equal(new[n], old[n]) for n in old),
                       "majority_label_csv": _majority(old.values()), "majority_new_csv": _majority(new.values()),
                       "majority_new_csv_all_rows": _majority(votes[i] for i in rows)}
    return out

"""The loaders read the generated demo sets (``python -m datasets.demo``), once they exist.

The demo data are synthetic; this only checks that the files written in the official formats load, split cleanly
and carry labels of every class. Skipped while the demo data have not been generated.
"""
import numpy as np
import pytest

from common.fer import datasets as D
from common.paths import DEMO_DATA_DIR


@pytest.mark.parametrize("name, options", [
    ("FER2013", {}), ("FERPlus", {}), ("FERPlus", {"label_mode": "crossentropy"}), ("RAF-DB", {}),
    ("AffectNet", {"release": "csv"}), ("AffectNet", {"release": "npy", "n_classes": 7}),
])
def test_demo_set_loads(name, options):
    root = DEMO_DATA_DIR / name
    if not root.is_dir():
        pytest.skip(f"demo data not generated under {root} (run `python -m datasets.demo --only {name}`)")
    splits = {s: D.load_fer_split(name, root, s, **options) for s in D.SPLITS}
    for split in splits.values():
        assert len(split) > 0 and split.report.kept == len(split)
        assert split.labels.min() >= 0 and split.labels.max() < split.n_classes
        image = split.images[0]
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert not set(splits["train"].sources) & set(splits["val"].sources)
    assert not set(splits["train"].sources) & set(splits["test"].sources)
    assert len(np.unique(splits["train"].labels)) >= 2

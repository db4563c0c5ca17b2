"""RAF-DB basic: ``EmoLabel/list_patition_label.txt`` (codes 1..7) and the aligned (or original) images; ``val`` is
a stratified, seeded fraction carved out of the official train set (RAF-DB has no validation set)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.fer import labels as L
from common.fer.datasets.files import FerDataError, int_field, require_files
from common.fer.datasets.split import FER_DATASETS, FerSplit, FileImages, SplitReport, carve, check_split

RAFDB_PARTITION = Path("EmoLabel") / "list_patition_label.txt"  # the misspelling is official


def read_rafdb_partition(path: str | Path) -> list[tuple[str, int]]:
    """list_patition_label.txt -> [(image name, 0-based label)], checking names and codes 1..7."""
    path = Path(path)
    if not path.is_file():
        raise FerDataError(f"RAF-DB partition file not found: {path}")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path} line {n}"
        if len(parts) != 2:
            raise FerDataError(f"{where}: expected '<name>.jpg <label>', got {line.strip()!r}")
        name, code = parts[0], int_field(parts[1], where, "label")
        if not (name.startswith(("train_", "test_")) and name.lower().endswith(".jpg")):
            raise FerDataError(f"{where}: image name {name!r} does not look like train_XXXXX.jpg or test_XXXX.jpg")
        if not 1 <= code <= 7:
            raise FerDataError(f"{where}: unknown class code {code} (RAF-DB basic codes are 1..7)")
        out.append((name, code - 1))
    return out


@FER_DATASETS.register("RAF-DB", n_classes=7, aligned=True, paper_split="train (val carved) / test")
def load_rafdb(root: str | Path, split: str = "train", image_variant: str = "aligned", val_fraction: float = 0.1,
               split_seed: int = 0) -> FerSplit:
    """RAF-DB basic: ``basic/EmoLabel/list_patition_label.txt`` (labels 1..7 -> 0..6) and
    ``basic/Image/aligned/<stem>_aligned.jpg`` (``image_variant="original"``: ``basic/Image/original/<name>``,
    which then needs face detection). ``root`` may be the dataset folder or its ``basic/`` folder."""
    check_split(split)
    if image_variant not in ("aligned", "original"):
        raise ValueError(f"RAF-DB image_variant must be 'aligned' or 'original', got {image_variant!r}")
    root = Path(root)
    basic = root if (root / RAFDB_PARTITION).is_file() else root / "basic"
    entries = read_rafdb_partition(basic / RAFDB_PARTITION)
    prefix = "test_" if split == "test" else "train_"
    entries = [e for e in entries if e[0].startswith(prefix)]
    if not entries:
        raise FerDataError(f"{basic / RAFDB_PARTITION}: no {prefix}* images listed, so the {split} split would be "
                           f"empty")
    if image_variant == "aligned":
        paths = [basic / "Image" / "aligned" / f"{Path(name).stem}_aligned.jpg" for name, _ in entries]
    else:
        paths = [basic / "Image" / "original" / name for name, _ in entries]
    require_files(paths, f"RAF-DB {prefix[:-1]} ({image_variant})")
    report = SplitReport(rows_read=len(entries))
    full = FerSplit("RAF-DB", split, FileImages(paths), np.array([c for _, c in entries]), L.RAFDB_CLASSES,
                    [str(p) for p in paths], report, aligned=image_variant == "aligned")
    return full if split == "test" else carve(full, split, val_fraction, split_seed)


"""FER2013 (``fer2013.csv``: emotion, 48x48 pixel string, Usage) and FER+ (``fer2013new.csv`` votes paired by row
with ``fer2013.csv``, or the ``data/FER2013{Train,Valid,Test}/label.csv`` + PNG folders). Splits: Training = train,
PublicTest = val, PrivateTest = test."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from common.fer import labels as L
from common.fer.datasets.files import FerDataError, int_field, parse_pixels, read_csv, require_files
from common.fer.datasets.split import FER_DATASETS, FerSplit, FileImages, GrayArrayImages, SplitReport, check_split

FER2013_HEADER = ("emotion", "pixels", "Usage")
FER2013_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
FERPLUS_HEADER = ("Usage", "Image name") + L.FERPLUS_VOTE_COLUMNS
FERPLUS_FOLDERS = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}


def read_fer2013_csv(path: str | Path, keep_pixels: str | None = None) -> list[tuple[int, int, str, str | None]]:
    """Rows ``(row_index, emotion, usage, pixels)`` of fer2013.csv after checking header, codes and usage names.

    The file is streamed; pixel strings are kept only for rows whose Usage is ``keep_pixels`` (``None`` elsewhere)
    and parsed later. ``row_index`` counts data rows from 0, the position FER+'s fer2013new.csv pairs with.
    """
    path = Path(path)
    if not path.is_file():
        raise FerDataError(f"file not found: {path}")
    usages = set(FER2013_USAGE.values())
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = [c.strip() for c in next(reader, [])]
            if set(header) != set(FER2013_HEADER) or len(header) != 3:
                raise FerDataError(f"{path}: header {','.join(header)!r} is not the FER2013 header "
                                   f"'emotion,pixels,Usage'")
            col = {name: header.index(name) for name in FER2013_HEADER}
            for i, row in enumerate(reader):
                where = f"{path} row {i} (line {i + 2})"
                if len(row) != 3:
                    raise FerDataError(f"{where}: expected 3 fields, got {len(row)}")
                emotion = int_field(row[col["emotion"]], where, "emotion")
                if not 0 <= emotion < len(L.FER2013_CLASSES):
                    raise FerDataError(f"{where}: unknown class code {emotion} (FER2013 codes are 0..6)")
                usage = row[col["Usage"]].strip()
                if usage not in usages:
                    raise FerDataError(f"{where}: unknown Usage {usage!r}; expected one of "
                                       f"{', '.join(sorted(usages))}")
                out.append((i, emotion, usage, row[col["pixels"]] if usage == keep_pixels else None))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise FerDataError(f"{path}: not a readable csv file ({exc})") from exc
    return out


@FER_DATASETS.register("FER2013", n_classes=7, aligned=True, paper_split="Training / PublicTest / PrivateTest")
def load_fer2013(root: str | Path, split: str = "train", csv_name: str = "fer2013.csv") -> FerSplit:
    """FER2013 from ``root/fer2013.csv``: Training = train, PublicTest = val, PrivateTest = test (48x48 gray)."""
    check_split(split)
    path = Path(root) / csv_name
    usage = FER2013_USAGE[split]
    rows = [r for r in read_fer2013_csv(path, keep_pixels=usage) if r[2] == usage]
    if not rows:
        raise FerDataError(f"{path}: no rows with Usage {usage!r}, so the {split} split would be empty")
    gray = np.stack([parse_pixels(px, f"{path} row {i} (line {i + 2})") for i, _, _, px in rows]) if rows else \
        np.zeros((0, 48, 48), np.uint8)
    report = SplitReport(rows_read=len(rows))
    report.note(f"{split} = Usage {FER2013_USAGE[split]}")
    return FerSplit("FER2013", split, GrayArrayImages(gray), np.array([r[1] for r in rows]), L.FER2013_CLASSES,
                    [f"{path.name}:row{r[0]}" for r in rows], report, aligned=True)


def read_ferplus_votes(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """fer2013new.csv -> (usage per row, image name per row ('' where FER+ excluded the image), votes (N, 10))."""
    path = Path(path)
    header, rows = read_csv(path)
    if tuple(header) != FERPLUS_HEADER:
        raise FerDataError(f"{path}: header {','.join(header)!r} is not the FER+ header {','.join(FERPLUS_HEADER)!r}")
    usages, names = [], []
    votes = np.zeros((len(rows), 10), dtype=np.int64)
    for i, row in enumerate(rows):
        where = f"{path} row {i} (line {i + 2})"
        if len(row) != 12:
            raise FerDataError(f"{where}: expected 12 fields, got {len(row)}")
        usages.append(row[0].strip())
        names.append(row[1].strip())
        votes[i] = _votes(row[2:], where)
    return usages, names, votes


def _votes(fields: Sequence[str], where: str) -> np.ndarray:
    v = np.array([int_field(x, where, "vote count") for x in fields])
    if v.min() < 0:
        raise FerDataError(f"{where}: negative vote count in {list(fields)}")
    return v


def read_ferplus_label_csv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """data/FER2013{Train,Valid,Test}/label.csv (no header): ``name,"(x, y, w, h)",<10 votes>`` (the box column is
    optional, as older copies lack it) -> (image names, votes (N, 10))."""
    path = Path(path)
    if not path.is_file():
        raise FerDataError(f"file not found: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r]
    if not rows:
        raise FerDataError(f"{path}: no rows (an empty label file would make an empty split)")
    names, votes = [], np.zeros((len(rows), 10), dtype=np.int64)
    for i, row in enumerate(rows):
        where = f"{path} line {i + 1}"
        if len(row) == 12 and row[1].strip().startswith("("):
            fields = row[2:]
        elif len(row) == 11:
            fields = row[1:]
        else:
            raise FerDataError(f"{where}: expected 'name,\"(x, y, w, h)\",<10 votes>', got {len(row)} fields")
        if not row[0].strip().lower().endswith(".png"):
            raise FerDataError(f"{where}: first field {row[0]!r} is not an image name (header row or wrong file?)")
        names.append(row[0].strip())
        votes[i] = _votes(fields, where)
    return names, votes


def _ferplus_layout(root: Path, layout: str) -> tuple[str, Path]:
    if layout not in ("auto", "csv", "folders"):
        raise ValueError(f"FERPlus layout must be 'auto', 'csv' or 'folders', got {layout!r}")
    folders = next((b for b in (root / "data", root) if (b / FERPLUS_FOLDERS["train"] / "label.csv").is_file()), None)
    if layout in ("auto", "csv") and (root / "fer2013new.csv").is_file():
        return "csv", root
    if layout in ("auto", "folders") and folders is not None:
        return "folders", folders
    raise FerDataError(f"no FERPlus data under {root}: expected fer2013new.csv + fer2013.csv, or "
                       f"data/FER2013{{Train,Valid,Test}}/label.csv with the PNGs beside it")


@FER_DATASETS.register("FERPlus", n_classes=8, aligned=True, paper_split="FER2013Train / FER2013Valid / FER2013Test")
def load_ferplus(root: str | Path, split: str = "train", label_mode: str = "majority",
                 layout: str = "auto") -> FerSplit:
    """FER+ (8 classes): votes from ``fer2013new.csv`` paired by row with ``fer2013.csv`` pixels, or the
    ``data/FER2013*/label.csv`` + PNG folders written by FER+'s ``generate_training_data.py``.

    The pairing is by row position, as ``generate_training_data.py`` does: the ``Image name`` numbers of the released
    file are not the row index after the first excluded rows, and a few names occur twice.

    ``label_mode`` (majority / probability / crossentropy / multi_target, see ``labels.ferplus_target``) applies to
    train; validation and test always use majority, as in FER+'s ``train.py``.
    """
    check_split(split)
    if label_mode not in L.FERPLUS_MODES:
        raise ValueError(f"unknown FER+ label mode {label_mode!r}; accepted: {', '.join(L.FERPLUS_MODES)}")
    mode = label_mode if split == "train" else "majority"
    root = Path(root)
    kind, base = _ferplus_layout(root, layout)
    report = SplitReport()
    if mode != label_mode:
        report.note(f"{split} uses majority labels (FER+ protocol), not {label_mode!r}")
    if kind == "csv":
        new_path, fer_path = base / "fer2013new.csv", base / "fer2013.csv"
        usages, names, votes = read_ferplus_votes(new_path)
        fer_rows = read_fer2013_csv(fer_path, keep_pixels=FER2013_USAGE[split])
        if len(fer_rows) != len(usages):
            raise FerDataError(f"{new_path} has {len(usages)} rows but {fer_path} has {len(fer_rows)}: "
                               f"FER+ pairs the two files row by row")
        rows = [i for i, u in enumerate(usages) if u == FER2013_USAGE[split]]
        if not rows:
            raise FerDataError(f"{new_path}: no rows with Usage {FER2013_USAGE[split]!r}, so the {split} split "
                               f"would be empty")
        sources = [f"{new_path.name}:row{i}" for i in rows]
        for i in rows:
            if fer_rows[i][2] != usages[i]:
                raise FerDataError(f"{new_path} row {i}: Usage {usages[i]!r} differs from {fer_path.name} "
                                   f"({fer_rows[i][2]!r}); the files are not row-aligned")
    else:
        folder = base / FERPLUS_FOLDERS[split]
        names, votes = read_ferplus_label_csv(folder / "label.csv")
        rows = list(range(len(names)))
        sources = [str(folder / n) for n in names]
    report.rows_read = len(rows)
    keep_rows, targets = [], []
    for i, src in zip(rows, sources):
        if not names[i]:
            report.skip("no image name (excluded by FER+)", src)
            continue
        target, reason = L.ferplus_target(votes[i], mode)
        if target is None:
            report.skip(reason, src)
            continue
        keep_rows.append(i)
        targets.append(target)
    soft = np.stack(targets) if targets else np.zeros((0, 8), np.float32)
    hard = soft.argmax(axis=1)
    if kind == "csv":
        images: Sequence = GrayArrayImages(np.stack(
            [parse_pixels(fer_rows[i][3], f"{fer_path} row {i} (line {i + 2})") for i in keep_rows])
            if keep_rows else np.zeros((0, 48, 48), np.uint8))
        kept_sources = [f"{new_path.name}:row{i}:{names[i]}" for i in keep_rows]
    else:
        paths = [folder / names[i] for i in keep_rows]
        require_files(paths, f"FERPlus {FERPLUS_FOLDERS[split]}")
        images = FileImages(paths)
        kept_sources = [str(p) for p in paths]
    return FerSplit("FERPlus", split, images, hard, L.FERPLUS_CLASSES, kept_sources, report,
                    soft_labels=None if mode == "majority" else soft, label_mode=mode, aligned=True)


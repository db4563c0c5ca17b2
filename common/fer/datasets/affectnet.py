"""AffectNet, either release: the csv release (``Manually_Annotated_file_lists``, face box and 68 landmarks per row,
images cropped to the box) or the npy release (224x224 crops with ``<id>_exp.npy`` labels). Codes 8..10 (and
Contempt in the 7-class protocol) are skipped and counted; ``test`` is the official validation set, ``val`` is
carved from training."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.fer import labels as L
from common.fer.datasets.files import FerDataError, float_field, int_field, read_csv, require_files
from common.fer.datasets.split import FER_DATASETS, FerSplit, FileImages, SplitReport, carve, check_split

AFFECTNET_CSV_HEADER = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
                        "expression", "valence", "arousal")


def _affectnet_release(root: Path, release: str) -> str:
    if release not in ("auto", "csv", "npy"):
        raise ValueError(f"AffectNet release must be 'auto', 'csv' or 'npy', got {release!r}")
    has_csv = (root / "Manually_Annotated_file_lists").is_dir()
    has_npy = any((root / f / "annotations").is_dir() for f in ("train_set", "val_set"))
    if release == "auto":
        if has_csv:
            return "csv"
        if has_npy:
            return "npy"
    elif (release == "csv" and has_csv) or (release == "npy" and has_npy):
        return release
    raise FerDataError(f"no AffectNet {'' if release == 'auto' else release + ' '}release under {root}: expected "
                       f"Manually_Annotated_file_lists/{{training,validation}}.csv + Manually_Annotated_Images/ "
                       f"(csv) or train_set|val_set/{{images,annotations}} (npy)")


def _affectnet_keep(code: int, n_classes: int, where: str, source: str, report: SplitReport) -> bool:
    if not 0 <= code <= 10:
        raise FerDataError(f"{where}: unknown class code {code} (AffectNet codes are 0..10)")
    if code in L.AFFECTNET_NON_EXPRESSION_CODES:
        report.skip(f"code {code} ({L.AFFECTNET_NON_EXPRESSION_CODES[code]}): not an expression", source)
        return False
    if code >= n_classes:
        report.skip("code 7 (Contempt): not in the 7-class protocol", source)
        return False
    return True


def _affectnet_csv(root: Path, official: str, n_classes: int, report: SplitReport):
    path = root / "Manually_Annotated_file_lists" / f"{official}.csv"
    header, rows = read_csv(path)
    if tuple(header[:len(AFFECTNET_CSV_HEADER)]) != AFFECTNET_CSV_HEADER:
        raise FerDataError(f"{path}: header {','.join(header)!r} is not the AffectNet header "
                           f"{','.join(AFFECTNET_CSV_HEADER)!r}")
    if not rows:
        raise FerDataError(f"{path}: header only, no rows")
    image_dir = root / "Manually_Annotated_Images"
    report.rows_read = len(rows)
    paths, codes, boxes, landmarks, sources = [], [], [], [], []
    for i, row in enumerate(rows):
        where = f"{path} row {i} (line {i + 2})"
        if len(row) < len(AFFECTNET_CSV_HEADER):
            raise FerDataError(f"{where}: expected {len(AFFECTNET_CSV_HEADER)} fields, got {len(row)}")
        source = f"{path.name}:row{i}:{row[0]}"
        code = int_field(row[6], where, "expression code")
        box = [float_field(row[k], where, AFFECTNET_CSV_HEADER[k]) for k in range(1, 5)]
        if not _affectnet_keep(code, n_classes, where, source, report):
            continue
        if box[2] < 0 or box[3] < 0:
            report.skip("negative face width/height", source)
            continue
        lm_text = row[5].strip()
        lm = None
        if lm_text:
            values = [float_field(v, where, "landmark") for v in lm_text.split(";") if v.strip()]
            if len(values) != 136:
                raise FerDataError(f"{where}: facial_landmarks has {len(values)} values, expected 136 (68 x, y)")
            lm = (np.array(values, dtype=np.float32).reshape(68, 2)
                  - np.array([max(round(box[0]), 0), max(round(box[1]), 0)], dtype=np.float32))
        paths.append(image_dir / row[0].strip())
        codes.append(code)
        boxes.append(box)
        landmarks.append(lm)
        sources.append(str(image_dir / row[0].strip()))
    require_files(paths, f"AffectNet {official}")
    images = FileImages(paths, np.array(boxes, dtype=np.float64).reshape(-1, 4))
    return images, np.array(codes, dtype=np.int64), sources, landmarks, False


def _read_expression_npy(path: Path) -> int:
    try:
        value = np.load(path, allow_pickle=False)
        return int(str(np.asarray(value).reshape(-1)[0]).strip())
    except (ValueError, OSError, IndexError) as exc:
        raise FerDataError(f"{path}: not a readable AffectNet expression label ({exc})") from None


def _affectnet_npy(root: Path, official: str, n_classes: int, report: SplitReport):
    folder = root / ("train_set" if official == "training" else "val_set")
    label_files = sorted((folder / "annotations").glob("*_exp.npy"))
    if not label_files:
        raise FerDataError(f"no *_exp.npy label files in {folder / 'annotations'}")
    report.rows_read = len(label_files)
    paths, codes = [], []
    for f in label_files:
        code = _read_expression_npy(f)
        image = folder / "images" / f"{f.name[:-len('_exp.npy')]}.jpg"
        if _affectnet_keep(code, n_classes, str(f), str(image), report):
            paths.append(image)
            codes.append(code)
    require_files(paths, f"AffectNet {folder.name}")
    return FileImages(paths), np.array(codes, dtype=np.int64), [str(p) for p in paths], None, True


@FER_DATASETS.register("AffectNet", n_classes=8, aligned=False, paper_split="train (val carved) / official val as test")
def load_affectnet(root: str | Path, split: str = "train", release: str = "auto", n_classes: int = 8,
                   val_fraction: float = 0.1, split_seed: int = 0) -> FerSplit:
    """AffectNet, either release. ``csv``: ``Manually_Annotated_file_lists/{training,validation}.csv`` with box and
    68 landmarks, images cropped to the box; ``npy``: ``{train,val}_set/images/<id>.jpg`` + ``annotations/<id>_exp.npy``
    (224x224 crops). ``n_classes`` 8 keeps codes 0..7, 7 also drops Contempt; codes 8..10 are always dropped and
    counted. ``test`` = the official validation set; ``val`` is carved from training (stratified, ``split_seed``)."""
    check_split(split)
    table = L.class_table("AffectNet", n_classes)
    root = Path(root)
    kind = _affectnet_release(root, release)
    report = SplitReport()
    official = "validation" if split == "test" else "training"
    reader = _affectnet_csv if kind == "csv" else _affectnet_npy
    images, codes, sources, landmarks, aligned = reader(root, official, n_classes, report)
    report.note(f"AffectNet {kind} release, {n_classes} classes")
    if split == "test":
        report.note("test = the official validation set (the AffectNet test set was never released)")
    full = FerSplit("AffectNet", split, images, codes, table, sources, report, aligned=aligned, landmarks=landmarks)
    return full if split == "test" else carve(full, split, val_fraction, split_seed)


"""Loaders for FER2013, FERPlus, RAF-DB and AffectNet in their official on-disk formats (``docs/datasets.md``).

``load_fer_split(name, root, split)`` returns a :class:`FerSplit`: images (decoded lazily from files, or from the csv
pixel strings), integer labels in the dataset's own class order (``common.fer.labels``), optional soft targets, the
source (file or csv row) of every item, and a :class:`SplitReport` counting the rows kept and skipped and why.

Rows are skipped only where the dataset's protocol says so (FER+ images without a majority / with unknown or NF on
top / without an image name; AffectNet codes 8-10 and boxes with negative width). Anything else that is wrong - a
header, a pixel string, a class code, a missing or unreadable image - raises :class:`FerDataError` naming the file
and row.

Splits. FER2013/FERPlus: Training / PublicTest (validation) / PrivateTest (test). RAF-DB and AffectNet have no
official validation set, so ``val`` is a stratified, seeded fraction carved out of train (never the test set);
AffectNet's official validation set is the ``test`` split, as in every paper (its test set was never released).
"""
from __future__ import annotations

import csv
import inspect
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from torch.utils.data import Dataset

from common.fer import labels as L
from common.registry import Registry

FER_DATASETS = Registry("fer dataset")
SPLITS = ("train", "val", "test")
FER2013_HEADER = ("emotion", "pixels", "Usage")
FER2013_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
FERPLUS_HEADER = ("Usage", "Image name") + L.FERPLUS_VOTE_COLUMNS
FERPLUS_FOLDERS = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}
AFFECTNET_CSV_HEADER = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
                        "expression", "valence", "arousal")
RAFDB_PARTITION = Path("EmoLabel") / "list_patition_label.txt"  # the misspelling is official
N_PIXELS = 48 * 48
_EXAMPLES_PER_REASON = 5
_DIGITS_AND_SPACES = re.compile(r"[0-9 \t]+")


class FerDataError(ValueError):
    """A dataset file is malformed; the message names the file and, where there is one, the row."""


# ---------------------------------------------------------------------------------------------------- containers

@dataclass
class SplitReport:
    """What a loader read, kept and skipped (with the reason and a few example sources per reason)."""

    rows_read: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return self.rows_read - sum(self.skipped.values())

    def skip(self, reason: str, source: str) -> None:
        self.skipped[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < _EXAMPLES_PER_REASON:
            examples.append(source)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def copy(self) -> "SplitReport":
        return SplitReport(self.rows_read, Counter(self.skipped), {k: list(v) for k, v in self.examples.items()},
                           list(self.notes))

    def as_dict(self) -> dict[str, Any]:
        return {"rows_read": self.rows_read, "kept": self.kept, "skipped": dict(self.skipped),
                "examples": self.examples, "notes": list(self.notes)}

    def __str__(self) -> str:
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items())) or "none"
        text = f"{self.rows_read} rows read, {self.kept} kept; skipped: {skipped}"
        return text + "".join(f"\n  note: {n}" for n in self.notes)


class GrayArrayImages(Sequence):
    """48x48 grayscale images held as one (N, H, W) uint8 array, served as HxWx3 RGB on access."""

    def __init__(self, gray: np.ndarray):
        self.gray = gray

    def content_digest(self) -> str:
        from common.provenance import fingerprint_arrays

        return fingerprint_arrays([("gray", self.gray)])

    def __len__(self) -> int:
        return len(self.gray)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return np.repeat(self.gray[i][:, :, None], 3, axis=2)


class FileImages(Sequence):
    """Images decoded from files on access, optionally cropped to an (x, y, w, h) box (AffectNet csv release)."""

    def __init__(self, paths: Sequence[Path], boxes: np.ndarray | None = None):
        self.paths = list(paths)
        self.boxes = boxes

    def content_digest(self) -> str:
        """The whole bytes of every file (memoised BLAKE2b digests) plus the crop boxes."""
        from common.provenance import file_digest, fingerprint_arrays

        digests = np.array([file_digest(p) for p in self.paths], dtype="U32")
        return fingerprint_arrays([("files", digests), ("boxes", np.zeros(0) if self.boxes is None else self.boxes)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        image = read_image(self.paths[i])
        return image if self.boxes is None else crop_box(image, self.boxes[i], self.paths[i])


class IndexedImages(Sequence):
    """A subset of another image sequence."""

    def __init__(self, base: Sequence, indices: Sequence[int]):
        self.base, self.indices = base, np.asarray(indices, dtype=np.int64)

    def content_digest(self) -> str:
        from common.provenance import fingerprint_arrays

        return fingerprint_arrays([("base", np.array([images_digest(self.base)])), ("indices", self.indices)])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.base[int(self.indices[i])]


@dataclass
class FerSplit:
    """One split of one dataset, labels in ``classes`` order.

    ``soft_labels`` (N, C) is set for FER+ soft label modes; ``label_mode`` tells :class:`FerTorchDataset` whether to
    use hard labels, the soft distribution, or (``"probability"``) a one-hot target sampled from it at each access.
    ``aligned`` = the images are already aligned face crops (FER2013, RAF-DB aligned, AffectNet cropped release), so
    preprocessing skips detection. ``landmarks`` holds 68 (x, y) points per image in image coordinates where the
    dataset ships them (AffectNet csv release), else ``None``.
    """

    dataset: str
    split: str
    images: Sequence
    labels: np.ndarray
    classes: tuple[str, ...]
    sources: list[str]
    report: SplitReport
    soft_labels: np.ndarray | None = None
    label_mode: str = "hard"
    aligned: bool = False
    landmarks: list[np.ndarray | None] | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        n = len(self.labels)
        if len(self.images) != n or len(self.sources) != n:
            raise ValueError(f"{self.dataset}/{self.split}: {len(self.images)} images, {n} labels, "
                             f"{len(self.sources)} sources")
        if self.soft_labels is not None and self.soft_labels.shape != (n, len(self.classes)):
            raise ValueError(f"soft labels of shape {self.soft_labels.shape}, expected {(n, len(self.classes))}")

    def __len__(self) -> int:
        return len(self.labels)

    def content_digest(self) -> str:
        """Hash of everything the split holds: image content (file bytes or pixel arrays), labels, soft labels,
        landmarks, sources and class table; the data fingerprint of a run is built from it."""
        from common.provenance import fingerprint_arrays

        parts = [("dataset", np.array([self.dataset, self.split, self.label_mode, str(self.aligned)])),
                 ("classes", np.array(self.classes)), ("labels", self.labels),
                 ("sources", np.array(self.sources, dtype=str)), ("images", np.array([images_digest(self.images)]))]
        if self.soft_labels is not None:
            parts.append(("soft", np.asarray(self.soft_labels)))
        if self.landmarks is not None:
            parts += [(f"lm{i}", lm) for i, lm in enumerate(self.landmarks) if lm is not None]
        return fingerprint_arrays(parts)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=self.n_classes)
        return {name: int(c) for name, c in zip(self.classes, counts)}

    def subset(self, indices: Sequence[int]) -> "FerSplit":
        idx = np.asarray(indices, dtype=np.int64)
        return replace(
            self, images=IndexedImages(self.images, idx), labels=self.labels[idx],
            sources=[self.sources[i] for i in idx], report=self.report.copy(),
            soft_labels=None if self.soft_labels is None else self.soft_labels[idx],
            landmarks=None if self.landmarks is None else [self.landmarks[i] for i in idx])

    def to_common7(self) -> "FerSplit":
        """The same split in ``COMMON7`` order (FER2013's) for cross-dataset evaluation; contempt items are
        dropped and counted in the report."""
        mapped = L.map_labels(self.labels, self.classes)
        keep = np.flatnonzero(mapped >= 0)
        out = self.subset(keep)
        for i in np.flatnonzero(mapped < 0):
            out.report.skip(f"{self.classes[self.labels[i]]}: no counterpart in the common 7 classes", self.sources[i])
        out.labels = mapped[keep]
        out.classes = L.COMMON7
        if out.soft_labels is not None:
            out.soft_labels = L.map_soft_labels(out.soft_labels, self.classes)
        return out


def images_digest(images: Sequence) -> str:
    """Content digest of an image sequence: its own ``content_digest`` where it has one (our containers, and
    wrappers such as preprocessing, which add their parameters), else the decoded pixels of every image."""
    if hasattr(images, "content_digest"):
        return images.content_digest()
    from common.provenance import fingerprint_arrays

    base = getattr(images, "base", None)
    if base is not None:  # a wrapper (e.g. preprocessing): its base's content plus its settings
        settings = repr(getattr(images, "config", None))
        return fingerprint_arrays([("base", np.array([images_digest(base)])), ("settings", np.array([settings]))])
    return fingerprint_arrays((str(i), np.asarray(images[i])) for i in range(len(images)))


# ------------------------------------------------------------------------------------------------- file helpers

def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to uint8 HxWx3 RGB, or raise :class:`FerDataError` naming the file."""
    from common.face.media import UnreadableMediaError, decode_image

    path = Path(path)
    if not path.is_file():
        raise FerDataError(f"image file not found: {path}")
    try:
        return decode_image(np.fromfile(path, dtype=np.uint8), str(path))
    except UnreadableMediaError:
        raise FerDataError(f"cannot decode image file (corrupt or not an image): {path}") from None


def crop_box(image: np.ndarray, box: Sequence[float], source: Any = "") -> np.ndarray:
    """Crop an (x, y, w, h) pixel box, clipped to the image; an empty intersection is an error naming the source."""
    x, y, w, h = (int(round(float(v))) for v in box)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, image.shape[1]), min(y + h, image.shape[0])
    if x1 <= x0 or y1 <= y0:
        raise FerDataError(f"{source}: face box {tuple(box)} lies outside the {image.shape[1]}x{image.shape[0]} image")
    return image[y0:y1, x0:x1]


# leading bytes of the image formats OpenCV decodes: JPEG, PNG, BMP, GIF, TIFF, PBM/PGM/PPM, JPEG 2000 (WebP: RIFF
# header with WEBP at offset 8)
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*",
                     b"P1", b"P2", b"P3", b"P4", b"P5", b"P6", b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xffO\xffQ")


def _looks_like_image(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(16)
    return head.startswith(_IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _require_files(paths: Sequence[Path], what: str) -> None:
    """Every listed image exists and starts like an image file (checked when the split loads, before any training,
    so a damaged file is reported at once rather than when the split is first read)."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = "\n  ".join(str(p) for p in missing[:5])
        raise FerDataError(f"{len(missing)} of {len(paths)} {what} image files are missing, e.g.:\n  {shown}")
    corrupt = [p for p in paths if not _looks_like_image(p)]
    if corrupt:
        shown = "\n  ".join(str(p) for p in corrupt[:5])
        raise FerDataError(f"{len(corrupt)} of {len(paths)} {what} image files are not images (empty, corrupt or "
                           f"another format), e.g.:\n  {shown}")


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise FerDataError(f"file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FerDataError(f"{path}: not a readable csv file ({exc})") from exc
    if not rows:
        raise FerDataError(f"{path}: empty file, expected a header row")
    return [c.strip() for c in rows[0]], rows[1:]


def parse_pixels(text: str, where: str) -> np.ndarray:
    """A FER2013 ``pixels`` string -> 48x48 uint8, or an error naming ``where`` (file and row)."""
    if _DIGITS_AND_SPACES.fullmatch(text):  # fast path: only unsigned integers, parsed in C
        values = np.fromstring(text, dtype=np.int64, sep=" ")
        if values.size == N_PIXELS and values.max() <= 255:
            return values.astype(np.uint8).reshape(48, 48)
    parts = text.split()
    if len(parts) != N_PIXELS:
        raise FerDataError(f"{where}: pixels has {len(parts)} values, expected {N_PIXELS} (48x48)")
    try:
        values = np.array(parts, dtype=np.int64)
    except ValueError:
        bad = next(p for p in parts if not p.lstrip("-").isdigit())
        raise FerDataError(f"{where}: pixel value {bad!r} is not an integer") from None
    if values.min() < 0 or values.max() > 255:
        raise FerDataError(f"{where}: pixel values must lie in 0..255, found {values.min()}..{values.max()}")
    return values.astype(np.uint8).reshape(48, 48)


def _int_field(value: str, where: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise FerDataError(f"{where}: {what} {value!r} is not an integer") from None


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class split of indices into (train, val); each class with >= 2 items gives >= 1 to each side."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_val = int(round(val_fraction * len(idx)))
        if len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        else:
            n_val = 0
        val.append(idx[:n_val])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; accepted: {', '.join(SPLITS)}")


def _carve(split_obj: FerSplit, split: str, val_fraction: float, seed: int) -> FerSplit:
    """Return the train or val part of a split carved from the official train set."""
    train_idx, val_idx = stratified_split(split_obj.labels, val_fraction, seed)
    part = split_obj.subset(train_idx if split == "train" else val_idx)
    part.split = split
    # not a protocol skip: the other side of the carve, counted so that kept == len(part)
    other = "val" if split == "train" else "train"
    part.report.skipped[f"in the carved {other} split"] += len(val_idx if split == "train" else train_idx)
    part.report.note(f"{split} = stratified {'remainder' if split == 'train' else 'fraction'} of the official train "
                     f"set (val_fraction={val_fraction}, split_seed={seed}): {len(train_idx)} train / "
                     f"{len(val_idx)} val of {len(split_obj)}")
    return part


# ------------------------------------------------------------------------------------------------------ FER2013

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
                emotion = _int_field(row[col["emotion"]], where, "emotion")
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
    _check_split(split)
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


# ------------------------------------------------------------------------------------------------------ FERPlus

def read_ferplus_votes(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """fer2013new.csv -> (usage per row, image name per row ('' where FER+ excluded the image), votes (N, 10))."""
    path = Path(path)
    header, rows = _read_csv(path)
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
    v = np.array([_int_field(x, where, "vote count") for x in fields])
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
    _check_split(split)
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
        _require_files(paths, f"FERPlus {FERPLUS_FOLDERS[split]}")
        images = FileImages(paths)
        kept_sources = [str(p) for p in paths]
    return FerSplit("FERPlus", split, images, hard, L.FERPLUS_CLASSES, kept_sources, report,
                    soft_labels=None if mode == "majority" else soft, label_mode=mode, aligned=True)


# ------------------------------------------------------------------------------------------------------- RAF-DB

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
        name, code = parts[0], _int_field(parts[1], where, "label")
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
    _check_split(split)
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
    _require_files(paths, f"RAF-DB {prefix[:-1]} ({image_variant})")
    report = SplitReport(rows_read=len(entries))
    full = FerSplit("RAF-DB", split, FileImages(paths), np.array([c for _, c in entries]), L.RAFDB_CLASSES,
                    [str(p) for p in paths], report, aligned=image_variant == "aligned")
    return full if split == "test" else _carve(full, split, val_fraction, split_seed)


# ---------------------------------------------------------------------------------------------------- AffectNet

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


def _float_field(value: str, where: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise FerDataError(f"{where}: {what} {value!r} is not a number") from None


def _affectnet_csv(root: Path, official: str, n_classes: int, report: SplitReport):
    path = root / "Manually_Annotated_file_lists" / f"{official}.csv"
    header, rows = _read_csv(path)
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
        code = _int_field(row[6], where, "expression code")
        box = [_float_field(row[k], where, AFFECTNET_CSV_HEADER[k]) for k in range(1, 5)]
        if not _affectnet_keep(code, n_classes, where, source, report):
            continue
        if box[2] < 0 or box[3] < 0:
            report.skip("negative face width/height", source)
            continue
        lm_text = row[5].strip()
        lm = None
        if lm_text:
            values = [_float_field(v, where, "landmark") for v in lm_text.split(";") if v.strip()]
            if len(values) != 136:
                raise FerDataError(f"{where}: facial_landmarks has {len(values)} values, expected 136 (68 x, y)")
            lm = (np.array(values, dtype=np.float32).reshape(68, 2)
                  - np.array([max(round(box[0]), 0), max(round(box[1]), 0)], dtype=np.float32))
        paths.append(image_dir / row[0].strip())
        codes.append(code)
        boxes.append(box)
        landmarks.append(lm)
        sources.append(str(image_dir / row[0].strip()))
    _require_files(paths, f"AffectNet {official}")
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
    _require_files(paths, f"AffectNet {folder.name}")
    return FileImages(paths), np.array(codes, dtype=np.int64), [str(p) for p in paths], None, True


@FER_DATASETS.register("AffectNet", n_classes=8, aligned=False, paper_split="train (val carved) / official val as test")
def load_affectnet(root: str | Path, split: str = "train", release: str = "auto", n_classes: int = 8,
                   val_fraction: float = 0.1, split_seed: int = 0) -> FerSplit:
    """AffectNet, either release. ``csv``: ``Manually_Annotated_file_lists/{training,validation}.csv`` with box and
    68 landmarks, images cropped to the box; ``npy``: ``{train,val}_set/images/<id>.jpg`` + ``annotations/<id>_exp.npy``
    (224x224 crops). ``n_classes`` 8 keeps codes 0..7, 7 also drops Contempt; codes 8..10 are always dropped and
    counted. ``test`` = the official validation set; ``val`` is carved from training (stratified, ``split_seed``)."""
    _check_split(split)
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
    return full if split == "test" else _carve(full, split, val_fraction, split_seed)


# ---------------------------------------------------------------------------------------------------- front door

def load_fer_split(name: str, root: str | Path, split: str = "train", **options: Any) -> FerSplit:
    """Load ``split`` of the registered dataset ``name`` from ``root``; unknown options are rejected by name."""
    loader = FER_DATASETS.get(name)
    accepted = [p for p in inspect.signature(loader).parameters if p not in ("root", "split")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"{name} loader does not take {', '.join(unknown)}; accepted options: {', '.join(accepted)}")
    out = loader(root, split=split, **options)
    if len(out) == 0:
        raise FerDataError(f"{name} {split} split under {root} has no usable item ({out.report})")
    return out


def load_fer_splits(name: str, root: str | Path, splits: Sequence[str] = SPLITS, **options: Any) -> dict[str, FerSplit]:
    """:func:`load_fer_split` for every split in ``splits`` before any is used, so an empty split, a missing or a
    damaged image anywhere stops the run at once, before hours of training on the first split."""
    return {split: load_fer_split(name, root, split, **options) for split in splits}


# ------------------------------------------------------------------------------------------------ torch dataset

class FerTorchDataset(Dataset):
    """A torch ``Dataset`` over a :class:`FerSplit`: ``(float tensor 3xHxW, ImageNet-normalised; target)``.

    The target is an int64 class index for hard labels, or a float (C,) distribution for soft FER+ modes;
    ``label_mode == "probability"`` samples a one-hot target from the distribution at each access, as FER+ does.
    ``transform(image_uint8_hwc, generator) -> tensor`` (``augment.train_transform`` / ``eval_transform``); its
    randomness and the probability sampling come from a generator seeded by (seed, epoch, index), so a run is
    reproducible whatever the DataLoader worker order. Call :meth:`set_epoch` each epoch.
    """

    def __init__(self, split: FerSplit, transform: Callable | None = None, image_size: int = 224,
                 seed: int = 0, target: str = "auto"):
        from common.fer.augment import eval_transform

        if target not in ("auto", "hard", "soft"):
            raise ValueError(f"target must be 'auto', 'hard' or 'soft', got {target!r}")
        self.split = split
        self.transform = transform if transform is not None else eval_transform(image_size)
        self.seed, self.epoch, self.target = int(seed), 0, target
        self._pass_generator = _takes_two_arguments(self.transform)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.split)

    def _generator(self, index: int):
        import torch

        g = torch.Generator()
        # distinct, order-free stream per (seed, epoch, index)
        g.manual_seed(int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1, np.uint64)[0]
                          & 0x7FFF_FFFF_FFFF_FFFF))
        return g

    def __getitem__(self, index: int):
        import torch

        g = self._generator(index)
        image = self.split.images[index]
        image = self.transform(image, g) if self._pass_generator else self.transform(image)
        soft = self.split.soft_labels
        if self.target == "hard" or soft is None:
            if self.target == "soft":
                return image, torch.nn.functional.one_hot(torch.tensor(int(self.split.labels[index])),
                                                          self.split.n_classes).float()
            return image, torch.tensor(int(self.split.labels[index]), dtype=torch.int64)
        dist = torch.from_numpy(np.asarray(soft[index], dtype=np.float32))
        if self.split.label_mode == "probability":
            k = int(torch.multinomial(dist, 1, generator=g))
            return image, torch.nn.functional.one_hot(torch.tensor(k), len(dist)).float()
        return image, dist


def _takes_two_arguments(fn: Callable) -> bool:
    """Whether ``fn(image, generator)`` is accepted (our transforms) or only ``fn(image)`` (e.g. torchvision's)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)

"""The containers every FER loader returns: :class:`FerSplit` (images, labels, sources, soft labels, landmarks) with
its :class:`SplitReport` and content digest, the lazy image sequences behind it, the loader registry, and the seeded
stratified carving of a validation split out of an official train set."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from common.fer import labels as L
from common.fer.datasets.files import crop_box, read_image
from common.registry import Registry

FER_DATASETS = Registry("fer dataset")
SPLITS = ("train", "val", "test")
_EXAMPLES_PER_REASON = 5




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


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; accepted: {', '.join(SPLITS)}")


def carve(split_obj: FerSplit, split: str, val_fraction: float, seed: int) -> FerSplit:
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


"""Cross-validation folds of the smile datasets: read the published fold files, or generate subject-independent ones.

Published format (``docs/datasets.md``, "Smile datasets"): ``labels/<k>/train.json`` and ``labels/<k>/test.json``,
each a flat JSON dict ``{video: 1 spontaneous | 0 posed}``, k = 1..K. Folds are returned in *numeric* order of k.
The released code picks ``sorted(os.listdir("labels"))[fold]``, a string sort, so its "fold 1" (index 1) is
``labels/10`` on the 10-fold datasets; ``Fold.k`` here is always the folder's number.

Subjects (for subject independence): UvA-NEMO = the ``NNN_`` prefix; SPOS = the name between the class word and the
take number (``posed_tomas-37`` -> ``tomas``); BBC = one subject per video; MMI = a session -> subject table
(``subjects.csv`` with columns video,subject) when given, else every session is its own subject (with a warning:
then independence cannot be guaranteed).
"""
from __future__ import annotations

import csv
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from common import io as atomic


class FoldError(ValueError):
    """A fold file or fold definition is malformed; the message names the file and the problem."""


class SubjectLeakageError(AssertionError):
    """A subject appears on both sides of a split."""


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold: ``k`` is 1-based, in numeric order."""

    k: int
    train: list[str]
    test: list[str]
    labels: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)
    source: str = "published"  # or "generated"


# --------------------------------------------------------------------------------------------- reading fold files
def _read_label_file(path: Path) -> dict[str, int]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FoldError(f"{path}: cannot read fold file ({exc})") from exc
    if not text.strip():
        raise FoldError(f"{path}: empty fold file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FoldError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not data:
        raise FoldError(f"{path}: expected a non-empty JSON object {{video: 0|1}}")
    for video, label in data.items():
        if isinstance(label, bool) or label not in (0, 1):
            raise FoldError(f"{path}: video {video!r} has label {label!r}; labels must be 0 (posed) or 1 (spontaneous)")
    return {str(v): int(lab) for v, lab in data.items()}


def load_folds(labels_dir: str | Path) -> list[Fold]:
    """Read ``labels_dir/<k>/{train,test}.json`` into folds sorted by the integer k.

    Hidden entries and plain files (e.g. ``.DS_Store``, shipped in the released ``labels/``) are ignored; a folder
    whose name is not an integer, a missing file, a video in both train and test, or a video with different labels
    in two files is an error naming the file.
    """
    labels_dir = Path(labels_dir)
    if not labels_dir.is_dir():
        raise FoldError(f"{labels_dir}: fold folder not found")
    entries = [p for p in labels_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    bad = [p.name for p in entries if not re.fullmatch(r"\d+", p.name)]
    if bad:
        raise FoldError(f"{labels_dir}: fold folders must be named 1..K, found {sorted(bad)}")
    if not entries:
        raise FoldError(f"{labels_dir}: no fold folders (expected labels/<k>/train.json and test.json)")
    folds: list[Fold] = []
    seen: dict[str, tuple[int, Path]] = {}
    for d in sorted(entries, key=lambda p: int(p.name)):
        parts = {}
        for split in ("train", "test"):
            path = d / f"{split}.json"
            if not path.is_file():
                raise FoldError(f"{path}: missing fold file")
            parts[split] = _read_label_file(path)
            for video, lab in parts[split].items():
                if video in seen and seen[video][0] != lab:
                    raise FoldError(f"{path}: video {video!r} is labelled {lab} here but {seen[video][0]} in "
                                    f"{seen[video][1]}")
                seen.setdefault(video, (lab, path))
        both = sorted(set(parts["train"]) & set(parts["test"]))
        if both:
            raise FoldError(f"{d}: {len(both)} video(s) in both train.json and test.json, e.g. {both[:3]}")
        labels = {**parts["train"], **parts["test"]}
        folds.append(Fold(int(d.name), sorted(parts["train"]), sorted(parts["test"]), labels, "published"))
    return folds


FOLD_ORDERS = ("numeric", "lexicographic")


def released_order(folds: Sequence[Fold]) -> list[Fold]:
    """The folds in the released code's order (string sort of the folder names): its ``--fold i`` is item i."""
    return sorted(folds, key=lambda f: str(f.k))


def order_folds(folds: Sequence[Fold], order: str = "numeric") -> list[Fold]:
    """``folds`` in numeric order of k, or ``lexicographic`` = the release's order (1, 10, 2, ... on 10 folds).

    Only the order changes: every fold keeps its folder number ``k`` (and its per-fold seed), so results of the two
    orders line up fold by fold.
    """
    if order == "numeric":
        return sorted(folds, key=lambda f: f.k)
    if order == "lexicographic":
        return released_order(folds)
    raise FoldError(f"unknown fold order {order!r}; accepted: {', '.join(FOLD_ORDERS)}")


def labels_of_folds(folds: Sequence[Fold]) -> dict[str, int]:
    """The union of the folds' labels (consistency was checked when reading)."""
    out: dict[str, int] = {}
    for f in folds:
        out.update(f.labels)
    return dict(sorted(out.items()))


def write_folds(folds: Sequence[Fold], labels_dir: str | Path) -> None:
    """Write folds in the published format (each file atomically)."""
    labels_dir = Path(labels_dir)
    for f in folds:
        for split, videos in (("train", f.train), ("test", f.test)):
            atomic.write_json(labels_dir / str(f.k) / f"{split}.json", {v: int(f.labels[v]) for v in videos})


# ------------------------------------------------------------------------------------------------------ subjects
def uva_subject(video: str) -> str:
    m = re.match(r"(\d+)_", video)
    if not m:
        raise FoldError(f"UvA-NEMO video {video!r} has no NNN_ subject prefix")
    return m.group(1)


def spos_subject(video: str) -> str:
    m = re.match(r"[A-Za-z]+_(.+)-\d+$", video)
    if not m:
        raise FoldError(f"SPOS video {video!r} does not look like <posed|spontaneous>_<subject>-<take>")
    return m.group(1)


SUBJECT_RULES = {"UvA-NEMO": uva_subject, "SPOS": spos_subject, "BBC": lambda v: v}


def read_subjects_csv(path: str | Path) -> dict[str, str]:
    """``video,subject`` rows (header required) -> {video: subject}."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"video", "subject"} <= set(reader.fieldnames):
            raise FoldError(f"{path}: expected a header with columns video,subject; got {reader.fieldnames}")
        out = {}
        for i, row in enumerate(reader, start=2):
            video, subject = (row.get("video") or "").strip(), (row.get("subject") or "").strip()
            if not video or not subject:
                raise FoldError(f"{path}: row {i} has an empty video or subject")
            out[video] = subject
    return out


def subjects_for(dataset: str, videos: Sequence[str], table: Mapping[str, str] | None = None,
                 warn: bool = True) -> dict[str, str]:
    """{video: subject} from a table (wins when given), else the dataset's naming rule, else one subject per video."""
    if table is not None:
        missing = [v for v in videos if v not in table]
        if missing:
            raise FoldError(f"subjects table has no row for {len(missing)} video(s), e.g. {missing[:3]}")
        return {v: str(table[v]) for v in videos}
    rule = SUBJECT_RULES.get(dataset)
    if rule is None:
        if warn:
            warnings.warn(f"{dataset}: no subject table (subjects.csv); every video is treated as its own subject, "
                          "so subject independence of generated folds cannot be guaranteed", stacklevel=2)
        return {v: v for v in videos}
    return {v: rule(v) for v in videos}


# ---------------------------------------------------------------------------------------------- independence
def assert_subject_independent(train: Sequence[str], other: Sequence[str], subjects: Mapping[str, str],
                               what: str = "test") -> None:
    """Raise :class:`SubjectLeakageError` if a subject has videos in both ``train`` and ``other``."""
    shared = sorted({subjects[v] for v in train} & {subjects[v] for v in other})
    if shared:
        raise SubjectLeakageError(f"{len(shared)} subject(s) in both train and {what}: {shared[:5]}")


# ------------------------------------------------------------------------------------------------ generation
def _assign_groups(videos, labels, subjects, n_parts: int, seed: int) -> list[list[str]]:
    """Stratified group partition: subjects (groups) are dealt to parts so each part's class counts approach
    the overall proportions. Deterministic for a given seed (shuffle, then a stable sort by group size)."""
    groups: dict[str, list[str]] = {}
    for v in sorted(videos):
        groups.setdefault(subjects[v], []).append(v)
    names = sorted(groups)
    rng = np.random.default_rng(seed)
    names = [names[i] for i in rng.permutation(len(names))]
    names.sort(key=lambda g: -len(groups[g]))  # big groups first, ties in shuffled order
    counts = {g: np.array([sum(labels[v] == c for v in groups[g]) for c in (0, 1)]) for g in names}
    total = sum(counts.values())
    target = total / n_parts
    part_counts = np.zeros((n_parts, 2))
    parts: list[list[str]] = [[] for _ in range(n_parts)]
    for i, g in enumerate(names):
        if i < n_parts:  # the n largest groups seed one part each, so no part stays empty
            j = i
        else:
            # increase of the squared distance to the per-part target: the part most short of this group's classes
            cost = ((part_counts + counts[g] - target) ** 2).sum(1) - ((part_counts - target) ** 2).sum(1)
            cost = cost + 1e-9 * part_counts.sum(1)  # tie-break: the emptier part, then the lower index
            j = int(np.argmin(cost))
        part_counts[j] += counts[g]
        parts[j].extend(groups[g])
    return [sorted(p) for p in parts]


def generate_folds(videos: Sequence[str], labels: Mapping[str, int], subjects: Mapping[str, str], n_folds: int,
                   seed: int = 0) -> list[Fold]:
    """Stratified, deterministic, subject-independent k-fold (every subject in exactly one test fold)."""
    videos = sorted(videos)
    missing = [v for v in videos if v not in labels or v not in subjects]
    if missing:
        raise FoldError(f"no label or subject for {len(missing)} video(s), e.g. {missing[:3]}")
    n_subjects = len({subjects[v] for v in videos})
    if n_folds < 2:
        raise FoldError(f"need at least 2 folds, got {n_folds}")
    if n_subjects < n_folds:
        raise FoldError(f"cannot make {n_folds} subject-independent folds from {n_subjects} subject(s)")
    parts = _assign_groups(videos, labels, subjects, n_folds, seed)
    lab = {v: int(labels[v]) for v in videos}
    folds = []
    for k, test in enumerate(parts, start=1):
        test_set = set(test)
        train = [v for v in videos if v not in test_set]
        assert_subject_independent(train, test, subjects, f"test of generated fold {k}")
        folds.append(Fold(k, train, test, lab, "generated"))
    return folds


def subject_independent_split(videos: Sequence[str], subjects: Mapping[str, str], labels: Mapping[str, int],
                              val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Carve a validation set of whole subjects (about ``val_fraction`` of the videos, stratified) from ``videos``.

    Uses the same stratified group assignment as :func:`generate_folds` with k = round(1 / val_fraction) parts
    (at most the number of subjects) and takes one part as validation.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    videos = sorted(videos)
    n_subjects = len({subjects[v] for v in videos})
    if n_subjects < 2:
        raise FoldError(f"a subject-independent validation split needs at least 2 subjects, got {n_subjects}")
    n_parts = int(min(max(round(1.0 / val_fraction), 2), n_subjects))
    parts = _assign_groups(videos, labels, subjects, n_parts, seed)
    val = parts[int(np.random.default_rng([seed, 1]).integers(n_parts))]
    val_set = set(val)
    train = [v for v in videos if v not in val_set]
    assert_subject_independent(train, val, subjects, "validation")
    return train, val

"""Smile datasets (UvA-NEMO, MMI, SPOS, BBC) in the published landmark format: loading, checks, fingerprint.

Layout of a dataset root (``docs/datasets.md``)::

    npy/<video>.mp4.npy (UvA-NEMO) | npy/<video>.npy (others)   one (T, 478, 3) float array per video
    npy/<video>.json                optional sidecar {"fps", "n_frames", "frames_without_face", "width", ...}
    labels/<k>/train.json, test.json  optional published folds {video: 1 spontaneous | 0 posed}
    labels.json                     optional flat {video: 0|1} (used when there are no fold files)
    subjects.csv                    optional video,subject table (MMI sessions -> subjects)

Arrays are opened memory-mapped (``np.load(mmap_mode="r")``), so a full UvA-NEMO trains with bounded memory.
Without fold files, folds are generated (stratified, subject-independent, deterministic: :mod:`common.smile.folds`).
D-Markers are computed once per (data fingerprint, variant, scope, clip length), kept in memory and cached on disk
under ``datasets/cache/dmarker/`` (:mod:`common.smile.dmarker_table`); training only looks rows up. The torch clip
dataset is :class:`common.smile.clip_dataset.SmileClips`.

Frame rate caveat (paper D-Marker, omega = fps): in MMI the spontaneous videos are 29 fps and the posed ones
25 fps (RPT §4.1), so duration features in seconds differ by class through the frame rate alone.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from common.face.topology import N_POINTS
from common.paths import DATASETS_DIR
from common.provenance import file_digest, file_identity
from common.registry import Registry
from common.smile.clips import CLIP_LEN, norm_range
from common.smile.dmarker import SCOPES, check_variant
from common.smile.dmarker_table import DMarkerTable, compute_table, load_cached_table, save_cached_table
from common.smile.folds import (Fold, FoldError, assert_subject_independent, generate_folds, labels_of_folds,
                                load_folds, read_subjects_csv, subjects_for)

__all__ = ["SMILE_DATASETS", "SmileDataset", "Fold", "DataError", "FoldError", "load_smile_dataset",
           "check_array_header", "check_array_values"]

SMILE_DATASETS = Registry("smile dataset")
DEFAULT_CACHE_DIR = DATASETS_DIR / "cache"


UNLISTED_ARRAYS = ("error", "ignore")
# absolute path -> file_identity of the version whose values were found finite (checked once per process and version)
_FINITE_CHECKED: dict[str, tuple[int, ...]] = {}


class DataError(ValueError):
    """A landmark file, sidecar or dataset folder is unusable; the message names the file and the problem."""


# -------------------------------------------------------------------------------------------------- dataset specs
@dataclass(frozen=True)
class SmileDatasetSpec:
    """What differs between the four datasets: file suffix, fold count, default fps and name-derived labels."""

    name: str
    array_suffix: str
    n_folds: int
    default_fps: float
    label_from_name: Callable[[str], int | None] | None = None

    def __call__(self, root: str | Path, **options) -> "SmileDataset":
        return SmileDataset(self, root, **options)


@dataclass(frozen=True)
class _label_by_words:  # noqa: N801  (a picklable rule, so DataLoader workers can be spawned)
    """Label from a word in the (lower-cased) video name: 1 if ``spontaneous`` occurs, 0 if ``posed`` does."""

    posed: str
    spontaneous: str

    def __call__(self, video: str) -> int | None:
        low = video.lower()
        if self.spontaneous in low:
            return 1
        if self.posed in low:
            return 0
        return None


_SPECS = [
    SmileDatasetSpec("UvA-NEMO", ".mp4.npy", 10, 50.0, _label_by_words("deliberate", "spontaneous")),
    # MMI labels are not derivable from the session ids; RPT: spontaneous 29 fps, posed 25 fps (see module note).
    SmileDatasetSpec("MMI", ".npy", 9, 25.0, None),
    SmileDatasetSpec("SPOS", ".npy", 7, 25.0, _label_by_words("posed_", "spontaneous_")),
    SmileDatasetSpec("BBC", ".npy", 10, 25.0, _label_by_words("posed_", "genuine_")),
]
for _spec in _SPECS:
    SMILE_DATASETS.register(_spec.name, suffix=_spec.array_suffix, n_folds=_spec.n_folds)(_spec)


# ------------------------------------------------------------------------------------------------- array checks
def check_array_header(path: str | Path) -> tuple[int, np.dtype]:
    """Open ``path`` memory-mapped and check it is a (T >= 1, 478, 3) floating array; return (T, dtype)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if size == 0:
        raise DataError(f"{path}: empty file")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/EOFError/OSError for damaged headers
        raise DataError(f"{path}: not a readable .npy array ({type(exc).__name__}: {exc})") from exc
    if arr.ndim != 3 or arr.shape[1:] != (N_POINTS, 3) or arr.shape[0] < 1:
        raise DataError(f"{path}: shape {arr.shape}, expected (T >= 1, {N_POINTS}, 3)")
    if arr.dtype.kind != "f":
        raise DataError(f"{path}: dtype {arr.dtype}, expected a floating type")
    return int(arr.shape[0]), arr.dtype


def check_array_values(arr: np.ndarray, path: str | Path) -> None:
    """Raise naming the file and first frame if ``arr`` holds NaN or inf."""
    finite = np.isfinite(arr).all(axis=tuple(range(1, arr.ndim)))
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DataError(f"{path}: NaN or inf in {bad.size} frame(s), first at frame {int(bad[0])}")


def check_file_values(path: str | Path) -> None:
    """:func:`check_array_values` on the file's current content, skipped when this version was already checked."""
    key, ident = os.path.abspath(path), file_identity(path)
    if _FINITE_CHECKED.get(key) == ident:
        return
    check_array_values(np.load(path, mmap_mode="r", allow_pickle=False), path)
    _FINITE_CHECKED[key] = ident



# ------------------------------------------------------------------------------------------------------ dataset
class SmileDataset:
    """One smile dataset on disk. See the module docstring for the layout; :func:`load_smile_dataset` builds it.

    Attributes: ``name``, ``root``, ``videos`` (sorted), ``labels`` {video: 0|1}, ``subjects`` {video: subject},
    ``folds`` (list of :class:`Fold`, numeric order), ``problems`` (non-fatal findings, e.g. arrays with no label).
    """

    def __init__(self, spec: SmileDatasetSpec, root: str | Path, *, cache_dir: str | Path | None | bool = None,
                 strict: bool | None = None, n_folds: int | None = None, fold_seed: int = 0,
                 array_suffix: str | None = None, unlisted_arrays: str = "error"):
        self.spec = spec
        self.name = spec.name
        self.root = Path(root)
        self.suffix = array_suffix or spec.array_suffix
        self.problems: list[str] = []
        self._cache_dir = None if cache_dir is False else Path(cache_dir) if cache_dir else DEFAULT_CACHE_DIR
        self._tables: dict[tuple, DMarkerTable] = {}
        self._fingerprint: str | None = None
        self._values_checked = False
        if unlisted_arrays not in UNLISTED_ARRAYS:
            raise ValueError(f"unlisted_arrays must be one of {', '.join(UNLISTED_ARRAYS)}, got {unlisted_arrays!r}")
        if strict is not None:  # the older switch: strict=True is "error", strict=False is "ignore"
            unlisted_arrays = "error" if strict else "ignore"

        npy_dir = self.root / "npy"
        if not npy_dir.is_dir():
            raise DataError(f"{npy_dir}: landmark folder not found (expected npy/<video>{self.suffix})")
        arrays = {p.name[: -len(self.suffix)]: p for p in npy_dir.iterdir()
                  if p.name.endswith(self.suffix) and not p.name.startswith(".")}
        labels_dir = self.root / "labels"
        table_path = self.root / "subjects.csv"
        subject_table = read_subjects_csv(table_path) if table_path.is_file() else None

        if labels_dir.is_dir():
            folds = load_folds(labels_dir)
            labels = labels_of_folds(folds)
            for video in labels:
                if video not in arrays:
                    k, split = next((f.k, "train" if video in f.train else "test") for f in folds
                                    if video in f.labels)
                    raise DataError(f"{labels_dir / str(k) / (split + '.json')}: names video {video!r} but "
                                    f"{npy_dir / (video + self.suffix)} does not exist")
        else:
            folds = None
            labels = self._labels_without_folds(arrays)

        extra = sorted(set(arrays) - set(labels))
        if extra:
            source = labels_dir if labels_dir.is_dir() else self.root / "labels.json"
            msg = (f"{len(extra)} array(s) in {npy_dir} have no label/fold entry in {source}, e.g. "
                   f"{[arrays[v].name for v in extra[:3]]}")
            if unlisted_arrays == "error":
                raise DataError(msg + " (fix the fold/label files, or set unlisted_arrays='ignore' to leave them out)")
            msg += "; ignored (unlisted_arrays='ignore')"
            warnings.warn(msg, stacklevel=3)
            self.problems.append(msg)
        self.videos = sorted(labels)
        self.labels = {v: int(labels[v]) for v in self.videos}
        self._paths = {v: arrays[v] for v in self.videos}
        self._n_frames = {v: check_array_header(self._paths[v])[0] for v in self.videos}
        self._sidecars = {v: self._read_sidecar(v) for v in self.videos}

        if folds is None:
            self.subjects = subjects_for(self.name, self.videos, subject_table, warn=True)
            k = n_folds or spec.n_folds
            n_subjects = len(set(self.subjects.values()))
            if n_subjects < k:
                warnings.warn(f"{self.name}: only {n_subjects} subjects, generating {n_subjects} folds instead of {k}",
                              stacklevel=3)
                k = n_subjects
            self.folds = generate_folds(self.videos, self.labels, self.subjects, k, seed=fold_seed)
        else:
            self.subjects = subjects_for(self.name, self.videos, subject_table, warn=False)
            for f in folds:  # published folds are checked too: no subject in both train and test
                assert_subject_independent(f.train, f.test, self.subjects, f"test of {labels_dir / str(f.k)}")
            self.folds = folds

    # ---- construction helpers
    def _labels_without_folds(self, arrays: Mapping[str, Path]) -> dict[str, int]:
        flat = self.root / "labels.json"
        if flat.is_file():
            try:
                data = json.loads(flat.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise DataError(f"{flat}: not valid JSON ({exc})") from exc
            bad = [(v, lab) for v, lab in data.items() if isinstance(lab, bool) or lab not in (0, 1)]
            if bad:
                raise DataError(f"{flat}: labels must be 0 or 1, got {bad[:3]}")
            missing = [v for v in data if v not in arrays]
            if missing:
                raise DataError(f"{flat}: names video {missing[0]!r} but "
                                f"{self.root / 'npy' / (missing[0] + self.suffix)} does not exist")
            return {str(v): int(lab) for v, lab in data.items()}
        rule = self.spec.label_from_name
        if rule is None:
            raise DataError(f"{self.root}: no labels/ fold files and no labels.json, and {self.name} labels cannot be "
                            "derived from the video names")
        out = {}
        for video in arrays:
            lab = rule(video)
            if lab is None:
                raise DataError(f"{arrays[video]}: cannot derive a posed/spontaneous label from the name {video!r}")
            out[video] = lab
        if not out:
            raise DataError(f"{self.root / 'npy'}: no arrays named *{self.suffix}")
        return out

    def _read_sidecar(self, video: str) -> dict:
        path = self._paths[video]
        for cand in (path.with_name(video + ".json"), path.with_name(path.name + ".json")):
            if cand.is_file():
                try:
                    data = json.loads(cand.read_text(encoding="utf-8"))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{cand}: sidecar is not valid JSON ({exc})") from exc
                if not isinstance(data, dict):
                    raise DataError(f"{cand}: sidecar must be a JSON object")
                fps = data.get("fps")
                if fps is not None and not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
                    raise DataError(f"{cand}: fps must be a positive number, got {fps!r}")
                n = data.get("n_frames")
                if n is not None and n != self._n_frames[video]:
                    raise DataError(f"{cand}: n_frames={n} but {path.name} has {self._n_frames[video]} frames")
                return data
        return {}

    # ---- per-video access
    def array_path(self, video: str) -> Path:
        return self._paths[video]

    def n_frames(self, video: str) -> int:
        return self._n_frames[video]

    def sidecar(self, video: str) -> dict:
        return dict(self._sidecars[video])

    def fps(self, video: str) -> float:
        """Frame rate from the sidecar, else the dataset's nominal rate (UvA 50, others 25)."""
        return float(self._sidecars[video].get("fps") or self.spec.default_fps)

    def aspect(self, video: str) -> float:
        """Frame width / height from the sidecar (undoes MediaPipe's per-axis normalisation), else 1."""
        side = self._sidecars[video]
        w, h = side.get("width"), side.get("height")
        return float(w) / float(h) if w and h else 1.0

    def array(self, video: str, check_values: bool = False) -> np.ndarray:
        """The (T, 478, 3) array, memory-mapped read-only.

        A fresh map per call (opening costs tens of microseconds): pages are released when the caller drops it, so
        iterating a whole dataset never keeps every file mapped (bounded resident memory).
        """
        if check_values:
            check_file_values(self._paths[video])
        return np.load(self._paths[video], mmap_mode="r", allow_pickle=False)

    def check_values(self) -> None:
        """NaN/inf check of every array (once per file version and process); every D-Marker table, computed or
        read from the cache, passes through it, so a cache hit never hides a damaged file."""
        if not self._values_checked:
            for v in self.videos:
                check_file_values(self._paths[v])
            self._values_checked = True

    def fingerprint(self) -> str:
        """sha256 over every array's full content (BLAKE2b file digests), sidecars, labels and folds.

        The digests are memoised on (inode, size, mtime, ctime), so an unchanged file is read once per process.
        """
        if self._fingerprint is None:
            h = hashlib.sha256(f"{self.name}|{self.suffix}".encode())
            for v in self.videos:
                h.update(f"|{v}|{self._n_frames[v]}|{file_digest(self._paths[v])}|".encode())
                h.update(json.dumps(self._sidecars[v], sort_keys=True, default=str).encode())
                h.update(str(self.labels[v]).encode())
            for f in self.folds:
                h.update(f"|fold{f.k}:".encode() + "\0".join(sorted(f.test)).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def fold(self, k: int) -> Fold:
        for f in self.folds:
            if f.k == k:
                return f
        raise KeyError(f"{self.name} has folds {[f.k for f in self.folds]}, not {k}")

    # ---- D-Markers
    def dmarker_table(self, variant: str = "paper", scope: str = "video", clip_len: int = CLIP_LEN,
                      progress: bool = True, norm: str = "uva-nemo") -> DMarkerTable:
        """Every video's D-Markers (scope "video": 1 row; "clip": one row per window start), computed once.

        ``norm`` names the landmark normalisation (:data:`common.smile.clips.LANDMARK_NORMS`) the released variant
        is measured in (the release computes it on the normalised clip); the paper variant does not depend on it.
        """
        check_variant(variant)
        if scope not in SCOPES:
            raise ValueError(f"unknown D-Marker scope {scope!r}; accepted: {', '.join(SCOPES)}")
        norm_range(norm)  # unknown names fail here
        key = (variant, scope, int(clip_len), norm if variant == "released" else "-")
        self.check_values()  # on every path: computed, memory or disk cache
        if key in self._tables:
            return self._tables[key]
        table = load_cached_table(self, self._cache_dir, key)
        if table is None:
            table = compute_table(self, key, progress)
            if self._cache_dir is not None:
                save_cached_table(self, self._cache_dir, table)
                table = load_cached_table(self, self._cache_dir, key) or table  # serve from the file-backed map
        self._tables[key] = table
        return table


def load_smile_dataset(name: str, root: str | Path, **options) -> SmileDataset:
    """Load dataset ``name`` (a :data:`SMILE_DATASETS` key) from ``root``.

    Options: ``cache_dir`` (D-Marker cache root; False = memory only), ``unlisted_arrays`` ("error", the default:
    an array with no label/fold entry stops the load naming it; "ignore": it is left out, with a warning and an entry
    in ``problems``; the older ``strict=True/False`` means error/ignore), ``n_folds`` / ``fold_seed`` (for generated
    folds), ``array_suffix``.
    """
    return SMILE_DATASETS.get(name)(root, **options)

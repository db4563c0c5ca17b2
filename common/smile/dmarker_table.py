"""A smile dataset's precomputed D-Markers (:class:`DMarkerTable`) and their on-disk cache.

Computed once per (data fingerprint, variant, scope, clip length, normalisation) by :func:`compute_table` and cached
under ``<cache_dir>/dmarker/<dataset>-<fingerprint>/`` (:func:`save_cached_table`); :func:`load_cached_table` serves
a cache only when its fingerprint, formula revision, shape and values check out, so a stale or damaged file is
recomputed. :meth:`common.smile.data.SmileDataset.dmarker_table` is the entry point.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from common import io as atomic
from common.provenance import file_identity
from common.smile.clips import norm_range
from common.smile.dmarker import DMARKER_DIM, FORMULA_REVISION, video_dmarkers

# absolute path -> file_identity of the cache file version whose values were found finite (once per process)
_FINITE_CHECKED: dict[str, tuple[int, ...]] = {}


@dataclass
class DMarkerTable:
    """All precomputed D-Markers of a dataset: ``features`` (rows, 225) and ``offsets`` {video: (first row, n)}."""

    variant: str
    scope: str
    clip_len: int
    norm: str  # landmark normalisation (LANDMARK_NORMS key) the released variant measures in; "-" for paper
    features: np.ndarray
    offsets: Mapping[str, tuple[int, int]]
    path: Path | None = None  # the on-disk cache the features are memory-mapped from, if any

    def rows(self, video: str) -> np.ndarray:
        start, n = self.offsets[video]
        return self.features[start:start + n]

    def __getstate__(self):  # spawned DataLoader workers re-map the cache file instead of receiving a copy
        state = dict(self.__dict__)
        if self.path is not None:
            state["features"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.features is None:
            self.features = np.load(self.path, mmap_mode="r")



def _finite_once(path: str | Path, arr: np.ndarray) -> bool:
    """Whether ``arr`` (the content of ``path``) is all finite; remembered per file version."""
    key, ident = os.path.abspath(path), file_identity(path)
    if _FINITE_CHECKED.get(key) == ident:
        return True
    if not np.isfinite(arr).all():
        return False
    _FINITE_CHECKED[key] = ident
    return True


def cache_paths(dataset, cache_dir: Path | None, key) -> tuple[Path, Path] | None:
    """(features .npy, index .json) of the cached table ``key`` = (variant, scope, clip_len, norm); None = no cache."""
    if cache_dir is None:
        return None
    variant, scope, clip_len, norm = key
    folder = cache_dir / "dmarker" / f"{dataset.name}-{dataset.fingerprint()[:20]}"
    stem = f"{variant}-{scope}-L{clip_len}" + ("" if norm in ("-", "uva-nemo") else f"-{norm}")
    revision = FORMULA_REVISION[variant]
    stem += f"-r{revision}" if revision > 1 else ""  # a changed formula never reads an older cache
    return folder / f"{stem}.npy", folder / f"{stem}.json"


def load_cached_table(dataset, cache_dir: Path | None, key) -> DMarkerTable | None:
    """The cached table ``key`` of ``dataset`` memory-mapped, or None when absent, stale or damaged."""
    paths = cache_paths(dataset, cache_dir, key)
    if paths is None or not paths[1].is_file() or not paths[0].is_file():
        return None
    try:
        index = json.loads(paths[1].read_text())
        feats = np.load(paths[0], mmap_mode="r")
    except (OSError, ValueError):
        return None  # an unreadable cache is recomputed
    if not isinstance(index, dict) or index.get("fingerprint") != dataset.fingerprint():
        return None
    offsets = {v: tuple(index["offsets"][v]) for v in dataset.videos if v in index.get("offsets", {})}
    if len(offsets) != len(dataset.videos) or feats.ndim != 2 or feats.shape[1] != DMARKER_DIM:
        return None
    if feats.shape[0] != sum(n for _, n in offsets.values()) or not _finite_once(paths[0], feats):
        return None  # a damaged or foreign cache file is recomputed
    return DMarkerTable(*key, feats, offsets, paths[0])


def save_cached_table(dataset, cache_dir: Path | None, table: DMarkerTable) -> None:
    """Write ``table`` (features, then its index) atomically into the cache of ``dataset``."""
    paths = cache_paths(dataset, cache_dir, (table.variant, table.scope, table.clip_len, table.norm))
    if paths is None:
        return
    atomic.save_npy(paths[0], np.ascontiguousarray(table.features))
    atomic.write_json(paths[1], {"dataset": dataset.name, "fingerprint": dataset.fingerprint(),
                                 "variant": table.variant, "scope": table.scope, "clip_len": table.clip_len,
                                 "norm": table.norm, "revision": FORMULA_REVISION[table.variant],
                                 "offsets": {v: list(o) for v, o in table.offsets.items()}})


def compute_table(dataset, key, progress: bool) -> DMarkerTable:
    """Every video's D-Markers of ``dataset`` for ``key`` in one preallocated table (values already checked)."""
    from tqdm.auto import tqdm

    variant, scope, clip_len, norm = key
    lo_hi = norm_range("uva-nemo" if norm == "-" else norm)
    offsets, row = {}, 0
    for v in dataset.videos:  # rows per video are known from the headers: fill one preallocated table
        n_rows = 1 if scope == "video" else max(dataset._n_frames[v] - clip_len + 1, 1)
        offsets[v] = (row, n_rows)
        row += n_rows
    features = np.empty((row, DMARKER_DIM), dtype=np.float32)
    for v in tqdm(dataset.videos, desc=f"D-Marker {dataset.name} {variant}/{scope}", disable=not progress,
                  leave=False):
        seq = np.array(dataset.array(v))  # read once (then unmapped); values were checked by check_values
        start, n_rows = offsets[v]
        features[start:start + n_rows] = video_dmarkers(seq, variant, dataset.fps(v), scope, clip_len,
                                                        aspect=dataset.aspect(v), norm_range=lo_hi)
    return DMarkerTable(variant, scope, clip_len, norm, features, offsets)

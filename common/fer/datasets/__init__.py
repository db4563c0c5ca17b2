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

Modules: :mod:`.split` (the containers, the registry, the carving), :mod:`.files` (reading and checking files),
one loader module per dataset family (:mod:`.fer2013` with FER+, :mod:`.rafdb`, :mod:`.affectnet`) and
:mod:`.torch_dataset`. This module is the front door: it registers the loaders and looks them up by name.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Sequence

from common.fer.datasets import affectnet, fer2013, rafdb  # noqa: F401 - each registers its loaders, in this order
from common.fer.datasets.files import FerDataError
from common.fer.datasets.split import FER_DATASETS, SPLITS, FerSplit, SplitReport
from common.fer.datasets.torch_dataset import FerTorchDataset

__all__ = ["FER_DATASETS", "SPLITS", "FerDataError", "FerSplit", "FerTorchDataset", "SplitReport", "load_fer_split",
           "load_fer_splits"]


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


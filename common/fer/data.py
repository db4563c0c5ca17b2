"""HAFEM data: load, subsample and preprocess the splits of one dataset; build the loaders."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from common import engine, paths
from common.provenance import fingerprint_splits
from common.seeding import torch_generator


@dataclass
class FerData:
    """The three splits of one dataset, preprocessed, subsampled as configured, with a content fingerprint."""

    dataset: str
    train: Any
    val: Any
    test: Any
    classes: tuple[str, ...]
    fingerprint: str
    reports: dict[str, Any] = field(default_factory=dict)

    @property
    def class_counts(self) -> np.ndarray:
        return np.bincount(self.train.labels, minlength=len(self.classes))


def split_options(dataset: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`common.fer.datasets.load_fer_split` for ``dataset`` under ``cfg``."""
    if dataset == "FERPlus":
        return {"label_mode": cfg["ferplus_mode"]}
    if dataset == "AffectNet":
        return {"n_classes": cfg["affectnet_classes"]}
    return {}


def stratified_cap(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Indices of at most ``cap`` items, each class keeping its share (at least one item while the cap allows)."""
    n = len(labels)
    if cap <= 0 or cap >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    chosen = []
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(np.floor(counts * cap / n).astype(int), 1)
    for c, q in zip(classes, quota):
        idx = np.flatnonzero(labels == c)
        chosen.append(rng.choice(idx, size=min(q, idx.size), replace=False))
    out = np.sort(np.concatenate(chosen))
    return out[:cap] if out.size > cap else out


def generated_data(dataset: str, cfg: Mapping[str, Any], override: str = "") -> bool:
    """Whether ``dataset`` is read from the generated (synthetic) demo data folder."""
    return paths.data_root(dataset, cfg["profile"], override or None).is_relative_to(paths.DEMO_DATA_DIR)


def dataset_root(dataset: str, cfg: Mapping[str, Any], override: str = "") -> Path:
    root = paths.data_root(dataset, cfg["profile"], override or None)
    if not root.exists() and generated_data(dataset, cfg, override):
        from datasets.demo import ensure_demo_data  # generated on first use

        ensure_demo_data([dataset])
    if not root.exists():
        raise FileNotFoundError(f"{dataset}: data folder {root} does not exist (set data_root, or put the official "
                                f"files under {paths.REAL_DATA_DIR / dataset})")
    return root


def _fingerprint(splits: Mapping[str, Any]) -> str:
    return fingerprint_splits(splits)  # whole content: image bytes / pixels, labels, sources, preprocessing


def alignment_for(split, requested: str) -> str:
    """``auto``: no detection for aligned crops, the dataset's 68 landmarks where it ships them, else MediaPipe."""
    if requested != "auto":
        return requested
    if split.aligned:
        return "none"
    if split.landmarks is not None and any(lm is not None for lm in split.landmarks):
        return "68point"
    return "5point"


def load_data(cfg: Mapping[str, Any], dataset: str | None = None, data_root: str | None = None,
              splits: tuple[str, ...] = ("train", "val", "test")) -> FerData:
    """Load, subsample (``max_train`` / ``max_eval``, stratified, seeded by ``seed``) and preprocess the splits."""
    from common.fer.datasets import load_fer_splits
    from common.fer.preprocess import PreprocessConfig, preprocess_split

    dataset = dataset or cfg["dataset"]
    root = dataset_root(dataset, cfg, cfg["data_root"] if data_root is None else data_root)
    raw = load_fer_splits(dataset, root, splits, **split_options(dataset, cfg))  # every split checked before any use
    loaded = {}
    for split in splits:
        s = raw[split]
        cap = cfg["max_train"] if split == "train" else cfg["max_eval"]
        keep = stratified_cap(s.labels, cap, cfg["seed"])
        if keep.size < len(s):
            s = s.subset(keep)
            s.report.note(f"demo cap: stratified subsample of {keep.size} items (max_{'train' if split == 'train' else 'eval'}"
                          f"={cap})")
        pre = PreprocessConfig(alignment=alignment_for(s, cfg["alignment"]), size=max(cfg["input_size"], 64))
        loaded[split] = preprocess_split(s, pre, on_no_face=cfg["on_no_face"], progress=True)
    first = loaded[splits[0]]
    return FerData(dataset, loaded.get("train"), loaded.get("val"), loaded.get("test"), tuple(first.classes),
                   _fingerprint(loaded), {k: v.report.as_dict() for k, v in loaded.items()})


def make_loaders(cfg: Mapping[str, Any], data: FerData, seed: int, augment: bool | None = None):
    """(train, val, test) DataLoaders; the engine calls ``set_epoch(epoch)`` on their datasets before every pass, so
    augmentations differ per epoch yet replay per seed. Pinned memory and workers from :func:`engine.loader_options`."""
    from common.fer.augment import eval_transform, train_transform
    from common.fer.datasets import FerTorchDataset

    size = cfg["input_size"]
    augment = cfg["augment"] if augment is None else augment
    train_tf = train_transform(size, scale_with_size=size < 224) if augment else eval_transform(size)
    train_ds = FerTorchDataset(data.train, train_tf, size, seed=seed)
    loader_kw = {"batch_size": cfg["batch_size"],
                 **engine.loader_options(engine.resolve_device(cfg["device"]), cfg["num_workers"])}
    train = DataLoader(train_ds, shuffle=True, drop_last=len(train_ds) > cfg["batch_size"],
                       generator=torch_generator(seed), **loader_kw)
    val = DataLoader(FerTorchDataset(data.val, eval_transform(size), size, seed=seed), **loader_kw)
    test = DataLoader(FerTorchDataset(data.test, eval_transform(size), size, seed=seed), **loader_kw)
    return train, val, test

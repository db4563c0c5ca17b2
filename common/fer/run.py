"""The HAFEM notebook's steps as functions. Each writes raw results through :mod:`common.results`.

One run folder per seed (``seed`` in the folder name and in every row), so paired tests across methods pair rows by
seed. The notebook's own ``seed`` comes last: when its ``run.json`` is complete, every seed is done.

Per seed: the full model (val-selected checkpoint, test metrics, predictions, confusion matrix, curves); on FER2013
only, as in the paper, the ablation ladder, the timm Table-3 baselines and the zero-shot tests on RAF-DB / AffectNet.
In the notebook's own seed: the optuna search of the loss weights and lr (validation only), Grad-CAM / SHAP and the
model's batch-1 speed. The test split is used for reporting only, never for selection.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from common import paths
from common.checkpoints import save_checkpoint
from common.fer import labels as L
from common.fer.engine import FitResult, TrainSettings, fit, predict_proba
from common.fer.loss import LOSSES
from common.fer.metrics import classification_metrics, confusion, predictions_record
from common.fer.model import DEMO_BASELINES, MODELS, NOT_REBUILDABLE, PAPER_BASELINES, build_fer_model, count_parameters
from common.fer.study import COMPARISON_DATASET, HAFEM, parse_seeds
from common.provenance import fingerprint_splits
from common.results import RunWriter, open_run
from common.seeding import seed_everything, torch_generator

MAIN_VARIANT = "hafem"


# ------------------------------------------------------------------------------------------------------------ data


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


def loader_options(dataset: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
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


def dataset_root(dataset: str, cfg: Mapping[str, Any], override: str = "") -> Path:
    root = paths.data_root(dataset, cfg["profile"], override or None)
    if not root.exists() and cfg["profile"] == "demo" and not override:
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
    from common.fer.datasets import load_fer_split
    from common.fer.preprocess import PreprocessConfig, preprocess_split

    dataset = dataset or cfg["dataset"]
    root = dataset_root(dataset, cfg, cfg["data_root"] if data_root is None else data_root)
    loaded = {}
    for split in splits:
        s = load_fer_split(dataset, root, split, **loader_options(dataset, cfg))
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
    from common.fer.augment import eval_transform, train_transform
    from common.fer.datasets import FerTorchDataset

    size = cfg["input_size"]
    augment = cfg["augment"] if augment is None else augment
    train_tf = train_transform(size, scale_with_size=size < 224) if augment else eval_transform(size)
    train_ds = FerTorchDataset(data.train, train_tf, size, seed=seed)
    loader_kw = {"batch_size": cfg["batch_size"], "num_workers": cfg["num_workers"]}
    train = _EpochLoader(DataLoader(train_ds, shuffle=True, drop_last=len(train_ds) > cfg["batch_size"],
                                    generator=torch_generator(seed), **loader_kw), train_ds)
    val = DataLoader(FerTorchDataset(data.val, eval_transform(size), size, seed=seed), **loader_kw)
    test = DataLoader(FerTorchDataset(data.test, eval_transform(size), size, seed=seed), **loader_kw)
    return train, val, test


class _EpochLoader:
    """A DataLoader that tells its dataset the epoch, so augmentations differ per epoch yet replay per seed."""

    def __init__(self, loader: DataLoader, dataset):
        self.loader, self.dataset, self.epoch = loader, dataset, 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        self.dataset.set_epoch(self.epoch)
        self.epoch += 1
        return iter(self.loader)


# ------------------------------------------------------------------------------------------------------- training


def resolve_device(cfg: Mapping[str, Any]) -> str:
    if cfg["device"] == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' requested but torch sees no CUDA device")
    return "cuda" if cfg["device"] == "auto" and torch.cuda.is_available() else (
        "cpu" if cfg["device"] == "auto" else cfg["device"])


def settings_from(cfg: Mapping[str, Any], seed: int, epochs: int | None = None, lr_max: float | None = None,
                  progress: bool = True) -> TrainSettings:
    epochs = epochs or cfg["epochs"]
    return TrainSettings(epochs=epochs, lr_max=lr_max or cfg["lr_max"], lr_min=cfg["lr_min"],
                         warmup_epochs=min(cfg["warmup_epochs"], epochs), weight_decay=cfg["weight_decay"],
                         layer_decay=cfg["layer_decay"], patience=cfg["patience"], mixup_prob=cfg["mixup_prob"],
                         mixup_alpha=cfg["mixup_alpha"], seed=seed, device=resolve_device(cfg), progress=progress)


@dataclass
class Trained:
    variant: str
    model: torch.nn.Module
    result: FitResult
    loss: str


def train_variant(cfg: Mapping[str, Any], data: FerData, variant: str, seed: int, loss: str | None = None,
                  loss_weights: tuple[float, float, float] | None = None, epochs: int | None = None,
                  lr_max: float | None = None, model_name: str | None = None, loaders=None,
                  progress: bool = True) -> Trained:
    """Seed, build ``model_name`` (default ``variant``), train with early stopping on validation macro-F1."""
    seed_everything(seed)
    model = build_fer_model(cfg, len(data.classes), model_name or variant)
    if progress:
        print(f"{variant} (seed {seed}): {model.weights_note}")
    loss = loss or cfg["loss"]
    weights = loss_weights or (cfg["w_ce"], cfg["w_center"], cfg["w_dls"])
    criterion = LOSSES.create(loss, num_classes=len(data.classes), feat_dim=model.feature_dim,
                              class_counts=data.class_counts, weights=weights, smoothing=cfg["smoothing"])
    train, val, _ = loaders or make_loaders(cfg, data, seed)
    result = fit(model, criterion, train, val, settings_from(cfg, seed, epochs, lr_max, progress),
                 desc=f"{variant} seed {seed}")
    return Trained(variant, model, result, loss)


def record_evaluation(writer: RunWriter, cfg: Mapping[str, Any], data: FerData, trained: Trained, test_loader,
                      label: str | None = None) -> dict[str, float]:
    """Test metrics of the val-selected model as rows (selection ``val``), plus predictions / confusion / curves."""
    variant = label or trained.variant
    device = resolve_device(cfg)
    proba, y = predict_proba(trained.model, test_loader, device, desc=f"test {variant}")
    metrics = classification_metrics(y, proba, data.classes)
    extra = {"params_total": count_parameters(trained.model), "train_seconds": trained.result.train_seconds,
             "epochs_run": trained.result.epochs_run, "best_epoch": trained.result.best_epoch}
    writer.add(0, {**metrics, **extra}, n_train=len(data.train), n_test=len(y), selection="val", variant=variant)
    writer.save_json(f"predictions/{variant}.json", predictions_record(y, proba, data.classes))
    writer.save_json(f"confusion/{variant}.json", confusion(y, proba.argmax(1), data.classes))
    writer.save_json(f"curves/{variant}.json", {"best_epoch": trained.result.best_epoch, **trained.result.curves})
    return metrics


def save_model(writer: RunWriter, cfg: Mapping[str, Any], data: FerData, trained: Trained) -> Path:
    """The val-selected weights with config and provenance, rebuildable by ``model_from_checkpoint``."""
    return save_checkpoint(writer.folder / "checkpoints" / f"{trained.variant}.pt", study="hafem", config=dict(cfg),
                           model_state=trained.result.best_state, provenance=writer.provenance, selection="val",
                           variant=trained.variant, classes=list(data.classes), best_epoch=trained.result.best_epoch,
                           best_val_f1=trained.result.best_val_f1,
                           weights_note=getattr(trained.model, "weights_note", ""))


# ------------------------------------------------------------------------------------------------- comparisons


def ablation_ladder(cfg: Mapping[str, Any]) -> list[dict[str, str]]:
    """The paper's ladder (ResNet-50 -> EfficientNet-B5 -> + transformer -> + CBAM -> + compound loss).

    Rungs 1-4 train with cross-entropy; rung 5 is the full model (its rows are copied, not retrained). In ``demo``
    the ResNet rung is ResNet-18 and the EfficientNet rungs use the configured (Lite0) backbone; names say so.
    """
    resnet = "resnet50" if cfg["profile"] == "paper" else "resnet18"
    bb = cfg["backbone"]
    return [
        {"label": f"ablation1_{resnet}", "model": resnet, "loss": "ce"},
        {"label": f"ablation2_{bb}", "model": "backbone_only", "loss": "ce"},
        {"label": f"ablation3_{bb}+transformer", "model": "hafem_no_cbam", "loss": "ce"},
        {"label": f"ablation4_{bb}+transformer+cbam", "model": "hafem", "loss": "ce"},
        {"label": f"ablation5_{bb}+transformer+cbam+{cfg['loss']}_loss", "model": MAIN_VARIANT, "loss": cfg["loss"]},
    ]


def baseline_names(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    return PAPER_BASELINES if cfg["profile"] == "paper" else DEMO_BASELINES


def comparisons_enabled(cfg: Mapping[str, Any]) -> bool:
    return cfg["comparisons"] == "all" or (cfg["comparisons"] == "auto" and cfg["dataset"] == COMPARISON_DATASET)


def run_ablation(writer: RunWriter, cfg: Mapping[str, Any], data: FerData, seed: int, loaders,
                 main_metrics: Mapping[str, float], main: Trained) -> dict[str, dict[str, float]]:
    out = {}
    for rung in ablation_ladder(cfg):
        if rung["model"] == MAIN_VARIANT and rung["loss"] == cfg["loss"]:
            record_evaluation(writer, cfg, data, main, loaders[2], label=rung["label"])
            out[rung["label"]] = dict(main_metrics)
            continue
        trained = train_variant(cfg, data, rung["label"], seed, loss=rung["loss"], model_name=rung["model"],
                                loaders=loaders)
        out[rung["label"]] = record_evaluation(writer, cfg, data, trained, loaders[2])
    return out


def run_baselines(writer: RunWriter, cfg: Mapping[str, Any], data: FerData, seed: int, loaders
                  ) -> dict[str, dict[str, float]]:
    """Table-3 baselines that timm can rebuild, trained with cross-entropy on the same data and schedule."""
    out = {}
    for name in baseline_names(cfg):
        trained = train_variant(cfg, data, name, seed, loss="ce", loaders=loaders)
        out[name] = record_evaluation(writer, cfg, data, trained, loaders[2])
    return out


def run_zeroshot(writer: RunWriter, cfg: Mapping[str, Any], data: FerData, trained: Trained
                 ) -> dict[str, dict[str, float]]:
    """Test the FER2013-trained model on other datasets' test splits mapped into the common 7 classes."""
    from common.fer.augment import eval_transform
    from common.fer.datasets import FerTorchDataset

    if tuple(data.classes) != L.COMMON7:
        raise ValueError(f"zero-shot needs a model trained in the common 7-class order, got {data.classes}")
    out = {}
    for target in [t for t in cfg["zeroshot_targets"].split(",") if t]:
        tdata = load_data(cfg, target, data_root="", splits=("test",))
        test = tdata.test.to_common7()
        loader = DataLoader(FerTorchDataset(test, eval_transform(cfg["input_size"]), cfg["input_size"]),
                            batch_size=cfg["batch_size"], num_workers=cfg["num_workers"])
        proba, y = predict_proba(trained.model, loader, resolve_device(cfg), desc=f"zero-shot {target}")
        metrics = classification_metrics(y, proba, L.COMMON7, prefix=f"zeroshot/{target}/")
        writer.add(0, metrics, n_train=len(data.train), n_test=len(y), selection="val", variant=trained.variant)
        writer.save_json(f"predictions/zeroshot-{target}-{trained.variant}.json",
                         predictions_record(y, proba, L.COMMON7))
        out[target] = {**metrics, "dropped": test.report.as_dict()}
    return out


# ------------------------------------------------------------------------------------------------------- study


def seed_order(cfg: Mapping[str, Any]) -> list[int]:
    """The configured seeds with the notebook's own ``seed`` last (it may be outside ``seeds``: then it is added)."""
    seeds = [s for s in parse_seeds(cfg) if s != cfg["seed"]]
    return seeds + [cfg["seed"]]


def seed_config(cfg: Mapping[str, Any], seed: int) -> Mapping[str, Any]:
    return HAFEM.resolve({k: v for k, v in {**dict(cfg), "seed": seed}.items() if k != "study"})


def setup(cfg: Mapping[str, Any]) -> None:
    """Threads, and flush-to-zero for subnormal floats: the ImageNet Lite0 weights drive activations and Adam moments
    into the subnormal range, where x86 CPUs run up to ~10x slower (measured: one demo epoch 45 s -> 6 s)."""
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    torch.set_flush_denormal(True)


@dataclass
class SeedOutcome:
    seed: int
    folder: Path
    metrics: dict[str, float]
    trained: Trained
    data: FerData
    loaders: tuple
    comparisons: dict[str, Any] = field(default_factory=dict)
    explained: dict[str, Any] = field(default_factory=dict)
    writer: RunWriter | None = None


def run_seed(cfg: Mapping[str, Any], seed: int, data: FerData | None = None, root: Path | None = None,
             finish: bool = True) -> SeedOutcome:
    """Everything of one seed in its own run folder; ``finish=False`` leaves it open for the notebook-only steps."""
    scfg = seed_config(cfg, seed)
    data = data or load_data(scfg)
    writer = open_run(scfg, data.fingerprint, root=root)
    loaders = make_loaders(scfg, data, seed)
    main = train_variant(scfg, data, MAIN_VARIANT, seed, loaders=loaders)
    metrics = record_evaluation(writer, scfg, data, main, loaders[2])
    save_model(writer, scfg, data, main)
    comparisons: dict[str, Any] = {}
    if comparisons_enabled(scfg):
        comparisons["ablation"] = run_ablation(writer, scfg, data, seed, loaders, metrics, main)
        comparisons["baselines"] = run_baselines(writer, scfg, data, seed, loaders)
        comparisons["zeroshot"] = run_zeroshot(writer, scfg, data, main)
    outcome = SeedOutcome(seed, writer.folder, metrics, main, data, loaders, comparisons, writer=writer)
    if finish:
        finish_run(writer, scfg, data, weights_note=main.model.weights_note)
    return outcome


def finish_run(writer: RunWriter, cfg: Mapping[str, Any], data: FerData, **extra: Any) -> Path:
    weights = {}
    for name in [MAIN_VARIANT] + (list(baseline_names(cfg)) if comparisons_enabled(cfg) else []):
        weights[name] = MODELS.info(name).get("paper_name", name)
    return writer.finish(data_reports=data.reports, classes=list(data.classes),
                         ablation=[r["label"] for r in ablation_ladder(cfg)] if comparisons_enabled(cfg) else [],
                         baselines_not_rebuildable=NOT_REBUILDABLE, paper_names=weights,
                         synthetic_data=cfg["profile"] == "demo", **extra)


def run_study(cfg: Mapping[str, Any], root: Path | None = None, data: FerData | None = None) -> list[SeedOutcome]:
    """Train and evaluate every seed, then tune / explain / time in the notebook's own seed; return the outcomes.

    The last outcome (the notebook's seed) keeps its run open until the tuning, explanations and speed are written.
    """
    from common.fer import explain, speed, tuning

    setup(cfg)
    data = data or load_data(cfg)
    outcomes = []
    order = seed_order(cfg)
    for seed in order:
        outcomes.append(run_seed(cfg, seed, data, root, finish=seed != cfg["seed"]))
    last = outcomes[-1]
    writer = last.writer
    extra: dict[str, Any] = {}
    if comparisons_enabled(cfg) and cfg["tune_trials"] > 0:
        study = tuning.search(cfg, data, n_trials=cfg["tune_trials"], epochs=cfg["tune_epochs"])
        writer.save_json("tuning.json", study)
        extra["tuning_best"] = study["best"]
    if cfg["explain"]:
        last.explained = explain.explain_model(last.trained.model, data, cfg, writer.folder)
        extra["explain_files"] = last.explained["files"]
    if cfg["measure_speed"]:
        fps = speed.model_fps(last.trained.model, cfg["input_size"], batch_size=1, device=resolve_device(cfg),
                              seconds=2.0)
        e2e = speed.end_to_end_fps(speed.torch_infer(last.trained.model.cpu()), speed.sample_frames(2),
                                   cfg["input_size"], batch_size=1, seconds=2.0)
        writer.add(0, {"fps_model": fps["fps"], "fps_end_to_end": e2e["fps"]}, n_train=len(data.train), n_test=0,
                   selection="", variant=MAIN_VARIANT)
        extra["speed"] = {"model": fps, "end_to_end": e2e}
    finish_run(writer, seed_config(cfg, cfg["seed"]), data, weights_note=last.trained.model.weights_note, **extra)
    return outcomes


# ------------------------------------------------------------------------------------------------------- display


def summary_table(outcomes: list[SeedOutcome]) -> Any:
    """A per-seed pandas table of the test metrics of every variant (display only; no statistics across runs)."""
    import pandas as pd

    rows = []
    for o in outcomes:
        rows.append({"seed": o.seed, "variant": MAIN_VARIANT, **{k: o.metrics[k] for k in
                                                                  ("accuracy", "f1_macro", "auc_ovr")}})
        for section in ("ablation", "baselines"):
            for name, m in o.comparisons.get(section, {}).items():
                rows.append({"seed": o.seed, "variant": name, **{k: m[k] for k in ("accuracy", "f1_macro", "auc_ovr")}})
    return pd.DataFrame(rows)


def data_summary(data: FerData) -> Any:
    """Class counts per split and the loaders' kept/skipped report."""
    import pandas as pd

    counts = {name: np.bincount(s.labels, minlength=len(data.classes)) for name, s in
              (("train", data.train), ("val", data.val), ("test", data.test)) if s is not None}
    table = pd.DataFrame(counts, index=list(data.classes))
    table.loc["total"] = table.sum()
    for name, report in data.reports.items():
        print(name, report)
    return table


def per_class_f1(metrics: Mapping[str, float], classes: tuple[str, ...]):
    import matplotlib.pyplot as plt

    names = [c for c in classes if f"f1/{c}" in metrics]
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.bar(names, [metrics[f"f1/{c}"] for c in names], color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_ylabel("test F1")
    ax.set_title(f"per-class F1 (accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['f1_macro']:.3f})")
    fig.tight_layout()
    return fig


def confusion_matrix(folder: Path, variant: str):
    import json

    import matplotlib.pyplot as plt

    cm = json.loads((Path(folder) / "confusion" / f"{variant}.json").read_text())
    m = np.asarray(cm["matrix"], dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(cm["classes"])), cm["classes"], rotation=45, ha="right")
    ax.set_yticks(range(len(cm["classes"])), cm["classes"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix ({variant}, test)")
    fig.tight_layout()
    return fig


def curves(folder: Path, variant: str):
    import json

    import matplotlib.pyplot as plt

    c = json.loads((Path(folder) / "curves" / f"{variant}.json").read_text())
    epochs = np.arange(1, len(c["loss"]) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3))
    for key in ("loss", "ce", "center", "dls"):
        if key in c:
            a.plot(epochs, c[key], label=key)
    a.set_xlabel("epoch")
    a.set_title("training loss terms (unweighted)")
    a.legend(fontsize=7)
    b.plot(epochs, c["val_f1_macro"], marker="o")
    b.axvline(c["best_epoch"], color="gray", ls="--", label=f"selected epoch {c['best_epoch']}")
    b.set_xlabel("epoch")
    b.set_title("validation macro-F1")
    b.legend(fontsize=7)
    fig.tight_layout()
    return fig


def comparisons(outcomes: list[SeedOutcome]) -> Any:
    """Per-seed test metrics of the ablation rungs and baselines, and the zero-shot rows (display only)."""
    import pandas as pd

    rows = []
    for o in outcomes:
        for section in ("ablation", "baselines"):
            for name, m in o.comparisons.get(section, {}).items():
                rows.append({"section": section, "variant": name, "seed": o.seed, "accuracy": m["accuracy"],
                             "f1_macro": m["f1_macro"], "auc_ovr": m["auc_ovr"]})
        for target, m in o.comparisons.get("zeroshot", {}).items():
            p = f"zeroshot/{target}/"
            rows.append({"section": "zero-shot", "variant": f"{MAIN_VARIANT} -> {target}", "seed": o.seed,
                         "accuracy": m[p + "accuracy"], "f1_macro": m[p + "f1_macro"], "auc_ovr": m[p + "auc_ovr"]})
    if not rows:
        print("no comparisons in this notebook (the paper runs them on FER2013 only)")
        return None
    return pd.DataFrame(rows)


def run_record(folder: Path) -> dict[str, Any]:
    """The tuning result and speed recorded in the run's ``run.json``."""
    import json

    record = json.loads((Path(folder) / "run.json").read_text())
    keys = ("status", "tuning_best", "speed", "wall_seconds", "n_rows")
    return {k: record[k] for k in keys if k in record}

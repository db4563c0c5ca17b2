"""HAFEM comparisons (FER2013 only, as in the paper): the ablation ladder, the timm Table-3 baselines and the
zero-shot tests of the FER2013 model on other datasets."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from common import engine
from common.fer import labels as L
from common.fer.data import FerData, load_data
from common.fer.engine import predict_proba
from common.fer.metrics import classification_metrics, predictions_record
from common.fer.study import COMPARISON_DATASET
from common.fer.training import MAIN_VARIANT, Trained, record_evaluation, train_variant
from common.results import RunWriter


def ablation_ladder(cfg: Mapping[str, Any]) -> list[dict[str, str]]:
    """The paper's ladder (ResNet-50 -> EfficientNet-B5 -> + transformer -> + CBAM -> + compound loss).

    Rungs 1-4 train with cross-entropy; rung 5 is the full model (its rows are copied, not retrained). The ResNet
    rung is ``ablation_resnet`` (paper resnet50, demo resnet18) and the EfficientNet rungs use the configured
    backbone; the labels name both. Each rung records its CBAM placement (``cbam``); the CBAM rungs' labels say
    ``cbam_in_stages`` when the CBAMs sit inside the backbone (``cbam_placement=stages``).
    """
    resnet = cfg["ablation_resnet"]
    bb = cfg["backbone"]
    placement = cfg.get("cbam_placement", "after_backbone")
    cbam = "cbam" if placement == "after_backbone" else "cbam_in_stages"
    return [
        {"label": f"ablation1_{resnet}", "model": resnet, "loss": "ce", "cbam": "none"},
        {"label": f"ablation2_{bb}", "model": "backbone_only", "loss": "ce", "cbam": "none"},
        {"label": f"ablation3_{bb}+transformer", "model": "hafem_no_cbam", "loss": "ce", "cbam": "none"},
        {"label": f"ablation4_{bb}+transformer+{cbam}", "model": "hafem", "loss": "ce", "cbam": placement},
        {"label": f"ablation5_{bb}+transformer+{cbam}+{cfg['loss']}_loss", "model": MAIN_VARIANT, "loss": cfg["loss"],
         "cbam": placement},
    ]


def baseline_names(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``baselines`` parameter as a tuple of model names (paper: the four Table-3 models timm rebuilds)."""
    return tuple(n for n in cfg["baselines"].split(",") if n)


def comparisons_enabled(cfg: Mapping[str, Any]) -> bool:
    return cfg["comparisons"] == "all" or (cfg["comparisons"] == "auto" and cfg["dataset"] == COMPARISON_DATASET)


def compares_in_seed(cfg: Mapping[str, Any], seed: int) -> bool:
    """Whether seed ``seed`` of the notebook configured by ``cfg`` trains the comparisons (``comparison_seeds``)."""
    return comparisons_enabled(cfg) and (cfg["comparison_seeds"] == "all" or seed == cfg["seed"])


def run_ablation(writer: RunWriter, cfg: Mapping[str, Any], data: FerData, seed: int, loaders,
                 main_metrics: Mapping[str, float], main: Trained,
                 state_dir: Path | None = None) -> dict[str, dict[str, float]]:
    out = {}
    for rung in ablation_ladder(cfg):
        if rung["model"] == MAIN_VARIANT and rung["loss"] == cfg["loss"]:
            record_evaluation(writer, cfg, data, main, loaders[2], label=rung["label"])
            out[rung["label"]] = dict(main_metrics)
            continue
        trained = train_variant(cfg, data, rung["label"], seed, loss=rung["loss"], model_name=rung["model"],
                                loaders=loaders, state_dir=state_dir)
        out[rung["label"]] = record_evaluation(writer, cfg, data, trained, loaders[2])
    return out


def run_baselines(writer: RunWriter, cfg: Mapping[str, Any], data: FerData, seed: int, loaders,
                  state_dir: Path | None = None) -> dict[str, dict[str, float]]:
    """Table-3 baselines that timm can rebuild, trained with cross-entropy on the same data and schedule."""
    out = {}
    for name in baseline_names(cfg):
        trained = train_variant(cfg, data, name, seed, loss="ce", loaders=loaders, state_dir=state_dir)
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
        proba, y = predict_proba(trained.model, loader, engine.resolve_device(cfg["device"]),
                                 desc=f"zero-shot {target}")
        metrics = classification_metrics(y, proba, L.COMMON7, prefix=f"zeroshot/{target}/")
        writer.add(0, metrics, n_train=len(data.train), n_test=len(y), selection="val", variant=trained.variant)
        writer.save_json(f"predictions/zeroshot-{target}-{trained.variant}.json",
                         predictions_record(y, proba, L.COMMON7))
        out[target] = {**metrics, "dropped": test.report.as_dict()}
    return out

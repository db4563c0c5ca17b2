"""The RAF-DB fine-tune of HAFEM §4: "fine-tune HAFEM for 20 epochs on the training data from the RAF-DB, and then
apply it to test data, with the result of 95.1%".

The FER2013-trained HAFEM checkpoint (``finetune_from``: ``latest`` = the complete FER2013 run of the same study,
profile and seed under the results folder, or a path) is loaded into a model of this run's architecture; every
architecture setting and the class count must agree, else a ValueError names the mismatch. The two datasets order
the same seven classes differently, so the classifier rows are permuted by class name. It then trains
``finetune_epochs`` epochs on RAF-DB train with this run's schedule (selection on RAF-DB validation), and is evaluated
on RAF-DB test as the variant :data:`FINETUNE_VARIANT`.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from common.checkpoints import load_checkpoint
from common.fer.study import COMPARISON_DATASET
from common.paths import RAW_RESULTS_DIR

FINETUNE_VARIANT = "hafem_finetune"
# what must agree between the checkpoint's config and this run's (defaults for checkpoints older than the key)
ARCHITECTURE = {"backbone": None, "dim": None, "depth": None, "heads": None, "ff_dim": None, "token_grid": None,
                "cbam_placement": "after_backbone", "cbam_stages": 2}


def latest_source(cfg: Mapping[str, Any], root: Path | None = None) -> Path:
    """The HAFEM checkpoint of the one complete FER2013 run with this run's profile and seed (sorted by path, so the
    choice never depends on file times); none or several of matching architecture is an error asking for a path."""
    from common.results import is_complete

    base = Path(root) if root is not None else RAW_RESULTS_DIR
    folder = base / "hafem" / cfg["profile"] / COMPARISON_DATASET
    found = sorted(p for p in folder.glob(f"*/seed{cfg['seed']}-*/checkpoints/hafem.pt")
                   if is_complete(p.parent.parent))
    fitting = [p for p in found if not architecture_mismatch(load_checkpoint(p, "hafem")["config"], cfg)]
    if not fitting:
        why = (f"{len(found)} found, none of this run's architecture" if found else "none found")
        raise FileNotFoundError(f"finetune_from='latest': no complete {COMPARISON_DATASET} HAFEM run of profile "
                                f"{cfg['profile']!r}, seed {cfg['seed']} under {folder} ({why}); run the "
                                f"{COMPARISON_DATASET} notebook first or pass finetune_from=<checkpoint path>")
    if len(fitting) > 1:
        raise ValueError(f"finetune_from='latest': {len(fitting)} fitting checkpoints ({', '.join(map(str, fitting))});"
                         " pass finetune_from=<one of them>")
    return fitting[0]


def architecture_mismatch(source: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    """'key: checkpoint X, this run Y' for every architecture setting that differs."""
    out = []
    for key, default in ARCHITECTURE.items():
        a, b = source.get(key, default), cfg.get(key, default)
        if a != b:
            out.append(f"{key}: checkpoint {a!r}, this run {b!r}")
    return out


def source_state(path: Path, cfg: Mapping[str, Any], classes: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], str]:
    """The checkpoint's weights with the classifier rows in ``classes`` order, after checking it fits this run."""
    payload = load_checkpoint(path, "hafem")
    variant = payload.get("variant", payload["config"].get("model", "hafem"))
    if variant != "hafem":
        raise ValueError(f"{path}: a {variant!r} checkpoint, the fine-tune starts from the full HAFEM model")
    mismatch = architecture_mismatch(payload["config"], cfg)
    if mismatch:
        raise ValueError(f"{path}: the checkpoint's architecture differs from this run's: {'; '.join(mismatch)}")
    source_classes = tuple(payload.get("classes") or ())
    if len(source_classes) != len(classes):
        raise ValueError(f"{path}: the checkpoint has {len(source_classes)} classes {list(source_classes)}, "
                         f"{cfg['dataset']} has {len(classes)} {list(classes)}")
    if set(source_classes) != set(classes):
        raise ValueError(f"{path}: class names differ: checkpoint {sorted(source_classes)}, {cfg['dataset']} "
                         f"{sorted(classes)}")
    order = torch.tensor([source_classes.index(c) for c in classes])
    state = dict(payload["model_state"])
    for key in ("head.weight", "head.bias"):
        state[key] = state[key][order]
    dataset = payload["config"].get("dataset", "?")
    return state, f"fine-tuned from the {dataset} HAFEM checkpoint {path} (best epoch {payload.get('best_epoch')})"


def run_finetune(writer, cfg: Mapping[str, Any], data, seed: int, loaders, root: Path | None = None,
                 state_dir: Path | None = None) -> dict[str, Any]:
    """Fine-tune, record the test evaluation as :data:`FINETUNE_VARIANT`, return what run.json keeps of it."""
    from common.fer.training import record_evaluation, train_variant

    path = latest_source(cfg, root) if cfg["finetune_from"] == "latest" else Path(cfg["finetune_from"]).expanduser()
    state, note = source_state(path, cfg, tuple(data.classes))
    trained = train_variant(cfg, data, FINETUNE_VARIANT, seed, model_name="hafem", epochs=cfg["finetune_epochs"],
                            loaders=loaders, state_dir=state_dir, init_state=state, init_note=note)
    metrics = record_evaluation(writer, cfg, data, trained, loaders[2])
    return {"source": str(path), "epochs": cfg["finetune_epochs"], "note": note, "accuracy": metrics["accuracy"]}

"""The HAFEM study's parameters and profiles (one notebook per FER dataset).

``paper`` holds the published settings (HAFEM §3–4); where the paper is silent (batch size, dropout, smoothing ε,
number of seeds) the value is ours and its help text says so. ``demo`` shrinks everything so the four demo notebooks
stay small: the Lite0 backbone with its packaged ImageNet weights (a real fine-tune), a slim 2-layer transformer,
112-px inputs, 4 epochs and the generated sets' ~1000 training images (fewer did not learn; datasets/demo/README.md);
the FER2013 comparisons train in the notebook's own seed only (``comparison_seeds``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from common.config import STUDIES, Param, StudySpec, base_params, non_negative, positive, unit_interval
from common.engine_params import engine_params

FER_DATASET_NAMES = ("FER2013", "RAF-DB", "AffectNet", "FERPlus")
COMPARISON_DATASET = "FER2013"  # the paper's comparison table, ablation and zero-shot study use FER2013 only
FINETUNE_DATASET = "RAF-DB"  # the paper fine-tunes the FER2013 model on RAF-DB only (§4)
VARIANT = "hafem"  # the only value of `variant` (a label, see _shared_params); common.fer.training.MAIN_VARIANT


def _model_names() -> list[str]:
    from common.fer.model import MODELS

    return MODELS.list()


def _timm_name(value: str) -> str | None:
    import timm

    return None if timm.is_model(value) else "not a timm model name (timm.list_models() lists them)"


def _seed_list(value: str) -> str | None:
    if value == "":
        return None
    try:
        seeds = [int(s) for s in value.split(",")]
    except ValueError:
        return "must be comma-separated non-negative integers, e.g. '0,1,2'"
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        return "seeds must be distinct and >= 0"
    return None


def _targets(value: str) -> str | None:
    bad = [t for t in value.split(",") if t and t not in ("RAF-DB", "AffectNet")]
    return f"zero-shot targets must be RAF-DB and/or AffectNet, got {bad}" if bad else None


def _pretrained(value: str) -> str | None:
    # a file path is checked (exists, fits the architecture) when the model is built
    return "use 'none' for no pretrained weights" if value == "" else None


def _baseline_list(value: str) -> str | None:
    from common.fer.model import MODELS

    timm_models = [n for n in MODELS.list() if MODELS.info(n).get("kind") == "timm"]
    unknown = [n for n in value.split(",") if n and n not in timm_models]
    return f"unknown timm baselines {unknown}; accepted: {', '.join(timm_models)}" if unknown else None


def _loss_weight_source(value: str) -> str | None:
    from common.fer.loss_weights import check_source

    return check_source(value)


def _cv_grid(value: str) -> str | None:
    from common.fer.loss_weights import parse_grid

    try:
        parse_grid(value)
    except ValueError as exc:
        return str(exc)
    return None


def _cv_folds(value: int) -> str | None:
    return None if value >= 2 else "cross-validation needs at least 2 folds"


def _finetune_from(value: str) -> str | None:
    # a file path is checked (exists, same architecture and classes) when the fine-tune starts
    return "use 'none' for no fine-tune" if value == "" else None


def parse_seeds(cfg: Mapping[str, Any]) -> list[int]:
    """``seeds`` as a list; empty means just ``seed``."""
    return [int(s) for s in cfg["seeds"].split(",")] if cfg["seeds"] else [int(cfg["seed"])]


def _cross_check(cfg: Mapping[str, Any]) -> str | None:
    if cfg["dim"] % cfg["heads"]:
        return f"dim={cfg['dim']} must be divisible by heads={cfg['heads']}"
    if cfg["comparisons"] == "all" and cfg["dataset"] != COMPARISON_DATASET:
        return (f"comparisons='all' (ablation, baselines, zero-shot, tuning) runs on {COMPARISON_DATASET} only, as in "
                f"the paper; dataset is {cfg['dataset']!r}. Use 'auto' or 'none'.")
    if cfg["warmup_epochs"] > cfg["epochs"]:
        return f"warmup_epochs={cfg['warmup_epochs']} exceeds epochs={cfg['epochs']}"
    if cfg["lr_min"] > cfg["lr_max"]:
        return f"lr_min={cfg['lr_min']} exceeds lr_max={cfg['lr_max']}"
    if cfg["loss_weights"] != "fixed" and cfg["loss"] != "compound":
        return f"loss_weights={cfg['loss_weights']!r} chooses compound-loss weights; loss is {cfg['loss']!r}"
    if cfg["finetune_from"] not in ("none", "latest") and cfg["dataset"] != FINETUNE_DATASET:
        return (f"finetune_from fine-tunes a {COMPARISON_DATASET} checkpoint on {FINETUNE_DATASET} (paper §4); "
                f"dataset is {cfg['dataset']!r}")
    return None


def _shared_params() -> list[Param]:
    """:func:`base_params`, with ``variant`` a fixed label: this study has one method, so the variant only names the
    run (``results/raw/hafem/<profile>/<dataset>/hafem/``, ``notebooks/hafem/<dataset>.ipynb``) and the rows of the
    main model; the ablation rungs, baselines and fine-tune are trained inside that run and named in their rows."""
    help_text = (f"fixed label {VARIANT!r} (the study's one method): names the run folder and the main model's rows; "
                 "ablation rungs, baselines and the fine-tune are sections of the same run")
    params = base_params(lambda: FER_DATASET_NAMES, lambda: (VARIANT,), "FER2013", VARIANT)
    return [replace(p, help=help_text) if p.name == "variant" else p for p in params]


HAFEM = StudySpec("hafem", template="hafem_study.py", cross_check=_cross_check)
HAFEM.add(*_shared_params())
HAFEM.add(
    Param("epochs", int, None, "training epochs (paper 140)", check=positive),
    Param("seeds", str, None, "comma-separated seeds trained per configuration, e.g. '0,1,2'; empty = just `seed`",
          check=_seed_list),
    # model
    Param("backbone", str, None, "timm backbone of HAFEM (paper efficientnet_b5)", check=_timm_name),
    Param("pretrained", str, None, "backbone weights: none (random init), a local timm checkpoint file, "
          "'package:efficientnet_lite0' (packaged Lite0 weights) or a timm tag 'timm:<model>.<tag>' (looked for "
          "under weights/timm/, else fetched by timm; offline it fails at once saying what to place where). "
          "paper: timm:efficientnet_b5.sw_in12k, timm's closest to the paper's ImageNet-21K B5", check=_pretrained),
    Param("baseline_pretrained", str, None, "weights of the timm baselines and the ResNet ablation rung: none, "
          "timm (each model's default timm ImageNet tag, fetched only on request) or a folder with "
          "<timm name>.safetensors / .pth files"),
    Param("ablation_resnet", str, None, "the ablation ladder's first rung (paper ResNet-50)",
          choices=("resnet18", "resnet50")),
    Param("baselines", str, None, "comma-separated Table-3 baselines trained on FER2013 (model names)",
          check=_baseline_list),
    Param("input_size", int, None, "square input side in pixels (paper 224)", check=positive),
    Param("token_grid", int, None, "feature map pooled to k x k tokens (paper 7 -> 49 tokens)", check=positive),
    Param("dim", int, None, "transformer width d_model (paper 2048)", check=positive),
    Param("depth", int, None, "transformer layers (paper 6)", check=positive),
    Param("heads", int, None, "attention heads (paper 8)", check=positive),
    Param("ff_dim", int, None, "transformer feed-forward width (paper 4096)", check=positive),
    Param("cbam_placement", str, None, "after_backbone = one CBAM on the backbone's final map; stages = also a "
          "CBAM after each of the backbone's last `cbam_stages` stages, inside it (paper: 'EfficientNet-B5, with "
          "inserted CBAM modules')", choices=("after_backbone", "stages")),
    Param("cbam_stages", int, 2, "backbone stages followed by a CBAM when cbam_placement=stages (the paper does not "
          "say how many; 2 is ours)", check=positive),
    Param("dropout", float, 0.1, "dropout in the transformer and before the head (not stated in the paper)",
          check=unit_interval),
    # loss
    Param("loss", str, "compound", "compound = 0.60 CE + 0.25 center + 0.15 DLS; ce = cross-entropy only",
          choices=("compound", "ce")),
    Param("w_ce", float, 0.60, "compound loss weight of cross-entropy", check=non_negative),
    Param("w_center", float, 0.25, "compound loss weight of the center loss", check=non_negative),
    Param("w_dls", float, 0.15, "compound loss weight of distribution-aware label smoothing", check=non_negative),
    Param("loss_weights", str, "fixed", "where the compound-loss weights come from: fixed = w_ce / w_center / w_dls "
          "(the paper's 0.60 / 0.25 / 0.15); cv = stratified k-fold cross-validation of the `cv_grid` candidates on "
          "the training split (paper: 5-fold); tuned = the optuna search's best weights and lr_max (run first, on "
          "the validation split); or a path to a tuning.json of an earlier run", check=_loss_weight_source),
    Param("cv_folds", int, 5, "folds of the loss-weight cross-validation (paper 5); at most the smallest class's "
          "training count", check=_cv_folds),
    Param("cv_epochs", int, None, "epochs per cross-validation fold", check=positive),
    Param("cv_grid", str, "0.60/0.25/0.15,1.0/0.0/0.0,0.50/0.25/0.25,0.70/0.15/0.15,0.50/0.40/0.10",
          "candidate (CE/center/DLS) weights compared by cross-validation, comma-separated (the paper does not state "
          "its candidates; these are ours)", check=_cv_grid),
    Param("smoothing", float, 0.1, "DLS smoothing mass epsilon (not stated in the paper)", check=unit_interval),
    # optimisation
    Param("batch_size", int, None, "mini-batch size (not stated in the paper)", check=positive),
    Param("lr_max", float, 1e-3, "peak learning rate after warm-up", check=positive),
    Param("lr_min", float, 1e-6, "final learning rate of the cosine schedule", check=positive),
    Param("warmup_epochs", int, None, "linear warm-up epochs (paper 10)", check=non_negative),
    Param("weight_decay", float, 5e-4, "AdamW weight decay", check=non_negative),
    Param("layer_decay", float, 0.9, "layer-wise lr decay per backbone block", check=unit_interval),
    Param("patience", int, None, "early-stopping patience in epochs on validation macro-F1 (paper 20)",
          check=positive),
    Param("mixup_prob", float, 0.4, "probability of mixup per batch", check=unit_interval),
    Param("mixup_alpha", float, 0.4, "mixup Beta(alpha, alpha)", check=positive),
    Param("augment", bool, True, "the paper's seven training augmentations (mixup is controlled separately)"),
    # data
    Param("max_train", int, None, "cap on training images (stratified subsample), 0 = all", check=non_negative),
    Param("max_eval", int, None, "cap on validation and test images each, 0 = all", check=non_negative),
    Param("ferplus_mode", str, "majority", "FER+ training label mode (val/test always majority)",
          choices=("majority", "probability", "crossentropy", "multi_target")),
    Param("alignment", str, "auto", "face alignment: auto = none for already-aligned sets (FER2013, FERPlus, RAF-DB "
          "aligned), 68point with the dataset's own landmarks where shipped (AffectNet csv), else 5point (MediaPipe "
          "eye keypoints); 5point_fit = the paper's five-point template fit (eyes, nose tip, mouth)",
          choices=("auto", "5point", "5point_fit", "68point", "none")),
    Param("on_no_face", str, "error", "an image without a detectable face: error (names the file), skip (counted "
          "in the split report) or unaligned (used resized, counted); the paper does not say",
          choices=("error", "skip", "unaligned")),
    Param("affectnet_classes", int, 8, "AffectNet protocol: 7 or 8 classes", choices=(7, 8)),
    # sections
    Param("comparisons", str, "auto", "ablation ladder, Table-3 baselines, zero-shot and loss/lr search: "
          "auto = on FER2013 only (as in the paper), all = force (FER2013 only), none = full model only",
          choices=("auto", "all", "none")),
    Param("comparison_seeds", str, None, "which seeds train the comparisons: all (each seed, paired tests over "
          "seeds) or own (only the notebook's seed: one pair per test; the demo's choice, it halves the FER2013 "
          "notebook's time)", choices=("all", "own")),
    Param("finetune_from", str, None, "on RAF-DB, also fine-tune a FER2013-trained HAFEM checkpoint (paper §4: 20 "
          "epochs, 95.1 %): none, latest (the complete FER2013 run of this profile and seed under the results "
          "folder; other datasets ignore it) or a checkpoint path", check=_finetune_from),
    Param("finetune_epochs", int, None, "epochs of the fine-tune (paper 20)", check=positive),
    Param("zeroshot_targets", str, "RAF-DB,AffectNet", "datasets the FER2013 model is tested on zero-shot",
          check=_targets),
    Param("tune_trials", int, None, "optuna TPE trials over the loss weights and lr (0 = skip)", check=non_negative),
    Param("tune_epochs", int, None, "epochs per tuning trial", check=positive),
    Param("explain", bool, True, "Grad-CAM maps per class and SHAP attributions on the head's input features"),
    Param("shap_samples", int, None, "validation samples explained by SHAP", check=positive),
    Param("measure_speed", bool, True, "record fps_model (batch 1, after warm-up) of the trained model"),
    Param("threads", int, None, "torch CPU threads, 0 = torch's default", check=non_negative),
    *engine_params(),
)
HAFEM.profiles = {
    "demo": {
        "epochs": 4, "seeds": "0,1", "backbone": "efficientnet_lite0", "pretrained": "package:efficientnet_lite0",
        "baseline_pretrained": "none", "ablation_resnet": "resnet18",
        "baselines": "resnet18,vit_tiny_patch16_224,efficientnet_b0,swin_demo",
        # 112 px: at 64 px the model stayed at the majority rate on the demo sets and at 96 px learned little;
        # 4 epochs at lr 3e-3 without mixup learn as much as 6 at 1e-3 with it; every generated image is used (the
        # sizes are set in datasets/demo/fer.py FER_SIZES)
        "input_size": 112, "token_grid": 3, "dim": 128, "depth": 2, "heads": 4, "ff_dim": 256, "lr_max": 3e-3,
        "mixup_prob": 0.0, "batch_size": 32, "warmup_epochs": 1, "patience": 3, "max_train": 0, "max_eval": 0,
        "tune_trials": 3, "tune_epochs": 1, "shap_samples": 24, "cbam_placement": "after_backbone",
        "cv_epochs": 1, "finetune_from": "none", "finetune_epochs": 2, "comparison_seeds": "own",
        # one thread: with two, a busy 2-core machine makes PyTorch's OpenMP workers wait on each other (measured
        # 85 FPS with one thread vs 0.5 FPS with two for the same model under load)
        "threads": 1,
    },
    "paper": {
        "epochs": 140, "seeds": "0,1,2,3,4", "backbone": "efficientnet_b5",
        "pretrained": "timm:efficientnet_b5.sw_in12k",
        "baseline_pretrained": "timm", "ablation_resnet": "resnet50",
        "baselines": "resnet50,vit_base_patch16_224,efficientnet_b4,swin_tiny_patch4_window7_224",
        "input_size": 224, "token_grid": 7, "dim": 2048, "depth": 6, "heads": 8, "ff_dim": 4096,
        "batch_size": 64, "warmup_epochs": 10, "patience": 20, "max_train": 0, "max_eval": 0,
        "tune_trials": 30, "tune_epochs": 20, "shap_samples": 200, "threads": 0, "cbam_placement": "stages",
        "cv_epochs": 20, "finetune_from": "latest", "finetune_epochs": 20, "comparison_seeds": "all",
    },
}


def _run_weight(cfg: Mapping[str, Any]) -> float:
    # measured on the demo: a FER2013 notebook with its comparisons trains ~10 models, the others one per seed;
    # any HAFEM notebook outweighs a smile one
    compared = cfg["comparisons"] == "all" or (cfg["comparisons"] == "auto" and cfg["dataset"] == COMPARISON_DATASET)
    return 100.0 if compared else 10.0


HAFEM.run_weight = _run_weight
STUDIES.register("hafem")(HAFEM)

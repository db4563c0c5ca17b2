"""The smile study's parameters, size profiles and protocols (one notebook per dataset x variant).

Every parameter is a str / int / float / bool, validated before anything runs. Two independent switches:

* ``profile`` (size): ``demo`` = generated data, a reduced backbone and a few epochs (CPU seconds per fold, numbers
  are SYNTHETIC); ``paper`` = the published sizes and training schedule (``docs/smile-method.md``, "Deep branch,
  fusions and training").
* ``protocol`` (evaluation): ``paper`` (default) = honest, the epoch is chosen on a subject-independent validation
  split and never on the test fold; ``released`` = what the authors' released notebooks do, filled in one go
  (:func:`released_settings`): epoch chosen on the test fold with the whole training fold trained on, 5 test windows
  drawn afresh every epoch, the released D-Marker per 16-frame clip without standardisation (padded frames of short
  videos count as frames), the released window sampling and fusion forms, and the UvA-NEMO normalisation constants
  except in the BBC Hadamard notebook, which has its own. Every such value lands in the resolved config (run.json).

A parameter the ``released`` protocol fixes may still be given explicitly with the released value; a *different*
value is a :class:`~common.config.ConfigError` naming the parameter, the released value and the way out
(``protocol=paper`` with the parameters set one by one). Results of a run under ``released`` are labelled "as
released (test-fold selection)" and are never pooled with, or tested against, honest runs; a run that changed one of
the fixed parameters would no longer be what that label says. ``fold_order`` (numeric, or lexicographic = the
release's string sort of the fold folders) is a separate option, free under both protocols.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.config import STUDIES, ConfigError, Param, StudySpec, base_params, non_negative, positive, unit_interval
from common.engine_params import engine_params
from common.smile.choices import FUSION_IMPLS, SELECTIONS

SMILE_DATASET_NAMES = ("UvA-NEMO", "MMI", "SPOS", "BBC")
PROTOCOLS = ("paper", "released")
# What a released-protocol result is called in every table and figure.
RELEASED_LABEL = "as released (test-fold selection)"
# kept equal to common.smile.clips / folds (tested), not imported: the study module stays free of numpy
LANDMARK_NORM_NAMES = ("uva-nemo", "bbc-hadamard")
EVAL_WINDOW_MODES = ("fixed", "per_epoch")
FOLD_ORDER_NAMES = ("numeric", "lexicographic")


def smile_variants() -> list[str]:
    """Fusion strategies plus baselines (filled from the registries)."""
    from common.smile.models import variants

    return variants()


def _folds_spec(value: str) -> str | None:
    if value == "all":
        return None
    parts = value.split(",")
    if not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        return "must be 'all' or comma-separated fold numbers >= 1, e.g. '1,2,3'"
    return None


def _val_fraction(value: float) -> str | None:
    return None if 0.0 <= value < 1.0 else "must lie in [0, 1) (0 = no validation split)"


def released_settings(dataset: str, variant: str) -> dict[str, Any]:
    """The parameters ``protocol=released`` fixes for one notebook (dataset x variant), as the release runs it."""
    return {
        "selection": "test", "val_fraction": 0.0, "patience": 0,   # best test-fold epoch, whole training fold
        "n_eval_clips": 5, "eval_windows": "per_epoch",             # 5 test windows redrawn every epoch
        "clip_len": 16, "window_sampling": "released",              # randint(0, T-16): the last start never drawn
        "dmarker_variant": "released", "dmarker_scope": "clip", "dmarker_scaling": "none",
        "fusion_impl": "released",
        # 59 of the 60 notebooks normalise with the UvA-NEMO min/max whatever the dataset; BBC Hadamard has its own
        "landmark_norm": "bbc-hadamard" if (dataset, variant) == ("BBC", "hadamard") else "uva-nemo",
    }


class SmileStudySpec(StudySpec):
    """The smile study: profiles give sizes; ``protocol=released`` then fixes :func:`released_settings`."""

    # shown as None in the notebooks' parameters cell: setting protocol = "released" there must be enough
    protocol_fixed = tuple(released_settings("UvA-NEMO", "hadamard"))

    def resolve(self, given: Mapping[str, Any]) -> Mapping[str, Any]:
        self.check_keys(given)
        protocol = self.params["protocol"].validate(given.get("protocol") or self.params["protocol"].default)
        if protocol == "released":
            dataset = given.get("dataset") or self.params["dataset"].default
            variant = given.get("variant") or self.params["variant"].default
            fixed = released_settings(dataset, variant)
            for name, value in fixed.items():
                mine = given.get(name)
                if mine is not None and self.params[name].validate(mine) != value:
                    raise ConfigError(
                        f"parameter {name!r}={mine!r} conflicts with protocol='released', which fixes "
                        f"{name}={value!r} for {dataset} / {variant} (the released notebooks' behaviour). Leave "
                        f"{name!r} unset, or use protocol='paper' and set the parameters one by one (results are "
                        "then not labelled as released)")
            given = {**given, **fixed}
        return super().resolve(given)


SMILE = SmileStudySpec("smile", template="smile_study.py")
SMILE.add(*base_params(lambda: SMILE_DATASET_NAMES, smile_variants, "UvA-NEMO", "hadamard"))
SMILE.add(
    Param("protocol", str, "paper", "paper = honest evaluation (validation-selected epoch); released = the authors' "
          f"notebooks, results labelled '{RELEASED_LABEL}' (fixes the parameters listed in "
          "common.smile.study.released_settings)", choices=PROTOCOLS),
    Param("epochs", int, None, "training epochs", check=positive),
    Param("selection", str, None, "reported / checkpointed epoch: val (subject-independent validation split), test "
          "(released: best epoch on the test fold, optimistic), last; all three are recorded", choices=SELECTIONS),
    Param("fusion_impl", str, None, "paper (corrected) or released (as the FUS notebooks, incl. single-key attention "
          "and the dim-8 bilinear backbone)", choices=FUSION_IMPLS),
    Param("dmarker_variant", str, None, "D-Marker formulas: paper (RPT) or released (FUS code, measured on the "
          "normalised clip in float32; padded frames of short videos count as frames)", choices=("paper", "released")),
    Param("dmarker_scope", str, None, "one D-Marker per video or per 16-frame clip (released)",
          choices=("video", "clip")),
    Param("dmarker_scaling", str, None, "standard = z-score fitted on the training fold; none = raw (released)",
          choices=("standard", "none")),
    Param("window_sampling", str, None, "train windows: all_starts (0..T-L) or released (never the last one)",
          choices=("all_starts", "released")),
    Param("eval_windows", str, None, "test windows: fixed per video, or per_epoch = drawn afresh every epoch "
          "(released)", choices=EVAL_WINDOW_MODES),
    Param("landmark_norm", str, None, "min/max constants of the network input (and of the released D-Marker): "
          "uva-nemo (59 of 60 released notebooks, every dataset) or bbc-hadamard (the BBC Hadamard notebook's own)",
          choices=LANDMARK_NORM_NAMES),
    Param("backbone", str, None, "deep branch", choices=("meshsmilenet",)),
    Param("backbone_size", str, None, "size preset: paper (published sizes) or demo (reduced)",
          choices=("paper", "demo")),
    Param("n_points", int, None, "landmarks fed to the point encoder (478 = all)", check=positive),
    Param("knn_k", int, None, "k of the k-NN graph", check=positive),
    Param("model_dim", int, None, "width of h and of the fusion", check=positive),
    Param("n_tokens", int, None, "point -> token reduction size", check=positive),
    Param("spatial_depth", int, None, "depth of the spatial (time/token alternating) transformer", check=positive),
    Param("temporal_depth", int, None, "depth of the temporal transformer", check=non_negative),
    Param("dropout", float, None, "dropout everywhere", check=unit_interval),
    Param("clip_len", int, None, "frames per window", check=positive),
    Param("n_eval_clips", int, None, "windows averaged per test video", check=positive),
    Param("batch_size", int, None, "training batch size", check=positive),
    Param("lr", float, None, "AdamW learning rate", check=positive),
    Param("weight_decay", float, None, "AdamW weight decay", check=non_negative),
    Param("lr_step_epoch", int, None, "MultiStepLR milestone (0 = constant learning rate)", check=non_negative),
    Param("lr_gamma", float, None, "learning-rate factor at the milestone", check=positive),
    Param("val_fraction", float, None, "share of training subjects held out for validation (0 = none)",
          check=_val_fraction),
    Param("patience", int, None, "early stopping on the validation criterion (0 = off)", check=non_negative),
    Param("folds", str, None, "'all' or comma-separated fold numbers (the folders' numbers)", check=_folds_spec),
    Param("fold_order", str, None, "order the folds run in: numeric (1, 2, ..., 10) or lexicographic (the release's "
          "string sort: 1, 10, 2, ...; its '--fold i' is the i-th, 0-based)", choices=FOLD_ORDER_NAMES),
    Param("max_train_minutes", float, None, "cap on one fold's training time in minutes (0 = none, the default): "
          "when it ends a fold early the results depend on the machine's speed, and run.json / the rows "
          "(time_capped) say so", check=non_negative),
    Param("save_checkpoints", bool, None, "save the selected model of each fold"),
    Param("threads", int, None, "torch CPU threads (part of the config: CPU sums split by thread count change the "
          "last bits, and training amplifies them); 0 = torch's default, i.e. the machine's", check=non_negative),
    Param("unlisted_arrays", str, "error", "an array under npy/ with no label/fold entry: error (names it) or ignore "
          "(left out, listed in the warning)", choices=("error", "ignore")),
    *engine_params(),
)

_SHARED = {"selection": "val", "fusion_impl": "paper", "dmarker_variant": "paper", "dmarker_scope": "video",
           "dmarker_scaling": "standard", "window_sampling": "all_starts", "backbone": "meshsmilenet",
           "batch_size": 16, "weight_decay": 0.0, "val_fraction": 0.2, "patience": 0, "folds": "all",
           "max_train_minutes": 0.0, "save_checkpoints": True, "clip_len": 16, "dropout": 0.1,
           "eval_windows": "fixed", "landmark_norm": "uva-nemo", "fold_order": "numeric",
           "threads": 1}  # one thread unless set: a machine-chosen count would change the numbers (common.batch)
SMILE.profiles = {
    # Reduced: 32 points, k = 6, width 24, 8-frame windows; 3 epochs at a higher learning rate (~1 s per fold).
    "demo": {**_SHARED, "epochs": 3, "backbone_size": "demo", "n_points": 32, "knn_k": 6, "model_dim": 24,
             "n_tokens": 4, "spatial_depth": 2, "temporal_depth": 1, "clip_len": 8, "n_eval_clips": 2, "lr": 3e-3,
             "lr_step_epoch": 0, "lr_gamma": 0.1},
    # Published: the paper's sizes and schedule (docs/smile-method.md): AdamW 5e-4, 300 epochs, step at 299, batch 16,
    # 5 test windows.
    "paper": {**_SHARED, "epochs": 300, "backbone_size": "paper", "n_points": 478, "knn_k": 20, "model_dim": 256,
              "n_tokens": 32, "spatial_depth": 6, "temporal_depth": 3, "n_eval_clips": 5, "lr": 5e-4,
              "lr_step_epoch": 299, "lr_gamma": 0.1},
}


def _cross_check(cfg: Mapping[str, Any]) -> str | None:
    if cfg["knn_k"] >= cfg["n_points"]:
        return f"knn_k={cfg['knn_k']} must be smaller than n_points={cfg['n_points']}"
    if cfg["clip_len"] > 128:
        return f"clip_len={cfg['clip_len']} exceeds the positional-encoding table (128)"
    if cfg["selection"] == "val" and cfg["val_fraction"] == 0.0:
        return "selection='val' needs val_fraction > 0"
    if cfg["patience"] and cfg["val_fraction"] == 0.0:
        return "early stopping (patience > 0) needs val_fraction > 0"
    return None


SMILE.cross_check = _cross_check
STUDIES.register("smile")(SMILE)

"""Which trained models ``python -m common.predict`` uses: checkpoint discovery under ``results/raw`` and the rule.

**The rule** (:func:`choose_models`). A validation split of a few videos cannot rank single checkpoints: on the demo
UvA-NEMO and BBC folds several score 1.0 on ~3 validation videos while scoring 0.0 on their own test fold. So predict
ranks *groups*, never single checkpoints:

1. candidates are the checkpoints of complete runs of one named dataset (``--dataset``; default UvA-NEMO for the
   smile model, FER2013 for the expression model) and, when given, one variant (``--variant``; the expression model
   defaults to ``hafem``, the full model -- the ablation and baseline checkpoints exist for the comparison tables);
2. a group is one trained configuration: profile, dataset, variant and config apart from the seed, i.e. all its
   folds and seeds; real-data (``paper``) groups come before ``demo`` ones, validation-selected groups
   (``selection = val``) before others;
3. the group with the highest **mean** validation score over all its checkpoints wins (the smile runs' validation
   accuracy at the checkpointed epoch, HAFEM's validation macro-F1 -- each run's own selection metric); ties go to
   the group with more checkpoints, then to the variant name;
4. every checkpoint of that group is used, as an ensemble: the probabilities are averaged over its members.

The summary lists each member with its validation score and its **held-out** score (the test-fold accuracy the run
recorded in ``rows.csv`` for that checkpoint), and flags a group whose mean held-out accuracy is within
:data:`NEAR_CHANCE_MARGIN` of chance.

Checkpoints are those :mod:`common.smile.run` and :mod:`common.fer.run` write (``common.checkpoints`` format); the
epoch a checkpoint holds is read from what the run recorded (the checkpoint's ``best_epoch`` looked up in its curves'
``epoch`` list), never re-derived.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from common.checkpoints import CheckpointError, load_checkpoint
from common.paths import RESULTS_DIR
from common.predict.errors import NoCheckpointError

DEFAULT_DATASET = {"smile": "UvA-NEMO", "hafem": "FER2013"}
DEFAULT_VARIANT = {"smile": None, "hafem": "hafem"}  # None: every variant competes
SUGGESTED_VARIANT = {"smile": "hadamard", "hafem": "hafem"}
TRAIN_COMMAND = "python -m common.batch --study {study} --dataset {dataset} --variant {variant} --profile demo"
HELD_OUT_METRIC = "accuracy"
NEAR_CHANCE_MARGIN = 0.10  # held-out accuracy (or a probability) within this of chance is "near chance"
DEMO_LABEL = "trained on synthetic demo data — not a real-world model"
_SEED_KEYS = ("seed", "seeds")  # a group is a config apart from these


def raw_root(results: str | Path | None = None) -> Path:
    """``<results>/raw`` (``results`` may also name the ``raw`` folder itself)."""
    root = Path(results).expanduser() if results is not None else RESULTS_DIR
    return root if root.name == "raw" else root / "raw"


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def trained_on(profile: str, dataset: str) -> str:
    return f"{dataset}: {DEMO_LABEL}" if profile == "demo" else f"{dataset} (profile {profile!r}: real data)"


@dataclass
class Checkpoint:
    """One checkpoint file with what its run recorded about it."""

    path: Path
    payload: dict[str, Any] = field(repr=False)
    study: str
    profile: str
    dataset: str
    variant: str
    seed: int | None
    fold: int | None
    config_hash: str
    group_hash: str
    selection: str | None
    val_metric: str | None = None
    val_score: float | None = None
    held_out: float | None = None

    def summary(self) -> dict[str, Any]:
        return {"checkpoint": str(self.path), "seed": self.seed, "fold": self.fold, "config_hash": self.config_hash,
                "selection": self.selection, "val_score": self.val_score, "held_out_score": self.held_out}


def recorded_val_score(payload: Mapping[str, Any], path: Path | None = None) -> tuple[str, float] | None:
    """(metric, value) the run selected this checkpoint by, on its validation split; None if not recorded.

    HAFEM checkpoints carry ``best_val_f1``. Smile checkpoints carry the ``best_epoch`` they hold (1-based, as the engine
    counts); the validation accuracy is read from the run's ``curves/<checkpoint name>.json`` at the position where
    its ``epoch`` list has that value.
    """
    if _number(payload.get("best_val_f1")) is not None:
        return "val_f1_macro", float(payload["best_val_f1"])
    epoch = payload.get("best_epoch")
    if path is None or not isinstance(epoch, int):
        return None
    try:
        curves = json.loads((path.parent.parent / "curves" / f"{path.stem}.json").read_text())
    except (OSError, ValueError):
        return None
    epochs, values = curves.get("epoch"), curves.get("val_accuracy")
    if not isinstance(epochs, list) or not isinstance(values, list) or epoch not in epochs:
        return None
    value = values[epochs.index(epoch)] if epochs.index(epoch) < len(values) else None
    return ("val_accuracy", float(value)) if _number(value) is not None else None


def held_out_score(run: Path, variant: str, fold: int | None, selection: str | None) -> float | None:
    """The test accuracy the run recorded in ``rows.csv`` for this checkpoint (its variant, fold and selection)."""
    try:
        with open(run / "rows.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return None
    for row in rows:
        if (row.get("variant") == variant and row.get("metric") == HELD_OUT_METRIC
                and (selection is None or row.get("selection") == selection)
                and (fold is None or row.get("fold") == str(fold))):
            try:
                return float(row["value"])
            except (TypeError, ValueError):
                return None
    return None


def describe_checkpoint(path: str | Path, study: str) -> Checkpoint:
    """Load and check a checkpoint of ``study``; read its config, provenance and recorded scores."""
    from common.config import config_hash

    path = Path(path)
    payload = load_checkpoint(path, study)
    cfg = payload["config"]
    if not isinstance(cfg, Mapping):
        raise CheckpointError(f"{path}: 'config' is a {type(cfg).__name__}, not a mapping")
    missing = [k for k in ("dataset", "profile") if k not in cfg]
    if missing:
        raise CheckpointError(f"{path}: checkpoint config lacks {missing}; cannot say what the model was trained on")
    prov = payload.get("provenance") or {}
    seed, fold = cfg.get("seed"), payload.get("fold")
    variant = str(payload.get("variant") or cfg.get("variant") or "")
    selection = str(payload["selection"]) if payload.get("selection") is not None else None
    score = recorded_val_score(payload, path)
    return Checkpoint(
        path=path, payload=payload, study=payload["study"], profile=str(cfg["profile"]), dataset=str(cfg["dataset"]),
        variant=variant, seed=seed if isinstance(seed, int) else None, fold=fold if isinstance(fold, int) else None,
        config_hash=str(prov.get("config_hash") or config_hash(cfg)),
        group_hash=config_hash({k: v for k, v in cfg.items() if k not in _SEED_KEYS}), selection=selection,
        val_metric=score[0] if score else None, val_score=score[1] if score else None,
        held_out=held_out_score(path.parent.parent, variant, fold if isinstance(fold, int) else None, selection))


def find_checkpoints(study: str, results: str | Path | None = None,
                     variant: str | None = None) -> tuple[list[Checkpoint], list[str]]:
    """Every usable checkpoint of a complete ``study`` run under ``results`` (of ``variant`` when given).

    Returns ``(usable, skipped)``; ``skipped`` says why each other ``.pt`` file was left out (unfinished run, other
    format version, missing keys, ...).
    """
    from common.results import is_complete

    usable: list[Checkpoint] = []
    skipped: list[str] = []
    # every variant folder: HAFEM runs keep their ablation and baseline checkpoints beside the full model's
    for path in sorted((raw_root(results) / study).glob("*/*/*/seed*-*/checkpoints/*.pt")):
        if not is_complete(path.parent.parent):
            skipped.append(f"{path}: its run is not complete (run.json status is not 'complete')")
            continue
        try:
            found = describe_checkpoint(path, study)
        except CheckpointError as exc:
            skipped.append(str(exc))
            continue
        if variant is None or found.variant == variant:
            usable.append(found)
    return usable, skipped


def _mean(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else float(sum(values) / len(values))


@dataclass
class ModelSet:
    """The checkpoints used for one role (an ensemble of one group, or one file given on the command line)."""

    members: list[Checkpoint]
    selected_by: str
    n_candidates: int

    @property
    def first(self) -> Checkpoint:
        return self.members[0]

    @property
    def val_score(self) -> float | None:
        return _mean([m.val_score for m in self.members])

    @property
    def held_out_score(self) -> float | None:
        return _mean([m.held_out for m in self.members])

    @property
    def trained_on(self) -> str:
        return trained_on(self.first.profile, self.first.dataset)

    def chance(self, n_classes: int) -> float:
        return 1.0 / n_classes

    def held_out_near_chance(self, n_classes: int) -> bool | None:
        score = self.held_out_score
        return None if score is None else score < self.chance(n_classes) + NEAR_CHANCE_MARGIN

    def summary(self) -> dict[str, Any]:
        f = self.first
        return {"study": f.study, "profile": f.profile, "dataset": f.dataset, "variant": f.variant,
                "config_hash": f.config_hash, "trained_on": self.trained_on, "selected_by": self.selected_by,
                "n_candidates": self.n_candidates, "val_metric": f.val_metric, "val_score": self.val_score,
                "held_out_metric": f"test {HELD_OUT_METRIC}", "held_out_score": self.held_out_score,
                "members": [m.summary() for m in self.members]}


def _rank(group: list[Checkpoint]) -> tuple:
    score = _mean([m.val_score for m in group])
    f = group[0]
    return (f.profile != "paper", any(m.selection != "val" for m in group), -(score if score is not None else -1.0),
            -len(group), f.variant, f.group_hash)


def choose_models(study: str, results: str | Path | None = None, variant: str | None = None,
                  dataset: str | None = None, explicit: str | Path | None = None) -> ModelSet:
    """The checkpoints to use for ``study`` by the rule in this module's docstring (or the ``explicit`` file)."""
    if explicit is not None:
        return ModelSet([describe_checkpoint(explicit, study)], "given on the command line", 1)
    dataset = dataset or DEFAULT_DATASET[study]
    variant = variant or DEFAULT_VARIANT[study]
    usable, skipped = find_checkpoints(study, results, variant)
    on_dataset = [c for c in usable if c.dataset == dataset]
    if not on_dataset:
        where = raw_root(results) / study
        others = sorted({c.dataset for c in usable})
        detail = "".join(f"\n  skipped {s}" for s in skipped[:10])
        also = f" (there are checkpoints of {', '.join(others)}: pass --{'fer-' if study == 'hafem' else ''}dataset)" \
            if others else ""
        suggested = SUGGESTED_VARIANT[study] if study == "hafem" else variant or SUGGESTED_VARIANT[study]
        command = TRAIN_COMMAND.format(study=study, dataset=dataset, variant=suggested)
        raise NoCheckpointError(
            f"no usable trained {study!r} checkpoint of {dataset}" + (f" variant {variant!r}" if variant else "")
            + f" under {where}{also}{detail}",
            hint=f"train one with `{command}`, or pass a checkpoint file with "
                 f"--{'fer-' if study == 'hafem' else ''}checkpoint")
    groups: dict[tuple, list[Checkpoint]] = {}
    for c in on_dataset:
        groups.setdefault((c.profile, c.variant, c.group_hash), []).append(c)
    ranked = sorted(groups.values(), key=_rank)
    best = ranked[0]
    mean = _mean([m.val_score for m in best])
    metric = best[0].val_metric or "validation score"
    how = (f"mean {metric} {mean:.4f} over its {len(best)} checkpoint(s), the highest of {len(ranked)} trained "
           f"configuration(s) of {study} on {dataset}" if mean is not None else
           f"no validation score recorded for every checkpoint; took the first of {len(ranked)} configuration(s)")
    notes = [", real-data runs first" if best[0].profile == "paper" else ""]
    if any(m.selection != "val" for m in best):
        notes.append(f"; note: not validation-selected (selection {sorted({str(m.selection) for m in best})})")
    return ModelSet(best, f"variant {best[0].variant}: {how}" + "".join(notes) + "; all of them used as an ensemble",
                    len(on_dataset))

"""HAFEM display helpers for the notebook: tables and figures of one run (no statistics across runs)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from common.fer.data import FerData
from common.fer.training import MAIN_VARIANT


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
    epochs = c["epoch"]  # 1-based
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3))
    for key in ("loss", "ce", "center", "dls"):
        if f"train_{key}" in c:
            a.plot(epochs, c[f"train_{key}"], label=key)
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


def comparisons_table(outcomes: list[SeedOutcome]) -> Any:
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
    """Where the loss weights came from, the CBAM placement, the fine-tune, tuning result, speed and peak memory
    (``run.json``)."""
    import json

    record = json.loads((Path(folder) / "run.json").read_text())
    keys = ("status", "loss_weights", "cbam_placement", "finetune", "tuning_best", "speed", "wall_seconds",
            "peak_rss_mib", "n_rows")
    return {k: record[k] for k in keys if k in record}

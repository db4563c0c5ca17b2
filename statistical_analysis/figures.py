"""Every figure, as PNG and PDF with fixed fonts and no timestamps, so regenerating gives identical bytes.

Determinism: Agg backend, one rcParams dict for every figure, PNG metadata {"Software": None}, PDF metadata
{"Creator": None, "Producer": None, "CreationDate": None} (the pytest-mpl recipe). Each figure names its profile;
demo figures say they show synthetic data. Runs under protocol=released appear in one figure of their own
(``smile_released``, drawn only when such runs exist), titled "as released (test-fold selection)"; the other figures
read honest runs only (:meth:`Results.select`).
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common import io as atomic  # noqa: E402
from common import stats  # noqa: E402
from statistical_analysis import paper_claims as pc  # noqa: E402
from statistical_analysis import regions  # noqa: E402
from statistical_analysis import tables as tb  # noqa: E402
from statistical_analysis.loading import (MalformedInput, Results, load_confusion, load_gradcam_maps,  # noqa: E402
                                          load_predictions)

RC = {
    "font.family": "DejaVu Sans", "font.size": 7, "axes.titlesize": 8, "axes.labelsize": 7, "legend.fontsize": 6,
    "xtick.labelsize": 6, "ytick.labelsize": 6, "figure.dpi": 100, "savefig.dpi": 150, "pdf.fonttype": 42,
    "svg.hashsalt": "repro", "axes.spines.top": False, "axes.spines.right": False, "image.cmap": "viridis",
    "path.simplify": False, "axes.prop_cycle": matplotlib.cycler(color=[
        "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]),
}
PNG_META = {"Software": None}
PDF_META = {"Creator": None, "Producer": None, "CreationDate": None}
PROFILE_TAG = {"demo": "profile: demo (SYNTHETIC data, not a reproduction)", "paper": "profile: paper"}


@dataclass
class FigureLog:
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def save(fig: plt.Figure, folder: Path, name: str, log: FigureLog) -> None:
    """Write ``name``.png and ``name``.pdf atomically with metadata that carries no version or date."""
    for ext, meta in (("png", PNG_META), ("pdf", PDF_META)):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, metadata=meta)
        target = folder / f"{name}.{ext}"
        atomic.write_bytes(target, buf.getvalue())
        log.written.append(target)
    plt.close(fig)


def _title(fig: plt.Figure, text: str, profile: str | None) -> None:
    tag = PROFILE_TAG.get(profile, "published numbers only")
    fig.suptitle(f"{text}\n{tag}", fontsize=8)


# --- smile -------------------------------------------------------------------------------------------------------

def smile_progression(res: Results, profile: str | None) -> plt.Figure:
    """Accuracy of published methods over time (RPT Table 5) plus the measured Hadamard model per dataset."""
    methods = [m for m, _, _ in pc.SMILE_TABLE5]
    fig, ax = plt.subplots(figsize=(7.0, 3.4))
    x = np.arange(len(methods))
    for d in pc.SMILE_DATASETS:
        y = [np.nan if accs[d] is None else accs[d] for _, _, accs in pc.SMILE_TABLE5]
        (line,) = ax.plot(x, y, marker="o", ms=3, lw=1, label=f"{d} (published)")
        if profile is not None:
            s = tb.scores(res, "smile", profile, d, "hadamard")
            if len(s):
                v = 100 * s["value"].to_numpy()
                sd = v.std(ddof=1) if len(v) > 1 else 0.0
                ax.errorbar([len(methods)], [v.mean()], yerr=[sd], marker="D", ms=4, color=line.get_color(),
                            capsize=2, lw=1, label=f"{d} measured Hadamard")
    labels = methods + ([f"Hadamard\n(measured, {profile})"] if profile is not None else [])
    ax.set_xticks(np.arange(len(labels)), labels, rotation=60, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.legend(ncol=2, frameon=False, loc="lower right")
    _title(fig, "Smile: performance progression (published: RPT Table 5)", profile)
    fig.tight_layout()
    return fig


def smile_heatmap(res: Results, profile: str) -> plt.Figure | None:
    variants = [v for v in tb.smile_variants(res, profile)
                if any(len(tb.scores(res, "smile", profile, d, v)) for d in pc.SMILE_DATASETS)]
    if not variants:
        return None
    m = np.full((len(variants), len(pc.SMILE_DATASETS)), np.nan)
    for i, v in enumerate(variants):
        for j, d in enumerate(pc.SMILE_DATASETS):
            s = tb.scores(res, "smile", profile, d, v)
            if len(s):
                m[i, j] = 100 * s["value"].mean()
    fig, ax = plt.subplots(figsize=(4.2, 0.35 * len(variants) + 1.4))
    im = ax.imshow(np.ma.masked_invalid(m), aspect="auto", vmin=np.nanmin(m), vmax=np.nanmax(m))
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, "no runs" if math.isnan(m[i, j]) else f"{m[i, j]:.1f}", ha="center", va="center",
                    color="black" if math.isnan(m[i, j]) or m[i, j] > np.nanmean(m) else "white", fontsize=6)
    ax.set_xticks(range(len(pc.SMILE_DATASETS)), pc.SMILE_DATASETS)
    ax.set_yticks(range(len(variants)), variants)
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    _title(fig, "Smile: mean accuracy per variant and dataset", profile)
    fig.tight_layout()
    return fig


def smile_released_bars(res: Results, profile: str) -> plt.Figure | None:
    """Test-fold-selected accuracy of the released-protocol runs per dataset and variant, beside the paper's."""
    variants = sorted({v for d in pc.SMILE_DATASETS
                       for v in res.select(study="smile", profile=profile, dataset=d, protocol="released")["variant"]},
                      key=lambda v: tb.smile_variants(res, profile).index(v) if v in tb.smile_variants(res, profile)
                      else len(pc.SMILE_FUSIONS) + len(pc.SMILE_BASELINES))
    if not variants:
        return None
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 + 0.5 * len(variants) * len(pc.SMILE_DATASETS)), 2.8))
    width = 0.8 / len(variants)
    for i, v in enumerate(variants):
        x = np.arange(len(pc.SMILE_DATASETS)) + (i - (len(variants) - 1) / 2) * width
        means, sds = [], []
        for d in pc.SMILE_DATASETS:
            rows = tb.released_scores(res, profile, d, v)
            rows = rows if len(rows) else tb.released_scores(res, profile, d, v, selection="")  # no epochs
            vals = 100 * rows["value"].to_numpy()
            means.append(vals.mean() if len(vals) else np.nan)
            sds.append(vals.std(ddof=1) if len(vals) > 1 else 0.0)
        ax.bar(x, means, width, yerr=sds, capsize=2, label=f"{v} ({tb.RELEASED_LABEL})")
        paper = [tb.smile_paper_accuracy(v, d) for d in pc.SMILE_DATASETS]
        ax.scatter(x, [np.nan if p is None else p for p in paper], marker="_", s=120, color="black", zorder=3,
                   label="paper (test-fold selected)" if i == 0 else None)
    ax.set_xticks(np.arange(len(pc.SMILE_DATASETS)), pc.SMILE_DATASETS)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _title(fig, f"Smile: accuracy {tb.RELEASED_LABEL}, beside the paper (no test; never pooled with honest runs)",
           profile)
    fig.tight_layout()
    return fig


def cd_diagram(names: list[str], mean_ranks: np.ndarray, cd: float, title: str, profile: str) -> plt.Figure:
    """Demšar-style critical-difference diagram: rank axis, a CD bar, thick bars joining indistinguishable groups."""
    k = len(names)
    order = np.argsort(mean_ranks, kind="stable")
    fig, ax = plt.subplots(figsize=(6.0, 1.6 + 0.22 * k))
    fig.subplots_adjust(left=0.22, right=0.78, top=0.72, bottom=0.02)
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(-(k // 2 + 1) * 0.5 - 0.2, 1.2)
    ax.axis("off")
    ax.plot([1, k], [0, 0], color="black", lw=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.1], color="black", lw=1)
        ax.text(r, 0.18, str(r), ha="center", va="bottom")
    ax.plot([1, 1 + cd], [0.85, 0.85], color="black", lw=1.5)
    ax.text(1 + cd / 2, 0.92, f"CD = {cd:.2f}", ha="center", va="bottom")
    half = (k + 1) // 2
    for pos, i in enumerate(order):
        r = mean_ranks[i]
        left = pos < half
        depth = -0.5 * ((pos if left else k - 1 - pos) + 1)
        xt = 0.6 if left else k + 0.4
        ax.plot([r, r, xt], [0, depth, depth], color="black", lw=0.7)
        ax.text(xt, depth, f"{names[i]} ({r:.2f})", ha="right" if left else "left", va="center", fontsize=6)
    # cliques: maximal runs of consecutive (by rank) models whose span is below CD
    sorted_r = mean_ranks[order]
    cliques = []
    for a in range(k):
        b = a
        while b + 1 < k and sorted_r[b + 1] - sorted_r[a] < cd:
            b += 1
        if b > a and not any(a >= s and b <= e for s, e in cliques):
            cliques.append((a, b))
    for n, (a, b) in enumerate(cliques):
        y = -0.15 - 0.12 * n
        ax.plot([sorted_r[a] - 0.03, sorted_r[b] + 0.03], [y, y], color="#444444", lw=2.5)
    _title(fig, title, profile)
    return fig


def smile_cd(res: Results, profile: str) -> plt.Figure | str:
    names, matrix = tb.smile_rank_matrix(res, profile)
    try:
        fr = stats.friedman(matrix)
    except stats.TooFewError as err:
        return f"critical-difference diagram ({profile}): {err}"
    cd = stats.nemenyi_cd(fr.k, fr.n_blocks)
    return cd_diagram(names, fr.mean_ranks, cd, f"Smile: Nemenyi critical difference over {fr.n_blocks} datasets "
                      f"(Friedman p = {tb.fmt_p(fr.p)})", profile)


def smile_paired_folds(res: Results, profile: str) -> plt.Figure | None:
    """Per dataset, each fold's accuracy across variants as one line: shows that folds co-vary between models."""
    panels = []
    for d in pc.SMILE_DATASETS:
        variants = [v for v in tb.smile_variants(res, profile) if len(tb.scores(res, "smile", profile, d, v))]
        if variants:
            panels.append((d, variants))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(1.9 * len(panels) + 0.6, 2.8), squeeze=False)
    for ax, (d, variants) in zip(axes[0], panels):
        frames = {v: tb.scores(res, "smile", profile, d, v).set_index(["seed", "fold"])["value"] for v in variants}
        keys = sorted(set().union(*[set(f.index) for f in frames.values()]))
        for key in keys:
            y = [100 * frames[v].get(key, np.nan) for v in variants]
            ax.plot(range(len(variants)), y, color="#999999", lw=0.6, marker="o", ms=2, alpha=0.8)
        means = [100 * frames[v].mean() for v in variants]
        ax.plot(range(len(variants)), means, color="black", marker="D", ms=4, lw=0, label="mean")
        ax.set_xticks(range(len(variants)), variants, rotation=60, ha="right")
        ax.set_title(d)
    axes[0][0].set_ylabel("accuracy per fold (%)")
    _title(fig, "Smile: per-fold paired accuracies (one line per fold)", profile)
    fig.tight_layout()
    return fig


# --- HAFEM -------------------------------------------------------------------------------------------------------

def _hafem_runs(res: Results, profile: str, dataset: str, variant: str) -> list[str]:
    sub = res.select(study="hafem", profile=profile, dataset=dataset, variant=variant)
    return sorted(set(sub["run_dir"]))


def hafem_confusion(res: Results, profile: str) -> plt.Figure | None:
    panels = []
    for d in pc.FER_DATASETS:
        total, classes = None, None
        for run in _hafem_runs(res, profile, d, "hafem"):
            got = load_confusion(run, "hafem")
            if got is None:
                preds = load_predictions(run, "hafem")
                if preds is None:
                    continue
                n = max(len(preds.classes), int(max(preds.y_true.max(), preds.y_pred.max())) + 1)
                cm = np.zeros((n, n))
                np.add.at(cm, (preds.y_true, preds.y_pred), 1)
                got = (cm, preds.classes or tuple(str(i) for i in range(n)))
            cm, cls = got
            if total is None:
                total, classes = cm.copy(), cls
            elif cm.shape == total.shape:
                total += cm
        if total is not None:
            panels.append((d, total, classes))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.6), squeeze=False)
    for ax, (d, cm, classes) in zip(axes[0], panels):
        rows = cm.sum(1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i in range(norm.shape[0]):
            for j in range(norm.shape[1]):
                ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize=5,
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{d} (row %, summed over seeds)")
    _title(fig, "HAFEM: confusion matrices", profile)
    fig.tight_layout()
    return fig


def hafem_per_class_bars(res: Results, profile: str, dataset: str = "FER2013") -> plt.Figure | None:
    present = set(res.select(study="hafem", profile=profile, dataset=dataset)["variant"])
    variants = [v for v in ["hafem", *pc.HAFEM_BASELINE_VARIANTS] if v in present]
    classes = tb.hafem_classes(res, profile, dataset)
    if not variants or not classes:
        return None
    fig, ax = plt.subplots(figsize=(6.0, 2.8))
    width = 0.8 / len(variants)
    for i, v in enumerate(variants):
        means, sds = [], []
        for c in classes:
            s = 100 * tb.scores(res, "hafem", profile, dataset, v, f"f1/{c}")["value"].to_numpy()
            means.append(s.mean() if len(s) else np.nan)
            sds.append(s.std(ddof=1) if len(s) > 1 else 0.0)
        ax.bar(np.arange(len(classes)) + i * width - 0.4 + width / 2, means, width, yerr=sds, capsize=1.5,
               label=v, error_kw={"lw": 0.6})
    for c, val in pc.HAFEM_PER_CLASS_F1.items():
        if c in classes:
            ax.plot([classes.index(c)], [val], marker="*", color="black", ms=7, lw=0)
    ax.plot([], [], marker="*", color="black", lw=0, label="paper (HAFEM)")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_ylabel("F1 (%)")
    ax.legend(frameon=False, ncol=2, fontsize=6)
    _title(fig, f"HAFEM: per-class F1 on {dataset} (mean ± sd over seeds)", profile)
    fig.tight_layout()
    return fig


def hafem_ablation_bars(res: Results, profile: str, dataset: str = "FER2013") -> plt.Figure | None:
    labels, measured, sds, paper = [], [], [], []
    for rung, paper_acc, candidates in pc.HAFEM_ABLATION:
        v = tb.hafem_variant_for(res, profile, dataset, candidates)
        s = 100 * tb.scores(res, "hafem", profile, dataset, v)["value"].to_numpy() if v else np.array([])
        labels.append(f"{rung}\n(" + (v or "no runs").replace("+", "+\n") + ")")
        measured.append(s.mean() if len(s) else np.nan)
        sds.append(s.std(ddof=1) if len(s) > 1 else 0.0)
        paper.append(paper_acc)
    if all(math.isnan(m) for m in measured):
        return None
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.bar(x - 0.2, measured, 0.4, yerr=sds, capsize=2, label=f"measured ({profile})")
    ax.bar(x + 0.2, paper, 0.4, label="paper (§4, Fig. 3)", color="#bbbbbb")
    ax.set_xticks(x, labels, fontsize=5)
    ax.set_ylabel("accuracy (%)")
    ax.legend(frameon=False)
    _title(fig, f"HAFEM: ablation ladder on {dataset}", profile)
    fig.tight_layout()
    return fig


def hafem_speed_accuracy(res: Results, profile: str, dataset: str = "FER2013") -> plt.Figure | None:
    present = set(res.select(study="hafem", profile=profile, dataset=dataset)["variant"])
    points = []
    for v in sorted(present):
        acc = tb.scores(res, "hafem", profile, dataset, v)["value"]
        fps = tb.scores(res, "hafem", profile, dataset, v, "fps_model", selection=None)["value"]
        if len(acc) and len(fps):
            points.append((v, float(fps.mean()), 100 * float(acc.mean())))
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for v, fps, acc in points:
        ax.plot([fps], [acc], marker="o", ms=5, lw=0)
        ax.annotate(v, (fps, acc), fontsize=5, xytext=(3, 2), textcoords="offset points")
    for name, acc, *_, fps in pc.HAFEM_TABLE3:
        ax.plot([fps], [acc], marker="s", ms=4, mfc="none", color="#777777", lw=0)
        ax.annotate(name, (fps, acc), fontsize=4.5, color="#777777", xytext=(3, -5), textcoords="offset points")
    ax.plot([], [], marker="o", lw=0, color="black", label=f"measured ({profile}, this machine, model only)")
    ax.plot([], [], marker="s", mfc="none", lw=0, color="#777777", label="paper Table 3 (RTX 3090)")
    ax.set_xscale("log")
    ax.set_xlabel("frames per second (log)")
    ax.set_ylabel("accuracy (%)")
    ax.legend(frameon=False, fontsize=5)
    _title(fig, f"HAFEM: speed vs accuracy on {dataset}", profile)
    fig.tight_layout()
    return fig


def gradcam_panels(run: str | Path, max_images: int) -> list[tuple[str, np.ndarray, np.ndarray | None, str]]:
    """Grad-CAM panels of one run as (label, map or image, face under the map or None, outcome):
    ``explain/gradcam_maps.npy`` + ``gradcam.json`` + ``gradcam_faces.npy`` (common/fer/explain.py; runs from before
    the faces were stored have maps only) or ready-made ``gradcam/*.png`` images (outcome "")."""
    from matplotlib import image as mpimg

    run = Path(run)
    maps_file, meta_file = run / "explain" / "gradcam_maps.npy", run / "explain" / "gradcam.json"
    faces_file = run / "explain" / "gradcam_faces.npy"
    if maps_file.is_file():
        maps = load_gradcam_maps(maps_file)
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        true = meta.get("classes", [str(i) for i in range(len(maps))])
        pred = meta.get("predicted", [""] * len(maps))
        outcome = meta.get("outcome", [""] * len(maps))
        faces = np.load(faces_file, allow_pickle=False) if faces_file.is_file() else None
        if faces is not None and faces.shape[:3] != maps.shape:
            raise MalformedInput(f"{faces_file}:1: faces of shape {faces.shape} do not match the maps {maps.shape}")
        empty = [p is not None and p <= 0 for p in meta.get("peak", [None] * len(maps))]
        return [((f"{t} -> {p}" if p else t) + ("\n(no positive evidence)" if e else ""), m,
                 None if faces is None else faces[k], o)
                for k, (t, p, m, o, e) in enumerate(zip(true, pred, maps, outcome, empty))][:max_images]
    return [(f.stem, mpimg.imread(f), None, "") for f in sorted((run / "gradcam").glob("*.png"))[:max_images]]


def _overlay(ax, heat: np.ndarray, face: np.ndarray | None) -> None:
    if face is None:  # maps saved without their faces
        ax.imshow(heat, cmap="jet", vmin=0, vmax=1, interpolation="bilinear")
        return
    h, w = face.shape[:2]
    ax.imshow(face)
    ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear",
              extent=(-0.5, w - 0.5, h - 0.5, -0.5))


def hafem_gradcam(res: Results, profile: str, max_images: int = 16) -> plt.Figure | str:
    """The Grad-CAM maps the HAFEM runs saved, over the faces they explain (first run of each dataset that has them):
    one row of correct and one of wrong predictions per dataset where the run recorded the outcome."""
    rows = []
    for d in pc.FER_DATASETS:
        for run in _hafem_runs(res, profile, d, "hafem"):
            images = gradcam_panels(run, max_images)
            if images:
                outcomes = [o for o in ("correct", "wrong") if any(p[3] == o for p in images)]
                if outcomes:
                    rows += [(f"{d} ({o})", [p for p in images if p[3] == o]) for o in outcomes]
                else:
                    rows.append((d, images))
                break
    if not rows:
        return (f"Grad-CAM grid ({profile}): no HAFEM run saved Grad-CAM maps (explain/gradcam_maps.npy or "
                "gradcam/*.png)")
    ncols = max(len(f) for _, f in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.2 * ncols + 0.4, 1.45 * len(rows) + 0.5), squeeze=False)
    for row, (name, images) in zip(axes, rows):
        for ax in row:
            ax.axis("off")
        for ax, (label, img, face, _) in zip(row, images):
            if img.ndim == 2:
                _overlay(ax, img, face)
            else:
                ax.imshow(img)
            ax.set_title(f"{name}\n{label}", fontsize=4.5)
    _title(fig, "HAFEM: Grad-CAM for the predicted class over the model's input face (true -> predicted)", profile)
    fig.tight_layout()
    return fig


FIGURES: tuple[tuple[str, str, Callable[[Results, str], object]], ...] = (
    ("smile", "smile_progression", smile_progression),
    ("smile", "smile_heatmap", smile_heatmap),
    ("smile", "smile_cd_diagram", smile_cd),
    ("smile", "smile_paired_folds", smile_paired_folds),
    ("hafem", "hafem_confusion", hafem_confusion),
    ("hafem", "hafem_per_class_f1", hafem_per_class_bars),
    ("hafem", "hafem_ablation", hafem_ablation_bars),
    ("hafem", "hafem_speed_accuracy", hafem_speed_accuracy),
    ("hafem", "hafem_gradcam", hafem_gradcam),
)


def region_figure(res: Results, profile: str):
    """Per dataset with region summaries: classes x regions heat maps for Grad-CAM and SHAP."""
    datasets = [d for d in pc.FER_DATASETS if regions.runs_of(res, profile, d)]
    fig, axes = plt.subplots(len(datasets), 2, figsize=(7.0, 1.9 * len(datasets) + 0.6), squeeze=False)
    for row, d in zip(axes, datasets):
        for ax, method in zip(row, regions.METHODS):
            classes, m, _, _ = regions.region_matrix(res, profile, d, method)
            scale = 1.0 if method == "gradcam" else 100.0
            m = scale * m
            lim = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0
            im = ax.imshow(m, aspect="auto", cmap="viridis" if method == "gradcam" else "RdBu_r",
                           vmin=0 if method == "gradcam" else -(lim or 1.0), vmax=lim or 1.0)
            for i in range(m.shape[0]):
                for j in range(m.shape[1]):
                    ax.text(j, i, "–" if np.isnan(m[i, j]) else f"{m[i, j]:.2f}", ha="center", va="center",
                            fontsize=4.5)
            ax.set_xticks(range(len(regions.REGIONS)), regions.REGIONS, fontsize=5)
            ax.set_yticks(range(len(classes)), classes, fontsize=5)
            ax.set_title(f"{d}: {regions.METHODS[method]}", fontsize=6)
            fig.colorbar(im, ax=ax)
    _title(fig, "HAFEM: attribution by facial region (test images explained for their class)", profile)
    fig.tight_layout()
    return fig


def write_figures(res: Results, profile: str, studies: set[str], folder: Path) -> FigureLog:
    log = FigureLog()
    with plt.rc_context(RC):
        for study, name, build in FIGURES:
            if study not in studies:
                continue
            fig = build(res, profile)
            if fig is None:
                log.skipped.append(f"{name} ({profile}): no data for it")
            elif isinstance(fig, str):
                log.skipped.append(fig)
            else:
                save(fig, folder, name, log)
        if tb.has_released(res, profile):  # only when released-protocol runs exist: nothing is missing otherwise
            save(smile_released_bars(res, profile), folder, "smile_released", log)
        if "hafem" in studies and regions.has_regions(res, profile):  # only when runs saved explain/regions.csv
            save(region_figure(res, profile), folder, "hafem_regions", log)
    return log


def write_reference_figures(folder: Path) -> FigureLog:
    """Figures from published numbers alone (written even when there are no results)."""
    log = FigureLog()
    with plt.rc_context(RC):
        save(smile_progression(None, None), folder, "smile_progression_published", log)  # type: ignore[arg-type]
    return log

"""HAFEM attribution by facial region: the table (and the data of :func:`statistical_analysis.figures.region_figure`)
built from the runs' ``explain/regions.csv`` (written by common/fer/explain.py). Both are emitted only when some run
has the file, so result sets without it (older runs, ``explain=false``) produce exactly the tables they did before."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from statistical_analysis import paper_claims as pc
from statistical_analysis.loading import MalformedInput, Results
from statistical_analysis.tables import Table

REGIONS = ("eyes", "brows", "nose", "mouth", "cheeks")  # common.face.topology.FACE_REGIONS, in its order
METHODS = {"gradcam": "Grad-CAM (mean map in region, 0-1)", "shap": "SHAP (region's Shapley value, pp of probability)"}
FILE = Path("explain") / "regions.csv"


def runs_of(res: Results, profile: str, dataset: str) -> list[Path]:
    sub = res.select(study="hafem", profile=profile, dataset=dataset, variant="hafem")
    return [Path(r) / FILE for r in sorted(set(sub["run_dir"])) if (Path(r) / FILE).is_file()]


def read_regions(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for line, row in enumerate(rows, start=2):
        if row.get("method") not in METHODS or row.get("region") not in REGIONS:
            raise MalformedInput(f"{path}:{line}: unknown method {row.get('method')!r} or region {row.get('region')!r}")
        try:
            float(row["value"] or "nan"), int(row["n_images"]), int(row["n_no_mesh"])
        except (KeyError, ValueError):
            raise MalformedInput(f"{path}:{line}: value, n_images and n_no_mesh must be numbers, got {row}") from None
    return rows


def has_regions(res: Results, profile: str) -> bool:
    return any(runs_of(res, profile, d) for d in pc.FER_DATASETS)


def region_matrix(res: Results, profile: str, dataset: str, method: str):
    """(classes, (classes x regions) mean over runs, faces used per class, faces without a mesh per class)."""
    values: dict[tuple[str, str], list[float]] = {}
    used: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for path in runs_of(res, profile, dataset):
        for row in read_regions(path):
            if row["method"] != method:
                continue
            if row["value"]:
                values.setdefault((row["class"], row["region"]), []).append(float(row["value"]))
            if row["region"] == REGIONS[0]:
                used[row["class"]] = used.get(row["class"], 0) + int(row["n_images"])
                skipped[row["class"]] = skipped.get(row["class"], 0) + int(row["n_no_mesh"])
    classes = list(used)
    m = np.full((len(classes), len(REGIONS)), np.nan)
    for (c, r), v in values.items():
        m[classes.index(c), REGIONS.index(r)] = float(np.mean(v))
    return classes, m, used, skipped


def hafem_regions(res: Results, profile: str) -> Table:
    t = Table("hafem_regions", "HAFEM: attribution by facial region, per class", profile,
              ["dataset", "class", "method", *REGIONS, "top region", "faces (no mesh)"], [],
              caption=("Test images of each class explained for that class; regions from MediaPipe Face Mesh on the "
                       "aligned face. Grad-CAM: mean of the peak-normalised map inside the region. SHAP: exact "
                       "Shapley value of the region (regions blurred out when absent), in percentage points of "
                       "the class probability. Mean over the runs that saved explanations."))
    for d in pc.FER_DATASETS:
        for method in METHODS:
            classes, m, used, skipped = region_matrix(res, profile, d, method)
            scale, digits = (1.0, 3) if method == "gradcam" else (100.0, 2)
            for i, c in enumerate(classes):
                cells = ["no face with a mesh" if np.isnan(x) else f"{scale * x:.{digits}f}" for x in m[i]]
                if not np.isfinite(m[i]).any():
                    top = "—"
                elif np.nanmax(m[i]) <= 0:
                    top = "none (no positive attribution)"
                else:
                    top = REGIONS[int(np.nanargmax(m[i]))]
                t.add(d, c, method, *cells, top, f"{used[c]} ({skipped[c]})")
    return t


def region_tables(res: Results, profile: str) -> list[Table]:
    return [hafem_regions(res, profile)] if has_regions(res, profile) else []

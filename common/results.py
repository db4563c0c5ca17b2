"""Raw results: tidy per-fold rows plus a ``run.json`` per run, written atomically.

Layout: ``results/raw/<study>/<profile>/<dataset>/<variant>/seed<seed>-<config hash>/``
    rows.csv       one row per (fold, selection, metric), columns :data:`COLUMNS`
    run.json       provenance (see :mod:`common.provenance`), ``status``: "running", "complete" or "failed" (with
                   ``error`` and ``log``), and on completion ``n_rows`` and ``folds_run`` (what the rows must cover),
                   ``wall_seconds`` and the process's ``peak_rss_mib``
    executed.ipynb / log.txt   written by the batch runner
A run counts as finished only when ``run.json`` says ``complete``; a killed run is started afresh, so rows are
never duplicated or truncated. The batch re-runs a complete run (``--force``) in a staging folder and swaps it in
only when it completes (:func:`replace_run`). Only ``statistical_analysis/`` turns these rows into tables and figures.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from common import io as atomic
from common.config import config_hash
from common.paths import RAW_RESULTS_DIR
from common.provenance import peak_rss_mib

COLUMNS = ("study", "dataset", "variant", "profile", "seed", "fold", "selection", "metric", "value", "n_train", "n_test")
RESULT_FILES = ("rows.csv", "run.json")


def run_dir(cfg: Mapping[str, Any], root: Path | None = None) -> Path:
    """The folder of the run with resolved config ``cfg``."""
    root = Path(root) if root is not None else RAW_RESULTS_DIR
    variant = cfg.get("variant", "default")
    return root / cfg["study"] / cfg["profile"] / cfg["dataset"] / variant / f"seed{cfg['seed']}-{config_hash(cfg)}"


def is_complete(folder: Path) -> bool:
    try:
        return json.loads((Path(folder) / "run.json").read_text()).get("status") == "complete"
    except (OSError, ValueError):
        return False


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


@dataclass
class RunWriter:
    """Collects rows of one run; every ``add`` rewrites ``rows.csv`` atomically, ``finish`` marks it complete."""

    cfg: Mapping[str, Any]
    folder: Path
    provenance: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    _t0: float = field(default_factory=time.time)

    def add(self, fold: int, metrics: Mapping[str, float], n_train: int, n_test: int,
            selection: str = "", variant: str | None = None) -> None:
        """Append one row per metric for ``fold``; ``variant`` overrides the run's (e.g. ablation rungs)."""
        for metric, value in metrics.items():
            if value is None:
                continue
            self.rows.append({
                "study": self.cfg["study"], "dataset": self.cfg["dataset"],
                "variant": variant or self.cfg.get("variant", "default"), "profile": self.cfg["profile"],
                "seed": self.cfg["seed"], "fold": int(fold), "selection": selection, "metric": metric,
                "value": float(value), "n_train": int(n_train), "n_test": int(n_test),
            })
        self._flush_rows()

    def _flush_rows(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _format(v) for k, v in row.items()})
        atomic.write_text(self.folder / "rows.csv", buf.getvalue())

    def save_json(self, name: str, obj: Any) -> Path:
        """Extra raw artefacts of the run (curves, confusion matrices) as JSON beside the rows."""
        atomic.write_json(self.folder / name, obj)
        return self.folder / name

    def finish(self, **extra: Any) -> Path:
        self._flush_rows()
        record = dict(self.provenance)
        record.update(extra)
        record.update({"status": "complete", "n_rows": len(self.rows),
                       "folds_run": sorted({r["fold"] for r in self.rows}),
                       "wall_seconds": round(time.time() - self._t0, 3),
                       # the whole process (a notebook's kernel): the figure the 2-GB demo budget is about
                       "peak_rss_mib": peak_rss_mib()})
        atomic.write_json(self.folder / "run.json", record)
        return self.folder


def open_run(cfg: Mapping[str, Any], data_fingerprint: str | None = None, root: Path | None = None,
             **extra: Any) -> RunWriter:
    """Start (or restart) the run of ``cfg``: stale rows of an unfinished attempt are removed first."""
    from common import provenance

    folder = run_dir(cfg, root)
    folder.mkdir(parents=True, exist_ok=True)
    for name in RESULT_FILES:
        (folder / name).unlink(missing_ok=True)
    atomic.remove_stale_temporaries(folder)
    prov = provenance.collect(cfg, data_fingerprint, **extra)
    atomic.write_json(folder / "run.json", {**prov, "status": "running"})
    return RunWriter(cfg=cfg, folder=folder, provenance=prov)


def run_status(folder: Path) -> str | None:
    """``status`` of a run folder's run.json ("running", "complete", "failed"), or None without a readable one."""
    try:
        record = json.loads((Path(folder) / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return record.get("status") if isinstance(record, dict) else None


def mark_failed(folder: Path, error: str, log: str | os.PathLike | None = None) -> bool:
    """Record a failed attempt in ``folder/run.json`` (status "failed", the error and the log path), keeping the
    provenance already there. A complete run is left alone (returns False)."""
    folder = Path(folder)
    try:
        record = json.loads((folder / "run.json").read_text())
        record = record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        record = {}
    if record.get("status") == "complete":
        return False
    from datetime import datetime, timezone

    record.update({"status": "failed", "error": error, "log": None if log is None else str(log),
                   "failed_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    atomic.write_json(folder / "run.json", record)
    return True


def replace_run(new: Path, target: Path, trash: Path) -> None:
    """Put the complete run folder ``new`` at ``target``; a previous ``target`` is moved into ``trash`` first and
    deleted after the swap. Both renames stay on one file system; between them ``target`` is briefly absent (never
    half-written), and a crash there leaves the previous run in ``trash``, not lost."""
    new, target, trash = Path(new), Path(target), Path(trash)
    if not is_complete(new):
        raise ValueError(f"{new}: not a complete run, refusing to replace {target} with it")
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        trash.mkdir(parents=True, exist_ok=True)
        old = trash / f"{target.name}.{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
    os.rename(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_rows(root: Path | None = None, only_complete: bool = True) -> "Iterable[dict[str, str]]":
    """Yield raw rows of every (complete) run below ``root``, each with ``run_dir`` added."""
    root = Path(root) if root is not None else RAW_RESULTS_DIR
    for rows_file in sorted(root.rglob("rows.csv")):
        if only_complete and not is_complete(rows_file.parent):
            continue
        with open(rows_file, newline="") as fh:
            for row in csv.DictReader(fh):
                row["run_dir"] = str(rows_file.parent)
                yield row

"""Read raw results (complete runs only, via ``common.results.read_rows``) into one validated table.

A malformed file stops everything with :class:`MalformedInput` naming the file and line: tables built from a
half-understood input would be worse than none. So does a complete run whose rows do not cover what its
``run.json`` says it ran (:class:`UncoveredRun`: fewer rows than ``n_rows``, folds missing from the recorded or
configured folds, a fold lacking metrics its siblings have): a table from half the folds would look like a result.
Missing runs are not an error; they are listed, and cells say why. Complete runs without any row are listed too.

Each row carries its run's ``protocol`` (from run.json; ``paper`` when absent). Runs under ``protocol=released``
(epoch chosen on the test fold) are kept apart: :meth:`Results.select` leaves them out unless asked for with
``protocol="released"``, so no honest table, test or figure pools them, and they never supersede an honest run.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.results import COLUMNS, is_complete, read_rows
from common.smile.choices import SELECTIONS as SMILE_SELECTIONS

STUDIES = ("smile", "hafem")
PROFILES = ("demo", "paper")
SELECTIONS = ("", *SMILE_SELECTIONS)  # "": a study without epoch selection (HAFEM)
PROTOCOLS = ("paper", "released")
# metrics that are fractions in [0, 1]; anything else there is a malformed row (e.g. a percentage)
BOUNDED = {"accuracy", "balanced_accuracy", "f1", "roc_auc", "precision_macro", "recall_macro", "f1_macro", "auc_ovr"}


class MalformedInput(ValueError):
    """An input file that cannot be read as the results schema; the message starts with ``file:line:``."""


class UncoveredRun(MalformedInput):
    """A complete run whose rows do not cover its folds and metrics; the message names the run and what is missing."""


def _is_bounded(metric: str) -> bool:
    base = metric.rsplit("/", 1)[-1] if metric.startswith("zeroshot/") else metric
    return base in BOUNDED or metric.startswith("f1/") or base.startswith("f1/")


@dataclass
class Results:
    """All rows of complete runs, plus what was skipped and why."""

    rows: pd.DataFrame
    root: Path
    incomplete_runs: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    empty_runs: list[str] = field(default_factory=list)
    _groups: dict | None = field(default=None, repr=False)

    def select(self, **where: Any) -> pd.DataFrame:
        """Rows matching ``where``; honest (``protocol="paper"``) rows only unless another protocol is asked for."""
        where.setdefault("protocol", "paper")
        df = self.rows
        key4 = ("study", "profile", "dataset", "variant")
        if all(k in where and isinstance(where[k], str) for k in key4):
            # the tables ask for one (study, profile, dataset, variant) hundreds of times: index it once
            if self._groups is None:
                self._groups = {k: g for k, g in self.rows.groupby(list(key4), sort=False)}
            df = self._groups.get(tuple(where[k] for k in key4), self.rows.iloc[0:0])
            where = {k: v for k, v in where.items() if k not in key4}
        for key, value in where.items():
            if isinstance(value, (list, tuple, set)):
                df = df[df[key].isin(list(value))]
            else:
                df = df[df[key] == value]
        return df

    def relpath(self, path: str | Path) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)


def _parse_row(row: dict[str, Any], where: str) -> dict[str, Any]:
    if None in row:
        raise MalformedInput(f"{where}: more fields than the {len(COLUMNS)} columns of the header")
    missing = [c for c in COLUMNS if row.get(c) is None]
    if missing:
        raise MalformedInput(f"{where}: missing field(s) {', '.join(missing)}")
    out: dict[str, Any] = {c: row[c] for c in COLUMNS}
    if out["study"] not in STUDIES:
        raise MalformedInput(f"{where}: study {out['study']!r} is not one of {', '.join(STUDIES)}")
    if out["profile"] not in PROFILES:
        raise MalformedInput(f"{where}: profile {out['profile']!r} is not one of {', '.join(PROFILES)}")
    if out["selection"] not in SELECTIONS:
        raise MalformedInput(f"{where}: selection {out['selection']!r} is not one of {SELECTIONS}")
    for key in ("dataset", "variant", "metric"):
        if not out[key]:
            raise MalformedInput(f"{where}: empty {key}")
    for key in ("seed", "fold", "n_train", "n_test"):
        try:
            out[key] = int(out[key])
        except ValueError:
            raise MalformedInput(f"{where}: {key} = {out[key]!r} is not an integer") from None
    try:
        value = float(out["value"])
    except ValueError:
        raise MalformedInput(f"{where}: value = {out['value']!r} is not a number") from None
    if math.isinf(value):
        raise MalformedInput(f"{where}: value is infinite")
    if _is_bounded(out["metric"]) and not math.isnan(value) and not 0.0 <= value <= 1.0:
        raise MalformedInput(f"{where}: {out['metric']} = {value!r} lies outside [0, 1] (fractions, not percent)")
    out["value"] = value
    return out


def _line_number(rows_file: Path, data_index: int) -> int:
    """File line of the ``data_index``-th data row (1-based), skipping blank lines as csv.DictReader does."""
    with open(rows_file, newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        seen = 0
        for rec in reader:
            if rec:
                seen += 1
                if seen == data_index:
                    return reader.line_num
    return data_index + 1


def _unreadable(root: Path, err: Exception) -> MalformedInput:
    """Find which rows.csv the csv module choked on, and where."""
    for rows_file in sorted(root.rglob("rows.csv")):
        if not is_complete(rows_file.parent):
            continue
        try:
            with open(rows_file, newline="") as fh:
                reader = csv.reader(fh)
                for _ in reader:
                    pass
        except (csv.Error, UnicodeDecodeError) as bad:
            line = getattr(reader, "line_num", 0) + (1 if isinstance(bad, UnicodeDecodeError) else 0)
            return MalformedInput(f"{rows_file}:{line}: unreadable CSV ({bad})")
    return MalformedInput(f"{root}: unreadable CSV ({err})")


def _run_record(run_dir: str | Path) -> dict[str, Any]:
    try:
        record = json.loads((Path(run_dir) / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _started(run_dir: str) -> str:
    return str(_run_record(run_dir).get("started_utc", ""))


def _expected_folds(record: dict[str, Any]) -> set[int] | None:
    """Folds a run says it ran: ``folds_run`` (written by RunWriter.finish), else a smile config's fold list."""
    if isinstance(record.get("folds_run"), list):
        return {int(k) for k in record["folds_run"]}
    folds = (record.get("config") or {}).get("folds")
    if isinstance(folds, str) and folds != "all":
        try:
            return {int(k) for k in folds.split(",")}
        except ValueError:
            return None
    return None


def coverage_problems(df: pd.DataFrame, record: dict[str, Any]) -> list[str]:
    """What a complete run's rows (``df``, one run) lack against its run.json ``record``; empty when covered."""
    problems = []
    n_rows = record.get("n_rows")
    if isinstance(n_rows, int) and len(df) != n_rows:
        problems.append(f"rows.csv has {len(df)} rows, run.json records n_rows={n_rows}")
    present = set(int(k) for k in df["fold"].unique())
    expected = _expected_folds(record)
    if expected is not None and expected - present:
        problems.append(f"missing folds {sorted(expected - present)} (rows cover {sorted(present)})")
    n_folds = record.get("n_folds")
    if expected is None and isinstance(n_folds, int) and len(present) < n_folds:
        problems.append(f"rows cover {len(present)} fold(s) {sorted(present)}, run.json records n_folds={n_folds}")
    for (variant, selection), group in df.groupby(["variant", "selection"], sort=True):
        metrics = set(group["metric"])
        by_fold = group.groupby("fold")["metric"].agg(set)
        absent_folds = sorted(present - set(int(k) for k in by_fold.index))
        if absent_folds:
            problems.append(f"variant {variant} selection {selection!r}: missing folds {absent_folds}")
        for fold, have in by_fold.items():
            if metrics - have:
                problems.append(f"variant {variant} selection {selection!r} fold {fold}: missing metric(s) "
                                f"{', '.join(sorted(metrics - have))}")
    return problems


def _check_coverage(parsed: list[dict[str, Any]]) -> None:
    if not parsed:
        return
    df = pd.DataFrame(parsed)
    for run, group in df.groupby("run_dir", sort=True):
        problems = coverage_problems(group, _run_record(run))
        if problems:
            raise UncoveredRun(f"{run}: complete run whose rows do not cover its folds and metrics: "
                               + "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5
                                                            else ""))


def _empty_complete_runs(root: Path, with_rows: set[str]) -> list[str]:
    """Complete runs (run.json status complete) that contribute no row: rows.csv absent, empty or header only."""
    return sorted(str(p.parent) for p in root.rglob("run.json")
                  if str(p.parent) not in with_rows and is_complete(p.parent))


def _protocol(run_dir: str) -> str:
    """The run's evaluation protocol (run.json ``protocol``, else its config's, else ``paper``)."""
    path = Path(run_dir) / "run.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return "paper"
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    protocol = record.get("protocol") or config.get("protocol") or "paper"
    if protocol not in PROTOCOLS:
        raise MalformedInput(f"{path}:1: protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    return protocol


def load_results(root: str | Path) -> Results:
    """Every row of every complete run below ``root`` (a ``results/raw`` folder), validated.

    When two complete runs give the same (study, profile, dataset, variant, seed, fold, selection, metric) — e.g. a
    re-run with a changed config — the later-started run wins and the older one is listed as superseded.
    """
    root = Path(root)
    parsed: list[dict[str, Any]] = []
    line_of: dict[str, int] = {}
    if root.is_dir():
        header_checked: set[str] = set()
        try:
            rows = list(read_rows(root, only_complete=True))
        except (csv.Error, UnicodeDecodeError) as err:
            raise _unreadable(root, err) from None
        for row in rows:
            run = row.pop("run_dir")
            rows_file = Path(run) / "rows.csv"
            if run not in header_checked:
                header_checked.add(run)
                absent = [c for c in COLUMNS if c not in row]
                if absent:
                    raise MalformedInput(f"{rows_file}:1: header lacks column(s) {', '.join(absent)}")
            line_of[run] = line_of.get(run, 0) + 1
            try:
                rec = _parse_row(row, "")
            except MalformedInput as err:
                raise MalformedInput(f"{rows_file}:{_line_number(rows_file, line_of[run])}{err}") from None
            rec["run_dir"] = run
            parsed.append(rec)
    _check_coverage(parsed)
    incomplete = sorted(str(p.parent) for p in root.rglob("rows.csv") if not is_complete(p.parent)) if root.is_dir() \
        else []
    empty = _empty_complete_runs(root, {rec["run_dir"] for rec in parsed}) if root.is_dir() else []
    protocols = {run: _protocol(run) for run in dict.fromkeys(rec["run_dir"] for rec in parsed)}
    for rec in parsed:
        rec["protocol"] = protocols[rec["run_dir"]]
    df = pd.DataFrame(parsed, columns=[*COLUMNS, "run_dir", "protocol"])
    df = df.astype({"seed": "int64", "fold": "int64", "n_train": "int64", "n_test": "int64", "value": "float64"})
    superseded: list[str] = []
    if len(df):
        started = {run: _started(run) for run in df["run_dir"].unique()}
        df["_started"] = df["run_dir"].map(started)
        df = df.sort_values(["_started", "run_dir"], kind="stable")
        keys = ["study", "protocol", "profile", "dataset", "variant", "seed", "fold", "selection", "metric"]
        dup = df.duplicated(keys, keep="last")
        kept_runs = set(df.loc[~dup, "run_dir"])
        superseded = sorted(set(df.loc[dup, "run_dir"]) - kept_runs)
        df = df[~dup].drop(columns="_started")
        df = df.sort_values(["study", "protocol", "profile", "dataset", "variant", "seed", "fold", "selection",
                             "metric"],
                            kind="stable").reset_index(drop=True)
    return Results(df, root, incomplete, superseded, empty)


@dataclass(frozen=True)
class Predictions:
    y_true: np.ndarray
    y_pred: np.ndarray
    classes: tuple[str, ...]
    path: Path


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise MalformedInput(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None


def load_predictions(run_dir: str | Path, variant: str) -> Predictions | None:
    """``<run>/predictions/<variant>.json`` ({y_true, y_pred, proba, classes}), or None when absent."""
    path = Path(run_dir) / "predictions" / f"{variant}.json"
    if not path.is_file():
        return None
    obj = _read_json(path)
    if not isinstance(obj, dict) or "y_true" not in obj or ("y_pred" not in obj and "proba" not in obj):
        raise MalformedInput(f"{path}:1: needs keys y_true and y_pred (or proba)")
    try:
        y_true = np.asarray(obj["y_true"], dtype=np.int64)
        y_pred = (np.asarray(obj["y_pred"], dtype=np.int64) if "y_pred" in obj
                  else np.asarray(obj["proba"], dtype=float).argmax(1))
    except (TypeError, ValueError) as err:
        raise MalformedInput(f"{path}:1: labels are not integer lists ({err})") from None
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise MalformedInput(f"{path}:1: y_true ({y_true.shape}) and y_pred ({y_pred.shape}) differ in length")
    classes = tuple(str(c) for c in obj.get("classes", []))
    return Predictions(y_true, y_pred, classes, path)


def load_confusion(run_dir: str | Path, variant: str) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """``<run>/confusion/<variant>.json`` ({classes, matrix} or a bare matrix), or None when absent."""
    path = Path(run_dir) / "confusion" / f"{variant}.json"
    if not path.is_file():
        return None
    obj = _read_json(path)
    matrix = obj.get("matrix") if isinstance(obj, dict) else obj
    try:
        cm = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        raise MalformedInput(f"{path}:1: matrix is not a numeric list of lists") from None
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise MalformedInput(f"{path}:1: confusion matrix must be square, got shape {cm.shape}")
    classes = tuple(str(c) for c in obj.get("classes", [])) if isinstance(obj, dict) else ()
    if classes and len(classes) != cm.shape[0]:
        raise MalformedInput(f"{path}:1: {len(classes)} classes for a {cm.shape[0]}x{cm.shape[0]} matrix")
    return cm, classes or tuple(str(i) for i in range(cm.shape[0]))


def load_gradcam_maps(path: str | Path) -> np.ndarray:
    """``<run>/explain/gradcam_maps.npy``: Grad-CAM maps (k, H, W) in [0, 1] written by common/fer/explain.py."""
    path = Path(path)
    try:
        maps = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise MalformedInput(f"{path}:1: not a readable .npy array ({err})") from None
    if maps.ndim != 3:
        raise MalformedInput(f"{path}:1: Grad-CAM maps must be (k, H, W), got shape {maps.shape}")
    return maps

"""statistical_analysis/run_tests.py on the committed fixture: golden tables, deterministic figures, bad input."""
from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from common.paths import ROOT
from statistical_analysis.loading import MalformedInput, load_results
from statistical_analysis.run_tests import MANIFEST, run

FIXTURE = ROOT / "tests" / "fixtures" / "results_small" / "raw"
GOLDEN = ROOT / "tests" / "golden" / "tables"
SCRIPT = ROOT / "statistical_analysis" / "run_tests.py"
FIGURES = ["smile_progression", "smile_heatmap", "smile_cd_diagram", "smile_paired_folds", "hafem_confusion",
           "hafem_per_class_f1", "hafem_ablation", "hafem_speed_accuracy", "hafem_gradcam"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("stats_out")
    assert run(FIXTURE, out / "tables", out / "figures", quiet=True) == 0
    return out


def _files(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def test_fixture_reproduces_golden_tables(outputs):
    got, want = _files(outputs / "tables"), _files(GOLDEN)
    assert sorted(got) == sorted(want)
    for rel, path in want.items():
        assert got[rel].read_text() == path.read_text(), f"{rel} differs from tests/golden/tables/{rel}"


def test_every_figure_written_and_regeneration_is_byte_identical(outputs, tmp_path):
    first = _files(outputs / "figures")
    for name in FIGURES:
        assert f"demo/{name}.png" in first and f"demo/{name}.pdf" in first
    assert run(FIXTURE, tmp_path / "tables", tmp_path / "figures", quiet=True) == 0
    second = _files(tmp_path / "figures")
    assert sorted(first) == sorted(second)
    for rel in first:
        assert first[rel].read_bytes() == second[rel].read_bytes(), f"{rel} changed on regeneration"
    png = first["demo/smile_heatmap.png"].read_bytes()
    assert b"matplotlib" not in png.lower()  # no Software tag carrying a version
    pdf = first["demo/smile_heatmap.pdf"].read_bytes()
    assert b"/CreationDate" not in pdf and b"/Producer" not in pdf


def _table(outputs, name: str) -> pd.DataFrame:
    return pd.read_csv(outputs / "tables" / "demo" / f"{name}.csv", dtype=str, keep_default_na=False)


def _accuracy(dataset: str, variant: str, selection: str = "val") -> pd.DataFrame:
    frames = []
    for rows_file in sorted((FIXTURE / "smile" / "demo" / dataset / variant).glob("*/rows.csv")):
        if json.loads((rows_file.parent / "run.json").read_text())["status"] == "complete":
            frames.append(pd.read_csv(rows_file, keep_default_na=False))
    df = pd.concat(frames)
    df = df[(df.metric == "accuracy") & (df.selection == selection)]
    return df.sort_values("fold").reset_index(drop=True)


def test_corrected_test_cell_matches_an_independent_computation(outputs):
    h, c = _accuracy("UvA-NEMO", "hadamard"), _accuracy("UvA-NEMO", "concat")
    d = c["value"].to_numpy() - h["value"].to_numpy()
    k = len(d)
    ratio = float(np.mean(h["n_test"] / h["n_train"]))
    t = d.mean() / math.sqrt(d.var(ddof=1) * (1 / k + ratio))
    p = 2 * sps.t.sf(abs(t), k - 1)
    tab = _table(outputs, "smile_vs_hadamard")
    row = tab[(tab.dataset == "UvA-NEMO") & (tab.variant == "concat")].iloc[0]
    assert row["t (corrected)"] == f"t({k - 1}) = {t:.2f}"
    assert row["p (corrected)"] == f"{p:.4f}"
    assert row["d_z"] == f"{d.mean() / d.std(ddof=1):.2f}"
    assert row["p (paired)"] == f"{sps.ttest_rel(c['value'], h['value']).pvalue:.4f}"
    acc = _table(outputs, "smile_accuracy")
    cell = acc[acc.variant == "hadamard"].iloc[0]["UvA-NEMO measured"]
    v = 100 * h["value"]
    assert cell == f"{v.mean():.1f} ± {v.std(ddof=1):.1f} (n={k})"


def test_holm_family_per_dataset(outputs):
    tab = _table(outputs, "smile_baselines")
    uva = tab[tab.dataset == "UvA-NEMO"]
    p = uva["p (corrected)"].astype(float).to_numpy()
    m = len(p)
    order = np.argsort(p)
    expect = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        expect[i] = running
    # cells hold p rounded to 4 decimals, so recompute from rounded values within that tolerance
    np.testing.assert_allclose(uva["p_Holm"].astype(float).to_numpy(), expect, atol=5e-4 * m)


def test_mcnemar_cell_matches_statsmodels(outputs):
    run_dir = next((FIXTURE / "hafem" / "demo" / "FER2013" / "hafem").glob("seed0-*"))
    h = json.loads((run_dir / "predictions" / "hafem.json").read_text())
    b = json.loads((run_dir / "predictions" / "resnet18.json").read_text())
    y = np.array(h["y_true"])
    ok_h, ok_b = np.array(h["y_pred"]) == y, np.array(b["y_pred"]) == y
    table = [[np.sum(ok_h & ok_b), np.sum(ok_h & ~ok_b)], [np.sum(~ok_h & ok_b), np.sum(~ok_h & ~ok_b)]]
    exact = table[0][1] + table[1][0] < 25
    ref = sm_mcnemar(table, exact=exact, correction=True)
    tab = _table(outputs, "hafem_mcnemar")
    row = tab[(tab.baseline == "resnet18") & (tab.seed == "0")].iloc[0]
    assert (row["only HAFEM right"], row["only baseline right"]) == (str(table[0][1]), str(table[1][0]))
    assert row["p"] == ("<0.0001" if ref.pvalue < 1e-4 else f"{ref.pvalue:.4f}")


def test_every_table_names_its_profile(outputs):
    for md in (outputs / "tables" / "demo").glob("*.md"):
        text = md.read_text()
        assert "Profile: demo. SYNTHETIC demo data" in text and "not a reproduction" in text, md.name
    for tex in (outputs / "tables" / "demo").glob("*.tex"):
        assert "SYNTHETIC" in tex.read_text(), tex.name
    for f in (outputs / "tables" / "demo").glob("*.csv"):
        rows = list(csv.reader(f.open()))
        assert rows[0][0] == "profile" and all(r[0] == "demo" for r in rows[1:]), f.name


def test_unfinished_runs_are_ignored_and_listed(outputs):
    acc = _table(outputs, "smile_accuracy")
    assert set(acc[acc.variant == "gated_concat"].iloc[0][["UvA-NEMO measured"]]) == {"no runs"}
    assert "smile/demo/UvA-NEMO/gated_concat" in (outputs / "tables" / "missing.md").read_text()


# --- bad input -----------------------------------------------------------------------------------------------------

def _copy_run(dst_root: Path, rel: str) -> Path:
    src = next((FIXTURE / rel).glob("seed*"))
    dst = dst_root / src.relative_to(FIXTURE)
    shutil.copytree(src, dst)
    return dst


def test_malformed_rows_exit_nonzero_naming_file_and_line(tmp_path):
    run_dir = _copy_run(tmp_path / "raw", "smile/demo/BBC/hadamard")
    rows = run_dir / "rows.csv"
    lines = rows.read_text().splitlines()
    fields = lines[4].split(",")
    fields[8] = "high"  # the value column
    lines[4] = ",".join(fields)
    rows.write_text("\n".join(lines) + "\n")
    out = subprocess.run([sys.executable, str(SCRIPT), "--results", str(tmp_path / "raw"), "--tables",
                          str(tmp_path / "tables"), "--figures", str(tmp_path / "figures")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert f"{rows}:5:" in out.stderr and "'high' is not a number" in out.stderr
    assert not (tmp_path / "tables").exists() and not (tmp_path / "figures").exists()


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("study,dataset", "study,data_set", 1), ":1: header lacks column(s) dataset"),
    (lambda t: t.replace(",val,accuracy,", ",val,accuracy,0.5,", 1), ":2: more fields"),
    (lambda t: t.replace(",val,accuracy,1.0,", ",val,accuracy,100.0,", 1).replace(",val,accuracy,0.5,",
                                                                                ",val,accuracy,50.0,", 1),
     "lies outside [0, 1]"),
    (lambda t: t.replace(",demo,", ",paperish,", 1), ":2: profile 'paperish'"),
])
def test_malformed_rows_kinds(tmp_path, edit, message):
    run_dir = _copy_run(tmp_path, "smile/demo/BBC/hadamard")
    rows = run_dir / "rows.csv"
    rows.write_text(edit(rows.read_text()))
    with pytest.raises(MalformedInput) as err:
        load_results(tmp_path)
    assert str(err.value).startswith(str(rows)) and message in str(err.value)


def test_malformed_predictions_name_file_and_line(tmp_path):
    run_dir = _copy_run(tmp_path / "raw", "hafem/demo/RAF-DB/hafem")
    pred = run_dir / "predictions" / "hafem.json"
    pred.write_text('{\n"y_true": [0, 1],\n"y_pred": [0, 1,\n}\n')
    assert run(tmp_path / "raw", tmp_path / "tables", tmp_path / "figures", quiet=True) == 2
    assert not (tmp_path / "tables").exists()


def test_no_results_yet_still_writes_reference_tables(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), "--results", str(tmp_path / "nothing"), "--tables",
                          str(tmp_path / "tables"), "--figures", str(tmp_path / "figures")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "No complete runs yet" in (tmp_path / "tables" / "missing.md").read_text()
    assert (tmp_path / "tables" / "reference" / "smile_paper_table4.csv").is_file()
    assert (tmp_path / "figures" / "reference" / "smile_progression_published.png").is_file()
    assert not (tmp_path / "tables" / "demo").exists()


def _record_as_run_of(run_dir: Path, folds: str, n_rows: int) -> None:
    record = json.loads((run_dir / "run.json").read_text())
    record["config"]["folds"] = folds
    record["n_rows"] = n_rows
    (run_dir / "run.json").write_text(json.dumps(record))


def _stats(raw: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--results", str(raw), "--tables", str(out / "tables"),
                           "--figures", str(out / "figures"), "--no-figures"], capture_output=True, text=True,
                          timeout=300)


def test_complete_run_missing_folds_is_refused_naming_run_and_folds(tmp_path):
    """A rows.csv holding half its folds must not become a table (issue 14: 60.0 +- 41.8 with n = 5, not 10)."""
    raw = tmp_path / "raw"
    run_dir = _copy_run(raw, "smile/demo/BBC/hadamard")
    rows = run_dir / "rows.csv"
    lines = rows.read_text().splitlines()
    kept = [ln for ln in lines[1:] if int(ln.split(",")[5]) <= 5]
    rows.write_text("\n".join([lines[0], *kept]) + "\n")
    out = _stats(raw, tmp_path)
    assert out.returncode == 2, out.stderr
    assert str(run_dir) in out.stderr and "n_rows=120" in out.stderr
    assert not (tmp_path / "tables").exists()
    # the run's record names its folds: the message names the missing ones
    _record_as_run_of(run_dir, folds="1,2,3,4,5,6,7,8,9,10", n_rows=len(kept))
    out = _stats(raw, tmp_path)
    assert out.returncode == 2 and "missing folds [6, 7, 8, 9, 10]" in out.stderr, out.stderr
    # a fold lacking a metric its siblings have
    _record_as_run_of(run_dir, folds="1,2,3,4,5", n_rows=len(kept) - 1)
    rows.write_text("\n".join([lines[0], *[ln for ln in kept if not (",2,val,f1," in ln)]]) + "\n")
    out = _stats(raw, tmp_path)
    assert out.returncode == 2 and "selection 'val' fold 2: missing metric(s) f1" in out.stderr, out.stderr


def test_complete_run_without_rows_is_listed(tmp_path):
    raw = tmp_path / "raw"
    _copy_run(raw, "smile/demo/BBC/hadamard")
    empty = _copy_run(raw, "smile/demo/BBC/concat")
    (empty / "rows.csv").write_text((empty / "rows.csv").read_text().splitlines()[0] + "\n")
    out = _stats(raw, tmp_path)
    assert out.returncode == 0, out.stderr
    missing = (tmp_path / "tables" / "missing.md").read_text()
    assert "Complete runs without any row" in missing and str(empty.relative_to(raw)) in missing


def test_missing_study_and_too_few_folds_are_reported(tmp_path):
    raw = tmp_path / "raw"
    for variant in ("hadamard", "concat"):
        run_dir = _copy_run(raw, f"smile/demo/SPOS/{variant}")
        rows = run_dir / "rows.csv"
        kept = [ln for i, ln in enumerate(rows.read_text().splitlines()) if i == 0 or ",demo,0,1," in ln]
        rows.write_text("\n".join(kept) + "\n")
        _record_as_run_of(run_dir, folds="1", n_rows=len(kept) - 1)  # an honest one-fold run
    assert run(raw, tmp_path / "tables", tmp_path / "figures", quiet=True) == 0
    tab = pd.read_csv(tmp_path / "tables" / "demo" / "smile_vs_hadamard.csv", dtype=str, keep_default_na=False)
    row = tab[(tab.dataset == "SPOS") & (tab.variant == "concat")].iloc[0]
    assert row["n"] == "1" and row["p (corrected)"] == "n = 1: no test"
    missing = (tmp_path / "tables" / "missing.md").read_text()
    assert "hafem: no complete runs in profile demo" in missing
    assert "SPOS / concat: p (corrected) = n = 1: no test" in missing
    assert "critical-difference diagram (demo)" in missing  # 2 variants on 1 dataset: no Friedman test
    assert not (tmp_path / "tables" / "demo" / "hafem_table3.csv").exists()


def test_stale_outputs_of_a_previous_run_are_removed(tmp_path):
    raw = tmp_path / "raw"
    _copy_run(raw, "hafem/demo/RAF-DB/hafem")
    _copy_run(raw, "smile/demo/BBC/hadamard")
    assert run(raw, tmp_path / "tables", tmp_path / "figures", quiet=True, figures=False) == 0
    assert (tmp_path / "tables" / "demo" / "hafem_table3.csv").is_file()
    assert not (tmp_path / "figures").exists()
    shutil.rmtree(raw / "hafem")
    (tmp_path / "tables" / "demo" / "notes_by_hand.txt").write_text("kept")
    assert run(raw, tmp_path / "tables", tmp_path / "figures", quiet=True, figures=False) == 0
    assert not (tmp_path / "tables" / "demo" / "hafem_table3.csv").exists()
    assert (tmp_path / "tables" / "demo" / "notes_by_hand.txt").read_text() == "kept"


def test_gradcam_grid_from_pngs_or_a_note_when_absent(tmp_path):
    raw = tmp_path / "raw"
    run_dir = _copy_run(raw, "hafem/demo/RAF-DB/hafem")
    assert run(raw, tmp_path / "t1", tmp_path / "f1", quiet=True) == 0
    assert "Grad-CAM grid (demo): no HAFEM run saved Grad-CAM maps" in (tmp_path / "t1" / "missing.md").read_text()
    assert not (tmp_path / "f1" / "demo" / "hafem_gradcam.png").exists()
    from PIL import Image

    (run_dir / "gradcam").mkdir()
    Image.fromarray(np.full((8, 8, 3), 128, dtype=np.uint8)).save(run_dir / "gradcam" / "happy.png")
    assert run(raw, tmp_path / "t2", tmp_path / "f2", quiet=True) == 0
    assert (tmp_path / "f2" / "demo" / "hafem_gradcam.png").is_file()
    (run_dir / "explain").mkdir()
    (run_dir / "explain" / "gradcam_maps.npy").write_bytes(b"not an array")
    assert run(raw, tmp_path / "t3", tmp_path / "f3", quiet=True) == 2
    assert not (tmp_path / "t3").exists()

"""Runs under protocol=released are labelled 'as released (test-fold selection)' and never pooled with honest runs."""
from __future__ import annotations

import csv
import json
import shutil

import pandas as pd
import pytest

from common.paths import ROOT
from statistical_analysis.loading import MalformedInput, load_results
from statistical_analysis.run_tests import MANIFEST, run

FIXTURE = ROOT / "tests" / "fixtures" / "results_small" / "raw"
GOLDEN = ROOT / "tests" / "golden" / "tables"
LABEL = "as released (test-fold selection)"


def add_released_copy(raw, dataset="BBC", variant="hadamard", value=0.999):
    """A copy of an honest run re-labelled protocol=released, with different (test-selected) numbers."""
    src = next(p for p in sorted((raw / "smile" / "demo" / dataset / variant).iterdir()) if p.is_dir())
    dst = src.with_name(src.name[:-4] + "rel0")
    shutil.copytree(src, dst)
    record = json.loads((dst / "run.json").read_text())
    record["protocol"] = "released"
    record["config"]["protocol"] = "released"
    record["started_utc"] = "9999-01-01T00:00:00Z"  # later than every honest run: it must still not supersede them
    (dst / "run.json").write_text(json.dumps(record))
    with open(dst / "rows.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        if r["metric"] == "accuracy":
            r["value"] = repr(value)
    with open(dst / "rows.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return dst


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("released")
    raw = tmp / "raw"
    shutil.copytree(FIXTURE, raw)
    add_released_copy(raw)
    assert run(raw, tmp / "tables", tmp / "figures", quiet=True) == 0
    return tmp


def test_honest_tables_are_unchanged_by_a_released_run(outputs):
    got = {str(p.relative_to(outputs / "tables")): p for p in (outputs / "tables").rglob("*")
           if p.is_file() and p.name != MANIFEST}
    for path in GOLDEN.rglob("*"):
        rel = str(path.relative_to(GOLDEN))
        if path.is_file() and rel not in ("missing.md", "demo/README.md"):
            assert got[rel].read_text() == path.read_text(), f"{rel} changed: a released run leaked into it"
    assert "superseded" not in (outputs / "tables" / "missing.md").read_text()


def test_released_results_have_their_own_labelled_table_and_figure(outputs):
    table = pd.read_csv(outputs / "tables" / "demo" / "smile_released.csv", dtype=str, keep_default_na=False)
    assert f"accuracy (%) {LABEL}" in table.columns
    row = table[(table.dataset == "BBC") & (table.variant == "hadamard")].iloc[0]
    assert row[f"accuracy (%) {LABEL}"].startswith("99.9 ± 0.0") and row["paper (%)"] == "100.0"
    md = (outputs / "tables" / "demo" / "smile_released.md").read_text()
    assert md.startswith(f"### Smile: accuracy {LABEL}") and "never pooled" in md
    for ext in ("png", "pdf"):
        assert (outputs / "figures" / "demo" / f"smile_released.{ext}").is_file()


def test_without_released_runs_nothing_released_is_written(tmp_path):
    assert run(FIXTURE, tmp_path / "tables", tmp_path / "figures", quiet=True) == 0
    assert not list(tmp_path.rglob("smile_released.*"))


def test_select_keeps_protocols_apart(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(FIXTURE, raw)
    add_released_copy(raw)
    res = load_results(raw)
    honest = res.select(study="smile", profile="demo", dataset="BBC", variant="hadamard", metric="accuracy")
    released = res.select(study="smile", profile="demo", dataset="BBC", variant="hadamard", metric="accuracy",
                          protocol="released")
    assert set(honest["protocol"]) == {"paper"} and set(released["protocol"]) == {"released"}
    assert (released["value"] == 0.999).all() and not (honest["value"] == 0.999).any()
    assert len(res.select(study="smile", protocol=["paper", "released"])) == len(res.rows[res.rows.study == "smile"])


def test_an_unknown_protocol_in_run_json_is_malformed(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(FIXTURE, raw)
    dst = add_released_copy(raw)
    record = json.loads((dst / "run.json").read_text())
    record["protocol"] = "honest"
    (dst / "run.json").write_text(json.dumps(record))
    with pytest.raises(MalformedInput, match=r"run.json:1: protocol 'honest'"):
        load_results(raw)

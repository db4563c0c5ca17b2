"""The README's demo excerpt is hand-copied from the committed tables; this keeps the two equal, so a new
reproduction that regenerates the tables cannot leave stale numbers on the front page."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from common.paths import ROOT

README = ROOT / "README.md"
TABLES = ROOT / "results" / "tables" / "demo"
# README row label -> method label in smile_accuracy.csv
SMILE_ROWS = {"Hadamard (HadaSmileNet)": "Hadamard", "Concatenation": "Concatenation",
              "MeshSmileNet (deep only)": "MeshSmileNet (deep branch only)",
              "D-Marker + logistic regression": "D-Marker + logistic reg."}
DATASETS = ("UvA-NEMO", "MMI", "SPOS", "BBC")
HAFEM_ROWS = {"demo measured, accuracy (2 seeds)": "HAFEM accuracy measured",
              "demo measured, macro F1": "HAFEM macro F1 measured"}


def markdown_rows(text: str, first_header: str) -> dict[str, list[str]]:
    """Cells of the Markdown table whose header row starts with ``| first_header |``, keyed by the first cell."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def without_n(cell: str) -> str:
    return re.sub(r"\s*\(n=\d+\)$", "", str(cell))


@pytest.fixture(scope="module")
def readme() -> str:
    if not (TABLES / "smile_accuracy.csv").is_file():
        pytest.skip("no committed demo tables")
    return README.read_text()


def test_smile_excerpt_equals_the_accuracy_table(readme):
    table = pd.read_csv(TABLES / "smile_accuracy.csv").set_index("method")
    rows = markdown_rows(readme, "method")
    for label, method in SMILE_ROWS.items():
        demo_cells = rows[label][0::2]                     # demo, paper, demo, paper, ...
        expected = [without_n(table.loc[method, f"{d} measured"]) for d in DATASETS]
        assert demo_cells == expected, f"README row {label!r}: {demo_cells} but smile_accuracy.csv has {expected}"


def test_hafem_excerpt_equals_the_datasets_table(readme):
    table = pd.read_csv(TABLES / "hafem_datasets.csv").set_index("dataset")
    rows = markdown_rows(readme, "HAFEM")
    datasets = ("FER2013", "RAF-DB", "AffectNet", "FERPlus")
    for label, column in HAFEM_ROWS.items():
        expected = [without_n(table.loc[d, column]) for d in datasets]
        assert rows[label] == expected, f"README row {label!r}: {rows[label]} but hafem_datasets.csv has {expected}"


def test_released_protocol_sentence_equals_its_table(readme):
    row = pd.read_csv(TABLES / "smile_released.csv").iloc[0]
    released = without_n(row["accuracy (%) as released (test-fold selection)"])
    last = without_n(row["last-epoch accuracy (%), same runs"])
    assert f"{released} against\n{last} at the last epoch" in readme or \
        f"{released} against {last} at the last epoch" in readme, (released, last)

"""Rewrite the golden tables from the committed fixture; run it only when a change in the tables is intended.

    python tests/golden/update.py

Runs statistical_analysis/run_tests.py on tests/fixtures/results_small/raw and copies every table file it writes
(CSV, Markdown, LaTeX, missing.md) into tests/golden/tables/. tests/stats/test_golden.py compares against these.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from statistical_analysis.run_tests import MANIFEST, run  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "results_small" / "raw"
GOLDEN = HERE / "tables"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tables = Path(tmp) / "tables"
        if run(FIXTURE, tables, Path(tmp) / "figures", quiet=True) != 0:
            raise SystemExit("run_tests failed on the fixture")
        (tables / MANIFEST).unlink()
        if GOLDEN.exists():
            shutil.rmtree(GOLDEN)
        shutil.copytree(tables, GOLDEN)
    print(f"golden tables written to {GOLDEN}")


if __name__ == "__main__":
    main()

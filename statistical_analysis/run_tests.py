"""Turn the raw per-fold / per-seed rows into every table and figure: the one command behind results/tables and figures.

    python statistical_analysis/run_tests.py [--results DIR] [--tables DIR] [--figures DIR]

Defaults: ``common.paths`` RAW_RESULTS_DIR, TABLES_DIR, FIGURES_DIR. Output: ``<tables>/<profile>/<name>.{csv,md,tex}``
(profile = demo or paper; ``reference/`` holds the papers' own tables), ``<figures>/<profile>/<name>.{png,pdf}``, and
``<tables>/missing.md`` listing what could not be computed and why. Missing runs are not an error: cells say why they
are empty, and complete runs without any row are listed. A malformed input file, or a complete run whose rows do not
cover its folds and metrics, stops the script before anything is written, with exit code 2 naming the file (and line)
or the run and what it lacks.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import io as atomic  # noqa: E402
from common.paths import FIGURES_DIR, RAW_RESULTS_DIR, TABLES_DIR  # noqa: E402
from statistical_analysis import paper_claims as pc  # noqa: E402
from statistical_analysis import tables as tb  # noqa: E402
from statistical_analysis.regions import region_tables  # noqa: E402
from statistical_analysis.loading import (MalformedInput, Results, UncoveredRun, load_confusion,  # noqa: E402
                                          load_gradcam_maps, load_predictions, load_results)

MANIFEST = ".written.json"


def validate_artifacts(res: Results) -> None:
    """Parse every predictions / confusion file the tables and figures may read, before anything is written."""
    sub = res.rows[res.rows["study"] == "hafem"][["run_dir", "variant"]].drop_duplicates()
    for run, variant in sub.itertuples(index=False):
        load_predictions(run, variant)
        load_confusion(run, variant)
    for run in sorted(set(sub["run_dir"])):
        maps = Path(run) / "explain" / "gradcam_maps.npy"
        if maps.is_file():
            load_gradcam_maps(maps)


def expected_gaps(res: Results, profile: str, studies: set[str]) -> list[str]:
    """Runs the full study grid would have that are absent (one line per dataset)."""
    gaps = []
    for study in ("smile", "hafem"):
        if study not in studies:
            gaps.append(f"{study}: no complete runs in profile {profile}")
    if "smile" in studies:
        expected = list(pc.SMILE_FUSIONS) + list(pc.SMILE_BASELINES)
        for d in pc.SMILE_DATASETS:
            have = set(res.select(study="smile", profile=profile, dataset=d)["variant"])
            absent = [v for v in expected if v not in have]
            if absent:
                gaps.append(f"smile / {d}: no runs for {', '.join(absent)}")
    if "hafem" in studies:
        for d in pc.FER_DATASETS:
            if not len(res.select(study="hafem", profile=profile, dataset=d, variant="hafem")):
                gaps.append(f"hafem / {d}: no HAFEM runs")
        for row, candidates in pc.HAFEM_TABLE3_VARIANTS.items():
            if tb.hafem_variant_for(res, profile, "FER2013", candidates) is None:
                gaps.append(f"hafem / FER2013: no runs for Table-3 row {row} (looked for {' / '.join(candidates)})")
        for rung, _, candidates in pc.HAFEM_ABLATION:
            if tb.hafem_variant_for(res, profile, "FER2013", candidates) is None:
                gaps.append(f"hafem / FER2013: no runs for ablation rung {rung} (looked for {' / '.join(candidates)})")
    return gaps


def write_table(table: tb.Table, folder: Path, written: list[Path]) -> None:
    for ext, render in (("csv", tb.to_csv), ("md", tb.to_markdown), ("tex", tb.to_latex)):
        target = folder / f"{table.name}.{ext}"
        atomic.write_text(target, render(table))
        written.append(target)


def remove_stale(folder: Path, written: list[Path]) -> None:
    """Delete files this script wrote last time and did not write now (e.g. a table whose study disappeared)."""
    manifest = folder / MANIFEST
    now = sorted(str(p.relative_to(folder)) for p in written if p.is_relative_to(folder))
    try:
        before = json.loads(manifest.read_text())
    except (OSError, ValueError):
        before = []
    for rel in sorted(set(before) - set(now)):
        (folder / rel).unlink(missing_ok=True)
    atomic.write_json(manifest, now)


def run(results_dir: Path, tables_dir: Path, figures_dir: Path, quiet: bool = False, figures: bool = True) -> int:
    """Write every table (and figure, unless ``figures=False``); return the exit code (2 = malformed input)."""
    try:
        res = load_results(results_dir)
        validate_artifacts(res)
    except UncoveredRun as err:
        print(f"error: incomplete rows: {err}", file=sys.stderr)
        return 2
    except MalformedInput as err:
        print(f"error: malformed input: {err}", file=sys.stderr)
        return 2
    from statistical_analysis import figures as fg  # matplotlib only once the input is known to be good

    written_tables: list[Path] = []
    written_figures: list[Path] = []
    missing: list[str] = ["# What could not be computed", ""]
    n_runs = res.rows["run_dir"].nunique() if len(res.rows) else 0
    missing.append(f"Input: {n_runs} complete run(s), {len(res.rows)} row(s).")
    if not n_runs:
        missing.append("No complete runs yet: only the papers' own tables (reference/) were written; run the "
                       "notebooks or the batch runner first.")
    if res.incomplete_runs:
        missing += ["", "## Runs skipped (run.json not 'complete')", ""]
        missing += [f"- {res.relpath(r)}" for r in res.incomplete_runs]
    if res.empty_runs:
        missing += ["", "## Complete runs without any row (rows.csv absent, empty or header only)", ""]
        missing += [f"- {res.relpath(r)}" for r in res.empty_runs]
    if res.superseded:
        missing += ["", "## Runs superseded by a later run of the same configuration key", ""]
        missing += [f"- {res.relpath(r)}" for r in res.superseded]

    for table in tb.reference_tables():
        write_table(table, tables_dir / "reference", written_tables)
    if figures:
        written_figures += fg.write_reference_figures(figures_dir / "reference").written

    profiles = [p for p in ("demo", "paper") if p in set(res.rows["profile"])]
    for profile in profiles:
        studies = set(res.select(profile=profile)["study"])
        built: list[tb.Table] = []
        if "smile" in studies:
            built += [build(res, profile) for build in tb.SMILE_TABLES]
        if "hafem" in studies:
            built += [build(res, profile) for build in tb.HAFEM_TABLES]
        built += tb.released_tables(res, profile)  # protocol=released: its own table, never pooled
        built += region_tables(res, profile)  # only where runs saved explain/regions.csv
        for table in built:
            write_table(table, tables_dir / profile, written_tables)
        overview = tables_dir / profile / "README.md"
        body = "\n".join(tb.to_markdown(t) for t in built)
        atomic.write_text(overview, f"# All tables, profile {profile}\n\n" + body)
        written_tables.append(overview)
        log = fg.write_figures(res, profile, studies, figures_dir / profile) if figures else fg.FigureLog(
            skipped=["all figures: --no-figures was given"])
        written_figures += log.written

        missing += ["", f"## Profile {profile}", ""]
        gaps = expected_gaps(res, profile, studies)
        missing += ["### Runs absent", ""] + ([f"- {g}" for g in gaps] or ["- none"])
        cells = [f"- {t.name}: {c}" for t in built for c in tb.unfilled_cells(t)]
        missing += ["", "### Cells that state a reason instead of a value", "",
                    f"Cells reading only '{tb.NO_RUNS}' are the absent runs above and are not repeated.", ""]
        missing += cells or ["- none"]
        missing += ["", "### Figures not drawn", ""] + ([f"- {s}" for s in log.skipped] or ["- none"])

    atomic.write_text(tables_dir / "missing.md", "\n".join(missing) + "\n")
    written_tables.append(tables_dir / "missing.md")
    remove_stale(tables_dir, written_tables)
    if figures:
        remove_stale(figures_dir, written_figures)
    if not quiet:
        print(f"{len(written_tables)} table files under {tables_dir}, {len(written_figures)} figure files under "
              f"{figures_dir}; profiles: {', '.join(profiles) or 'none (no complete runs)'}")
        print(f"what is missing: {tables_dir / 'missing.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RAW_RESULTS_DIR, help="raw results folder (results/raw)")
    parser.add_argument("--tables", type=Path, default=TABLES_DIR, help="where tables go (results/tables)")
    parser.add_argument("--figures", type=Path, default=FIGURES_DIR, help="where figures go (figures/)")
    parser.add_argument("--no-figures", action="store_true", help="tables only (figures are left as they are)")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    return run(args.results, args.tables, args.figures, args.quiet, figures=not args.no_figures)


if __name__ == "__main__":
    sys.exit(main())

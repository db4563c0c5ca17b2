"""Generate the study notebooks from their templates, and check that committed notebooks are up to date.

One jupytext percent-format template per study lives in ``notebooks/templates/``. For every dataset x variant of a
study this module writes ``notebooks/<study>/<dataset>/<variant>.ipynb`` (smile) or ``notebooks/<study>/<dataset>.ipynb``
(hafem, one variant) with deterministic cell ids and no outputs. The ``parameters`` cell shows the values the demo
run uses -- every ``name = None`` line of the template becomes the demo profile's value, with the paper profile's
value in a comment where it differs -- and papermill (``python -m common.batch``, which passes every resolved value)
overrides them.

Each generated notebook records a digest of its cells' sources, so a notebook edited after generation is told apart
from one whose template changed: regenerating never overwrites an edit silently.

    python -m common.notebooks                  # (re)generate; stops, naming them, at notebooks edited by hand
    python -m common.notebooks --discard-edits  # regenerate those too (their edits are lost)
    python -m common.notebooks --check          # exit 1 and list stale or missing notebooks (the tests run this)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from common import io as atomic
from common.config import StudySpec, get_study, known_studies
from common.paths import NOTEBOOKS_DIR, ROOT, TEMPLATES_DIR

# Stand-alone notebooks rendered from a jupytext source without parameters substitution.
EXTRA_NOTEBOOKS = {NOTEBOOKS_DIR / "predict.py": NOTEBOOKS_DIR / "predict.ipynb"}
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


@dataclass(frozen=True)
class NotebookTarget:
    study: str
    dataset: str
    variant: str
    path: Path


def notebook_path(study: str, dataset: str, variant: str, single_variant: bool) -> Path:
    folder = NOTEBOOKS_DIR / study
    return folder / f"{dataset}.ipynb" if single_variant else folder / dataset / f"{variant}.ipynb"


def targets(study: str) -> list[NotebookTarget]:
    spec = get_study(study)
    datasets = spec.params["dataset"].accepted()
    variants = spec.params["variant"].accepted()
    single = len(variants) == 1
    return [NotebookTarget(study, d, v, notebook_path(study, d, v, single)) for d in datasets for v in variants]


PROFILE_NOTE = ("# The values the demo run uses (the paper profile's in a comment where it differs). Papermill and\n"
                "# `python -m common.batch --profile paper` pass every value, so they override all of these.\n")


def _shown_parameters(source: str, spec: StudySpec) -> str:
    """Every ``name = None`` line -> the demo profile's value, ``# paper: <value>`` where the paper's differs."""
    demo, paper = spec.profiles.get("demo", {}), spec.profiles.get("paper", {})

    protocol_fixed = getattr(spec, "protocol_fixed", ())

    def shown(m: re.Match) -> str:
        name = m.group(1)
        param = spec.params.get(name)
        if param is None:
            return m.group(0)
        value = demo.get(name, param.default)
        other = paper.get(name, param.default)
        note = f"  # paper: {other!r}" if other != value and "paper" in spec.profiles else ""
        if name in protocol_fixed:  # left to the protocol, so that switching it alone is enough
            paper_note = f", paper profile {other!r}" if other != value else ""
            return f"{name} = None  # protocol decides: {value!r} under 'paper'{paper_note}; the released value otherwise"
        return f"{name} = {value!r}{note}"

    return re.sub(r"^(\w+) = None$", shown, source, flags=re.MULTILINE)


def cells_digest(cells) -> str:
    """sha256 of the cells' types and sources: what a hand edit changes (outputs and ids do not count)."""
    parts = [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"]) for c in cells]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _set_parameter(source: str, name: str, value: str) -> str:
    pattern = re.compile(rf"^({re.escape(name)}\s*=\s*)([^#\n]*?)(\s*(#.*)?)$", re.MULTILINE)
    new, count = pattern.subn(lambda m: f"{m.group(1)}{value!r}{m.group(3)}", source, count=1)
    if count != 1:
        raise ValueError(f"the parameters cell has no line '{name} = ...'")
    return new


def _finalise(nb, label: str, template_sha: str, template_rel: str, extra_meta: dict | None = None) -> str:
    """Deterministic ids, no outputs, plain metadata; returns the .ipynb text."""
    import jupytext

    for i, cell in enumerate(nb.cells):
        cell["id"] = hashlib.sha1(f"{label}:{i}".encode()).hexdigest()[:8]
        cell["metadata"].pop("lines_to_next_cell", None)
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
        "repro": {"template": template_rel, "template_sha256": template_sha, "cells_sha256": cells_digest(nb.cells),
                  "generated_by": "python -m common.notebooks", **(extra_meta or {})},
    }
    return jupytext.writes(nb, fmt="ipynb")


def render(spec: StudySpec, dataset: str, variant: str) -> str:
    """The .ipynb text of one study notebook."""
    import jupytext

    template = TEMPLATES_DIR / spec.template
    text = template.read_text(encoding="utf-8")
    nb = jupytext.reads(text, fmt="py:percent")
    params = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(params) != 1:
        raise ValueError(f"{template}: expected exactly one cell tagged 'parameters', found {len(params)}")
    declared = set(re.findall(r"^(\w+) = ", params[0]["source"], flags=re.MULTILINE))
    missing = [name for name in spec.params if name not in declared]
    if missing:  # the notebook reads every parameter from its globals: one left out fails when run by hand
        raise ValueError(f"{template}: the parameters cell does not declare {', '.join(missing)} "
                         f"(add `<name> = None` for each; the demo value is filled in)")
    source = _set_parameter(_set_parameter(params[0]["source"], "dataset", dataset), "variant", variant)
    source = _set_parameter(_shown_parameters(source, spec), "profile", "demo")
    if len(spec.params["variant"].accepted()) == 1:
        source = re.sub(r"^(variant = .*)$", r"\1  # this study's only variant", source, count=1, flags=re.MULTILINE)
    params[0]["source"] = PROFILE_NOTE + source
    for cell in nb.cells:
        if cell["cell_type"] == "markdown":
            cell["source"] = cell["source"].replace("{{dataset}}", dataset).replace("{{variant}}", variant)
    sha = hashlib.sha256(text.encode()).hexdigest()
    return _finalise(nb, f"{spec.name}/{dataset}/{variant}", sha, str(template.relative_to(ROOT)),
                     {"study": spec.name, "dataset": dataset, "variant": variant})


def render_extra(source: Path) -> str:
    import jupytext

    text = source.read_text(encoding="utf-8")
    nb = jupytext.reads(text, fmt="py:percent")
    return _finalise(nb, str(source.relative_to(ROOT)), hashlib.sha256(text.encode()).hexdigest(),
                     str(source.relative_to(ROOT)))


def expected_notebooks() -> dict[Path, str]:
    """Every generated notebook path with the text it should have."""
    out: dict[Path, str] = {}
    for study in known_studies():
        spec = get_study(study)
        if not (TEMPLATES_DIR / spec.template).exists():
            continue
        for t in targets(study):
            out[t.path] = render(spec, t.dataset, t.variant)
    for source, target in EXTRA_NOTEBOOKS.items():
        if source.exists():
            out[target] = render_extra(source)
    return out


def stale_notebooks() -> list[str]:
    """Human-readable problems: missing, out-of-date, or orphaned generated notebooks."""
    expected = expected_notebooks()
    problems = []
    for path, text in sorted(expected.items()):
        rel = path.relative_to(ROOT)
        if not path.exists():
            problems.append(f"missing: {rel}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"out of date with its template: {rel}")
    for study in known_studies():
        for path in sorted((NOTEBOOKS_DIR / study).rglob("*.ipynb")):
            if path not in expected:
                problems.append(f"not generated by any template (remove it): {path.relative_to(ROOT)}")
    return problems


def edited_by_hand(path: Path) -> bool:
    """True when the notebook's cell sources differ from the digest recorded when it was generated."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        recorded = nb["metadata"]["repro"]["cells_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False  # not a generated notebook we can vouch for: the template wins
    return cells_digest(nb.get("cells", [])) != recorded


def generate(discard_edits: bool = False) -> int:
    """Write every stale notebook; one edited by hand is kept (exit 1, saying how to keep or discard the edit)."""
    expected = expected_notebooks()
    changed, kept = 0, []
    for path, text in expected.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            if path.exists() and edited_by_hand(path) and not discard_edits:
                kept.append(path)
                continue
            atomic.write_text(path, text)
            changed += 1
    for study in known_studies():
        for path in (NOTEBOOKS_DIR / study).rglob("*.ipynb"):
            if path not in expected:
                path.unlink()
                changed += 1
    print(f"{len(expected)} notebooks, {changed} written or removed")
    if kept:
        names = "\n".join(f"  {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}" for p in kept)
        print(f"these notebooks were edited after they were generated and are left as they are:\n{names}\n"
              "They are generated files, so an edit in them is not part of the study. To keep the change, put it in "
              "the template (notebooks/templates/) or the study's parameters (common/<study>/study.py) and run "
              "`python -m common.notebooks`; to run a different value once, pass it to the batch "
              "(`python -m common.batch ... --set name=value`). To discard the edit: "
              "`python -m common.notebooks --discard-edits` (or `git checkout` the file).", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if any notebook is stale")
    parser.add_argument("--discard-edits", action="store_true",
                        help="also regenerate notebooks edited by hand (their edits are lost)")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_notebooks()
        for p in problems:
            print(p)
        if problems:
            print("run `python -m common.notebooks`", file=sys.stderr)
        return 1 if problems else 0
    return generate(args.discard_edits)


if __name__ == "__main__":
    sys.exit(main())

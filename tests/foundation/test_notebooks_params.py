"""Generated notebooks show what they run, papermill/batch still override everything, and a hand edit is never
overwritten silently (common.notebooks)."""
import json

import pytest

from common import notebooks as N
from common.batch_runs import expand
from common.config import get_study


def _parameters_source(study, dataset, variant):
    nb = json.loads(N.render(get_study(study), dataset, variant))
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    return "".join(cell["source"])


@pytest.mark.parametrize("study,dataset,variant", [("smile", "UvA-NEMO", "hadamard"), ("hafem", "FER2013", "hafem")])
def test_parameters_cell_shows_the_demo_run_and_papermill_overrides_it(study, dataset, variant):
    spec = get_study(study)
    source = _parameters_source(study, dataset, variant)
    fixed = set(getattr(spec, "protocol_fixed", ()))
    hidden = [line for line in source.splitlines() if "= None" in line]
    # every value is shown, except those the protocol sets (named with their paper-protocol value)
    assert all(line.split(" = ")[0] in fixed and "protocol decides" in line for line in hidden), hidden
    assert len(hidden) == len(fixed)
    demo = spec.resolve({"dataset": dataset, "variant": variant, "profile": "demo"})
    paper = spec.resolve({"dataset": dataset, "variant": variant, "profile": "paper"})
    assert f"epochs = {demo['epochs']!r}  # paper: {paper['epochs']!r}" in source
    shown = {}
    exec(source, {}, shown)
    assert spec.resolve(shown) == demo  # what the cell shows is exactly what the demo run uses
    # the batch passes every resolved value, so a paper run injected after the cell is the paper config
    (run,) = expand([study], [dataset], [variant], "paper", [0], [])
    injected = dict(shown, **dict(run.params))
    assert spec.resolve(injected) == paper
    assert set(dict(run.params)) == set(spec.params)


@pytest.mark.parametrize("study,dataset,variant", [("smile", "UvA-NEMO", "hadamard"), ("hafem", "FER2013", "hafem")])
def test_parameters_cell_declares_every_parameter_so_the_notebook_runs_by_hand(study, dataset, variant):
    shown = {}
    exec(_parameters_source(study, dataset, variant), {}, shown)
    assert set(shown) == set(get_study(study).params)  # the notebook reads each one from its globals


def test_a_template_that_leaves_a_parameter_out_is_refused_naming_it(tmp_path, monkeypatch):
    spec = get_study("hafem")
    text = (N.TEMPLATES_DIR / spec.template).read_text()
    assert "\ncomparison_seeds = None\n" in text
    (tmp_path / spec.template).write_text(text.replace("\ncomparison_seeds = None\n", "\n"))
    monkeypatch.setattr(N, "TEMPLATES_DIR", tmp_path)
    with pytest.raises(ValueError, match="does not declare comparison_seeds"):
        N.render(spec, "FER2013", "hafem")


def test_hafem_variant_is_labelled_as_the_only_one():
    assert "variant = 'hafem'  # this study's only variant" in _parameters_source("hafem", "FER2013", "hafem")


def test_a_hand_edit_is_kept_and_the_fix_is_named(tmp_path, monkeypatch, capsys):
    spec = get_study("smile")
    old_text = N.render(spec, "UvA-NEMO", "hadamard")
    edited_path, plain_path, run_path = (tmp_path / f"{n}.ipynb" for n in ("edited", "plain", "executed"))
    nb = json.loads(old_text)
    nb["cells"][1]["source"] = ["epochs = 50  # my edit\n"]
    edited_path.write_text(json.dumps(nb))
    plain_path.write_text(old_text)
    executed = json.loads(old_text)  # run and saved in Jupyter: outputs, not an edit of the study
    executed["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    executed["cells"][2]["execution_count"] = 1
    run_path.write_text(json.dumps(executed))
    assert N.edited_by_hand(edited_path) and not N.edited_by_hand(plain_path) and not N.edited_by_hand(run_path)
    new_text = old_text.replace("all folds", "every fold")  # the template changed meanwhile
    monkeypatch.setattr(N, "expected_notebooks", lambda: {edited_path: new_text, plain_path: new_text,
                                                          run_path: new_text})
    monkeypatch.setattr(N, "known_studies", lambda: [])
    assert N.generate() == 1
    err = capsys.readouterr().err
    assert "edited.ipynb" in err and "--discard-edits" in err and "notebooks/templates/" in err
    assert "my edit" in edited_path.read_text()  # kept
    assert plain_path.read_text() == new_text and run_path.read_text() == new_text  # regenerated
    assert N.generate(discard_edits=True) == 0
    assert edited_path.read_text() == new_text

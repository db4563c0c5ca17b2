import json

from common.notebooks import render, stale_notebooks, targets
from common.config import get_study


def test_every_generated_notebook_matches_its_template():
    problems = stale_notebooks()
    assert problems == [], "\n".join(problems) + "\nrun `python -m common.notebooks`"


def test_generated_notebooks_are_thin_output_free_and_parameterised():
    for study in ("smile", "hafem"):
        spec = get_study(study)
        target = targets(study)[-1]
        nb = json.loads(render(spec, target.dataset, target.variant))
        params = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(params) == 1
        source = "".join(params[0]["source"])
        assert f"dataset = {target.dataset!r}" in source and f"variant = {target.variant!r}" in source
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None
                # Thin: logic lives in common/, so no function or class definitions in a notebook.
                assert "def " not in "".join(cell["source"]) and "class " not in "".join(cell["source"])
        assert nb["metadata"]["repro"]["template_sha256"]

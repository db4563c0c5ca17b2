"""notebooks/predict.py (jupytext source of predict.ipynb) runs end to end on the trained demo models."""
import json

import pytest


@pytest.mark.slow
def test_predict_notebook_runs(tmp_path, smile_video, trained_results):
    jupytext = pytest.importorskip("jupytext")
    papermill = pytest.importorskip("papermill")
    from common.paths import NOTEBOOKS_DIR, ROOT

    notebook = tmp_path / "predict.ipynb"
    jupytext.write(jupytext.read(NOTEBOOKS_DIR / "predict.py"), notebook)
    out = tmp_path / "out"
    papermill.execute_notebook(str(notebook), str(tmp_path / "executed.ipynb"), kernel_name="python3",
                               cwd=str(ROOT), progress_bar=False,
                               parameters={"VIDEO": str(smile_video), "RESULTS": str(trained_results),
                                           "OUT": str(out)})
    video = json.loads((out / "smile.mp4.json").read_text())
    image = json.loads((out / "astronaut.png.json").read_text())
    assert video["status"] == image["status"] == "complete"
    assert (out / "smile.mp4.png").is_file() and (out / "astronaut.png.png").is_file()

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Analyse a smile video or a face photo with the trained models
#
# The same as `python -m common.predict PATH`, step by step: which checkpoints are used (and what data they were
# trained on), the D-Marker curves and the spontaneous/posed decision for a video, the expression probabilities
# and Grad-CAM for a photo. All the work happens in `common.predict`; this notebook only calls it and shows results.
#
# Models come from `results/raw/` (train them first, e.g.
# `python -m common.batch --study smile --dataset UvA-NEMO --variant hadamard --profile demo` and
# `python -m common.batch --study hafem --dataset FER2013 --variant hafem --profile demo`). Models trained on the
# demo profile saw **synthetic demo data only — they are not real-world models**, and every output says so.

# %% tags=["parameters"]
VIDEO = ""  # a smile video; empty = the generated demo smile video (synthetic)
IMAGE = ""  # a face photo; empty = scikit-image's astronaut photograph (NASA, public domain)
RESULTS = ""  # results folder holding raw/<study>/...; empty = the repository's results/
SMILE_CHECKPOINT = ""  # one smile checkpoint file; empty = the ensemble chosen by common.predict's rule
FER_CHECKPOINT = ""  # one expression checkpoint file; empty = the chosen HAFEM ensemble
OUT = ""  # output folder; empty = <results>/predict

# %%
import json
from pathlib import Path

from IPython.display import Image, display

from common import predict

options = predict.Options(checkpoint=SMILE_CHECKPOINT or None, fer_checkpoint=FER_CHECKPOINT or None,
                          results=RESULTS or None)
out_dir = Path(OUT) if OUT else predict.raw_root(options.results).parent / "predict"

# %% [markdown]
# ## Which trained models will be used

# %%
for study in ("smile", "hafem"):
    try:
        explicit = options.checkpoint if study == "smile" else options.fer_checkpoint
        chosen = predict.choose_models(study, options.results, explicit=explicit)
        print(f"{study}: {chosen.selected_by}\n  trained on {chosen.trained_on}")
        for m in chosen.members:
            print(f"  {m.path}  validation {m.val_score}  held-out test accuracy {m.held_out}")
    except predict.PredictError as exc:
        print(f"{study}: {exc}")

# %% [markdown]
# ## A video: D-Marker curves, spontaneous or posed, expressions over time

# %%
if VIDEO:
    video = Path(VIDEO)
else:  # the generated demo video (synthetic), made on first use
    from datasets.demo import ensure_demo_data

    video = ensure_demo_data(["smile-video"])["smile-video"] / "smile.mp4"


def show(path, out_dir, options):
    """Run the analysis; on an error, show the partial report that was written instead."""
    try:
        analysis = predict.predict_file(path, out_dir, options)
    except (predict.PredictError, predict.CheckpointError) as exc:
        print("stopped:", exc)
        json_path, png_path = predict.output_paths(Path(path), out_dir, partial=True)
        if png_path.exists():
            display(Image(filename=str(png_path)))
        return json.loads(json_path.read_text())
    print(predict.one_line(analysis))
    display(Image(filename=analysis.summary["outputs"]["png"]))
    return analysis.summary


video_summary = show(video, out_dir, options)
{k: video_summary.get(k) for k in ("status", "smile", "warnings", "timings_s", "speed")}

# %% [markdown]
# ## A photo: face, expression probabilities, Grad-CAM

# %%
if IMAGE:
    image = Path(IMAGE)
else:
    import cv2
    import skimage.data

    image = out_dir / "inputs" / "astronaut.png"
    image.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(image), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))

image_summary = show(image, out_dir, options)
{k: image_summary.get(k) for k in ("status", "expressions", "faces", "warnings")}

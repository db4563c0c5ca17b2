"""Analyse a smile video or a face photo with the trained models: a JSON summary and a PNG report.

    python -m common.predict PATH [--checkpoint CKPT] [--fer-checkpoint CKPT] [--out DIR] [--results DIR]

PATH is a video (.mp4 .avi .mov .mkv .webm .m4v .mpg .mpeg .wmv .flv), an image (.png .jpg .jpeg .bmp .tif .tiff
.webp) or a folder of them (not recursive).

Video: MediaPipe landmarks (as for the datasets) -> D-Marker lip / eye / cheek amplitudes with onset, apex and offset
-> P(spontaneous) from the trained smile models, averaged over consecutive clips that tile the video -> per-frame
expression probabilities from the trained HAFEM models on frames sampled every ``1 / expression_fps`` seconds.
Image: face detection (the largest face if there are several), alignment, expression probabilities, Grad-CAM.

The package, one role per module:

- :mod:`~common.predict.checkpoints` -- which models: the documented rule (the best configuration by *mean*
  validation score over all its folds and seeds on one named dataset, all its checkpoints used as an ensemble), with
  each member's validation and held-out scores;
- :mod:`common.smile.infer`, :mod:`common.fer.infer` -- the models applied to landmarks and faces (they live with
  their studies);
- :mod:`~common.predict.pipeline` -- the analysis stage by stage, and the files written;
- :mod:`~common.predict.report` -- the PNG; :mod:`~common.predict.cli` -- the command line;
  :mod:`~common.predict.errors` -- exit codes.

Outputs, for input ``NAME`` (e.g. ``smile.mp4``), in ``--out`` (default ``<results>/predict``): ``NAME.json``
(schema ``common/predict/schema.json``, ``"schema_version": "predict/2"``) and ``NAME.png``. Models trained on the
demo profile are labelled "trained on synthetic demo data — not a real-world model"; a near-chance output or a model
whose held-out accuracy is near chance is flagged in the JSON and warned about. When an error stops the analysis,
only ``NAME.partial.json`` (+ ``NAME.partial.png`` when a stage had something to plot) is written, with
``"status": "partial"`` and the error; the command then exits non-zero:

    2  not a readable video or image          3  no face found
    4  no trained checkpoint under results/   5  a checkpoint that cannot be used (CheckpointError)
"""
from __future__ import annotations

import json
from pathlib import Path

from common.checkpoints import CheckpointError
from common.predict.checkpoints import (Checkpoint, ModelSet, choose_models, describe_checkpoint, find_checkpoints,
                                        raw_root)
from common.predict.cli import build_parser, main, one_line
from common.predict.errors import NoCheckpointError, NoFaceError, PredictError, UnreadableInputError, exit_code_of
from common.predict.pipeline import SCHEMA_VERSION, Analysis, Options, output_paths, predict_file

SCHEMA_PATH = Path(__file__).with_name("schema.json")


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


__all__ = ["CheckpointError", "Checkpoint", "ModelSet", "choose_models", "describe_checkpoint", "find_checkpoints",
           "raw_root", "build_parser", "main", "one_line", "NoCheckpointError", "NoFaceError", "PredictError",
           "UnreadableInputError", "exit_code_of", "SCHEMA_VERSION", "Analysis", "Options", "output_paths",
           "predict_file", "load_schema", "SCHEMA_PATH"]

"""Analyse a smile video or a face photo with the trained models: a JSON summary and a PNG report.

    python -m common.predict PATH [--checkpoint CKPT] [--fer-checkpoint CKPT] [--out DIR] [--results DIR]

PATH is a video (.mp4 .avi .mov .mkv .webm .m4v .mpg .mpeg .wmv), an image (.png .jpg .jpeg .bmp .tif .tiff .webp)
or a folder of them (not recursive).

Video: MediaPipe landmarks (:func:`common.smile.extract.extract_video`, as for the datasets) -> D-Marker lip / eye /
cheek amplitudes with onset, apex and offset (:func:`common.smile.dmarker.dmarker_signals`) -> P(spontaneous) from a
trained smile model, averaged over consecutive clips that tile the video -> per-frame expression probabilities from a
trained HAFEM model on frames sampled every ``1 / expression_fps`` seconds (face detection + alignment first).
Image: face detection (the largest face if there are several), alignment, expression probabilities, Grad-CAM.

Models: ``--checkpoint`` / ``--fer-checkpoint`` name a checkpoint file; without them the best validation-selected
checkpoint of a *complete* run under ``<results>/raw/<study>/...`` is used (see :func:`choose_checkpoint`). The summary
says which one, its config hash, and the data it was trained on; models trained on the demo profile are labelled
"trained on synthetic demo data — not a real-world model" in the JSON and on the PNG.

Outputs, for input ``NAME`` (e.g. ``smile.mp4``), in ``--out`` (default ``<results>/predict``):
``NAME.json`` (schema ``common/predict_schema.json``, ``"schema_version": "predict/1"``) and ``NAME.png``. When an
error stops the analysis, only ``NAME.partial.json`` (+ ``NAME.partial.png`` when a stage had something to plot) is
written, with ``"status": "partial"`` and the error; the command then exits non-zero:

    2  not a readable video or image          3  no face found
    4  no trained checkpoint under results/   5  a checkpoint that cannot be used (CheckpointError)
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from common import io as atomic
from common.checkpoints import CheckpointError, load_checkpoint
from common.paths import RESULTS_DIR

SCHEMA_VERSION = "predict/1"
SCHEMA_PATH = Path(__file__).with_name("predict_schema.json")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
STUDY_OF_ROLE = {"smile": "smile", "expression": "hafem"}
DEFAULT_VARIANT = {"smile": "hadamard", "hafem": "hafem"}
TRAIN_COMMAND = {
    "smile": "python -m common.batch --study smile --dataset UvA-NEMO --variant {variant} --profile demo",
    "hafem": "python -m common.batch --study hafem --dataset FER2013 --variant {variant} --profile demo",
}
DEMO_LABEL = "trained on synthetic demo data — not a real-world model"
SPONTANEOUS = 1  # smile label convention of every smile dataset here: 1 = spontaneous/genuine, 0 = posed


# ---------------------------------------------------------------------------------------------------------------
# errors


class PredictError(RuntimeError):
    """An input or model problem that stops one analysis; ``exit_code`` is the command's status."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        return self.args[0] + (f"\n  hint: {self.hint}" if self.hint else "")


class UnreadableInputError(PredictError):
    exit_code = 2


class NoFaceError(PredictError):
    exit_code = 3


class NoCheckpointError(PredictError):
    exit_code = 4


CHECKPOINT_ERROR_EXIT = 5


def exit_code_of(exc: BaseException) -> int:
    if isinstance(exc, PredictError):
        return exc.exit_code
    if isinstance(exc, CheckpointError):
        return CHECKPOINT_ERROR_EXIT
    return 1


# ---------------------------------------------------------------------------------------------------------------
# checkpoints


@dataclass
class ModelChoice:
    """A checkpoint picked for one role, with where it came from and why."""

    path: Path
    payload: dict[str, Any] = field(repr=False)
    study: str
    profile: str
    dataset: str
    variant: str
    seed: int | None
    fold: int | None
    config_hash: str
    val_metric: str | None
    val_score: float | None
    selection: str | None = None
    selected_by: str = ""
    n_candidates: int | None = None

    @property
    def trained_on(self) -> str:
        if self.profile == "demo":
            return f"{self.dataset}: {DEMO_LABEL}"
        return f"{self.dataset} (profile {self.profile!r}: real data)"

    def summary(self) -> dict[str, Any]:
        return {"checkpoint": str(self.path), "study": self.study, "profile": self.profile, "dataset": self.dataset,
                "variant": self.variant, "seed": self.seed, "fold": self.fold, "config_hash": self.config_hash,
                "selection": self.selection, "val_metric": self.val_metric, "val_score": self.val_score,
                "selected_by": self.selected_by,
                "trained_on": self.trained_on, "n_candidates": self.n_candidates}


def raw_root(results: str | Path | None = None) -> Path:
    """``<results>/raw`` (``results`` may also name the ``raw`` folder itself)."""
    root = Path(results).expanduser() if results is not None else RESULTS_DIR
    return root if root.name == "raw" else root / "raw"


_VAL_KEYS = {"val_accuracy": "val_accuracy", "best_val_accuracy": "val_accuracy", "val_acc": "val_accuracy",
             "best_val_f1": "val_f1_macro", "best_val_f1_macro": "val_f1_macro"}
_CURVE_KEYS = {"val_accuracy": "val_accuracy", "val_acc": "val_accuracy", "val_f1_macro": "val_f1_macro"}


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def recorded_val_score(payload: Mapping[str, Any], path: Path | None = None) -> tuple[str, float] | None:
    """(metric, value) the checkpoint was selected with on the validation split, wherever the run recorded it.

    Looked up in this order: the checkpoint itself (``val_accuracy`` / ``best_val_accuracy`` / ``best_val_f1`` at
    the top level or under ``metrics`` / ``val_metrics`` / ``selection_metrics``), then the run's training curves
    (``curves/<checkpoint name or variant>.json``: the validation curve at the checkpointed epoch). None if absent.
    """
    places = [payload] + [payload[k] for k in ("selection_metrics", "val_metrics", "metrics")
                          if isinstance(payload.get(k), Mapping)]
    for place in places:
        for key, metric in _VAL_KEYS.items():
            if _number(place.get(key)) is not None:
                return metric, _number(place[key])
    if path is None:
        return None
    run = path.parent.parent
    names = [path.stem] + ([str(payload["variant"])] if payload.get("variant") else [])
    for name in names:
        curves_file = run / "curves" / f"{name}.json"
        try:
            curves = json.loads(curves_file.read_text())
        except (OSError, ValueError):
            continue
        index = _selected_epoch_index(payload, curves)
        if index is None:
            continue
        for key, metric in _CURVE_KEYS.items():
            series = curves.get(key)
            if isinstance(series, list) and 0 <= index < len(series) and _number(series[index]) is not None:
                return metric, float(series[index])
    return None


def _selected_epoch_index(payload: Mapping[str, Any], curves: Mapping[str, Any]) -> int | None:
    """Position of the checkpointed epoch in the curves: smile saves ``epoch`` (0-based), HAFEM ``best_epoch``
    (1-based)."""
    if isinstance(payload.get("epoch"), int):
        return payload["epoch"]
    best = payload.get("best_epoch", curves.get("best_epoch"))
    return best - 1 if isinstance(best, int) and best >= 1 else None


def _fold_of(path: Path) -> int | None:
    match = re.search(r"fold(\d+)", path.stem)
    return int(match.group(1)) if match else None


def describe_checkpoint(path: str | Path, study: str, payload: Mapping[str, Any] | None = None) -> ModelChoice:
    """Load (unless given) and check a checkpoint of ``study``; read its config and provenance into a ModelChoice."""
    from common.config import config_hash

    path = Path(path)
    payload = dict(payload) if payload is not None else load_checkpoint(path, study)
    cfg = payload["config"]
    if not isinstance(cfg, Mapping):
        raise CheckpointError(f"{path}: 'config' is a {type(cfg).__name__}, not a mapping")
    missing = [k for k in ("dataset", "profile") if k not in cfg]
    if missing:
        raise CheckpointError(f"{path}: checkpoint config lacks {missing}; cannot say what the model was trained on")
    prov = payload.get("provenance") or {}
    seed = cfg.get("seed")
    score = recorded_val_score(payload, path)
    return ModelChoice(
        path=path, payload=payload, study=payload["study"], profile=str(cfg["profile"]), dataset=str(cfg["dataset"]),
        variant=str(payload.get("variant") or cfg.get("variant", DEFAULT_VARIANT.get(study, ""))),
        seed=int(seed) if isinstance(seed, int) else None,
        fold=payload.get("fold") if isinstance(payload.get("fold"), int) else _fold_of(path),
        config_hash=str(prov.get("config_hash") or config_hash(cfg)),
        val_metric=score[0] if score else None, val_score=score[1] if score else None,
        selection=str(payload["selection"]) if payload.get("selection") is not None else None,
    )


def find_checkpoints(study: str, results: str | Path | None = None,
                     variant: str | None = None) -> tuple[list[ModelChoice], list[str]]:
    """Every usable checkpoint of a complete ``study`` run under ``results`` (of ``variant`` when given).

    Returns ``(usable, skipped)``; ``skipped`` says why each other ``.pt`` file was left out (unfinished run, other
    format version, missing keys, ...).
    """
    from common.results import is_complete

    root = raw_root(results) / study
    usable: list[ModelChoice] = []
    skipped: list[str] = []
    pattern = f"*/*/{variant or '*'}/seed*-*/checkpoints/*.pt"
    for path in sorted(root.glob(pattern)):
        run = path.parent.parent
        if not is_complete(run):
            skipped.append(f"{path}: its run is not complete (run.json status is not 'complete')")
            continue
        try:
            usable.append(describe_checkpoint(path, study))
        except CheckpointError as exc:
            skipped.append(str(exc))
    return usable, skipped


def choose_checkpoint(study: str, results: str | Path | None = None, variant: str | None = None,
                      explicit: str | Path | None = None) -> ModelChoice:
    """The checkpoint to use for ``study``.

    ``explicit``: that file (a bad file raises :class:`CheckpointError`). Otherwise, among complete runs of
    ``variant`` (default: ``hadamard`` / ``hafem``): real-data (``paper``) runs before ``demo`` runs,
    validation-selected checkpoints (``selection="val"``) before others (``"last"``), then the highest
    validation score recorded by the run (:func:`recorded_val_score`: the smile runs' validation accuracy, HAFEM's
    validation macro-F1, its own selection metric), then the path (so the choice is deterministic).
    """
    if explicit is not None:
        choice = describe_checkpoint(explicit, study)
        choice.selected_by = "given on the command line"
        return choice
    variant = variant or DEFAULT_VARIANT[study]
    usable, skipped = find_checkpoints(study, results, variant)
    if not usable:
        where = raw_root(results) / study
        detail = "".join(f"\n  skipped {s}" for s in skipped[:10])
        raise NoCheckpointError(
            f"no usable trained {study!r} checkpoint of variant {variant!r} under {where}{detail}",
            hint=f"train one with `{TRAIN_COMMAND[study].format(variant=variant)}`, "
                 f"or pass a checkpoint file with --{'fer-' if study == 'hafem' else ''}checkpoint")

    def rank(c: ModelChoice) -> tuple:
        return (c.profile != "paper", c.selection != "val", -(c.val_score if c.val_score is not None else -1.0),
                str(c.path))

    best = sorted(usable, key=rank)[0]
    best.n_candidates = len(usable)
    if best.val_score is not None:
        best.selected_by = (f"highest {best.val_metric} ({best.val_score:.4f}) on the validation split among "
                            f"{len(usable)} checkpoint(s) of complete {study}/{variant} runs"
                            + (", real-data runs first" if best.profile == "paper" else "")
                            + ("" if best.selection == "val" else
                               f"; note: no validation-selected checkpoint, this one is selection={best.selection!r}"))
    else:
        best.selected_by = (f"no validation score recorded for the {len(usable)} checkpoint(s) of complete "
                            f"{study}/{variant} runs; took the first by path")
    return best


# ---------------------------------------------------------------------------------------------------------------
# inputs


def input_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise UnreadableInputError(
        f"{path}: not a video or image file name (suffix {suffix or 'none'!r}); accepted: "
        f"{' '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)}")


def list_inputs(path: str | Path) -> list[Path]:
    """``path`` itself, or the videos and images directly inside a folder (sorted)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UnreadableInputError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        if not files:
            accepted = " ".join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)
            raise UnreadableInputError(f"{path}: folder holds no video or image ({accepted})")
        return files
    return [path]


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 (H, W, 3); gray and RGBA images are converted."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise UnreadableInputError(f"{path}: not a readable image (OpenCV cannot decode it)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def probe_video(path: Path) -> dict[str, Any]:
    """fps, frame count and size of a video whose first frame decodes."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok or frame is None:
            raise UnreadableInputError(f"{path}: not a readable video (OpenCV cannot decode a first frame)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        return {"fps": fps if fps > 0 else None, "width": int(frame.shape[1]), "height": int(frame.shape[0]),
                "n_frames_header": int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)}
    finally:
        cap.release()


def read_frames(path: Path, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """RGB frames at ``indices`` (sequential decoding: seeking is unreliable for many codecs)."""
    import cv2

    wanted = set(int(i) for i in indices)
    frames: dict[int, np.ndarray] = {}
    cap = cv2.VideoCapture(str(path))
    try:
        i = 0
        last = max(wanted) if wanted else -1
        while i <= last:
            ok = cap.grab()
            if not ok:
                break
            if i in wanted:
                ok, frame = cap.retrieve()
                if ok:
                    frames[i] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()
    return frames


# ---------------------------------------------------------------------------------------------------------------
# the trained models, rebuilt from their checkpoints

GRAY_DATASETS = ("FER2013", "FERPlus")  # 48x48 grayscale photographs


@dataclass
class FoundFace:
    """The face analysed in one image: aligned crop (CLAHE applied), its box, and every detected box."""

    aligned: np.ndarray
    box: np.ndarray
    boxes: list
    n_faces: int


def find_face(image: np.ndarray, size: int = 224) -> FoundFace | None:
    """HAFEM preprocessing of the largest face (MediaPipe detection, eye alignment, box x1.3, CLAHE), or None."""
    from common.fer.preprocess import PreprocessConfig, align_face, clahe_lab, detect_faces

    cfg = PreprocessConfig(size=size)
    faces = detect_faces(image, cfg.min_score, "both")
    if not faces and cfg.retry_pad > 0:  # a tight face crop: retry with a border, as the training pipeline does
        faces = detect_faces(image, cfg.min_score, "both", pad=cfg.retry_pad)
    if not faces:
        return None
    face = faces[0]
    aligned = align_face(image, face.eyes, face.box, cfg.size, cfg.enlarge)
    if cfg.clahe:
        aligned = clahe_lab(aligned, cfg.clip)
    return FoundFace(aligned=aligned, box=np.asarray(face.box, dtype=float),
                     boxes=[np.asarray(f.box, dtype=float) for f in faces], n_faces=len(faces))


class ExpressionPredictor:
    """A trained HAFEM (or baseline) model: aligned faces -> class probabilities, and Grad-CAM."""

    def __init__(self, model, cfg: Mapping[str, Any], choice: ModelChoice):
        from common.fer.augment import eval_transform

        self.model, self.cfg, self.choice = model, cfg, choice
        self.classes = [str(c) for c in cfg["classes"]]
        self.input_size = int(cfg.get("input_size", 224))
        self.transform = eval_transform(self.input_size)
        # match the training images: a model trained on grayscale photographs sees a grayscale face
        self.gray = choice.dataset in GRAY_DATASETS
        self.colour = (f"gray (the model was trained on grayscale {choice.dataset} photographs)" if self.gray
                       else "rgb")

    @classmethod
    def from_choice(cls, choice: ModelChoice) -> "ExpressionPredictor":
        from common.fer.model import model_from_checkpoint

        try:
            model, cfg = model_from_checkpoint(choice.payload)
        except (KeyError, ValueError, RuntimeError) as exc:  # missing config keys, wrong tensor shapes, ...
            raise CheckpointError(f"{choice.path}: cannot rebuild the expression model "
                                  f"({type(exc).__name__}: {exc})") from exc
        return cls(model.eval(), cfg, choice)

    find_face = staticmethod(find_face)

    def face(self, frame: np.ndarray) -> FoundFace | None:
        found = find_face(frame)
        if found is not None:
            found.aligned = self.prepare(found)
        return found

    def prepare(self, found: FoundFace) -> np.ndarray:
        if not self.gray:
            return found.aligned
        import cv2

        gray = cv2.cvtColor(found.aligned, cv2.COLOR_RGB2GRAY)
        return np.repeat(gray[:, :, None], 3, axis=2)

    def _batch(self, faces: Sequence[np.ndarray]):
        import torch

        return torch.stack([self.transform(f) for f in faces])

    def predict(self, faces: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """(N, classes) softmax probabilities."""
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(faces), batch_size):
                out.append(torch.softmax(self.model(self._batch(faces[i:i + batch_size])).float(), dim=-1))
        return torch.cat(out).numpy().astype(np.float64)

    def gradcam(self, face: np.ndarray, target: int) -> tuple[np.ndarray, str]:
        """Grad-CAM map in [0, 1] at the face's resolution for class ``target``, and the layer it looks at."""
        import cv2
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        layer = self.model.target_layer()
        name = next((n for n, m in self.model.named_modules() if m is layer), type(layer).__name__)
        with GradCAM(model=self.model, target_layers=[layer]) as cam:
            heat = cam(input_tensor=self._batch([face]), targets=[ClassifierOutputTarget(int(target))])[0]
        heat = cv2.resize(heat.astype(np.float32), (face.shape[1], face.shape[0]), interpolation=cv2.INTER_LINEAR)
        return np.clip(heat, 0.0, 1.0), name


class SmilePredictor:
    """A trained smile model: a landmark sequence -> P(spontaneous) per clip, over clips that tile the video.

    Each clip is prepared exactly as the evaluation loader prepares it (:func:`common.smile.clips.model_clip`, the
    run's D-Marker variant / scope / scaler); the video's probability is the mean over clips, as in evaluation.
    Consecutive windows ``0, L, 2L, ...`` plus one ending at the last frame cover every frame once.
    """

    def __init__(self, model, cfg: Mapping[str, Any], choice: ModelChoice, scaler):
        self.model, self.cfg, self.choice, self.scaler = model, cfg, choice, scaler
        self.dmarker_variant = str(cfg.get("dmarker_variant", "paper"))
        self.dmarker_scope = str(cfg.get("dmarker_scope", "video"))
        self.clip_len = int(cfg.get("clip_len", 16))

    @classmethod
    def from_choice(cls, choice: ModelChoice) -> "SmilePredictor":
        from common.smile.dmarker import DMarkerScaler
        from common.smile.models import model_from_checkpoint

        try:
            model, cfg = model_from_checkpoint(choice.payload)
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"{choice.path}: cannot rebuild the smile model "
                                  f"({type(exc).__name__}: {exc})") from exc
        state = next((choice.payload[k] for k in ("dmarker_scaler", "scaler") if k in choice.payload), None)
        scaler = DMarkerScaler.from_state_dict(state) if isinstance(state, Mapping) else None
        if scaler is not None and scaler.mean is None:
            scaler = None
        return cls(model.eval(), {**choice.payload["config"], **dict(cfg)}, choice, scaler)

    def window_starts(self, n_frames: int) -> list[int]:
        L = self.clip_len
        if n_frames <= L:
            return [0]
        starts = list(range(0, n_frames - L + 1, L))
        if starts[-1] + L < n_frames:
            starts.append(n_frames - L)
        return starts

    def predict(self, landmarks: np.ndarray, fps: float, aspect: float = 1.0) -> dict[str, Any]:
        import torch

        from common.smile.clips import model_clip
        from common.smile.dmarker import video_dmarkers

        starts = self.window_starts(len(landmarks))
        clips = np.stack([model_clip(landmarks, s, self.clip_len) for s in starts])
        table = video_dmarkers(landmarks, self.dmarker_variant, fps, self.dmarker_scope, self.clip_len, aspect=aspect)
        dm = table[starts] if self.dmarker_scope == "clip" else np.repeat(table[:1], len(starts), axis=0)
        dm = self.scaler.transform(dm) if self.scaler is not None else dm.astype(np.float32)
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(clips), torch.from_numpy(np.ascontiguousarray(dm, dtype=np.float32)))
        p = spontaneous_probability(logits)
        return {"p_spontaneous": float(p.mean()), "clip_p": p.tolist(), "starts": starts, "clip_len": self.clip_len}


def spontaneous_probability(logits) -> np.ndarray:
    """P(label 1 = spontaneous) per clip from one logit (sigmoid) or two class logits (softmax)."""
    import torch

    x = logits.float()
    if x.ndim == 2 and x.shape[1] == 2:
        return torch.softmax(x, dim=1)[:, SPONTANEOUS].numpy().astype(np.float64)
    return torch.sigmoid(x.reshape(x.shape[0], -1)[:, 0]).numpy().astype(np.float64)


# ---------------------------------------------------------------------------------------------------------------
# the analysis state: filled stage by stage, so an error still leaves a (partial) report of what ran


@dataclass
class Analysis:
    path: Path
    kind: str
    summary: dict[str, Any]
    plots: dict[str, Any] = field(default_factory=dict)  # arrays for the PNG only (not in the JSON)

    @classmethod
    def start(cls, path: Path, kind: str) -> "Analysis":
        from common.provenance import git_state

        summary = {
            "schema_version": SCHEMA_VERSION, "kind": kind, "status": "partial", "error": None,
            "input": {"path": str(path.resolve()), "size_bytes": path.stat().st_size if path.is_file() else 0},
            "models": {}, "faces": None, "warnings": [], "timings_s": {}, "outputs": {},
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "code": git_state(),
        }
        if kind == "video":
            summary.update({"dmarker": None, "smile": None, "expressions": None, "speed": None})
        else:
            summary.update({"expressions": None, "gradcam": None})
        return cls(path=path, kind=kind, summary=summary)

    def warn(self, message: str) -> None:
        self.summary["warnings"].append(message)

    def timed(self, stage: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            timings = self.summary["timings_s"]
            timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - t0, 4)


@dataclass
class Options:
    checkpoint: str | Path | None = None
    fer_checkpoint: str | Path | None = None
    results: str | Path | None = None
    variant: str | None = None
    fer_variant: str | None = None
    expression_fps: float = 5.0
    max_expression_frames: int = 300
    expressions: bool = True
    gradcam: bool = True
    threshold: float = 0.5


# checkpoint choices and loaded models are reused across the files of a folder (and the notebook's repeated calls);
# a choice is reused only while the checkpoint files it was made from are unchanged
_CHOICE_CACHE: dict[tuple, tuple[tuple, ModelChoice]] = {}
_MODEL_CACHE: dict[tuple, Any] = {}


def _files_state(study: str, options: Options, variant: str | None, explicit) -> tuple:
    if explicit is not None:
        files = [Path(explicit)]
    else:
        pattern = f"*/*/{variant or DEFAULT_VARIANT[study]}/seed*-*/*"
        files = sorted(raw_root(options.results).joinpath(study).glob(pattern + "/*.pt")) + \
            sorted(raw_root(options.results).joinpath(study).glob(pattern.rsplit("/", 1)[0] + "/run.json"))
    return tuple((str(f), f.stat().st_mtime_ns) for f in files if f.exists())


def _cached_choice(study: str, options: Options, variant: str | None, explicit) -> ModelChoice:
    key = (study, str(raw_root(options.results).resolve()), variant, str(explicit))
    state = _files_state(study, options, variant, explicit)
    hit = _CHOICE_CACHE.get(key)
    if hit is not None and hit[0] == state:
        return hit[1]
    choice = choose_checkpoint(study, options.results, variant, explicit)
    _CHOICE_CACHE[key] = (state, choice)
    return choice


def _model_for(role: str, options: Options, analysis: Analysis):
    study = STUDY_OF_ROLE[role]
    explicit = options.checkpoint if role == "smile" else options.fer_checkpoint
    variant = options.variant if role == "smile" else options.fer_variant

    def load():
        choice = _cached_choice(study, options, variant, explicit)
        key = (study, str(choice.path.resolve()), choice.path.stat().st_mtime_ns)
        if key not in _MODEL_CACHE:
            builder = SmilePredictor if role == "smile" else ExpressionPredictor
            _MODEL_CACHE[key] = builder.from_choice(choice)
        return choice, _MODEL_CACHE[key]

    choice, predictor = analysis.timed("load_models", load)
    analysis.summary["models"][role] = choice.summary()
    return predictor


def analyse_video(path: Path, options: Options, analysis: Analysis) -> None:
    """Fill ``analysis`` stage by stage (see the module docstring); raises on the first stage that fails."""
    s = analysis.summary
    info = probe_video(path)  # first: an unreadable file fails before any model work
    s["input"].update({"width": info["width"], "height": info["height"], "fps": info["fps"]})
    from common.smile.dmarker import dmarker_signals
    from common.smile.extract import VideoError, extract_video

    try:
        landmarks, sidecar = analysis.timed("decode_landmarks", lambda: extract_video(path))
    except VideoError as exc:
        message = str(exc)
        if "no face" in message:
            raise NoFaceError(message, hint="the smile models need a face visible through the smile") from exc
        if "face lost" in message:
            raise NoFaceError(message, hint="the face must stay visible; cut the video to the smile") from exc
        raise UnreadableInputError(message) from exc
    landmarks = np.asarray(landmarks, dtype=np.float32)
    n_frames = int(landmarks.shape[0])
    first = int(sidecar.get("trimmed_start", 0) or 0)  # the extractor drops face-less frames at both ends
    fps = float(sidecar.get("fps") or info["fps"] or 0.0)
    if not fps:
        raise UnreadableInputError(f"{path}: the video reports no frame rate; cannot time the smile phases")
    n_decoded = int(sidecar.get("n_decoded", n_frames))
    missing = int(sidecar.get("frames_without_face", 0) or 0)
    s["input"].update({"fps": fps, "n_frames": n_decoded, "duration_s": round(n_decoded / fps, 4)})
    s["faces"] = {"n_detected": 1, "used": "the face MediaPipe Face Mesh tracks (max_num_faces=1)", "box": None,
                  "frames_without_face": missing}
    if missing:
        analysis.warn(f"no face in {missing} of {n_decoded} frames: {first} leading and "
                      f"{sidecar.get('trimmed_end', 0)} trailing frames left out, "
                      f"{sidecar.get('interpolated_frames', 0)} interior frames interpolated")
    analysis.plots["first_frame"] = first

    # the D-Marker curves depend only on the landmarks: the smile model's own variant is used when it is known
    variant = "paper"
    aspect = info["width"] / info["height"]  # MediaPipe x is in frame widths, y in frame heights
    signals = analysis.timed("dmarker", lambda: dmarker_signals(landmarks, variant=variant, fps=fps, aspect=aspect))
    analysis.plots["signals"] = signals
    s["dmarker"] = _dmarker_summary(signals, variant, fps, first)

    smile = _model_for("smile", options, analysis)
    result = analysis.timed("smile_model", lambda: smile.predict(landmarks, fps, aspect))
    p = float(result["p_spontaneous"])
    s["smile"] = {"p_spontaneous": round(p, 6), "decision": "spontaneous" if p >= options.threshold else "posed",
                  "threshold": options.threshold, "clip_len": int(result["clip_len"]),
                  "clips": [{"start_frame": first + int(a), "p_spontaneous": round(float(b), 6)}
                            for a, b in zip(result["starts"], result["clip_p"])]}
    if smile.dmarker_variant != variant:  # show the curves the model's D-Marker was computed from
        signals = dmarker_signals(landmarks, variant=smile.dmarker_variant, fps=fps, aspect=aspect)
        analysis.plots["signals"] = signals
        s["dmarker"] = _dmarker_summary(signals, smile.dmarker_variant, fps, first)

    if options.expressions:
        fer = _model_for("expression", options, analysis)
        analysis.timed("expressions", lambda: _video_expressions(path, fps, n_decoded, fer, options, analysis))
    else:
        analysis.warn("expressions skipped (--no-expressions)")

    duration = n_decoded / fps
    s["speed"] = {stage: round(s["timings_s"][stage] / duration, 4)
                  for stage in ("decode_landmarks", "dmarker", "smile_model", "expressions") if stage in s["timings_s"]}


def _dmarker_summary(signals: Mapping[str, Any], variant: str, fps: float, first: int) -> dict[str, Any]:
    """Phases in video frame numbers (``first`` = the video frame of the first landmark frame)."""
    phases = {}
    for name in ("onset", "apex", "offset"):
        start, stop = signals["phases"][name]  # a slice of landmark frames; start == stop for an empty phase
        phases[name] = [first + int(start), first + int(stop) - 1] if stop > start else None
    return {
        "variant": variant,
        "first_frame": first,
        "phases_frames": phases,
        "phases_s": {k: None if v is None else [round(v[0] / fps, 4), round(v[1] / fps, 4)] for k, v in phases.items()},
        "peak": {k: round(float(np.nanmax(signals[k])), 6) for k in ("lip", "eye", "cheek")},
        "signals": {k: [round(float(x), 6) for x in np.asarray(signals[k])] for k in ("lip", "eye", "cheek")},
    }


def _video_expressions(path: Path, fps: float, n_frames: int, fer, options: Options, analysis: Analysis) -> None:
    step = max(1, int(round(fps / options.expression_fps)))
    indices = list(range(0, n_frames, step))
    if len(indices) > options.max_expression_frames:
        indices = [int(i) for i in np.linspace(0, n_frames - 1, options.max_expression_frames).round()]
    frames = read_frames(path, indices)
    used, faces, skipped, most_faces = [], [], [], 0
    for i in indices:
        frame = frames.get(i)
        found = fer.face(frame) if frame is not None else None
        if found is None:
            skipped.append(i)
            continue
        most_faces = max(most_faces, found.n_faces)
        used.append(i)
        faces.append(found.aligned)
    if not used:
        raise NoFaceError(f"{path}: no face found in any of the {len(indices)} frames sampled for expressions")
    proba = fer.predict(faces)
    s = analysis.summary
    s["faces"]["n_detected"] = max(most_faces, s["faces"]["n_detected"])
    if most_faces > 1:
        analysis.warn(f"several faces (up to {most_faces} in one frame): expressions use the largest face of each "
                      f"frame; the landmarks follow the one face MediaPipe Face Mesh tracks")
        s["faces"]["used"] = "landmarks: the face Face Mesh tracks; expressions: the largest face"
    if skipped:
        analysis.warn(f"no face detected in {len(skipped)} of {len(indices)} frames sampled for expressions")
    s["expressions"] = _expression_summary(fer.classes, proba, used, fps)
    s["expressions"].update({"frames_skipped": skipped, "input_colour": fer.colour})


def _expression_summary(classes: Sequence[str], proba: np.ndarray, frames: Sequence[int], fps: float | None) -> dict:
    mean = proba.mean(axis=0)
    out = {"classes": list(classes), "frames": [int(f) for f in frames],
           "proba": [[round(float(x), 6) for x in row] for row in proba],
           "mean": {c: round(float(m), 6) for c, m in zip(classes, mean)}, "top": classes[int(np.argmax(mean))]}
    if fps:
        out["times_s"] = [round(f / fps, 4) for f in frames]
    return out


def analyse_image(path: Path, options: Options, analysis: Analysis) -> None:
    s = analysis.summary
    image = read_image(path)
    s["input"].update({"width": int(image.shape[1]), "height": int(image.shape[0])})
    analysis.plots["image"] = image
    found = analysis.timed("detect_align", lambda: find_face(image))
    if found is None:
        raise NoFaceError(f"{path}: no face found in the image")
    analysis.plots.update({"aligned": found.aligned, "boxes": found.boxes, "box": found.box})
    s["faces"] = {"n_detected": found.n_faces, "used": "the largest face" if found.n_faces > 1 else "the only face",
                  "box": [round(float(v), 1) for v in found.box], "frames_without_face": None}
    if found.n_faces > 1:
        analysis.warn(f"several faces ({found.n_faces}) in the image: the largest was analysed")
    fer = _model_for("expression", options, analysis)
    aligned = fer.prepare(found)
    analysis.plots.update({"aligned": aligned, "input_size": fer.input_size})
    proba = analysis.timed("expression_model", lambda: fer.predict([aligned]))
    s["expressions"] = _expression_summary(fer.classes, proba, [0], None)
    s["expressions"]["input_colour"] = fer.colour
    if options.gradcam:
        top = int(np.argmax(proba[0]))
        heat, layer = analysis.timed("gradcam", lambda: fer.gradcam(aligned, top))
        analysis.plots["gradcam"] = heat
        s["gradcam"] = {"target_class": fer.classes[top], "target_layer": layer}


# ---------------------------------------------------------------------------------------------------------------
# outputs


def output_paths(path: Path, out_dir: Path, partial: bool) -> tuple[Path, Path]:
    base = path.name + (".partial" if partial else "")
    return out_dir / f"{base}.json", out_dir / f"{base}.png"


def predict_file(path: str | Path, out_dir: str | Path | None = None, options: Options | None = None,
                 write: bool = True) -> Analysis:
    """Analyse one video or image and write its report; re-raises the error after writing a partial report."""
    from common.predict_report import draw_report, save_figure

    path = Path(path).expanduser()
    options = options or Options()
    out_dir = Path(out_dir) if out_dir is not None else raw_root(options.results).parent / "predict"
    t0 = time.perf_counter()
    kind = input_kind(path) if path.exists() else "image"
    analysis = Analysis.start(path, kind)
    error: BaseException | None = None
    try:
        if not path.is_file():
            raise UnreadableInputError(f"{path}: no such file")
        (analyse_video if kind == "video" else analyse_image)(path, options, analysis)
        analysis.summary["status"] = "complete"
    except (PredictError, CheckpointError) as exc:
        error = exc
        analysis.summary["error"] = {"type": type(exc).__name__, "message": exc.args[0] if exc.args else str(exc),
                                     "hint": getattr(exc, "hint", None)}
    partial = error is not None
    if write:
        json_path, png_path = output_paths(path, out_dir, partial)
        # a new result replaces both an older complete report and an older partial one of the same input
        for stale in output_paths(path, out_dir, not partial) + output_paths(path, out_dir, partial):
            stale.unlink(missing_ok=True)
        t_report = time.perf_counter()
        figure = draw_report(analysis) if (not partial or analysis.plots) else None
        if figure is not None:
            save_figure(figure, png_path)
        analysis.summary["timings_s"]["report"] = round(time.perf_counter() - t_report, 4)
        analysis.summary["outputs"] = {"json": str(json_path), "png": str(png_path) if figure is not None else None}
        analysis.summary["timings_s"]["total"] = round(time.perf_counter() - t0, 4)
        atomic.write_json(json_path, analysis.summary)
    else:
        analysis.summary["timings_s"]["total"] = round(time.perf_counter() - t0, 4)
    if error is not None:
        raise error
    return analysis


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


# ---------------------------------------------------------------------------------------------------------------
# command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m common.predict", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="a video, an image, or a folder of them")
    p.add_argument("--checkpoint", help="smile model checkpoint (.pt); default: best validation-selected "
                                        "Hadamard checkpoint under --results")
    p.add_argument("--fer-checkpoint", help="expression (HAFEM) checkpoint; default: best under --results")
    p.add_argument("--out", help="output folder (default: <results>/predict)")
    p.add_argument("--results", help=f"results folder searched for checkpoints (default: {RESULTS_DIR})")
    p.add_argument("--variant", help="smile variant to pick by default (default: hadamard)")
    p.add_argument("--fer-variant", help="expression model variant to pick by default (default: hafem)")
    p.add_argument("--expression-fps", type=float, default=5.0, help="video: frames per second sampled for "
                                                                      "expressions (default 5)")
    p.add_argument("--no-expressions", action="store_true", help="video: skip the expression model")
    p.add_argument("--no-gradcam", action="store_true", help="image: skip Grad-CAM")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.expression_fps <= 0:
        print(f"error: --expression-fps must be > 0, got {args.expression_fps}", file=sys.stderr)
        return 2
    if args.threads < 0:
        print(f"error: --threads must be >= 0, got {args.threads}", file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    options = Options(checkpoint=args.checkpoint, fer_checkpoint=args.fer_checkpoint, results=args.results,
                      variant=args.variant, fer_variant=args.fer_variant, expression_fps=args.expression_fps,
                      expressions=not args.no_expressions, gradcam=not args.no_gradcam)
    try:
        files = list_inputs(args.path)
    except PredictError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    out_dir = Path(args.out) if args.out else raw_root(args.results).parent / "predict"
    status = 0
    for path in files:
        try:
            analysis = predict_file(path, out_dir, options)
        except (PredictError, CheckpointError) as exc:
            status = status or exit_code_of(exc)
            print(f"error: {exc}", file=sys.stderr)
            partial = output_paths(path, out_dir, partial=True)[0]
            if partial.exists():
                print(f"  partial report: {partial}", file=sys.stderr)
            continue
        print(one_line(analysis))
    return status


def one_line(analysis: Analysis) -> str:
    s = analysis.summary
    parts = [f"{analysis.path.name}:"]
    if s.get("smile"):
        parts.append(f"{s['smile']['decision']} smile (P(spontaneous) = {s['smile']['p_spontaneous']:.3f}, "
                     f"{s['models']['smile']['trained_on']})")
    if s.get("expressions"):
        e = s["expressions"]
        parts.append(f"expression {e['top']} ({e['mean'][e['top']]:.3f}, {s['models']['expression']['trained_on']})")
    for w in s["warnings"]:
        parts.append(f"[warning: {w}]")
    parts.append(f"-> {s['outputs'].get('json')}")
    return " ".join(parts)


if __name__ == "__main__":
    sys.exit(main())

"""One analysis of one video or image, stage by stage, so an error still leaves a (partial) report of what ran.

Video: landmarks (:func:`common.smile.extract.extract_video`) -> D-Marker signals and phases -> P(spontaneous) from
the smile ensemble -> expression probabilities on sampled frames. Image: the largest face -> expression
probabilities -> Grad-CAM.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from common import io as atomic
from common.checkpoints import CheckpointError
from common.face.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, UnreadableMediaError, probe_video, read_frames, read_image
from common.predict.checkpoints import NEAR_CHANCE_MARGIN, ModelSet, choose_models, raw_root
from common.predict.errors import NoFaceError, PredictError, UnreadableInputError

SCHEMA_VERSION = "predict/2"
STUDY_OF_ROLE = {"smile": "smile", "expression": "hafem"}


@dataclass
class Options:
    checkpoint: str | Path | None = None
    fer_checkpoint: str | Path | None = None
    results: str | Path | None = None
    variant: str | None = None
    fer_variant: str | None = None
    dataset: str | None = None
    fer_dataset: str | None = None
    expression_fps: float = 5.0
    max_expression_frames: int = 300
    expressions: bool = True
    gradcam: bool = True
    threshold: float = 0.5


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


# ------------------------------------------------------------------------------------------------------ inputs

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
            raise UnreadableInputError(f"{path}: folder holds no video or image ({' '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)})")
        return files
    return [path]


# ------------------------------------------------------------------------------------------------------ models
# choices and loaded models are reused across the files of a folder (and the notebook's repeated calls); a choice is
# reused only while the checkpoint files and run records it was made from are unchanged

_CHOICE_CACHE: dict[tuple, tuple[tuple, ModelSet]] = {}
_MODEL_CACHE: dict[tuple, Any] = {}


def _files_state(study: str, results, explicit) -> tuple:
    if explicit is not None:
        files = [Path(explicit)]
    else:
        runs = raw_root(results).joinpath(study).glob("*/*/*/seed*-*")
        files = [f for run in sorted(runs) for f in [run / "run.json", run / "rows.csv",
                                                     *sorted(run.glob("checkpoints/*.pt"))]]
    return tuple((str(f), f.stat().st_mtime_ns) for f in files if f.exists())


def cached_choice(study: str, options: Options) -> ModelSet:
    role = "smile" if study == "smile" else "expression"
    explicit = options.checkpoint if role == "smile" else options.fer_checkpoint
    variant = options.variant if role == "smile" else options.fer_variant
    dataset = options.dataset if role == "smile" else options.fer_dataset
    key = (study, str(raw_root(options.results).resolve()), variant, dataset, str(explicit))
    state = _files_state(study, options.results, explicit)
    hit = _CHOICE_CACHE.get(key)
    if hit is not None and hit[0] == state:
        return hit[1]
    choice = choose_models(study, options.results, variant, dataset, explicit)
    _CHOICE_CACHE[key] = (state, choice)
    return choice


def _load_member(role: str, member) -> Any:
    key = (role, str(member.path.resolve()), member.path.stat().st_mtime_ns)
    if key not in _MODEL_CACHE:
        if role == "smile":
            from common.smile.infer import SmileModel as build
        else:
            from common.fer.infer import ExpressionModel as build
        _MODEL_CACHE[key] = build(member.payload, str(member.path))
    return _MODEL_CACHE[key]


def model_for(role: str, options: Options, analysis: Analysis):
    """The ensemble for ``role`` ("smile" / "expression"); records its summary in the analysis."""
    def load():
        choice = cached_choice(STUDY_OF_ROLE[role], options)
        members = [_load_member(role, m) for m in choice.members]
        if role == "smile":
            from common.smile.infer import SmileEnsemble

            return choice, SmileEnsemble(members)
        from common.fer.infer import ExpressionEnsemble

        return choice, ExpressionEnsemble(members, choice.first.dataset)

    choice, ensemble = analysis.timed("load_models", load)
    n_classes = 2 if role == "smile" else len(ensemble.classes)
    summary = choice.summary()
    summary["held_out_near_chance"] = choice.held_out_near_chance(n_classes)
    analysis.summary["models"][role] = summary
    if summary["held_out_near_chance"]:
        analysis.warn(f"the {role} model(s) scored {summary['held_out_score']:.3f} test accuracy on their held-out "
                      f"data, near chance ({1 / n_classes:.3f}): treat their output as uninformative")
    return ensemble


def near_chance(p: float, n_classes: int) -> bool:
    """A top probability within NEAR_CHANCE_MARGIN of uniform (for two classes: P within 0.1 of 0.5)."""
    return p < 1.0 / n_classes + NEAR_CHANCE_MARGIN


# ------------------------------------------------------------------------------------------------------- video

def _read_video_landmarks(path: Path, analysis: Analysis):
    from common.smile.extract import VideoError, extract_video

    try:
        return analysis.timed("decode_landmarks", lambda: extract_video(path))
    except VideoError as exc:
        message = str(exc)
        if "no face" in message:
            raise NoFaceError(message, hint="the smile models need a face visible through the smile") from exc
        if "face lost" in message:
            raise NoFaceError(message, hint="the face must stay visible; cut the video to the smile") from exc
        raise UnreadableInputError(message) from exc


def analyse_video(path: Path, options: Options, analysis: Analysis) -> None:
    """Fill ``analysis`` stage by stage (see the module docstring); raises on the first stage that fails."""
    from common.smile.dmarker import dmarker_signals

    s = analysis.summary
    try:
        info = probe_video(path)  # first: an unreadable file fails before any model work
    except UnreadableMediaError as exc:
        raise UnreadableInputError(str(exc)) from exc
    s["input"].update({"width": info["width"], "height": info["height"], "fps": info["fps"]})
    landmarks, sidecar = _read_video_landmarks(path, analysis)
    landmarks = np.asarray(landmarks, dtype=np.float32)
    first = int(sidecar["trimmed_start"])  # the extractor drops face-less frames at both ends
    fps = float(sidecar["fps"] or 0.0)
    if not fps:
        raise UnreadableInputError(f"{path}: the video reports no frame rate; cannot time the smile phases")
    n_decoded, missing = int(sidecar["n_decoded"]), int(sidecar["frames_without_face"])
    s["input"].update({"fps": fps, "n_frames": n_decoded, "duration_s": round(n_decoded / fps, 4)})
    s["faces"] = {"n_detected": 1, "used": "the face MediaPipe Face Mesh tracks (max_num_faces=1)", "box": None,
                  "frames_without_face": missing}
    if missing:
        analysis.warn(f"no face in {missing} of {n_decoded} frames: {first} leading and {sidecar['trimmed_end']} "
                      f"trailing frames left out, {sidecar['interpolated_frames']} interior frames interpolated")
    analysis.plots["first_frame"] = first

    aspect = info["width"] / info["height"]  # MediaPipe x is in frame widths, y in frame heights

    def signals_of(variant: str):
        signals = dmarker_signals(landmarks, variant=variant, fps=fps, aspect=aspect)
        analysis.plots["signals"] = signals
        s["dmarker"] = _dmarker_summary(signals, variant, fps, first)

    # the curves depend only on the landmarks: shown before the model loads, redrawn in the model's own variant
    analysis.timed("dmarker", lambda: signals_of("paper"))
    from common.predict.report import strip_frames

    analysis.plots["strip"] = analysis.timed("strip", lambda: strip_frames(path, landmarks, first,
                                                                           analysis.plots["signals"]["lip"]))
    smile = model_for("smile", options, analysis)
    result = analysis.timed("smile_model", lambda: smile.predict(landmarks, fps, aspect))
    p = float(result["p_spontaneous"])
    s["smile"] = {"p_spontaneous": round(p, 6), "decision": "spontaneous" if p >= options.threshold else "posed",
                  "threshold": options.threshold, "clip_len": int(result["clip_len"]),
                  "near_chance": near_chance(max(p, 1 - p), 2),
                  "member_p_spontaneous": [round(float(x), 6) for x in result["member_p"]],
                  "clips": [{"start_frame": first + int(a), "p_spontaneous": round(float(b), 6)}
                            for a, b in zip(result["starts"], result["clip_p"])]}
    if s["smile"]["near_chance"]:
        analysis.warn(f"P(spontaneous) = {p:.3f} is within {NEAR_CHANCE_MARGIN} of 0.5: near chance, not a confident "
                      f"decision")
    if smile.dmarker_variant != "paper":
        signals_of(smile.dmarker_variant)

    if options.expressions:
        fer = model_for("expression", options, analysis)
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
        "variant": variant, "first_frame": first, "phases_frames": phases,
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
        found = fer.face(frames[i]) if i in frames else None
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
           "mean": {c: round(float(m), 6) for c, m in zip(classes, mean)}, "top": classes[int(np.argmax(mean))],
           "near_chance": near_chance(float(mean.max()), len(classes))}
    if fps:
        out["times_s"] = [round(f / fps, 4) for f in frames]
    return out


# ------------------------------------------------------------------------------------------------------- image

def analyse_image(path: Path, options: Options, analysis: Analysis) -> None:
    from common.fer.infer import find_face

    s = analysis.summary
    try:
        image = read_image(path)
    except UnreadableMediaError as exc:
        raise UnreadableInputError(str(exc)) from exc
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
    fer = model_for("expression", options, analysis)
    aligned = fer.prepare(found)
    analysis.plots.update({"aligned": aligned, "input_size": fer.input_size})
    proba = analysis.timed("expression_model", lambda: fer.predict([aligned]))
    s["expressions"] = _expression_summary(fer.classes, proba, [0], None)
    s["expressions"]["input_colour"] = fer.colour
    if s["expressions"]["near_chance"]:
        analysis.warn(f"top expression probability {proba.max():.3f} is within {NEAR_CHANCE_MARGIN} of uniform "
                      f"({1 / len(fer.classes):.3f}): near chance")
    if options.gradcam:
        top = int(np.argmax(proba[0]))
        heat, layer = analysis.timed("gradcam", lambda: fer.gradcam(aligned, top))
        analysis.plots["gradcam"] = heat
        s["gradcam"] = {"target_class": fer.classes[top], "target_layer": layer}


# ----------------------------------------------------------------------------------------------------- outputs

def output_paths(path: Path, out_dir: Path, partial: bool) -> tuple[Path, Path]:
    base = path.name + (".partial" if partial else "")
    return out_dir / f"{base}.json", out_dir / f"{base}.png"


def default_out_dir(results: str | Path | None) -> Path:
    return raw_root(results).parent / "predict"


def predict_file(path: str | Path, out_dir: str | Path | None = None, options: Options | None = None,
                 write: bool = True) -> Analysis:
    """Analyse one video or image and write its report; re-raises the error after writing a partial report."""
    from common.predict.report import draw_report, save_figure

    path = Path(path).expanduser()
    options = options or Options()
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(options.results)
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

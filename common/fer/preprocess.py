"""HAFEM's face preprocessing: detect -> enlarge the box 1.3x -> align -> 224x224 bicubic -> CLAHE (LAB L).

The paper detects faces and 5 landmarks with RetinaFace. RetinaFace weights are not available offline (every package
that wraps it downloads them at run time), so this module uses **MediaPipe face detection** (:mod:`common.face.detect`;
its weights ship inside the ``mediapipe`` wheel), which gives a box and 6 keypoints: right eye, left eye, nose tip,
mouth centre, right ear, left ear (the subject's right eye appears on the image's left).

Alignments (``PreprocessConfig.alignment``; all geometry lives in :mod:`common.face.align`):

- ``"5point"``: the eye alignment (today's default) -- rotate about the box centre so the detector's two eye keypoints
  are level, and scale the square of side 1.3 x max(box w, box h) onto ``size x size``;
- ``"5point_fit"``: the paper's frontal alignment -- the similarity fitted to a canonical five-point template (eye
  centres, nose tip, mouth corners) read from the dataset's own 68 landmarks when given, else from dlib's 68 points
  found on the face levelled with the detector's eyes (the detector's own keypoints are too coarse: fitted to them,
  a face rolled by 25 deg stays ~8 deg off);
- ``"68point"``: the eye alignment with eye centres from dlib's 68-point shape predictor (run inside the MediaPipe
  box on the coarsely levelled face) or from the dataset's own 68 landmarks (AffectNet csv release);
- ``"none"``: already-aligned datasets (FER2013 48x48, RAF-DB aligned, AffectNet cropped release): resize + CLAHE.

CLAHE (clip 2.0, 8x8 tiles) equalises the L channel in LAB and leaves the colour channels unchanged. An image without
a detectable face raises :class:`NoFaceError` naming it; with several faces the largest is used and the result says
how many were found. Detection results are cached on disk per image (content hash of the pixels and the parameters)
under ``DATASETS_DIR/cache/faces``.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from common.face.align import align_face, align_five_point
from common.face.detect import DETECTOR_CHOICES, detect_with_retry
from common.face.enhance import clahe_lab, resize_bicubic
from common.face.landmarks68 import eyes_from_68, five_from_68, refine_68, refine_eyes_68
from common.face.media import rgb_uint8
from common.io import atomic_path
from common.paths import DATASETS_DIR

DEFAULT_CACHE_DIR = DATASETS_DIR / "cache" / "faces"
ALIGNMENTS = ("5point", "5point_fit", "68point", "none")
NO_FACE_POLICIES = ("error", "skip", "unaligned")


class NoFaceError(ValueError):
    """No face was detected; the message names the image."""


@dataclass(frozen=True)
class PreprocessedFace:
    image: np.ndarray            # size x size x 3 uint8 RGB
    n_faces: int                 # faces detected (1 for alignment="none" or given landmarks)
    box: np.ndarray | None       # the face box used, x0 y0 x1 y1, in the input image
    score: float | None


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
        if self.detector not in DETECTOR_CHOICES:
            raise ValueError(f"detector must be one of {', '.join(DETECTOR_CHOICES)}, got {self.detector!r}")
        if self.size < 8 or self.enlarge <= 0 or self.clip <= 0:
            raise ValueError(f"invalid preprocessing parameters: {self}")


def preprocess_image(image: np.ndarray, config: PreprocessConfig = PreprocessConfig(),
                     landmarks68: np.ndarray | None = None, source: str = "") -> PreprocessedFace:
    """The full pipeline on one RGB image. ``landmarks68`` (the dataset's own points) skips detection in the
    68-point variant. Raises :class:`NoFaceError` naming ``source`` when no face is found."""
    c = config
    rgb = rgb_uint8(image, source)
    box = score = None
    n_faces = 1
    if c.alignment == "none":
        out = resize_bicubic(rgb, c.size)
    elif c.alignment in ("68point", "5point_fit") and landmarks68 is not None:
        lm = np.asarray(landmarks68, dtype=np.float64).reshape(68, 2)
        box = np.array([*lm.min(axis=0), *lm.max(axis=0)])
        out = (align_face(rgb, eyes_from_68(lm), box, c.size, c.enlarge) if c.alignment == "68point"
               else align_five_point(rgb, five_from_68(lm), c.size, c.enlarge))
    else:
        faces = detect_with_retry(rgb, c.min_score, c.detector, c.retry_pad)  # retry: tight crops get a border
        if not faces:
            raise NoFaceError(f"no face detected in {source or 'the image'} ({rgb.shape[1]}x{rgb.shape[0]}, "
                              f"MediaPipe score >= {c.min_score})")
        face, n_faces, box, score = faces[0], len(faces), faces[0].box, faces[0].score
        if c.alignment == "5point_fit":  # the detector's keypoints are coarse (~8 deg of roll left at 25 deg)
            five = five_from_68(refine_68(rgb, face.eyes, face.box, c.size, c.enlarge))
            out = align_five_point(rgb, five, c.size, c.enlarge)
        else:
            eyes = face.eyes if c.alignment == "5point" else refine_eyes_68(rgb, face.eyes, face.box, c.size,
                                                                            c.enlarge)
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
        if landmarks68 is not None and config.alignment in ("68point", "5point_fit"):
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

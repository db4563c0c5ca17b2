"""dlib's 68-point landmarks (iBUG 300-W scheme; Kazemi & Sullivan, CVPR 2014) and what alignment reads from them.

The model is ``shape_predictor_68_face_landmarks.dat`` shipped by the ``face_recognition_models`` package (trained on
iBUG 300-W, non-commercial terms); nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from common.face.align import eye_alignment_matrix
from common.face.media import rgb_uint8
from common.face.topology import LEFT_EYE_68, MOUTH_CORNERS_68, NOSE_TIP_68, RIGHT_EYE_68


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

    rgb = rgb_uint8(image)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    shape = _shape_predictor_68()(rgb, dlib.rectangle(x0, y0, x1, y1))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def _as_68(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.size != 136:
        raise ValueError(f"expected 68 (x, y) landmarks, got an array of shape {lm.shape}")
    return lm.reshape(68, 2)


def eyes_from_68(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2) eye centres from 68 iBUG points: the subject's right eye (36-41) then left eye (42-47)."""
    lm = _as_68(landmarks)
    return np.stack([lm[RIGHT_EYE_68].mean(axis=0), lm[LEFT_EYE_68].mean(axis=0)])


def five_from_68(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2) eye centres, nose tip (30) and mouth corners (48, 54) from 68 iBUG points."""
    lm = _as_68(landmarks)
    return np.vstack([eyes_from_68(lm), lm[NOSE_TIP_68], lm[list(MOUTH_CORNERS_68)]])


def refine_68(image: np.ndarray, eyes: np.ndarray, box: Sequence[float], size: int = 224,
              enlarge: float = 1.3) -> np.ndarray:
    """dlib's 68 points of the face with coarse ``eyes`` and ``box`` (from the detector), in ``image`` coordinates.

    dlib's predictor starts from an upright mean shape and drifts on tilted faces (at 25 deg of roll it misses by
    ~20 deg on astronaut()), so it runs on the face first levelled with the coarse eyes, and the points are mapped
    back through the inverse of that coarse alignment.
    """
    coarse = eye_alignment_matrix(eyes, box, size, enlarge)
    levelled = cv2.warpAffine(rgb_uint8(image), coarse, (size, size), flags=cv2.INTER_CUBIC)
    half = size / (2 * enlarge)  # the detector box, now centred in the levelled crop
    lm = landmarks_68(levelled, (size / 2 - half, size / 2 - half, size / 2 + half, size / 2 + half))
    back = cv2.invertAffineTransform(coarse)
    return np.c_[lm, np.ones(len(lm))] @ back.T


def refine_eyes_68(image: np.ndarray, eyes: np.ndarray, box: Sequence[float], size: int = 224,
                   enlarge: float = 1.3) -> np.ndarray:
    """Eye centres from dlib's 68 points (see :func:`refine_68`), in ``image`` coordinates."""
    coarse = eye_alignment_matrix(eyes, box, size, enlarge)
    levelled = cv2.warpAffine(rgb_uint8(image), coarse, (size, size), flags=cv2.INTER_CUBIC)
    half = size / (2 * enlarge)
    centres = eyes_from_68(landmarks_68(levelled, (size / 2 - half, size / 2 - half, size / 2 + half,
                                                   size / 2 + half)))
    back = cv2.invertAffineTransform(coarse)
    return np.c_[centres, np.ones(2)] @ back.T

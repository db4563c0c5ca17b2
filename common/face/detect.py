"""MediaPipe face detection (BlazeFace; Bazarevsky et al., arXiv:1907.05047): boxes and six keypoints.

The weights ship inside the ``mediapipe`` wheel, so nothing is downloaded. Each detection has a box and six
keypoints in pixels: the subject's right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion
(the subject's right eye appears on the image's left).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from common.face.media import rgb_uint8

DETECTOR_MODELS = {"short": 0, "full": 1}  # MediaPipe model_selection: short range (<2 m) / full range (<5 m)
DETECTOR_CHOICES = (*DETECTOR_MODELS, "auto", "both")
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear", "left_ear")
SAME_FACE_IOU = 0.3  # "both": a box overlapping a kept one by more than this is the same face


@dataclass(frozen=True)
class FaceDetection:
    """One face: ``box`` (x0, y0, x1, y1) and ``keypoints`` (6, 2) in pixels (order: :data:`KEYPOINTS`),
    ``score`` in [0, 1]."""

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

    @property
    def face_points(self) -> np.ndarray:
        """(4, 2): right eye, left eye, nose tip, mouth centre (the keypoints a face-plane alignment can use)."""
        return self.keypoints[:4]


@lru_cache(maxsize=4)
def _detector(model: str, min_score: float):
    os.environ.setdefault("GLOG_minloglevel", "2")
    import mediapipe as mp

    return mp.solutions.face_detection.FaceDetection(model_selection=DETECTOR_MODELS[model],
                                                     min_detection_confidence=min_score)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
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
    if model not in DETECTOR_CHOICES:
        raise ValueError(f"detector model must be 'short', 'full', 'auto' or 'both', got {model!r}")
    rgb = rgb_uint8(image)
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
            if all(iou(face.box, k.box) <= SAME_FACE_IOU for k in kept):
                kept.append(face)
        faces = kept
    return sorted(faces, key=lambda f: f.area, reverse=True)


def detect_with_retry(image: np.ndarray, min_score: float = 0.5, model: str = "auto",
                      retry_pad: float = 0.5) -> list[FaceDetection]:
    """:func:`detect_faces`, and when it finds nothing, once more with a black border of ``retry_pad`` x the longer
    side (tight face crops); ``retry_pad=0`` disables the retry."""
    faces = detect_faces(image, min_score, model)
    if not faces and retry_pad > 0:
        faces = detect_faces(image, min_score, model, pad=retry_pad)
    return faces

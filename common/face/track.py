"""Follow one face through a video: detect, then track the box by template matching, re-detecting when needed.

Face detection (:func:`common.face.detect.detect_faces`) costs about as much as the rest of a frame's FER
preprocessing. Between consecutive video frames a face moves a few pixels, so :class:`FaceTracker` runs the detector
only

- on the first frame and every ``redetect_every`` frames after a detection (this also corrects drift and roll), and
- whenever tracking fails: the best normalised cross-correlation (OpenCV's ``TM_CCOEFF_NORMED``) between the face as
  last detected and the search window around its last position falls below ``min_match`` -- a scene cut, the face
  leaving, an occlusion -- or the search window leaves the frame.

Tracking works on a gray, downscaled copy of the face: the template is the detected box resized so its width is
``template_width`` pixels, the search window the box at its last position grown by ``search`` x its size on every
side, matched at the last scale x each of ``scales`` (a face moving towards or away from the camera); the best
correlation peak (refined to sub-pixel by a parabola through its neighbours) moves and rescales the detected box and
keypoints. Roll is not followed (the next detection corrects it).
The template is never updated from tracked frames, so errors do not accumulate between detections. A frame where the
detector finds no face gives ``None``, and the next frame is detected again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from common.face.detect import FaceDetection, detect_faces


@dataclass(frozen=True)
class TrackedFace:
    """The face in one frame: ``detection`` (box, keypoints, detector score of the last detection), ``detected``
    (True when the detector ran on this frame), ``match`` (the template correlation; 1.0 on detected frames)."""

    detection: FaceDetection
    detected: bool
    match: float

    @property
    def box(self) -> np.ndarray:
        return self.detection.box

    @property
    def keypoints(self) -> np.ndarray:
        return self.detection.keypoints


@dataclass
class TrackStats:
    frames: int = 0
    detector_runs: int = 0
    scheduled: int = 0        # detector runs because redetect_every frames had passed (or the first frame)
    failures: int = 0         # detector runs because tracking failed (low correlation, face at the frame's edge)
    no_face: int = 0          # frames where the detector found nothing
    matches: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        tracked = [m for m in self.matches if m < 1.0]
        return {"frames": self.frames, "detector_runs": self.detector_runs, "scheduled": self.scheduled,
                "tracking_failures": self.failures, "no_face_frames": self.no_face,
                "detector_share": self.detector_runs / self.frames if self.frames else 0.0,
                "median_match_tracked": float(np.median(tracked)) if tracked else None}


class FaceTracker:
    """Per-frame face boxes for a video at a fraction of the detector's cost (see the module docstring).

    ``detector`` maps an RGB frame to faces, largest first (default: MediaPipe's short-range model, score >= 0.5).
    Frames are BGR (as OpenCV decodes them) unless ``bgr=False``; only detected frames are converted to RGB.
    """

    def __init__(self, redetect_every: int = 10, min_match: float = 0.75, template_width: int = 32,
                 search: float = 0.35, scales: tuple[float, ...] = (0.96, 1.0, 1.04),
                 detector: Callable[[np.ndarray], list[FaceDetection]] | None = None, bgr: bool = True):
        if redetect_every < 1:
            raise ValueError(f"redetect_every must be >= 1 (1 = detect every frame), got {redetect_every}")
        if not -1.0 <= min_match <= 1.0:
            raise ValueError(f"min_match is a correlation in [-1, 1], got {min_match}")
        if template_width < 8 or search <= 0:
            raise ValueError(f"template_width must be >= 8 and search > 0, got {template_width} and {search}")
        self.redetect_every, self.min_match = int(redetect_every), float(min_match)
        self.template_width, self.search, self.bgr = int(template_width), float(search), bgr
        if not scales or min(scales) <= 0:
            raise ValueError(f"scales must be positive factors, got {scales}")
        self.scales = tuple(float(f) for f in scales)
        self.detector = detector or (lambda rgb: detect_faces(rgb, min_score=0.5, model="short"))
        self.stats = TrackStats()
        self.reset()

    def reset(self) -> None:
        """Forget the face: the next frame runs the detector."""
        self._face: FaceDetection | None = None
        self._template: np.ndarray | None = None
        self._scale = 1.0
        self._since_detection = 0

    def _gray(self, frame: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        roi = frame[y0:y1, x0:x1]
        return roi if roi.ndim == 2 else cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY if self.bgr else cv2.COLOR_RGB2GRAY)

    def _detect(self, frame: np.ndarray) -> TrackedFace | None:
        self.stats.detector_runs += 1
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if self.bgr else frame
        faces = self.detector(rgb)
        self._since_detection = 0
        if not faces:
            self.stats.no_face += 1
            self.reset()
            return None
        face = faces[0]
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        self._face = face
        if self.redetect_every == 1 or x1 - x0 < 4 or y1 - y0 < 4:  # no tracking, or a sliver at the frame's edge
            self._template = None
        else:
            self._scale = self.template_width / (x1 - x0)
            self._template = _shrink(self._gray(frame, x0, y0, x1, y1), self._scale)
            self._origin = self._last = (x0, y0)
            self._last_factor = 1.0
        return TrackedFace(face, True, 1.0)

    def _track(self, frame: np.ndarray) -> TrackedFace | None:
        """The face moved (and rescaled) to the best correlation peak, or None when tracking fails."""
        h, w = frame.shape[:2]
        (ox, oy), (lx, ly), lf = self._origin, self._last, self._last_factor
        th, tw = self._template.shape
        bw, bh = tw / (self._scale * lf), th / (self._scale * lf)  # the face's size at its last position
        sx0, sy0 = max(int(lx - self.search * bw), 0), max(int(ly - self.search * bh), 0)
        sx1 = min(int(np.ceil(lx + (1 + self.search) * bw)), w)
        sy1 = min(int(np.ceil(ly + (1 + self.search) * bh)), h)
        if sx1 - sx0 < bw or sy1 - sy0 < bh:
            return None
        gray = self._gray(frame, sx0, sy0, sx1, sy1)
        best = (-2.0, 0.0, 0.0, 1.0)
        for f in (lf * c for c in self.scales):  # f > 1: the face shrank since its detection (window enlarged)
            s = self._scale * f
            window = _shrink(gray, s)
            if window.shape[0] < th + 2 or window.shape[1] < tw + 2:
                continue
            score = cv2.matchTemplate(window, self._template, cv2.TM_CCOEFF_NORMED)
            _, peak, _, (px, py) = cv2.minMaxLoc(score)
            if np.isfinite(peak) and peak > best[0]:
                fx, fy = px + _subpixel(score[py, :], px), py + _subpixel(score[:, px], py)
                best = (float(peak), sx0 + fx / s, sy0 + fy / s, f)
        peak, tx, ty, f = best
        if peak < self.min_match:
            return None
        self._last, self._last_factor = (tx, ty), f
        # the template's top-left corner moved from the detection's (ox, oy) to (tx, ty); sizes scale by 1 / f
        ref = self._face
        origin, new = np.array([ox, oy], dtype=np.float64), np.array([tx, ty])
        box = ((ref.box.reshape(2, 2) - origin) / f + new).reshape(4)
        moved = FaceDetection(box, (ref.keypoints - origin) / f + new, ref.score)
        return TrackedFace(moved, False, peak)

    def update(self, frame: np.ndarray) -> TrackedFace | None:
        """The face in the next frame of the video (``None`` when the detector finds none)."""
        self.stats.frames += 1
        self._since_detection += 1
        result = None
        if self._template is not None and self._since_detection < self.redetect_every:
            result = self._track(frame)
            if result is None:
                self.stats.failures += 1
        else:
            self.stats.scheduled += 1
        if result is None:
            result = self._detect(frame)
        self.stats.matches.append(result.match if result is not None else float("nan"))
        return result


def _shrink(gray: np.ndarray, scale: float) -> np.ndarray:
    """``gray`` resized by ``scale`` (< 1): Gaussian pyramid halvings, then a bilinear resize by the rest (> 0.5);
    close to an area average at a fraction of its cost."""
    w, h = max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale))
    while gray.shape[1] >= 2 * w + 2 and gray.shape[0] >= 2 * h + 2:
        gray = cv2.pyrDown(gray)
    return cv2.resize(gray, (w, h), interpolation=cv2.INTER_LINEAR)


def _subpixel(profile: np.ndarray, i: int) -> float:
    """Offset of a parabola's vertex through ``profile[i - 1: i + 2]`` from ``i`` (0 at an edge or on a plateau)."""
    if i <= 0 or i >= len(profile) - 1:
        return 0.0
    a, b, c = float(profile[i - 1]), float(profile[i]), float(profile[i + 1])
    den = a - 2 * b + c
    return 0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))

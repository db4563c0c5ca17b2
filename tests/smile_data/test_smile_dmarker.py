"""D-Marker against hand-computed values on a constructed smile, in both variants (synthetic sequences)."""
import numpy as np
import pytest

from common.smile.clips import UVA_LANDMARK_MAX, UVA_LANDMARK_MIN
from common.smile.dmarker import DMARKER_DIM, dmarker, dmarker_batch, dmarker_signals, feature_names, video_dmarkers
from common.smile.dmarker_formulas import FEATURES, pose_normalise
from common.smile.dmarker_scaler import DMarkerScaler
from smile_data_helpers import face_sequence

FPS = 25.0
A = 1 / 128  # lip-corner spread step (dyadic: every value below is exact in floating point)
# spread s(t): rise over frames 0..4, hold 5..6, fall 7..10, rest at 11
K = np.array([0, 1, 2, 3, 4, 4, 4, 3, 2, 1, 0, 0], dtype=np.float64)
SPREAD = A * K
ON, APEX, OFF = 0, 1, 2
EYES, CHEEKS, LIPS = 0, 1, 2
IDENTITY = (np.zeros(3), np.ones(3))  # released min-max normalisation switched off, for exact values
SX = 1 / (UVA_LANDMARK_MAX[0] - UVA_LANDMARK_MIN[0])  # released min-max scale of x and y
SY = 1 / (UVA_LANDMARK_MAX[1] - UVA_LANDMARK_MIN[1])


def constructed_smile() -> np.ndarray:
    """Frontal face (nose in the eye plane); the right lip corner moves out by s/2, the left by 3s/2 (width
    0.125 + 2s, so D_lip = 0.5 + 8s = 0.5 + K/16); cheeks rise by s/2. Eyes still (lid 1/32 above the centre)."""
    seq = face_sequence(len(SPREAD), seed=3).astype(np.float64)
    seq[:, 1, 2] = 0.0
    seq[:, 62, 0] -= 0.5 * SPREAD
    seq[:, 308, 0] += 1.5 * SPREAD
    seq[:, 50, 1] -= 0.5 * SPREAD
    seq[:, 280, 1] -= 0.5 * SPREAD
    return seq


def feats(vec):
    return vec.reshape(3, 3, 25)  # region, phase, feature


def f(i):  # 1-based feature number of RPT Table 2
    return i - 1


def test_layout_names():
    names = feature_names()
    assert len(names) == DMARKER_DIM == 225 and len(FEATURES) == 25
    assert names[0] == "eyes/onset/duration_inc" and names[75] == "cheeks/onset/duration_inc"
    assert names[150 + 25] == "lips/apex/duration_inc" and names[-1] == "lips/offset/left_right_difference"


def test_paper_lip_signal_and_phases():
    sig = dmarker_signals(constructed_smile(), "paper", FPS)
    np.testing.assert_array_equal(sig["lip"], 0.5 + K / 16)  # (0.125 + 2s) / (2 * 0.125)
    np.testing.assert_array_equal(sig["eye"], 0.25)  # (1/32 + 1/32) / (2 * 0.125)
    np.testing.assert_allclose(sig["cheek"], np.sqrt(0.125 ** 2 + (0.5 * SPREAD) ** 2) / 0.25, atol=1e-12)
    assert sig["phases"] == {"onset": (0, 5), "apex": (5, 6), "offset": (6, 11)}


def test_paper_lip_features_match_hand_computation():
    v = feats(dmarker(constructed_smile(), "paper", fps=FPS))
    onset, apex, offset = v[LIPS, ON], v[LIPS, APEX], v[LIPS, OFF]
    # onset D = .5 .5625 .625 .6875 .75: 4 increases of 1/16, accelerations all 0; D_L - D_R = 8 s = K / 16
    expect_on = {1: 4 / FPS, 2: 0, 3: 5 / FPS, 4: 0.8, 5: 0, 6: 0.75, 7: 0.625, 8: 2.625 / 4, 9: 0,
                 10: np.sqrt(0.0078125), 11: 2.625, 12: 0, 13: 2.625, 14: 1, 15: 0, 16: 1 / 16, 17: 0, 18: 1 / 16,
                 19: 0, 20: 0, 21: 0, 22: 0, 23: 0, 24: 2.625 * FPS / 5, 25: (0 + 1 + 2 + 3 + 4) / 16 / 5}
    for i, val in expect_on.items():
        assert onset[f(i)] == pytest.approx(val, abs=1e-6), f"onset feature {i}"
    # offset D = .75 .6875 .625 .5625 .5
    expect_off = {1: 0, 2: 4 / FPS, 3: 5 / FPS, 4: 0, 5: 0.8, 6: 0.75, 7: 0.625, 8: 0, 9: 2.375 / 4,
                  10: np.sqrt(0.0078125), 11: 0, 12: 2.375, 13: -2.375, 14: 0, 15: 1, 16: 0, 17: 1 / 16, 18: 0,
                  19: 1 / 16, 20: 0, 21: 0, 22: 0, 23: 0, 24: -2.375 * FPS / 5, 25: (4 + 3 + 2 + 1 + 0) / 16 / 5}
    for i, val in expect_off.items():
        assert offset[f(i)] == pytest.approx(val, abs=1e-6), f"offset feature {i}"
    # apex = the single frame 5 (D = .75)
    expect_apex = {1: 0, 2: 0, 3: 1 / FPS, 4: 0, 5: 0, 6: 0.75, 7: 0.75, 8: 0, 9: 0, 10: 0, 11: 0, 13: 0, 16: 0,
                   24: 0, 25: 4 / 16}
    for i, val in expect_apex.items():
        assert apex[f(i)] == pytest.approx(val, abs=1e-6), f"apex feature {i}"


def test_paper_eyes_and_cheeks():
    v = feats(dmarker(constructed_smile(), "paper", fps=FPS))
    assert v[EYES, ON, f(6)] == 0.25 and v[EYES, ON, f(1)] == 0 and v[EYES, ON, f(25)] == 0
    assert v[EYES, ON, f(3)] == pytest.approx(5 / FPS)
    cheek = np.sqrt(0.125 ** 2 + (0.5 * SPREAD) ** 2) / 0.25  # first-frame cheek midpoint and width
    assert v[CHEEKS, ON, f(6)] == pytest.approx(cheek[4], abs=1e-6)
    assert v[CHEEKS, ON, f(11)] == pytest.approx(cheek[1:5].sum(), abs=1e-6)
    assert v[CHEEKS, OFF, f(12)] == pytest.approx(cheek[7:11].sum(), abs=1e-6)


def test_paper_is_invariant_to_head_pose_scale_and_translation():
    seq = constructed_smile()
    seq[:, 1, 2] = -0.0625  # nose out of the eye plane: the face frame is tilted
    rng = np.random.default_rng(0)
    moved = np.empty_like(seq)
    for t in range(len(seq)):  # a different rigid motion and scale in every frame
        ang = rng.uniform(-0.4, 0.4, 3)
        cx, cy, cz = np.cos(ang)
        sx, sy, sz = np.sin(ang)
        rot = (np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
               @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]))
        moved[t] = rng.uniform(0.5, 2.0) * seq[t] @ rot.T + rng.uniform(-1, 1, 3)
    # the amplitude signals (which determine every feature) are unchanged up to rounding; flat stretches then
    # differ only by ~1e-16 noise, which can flip a strict V > 0 test, so signals are compared, not counts
    ref, got = dmarker_signals(seq, "paper", FPS), dmarker_signals(moved, "paper", FPS)
    for name in ("lip", "eye", "cheek"):
        np.testing.assert_allclose(got[name], ref[name], atol=1e-9)
    # the released variant is 2-D and not pose-normalised, so the same motion changes it
    assert not np.allclose(dmarker(moved, "released"), dmarker(seq, "released"), atol=1e-3)


def test_pose_normalise_frontal_face_keeps_axes():
    seq = constructed_smile()[:1]
    q = pose_normalise(seq[:, [33, 159, 133, 362, 386, 263, 50, 280, 1, 62, 308]])
    eyes_mid = np.array([0.5, 0.375, 0.0])
    np.testing.assert_array_equal(q[0, 9], (seq[0, 62] - eyes_mid) / 0.25)


def test_released_signal_and_quirky_phases():
    seq = constructed_smile()
    sig = dmarker_signals(seq, "released", norm_range=IDENTITY)
    np.testing.assert_array_equal(sig["lip"], 0.5 + K / 16)  # width(t) / (2 width(1))
    np.testing.assert_array_equal(sig["cheek"], 1 - 4 * SPREAD)  # eye centre -> cheek, / first-frame eye width
    # the released run finder extends a run by the frame that ends it: onset 0..5, offset 6..11, no apex
    assert sig["phases"] == {"onset": (0, 6), "apex": (0, 0), "offset": (6, 12)}
    # with the UvA min-max constants x and y are scaled differently: the eye amplitude changes by SY / SX
    uva = dmarker_signals(seq, "released")
    np.testing.assert_allclose(uva["eye"], 0.25 * SY / SX, rtol=1e-9)


def test_released_lip_features_match_hand_computation():
    v = feats(dmarker(constructed_smile(), "released", norm_range=IDENTITY))
    onset, apex, offset = v[LIPS, ON], v[LIPS, APEX], v[LIPS, OFF]
    d_on = 0.5 + K[:6] / 16  # .5 .5625 .625 .6875 .75 .75: V = 1/16 x4, 0; A = 0, 0, 0, -1/16
    expect_on = {1: 4, 2: 0, 3: 6, 4: 4 / 6, 5: 0, 6: 0.75, 7: d_on.mean(), 8: 2.625 / 4, 9: 0, 10: d_on.std(),
                 11: 2.625, 12: 0, 13: 2.625, 14: 1, 15: 0, 16: 1 / 16, 17: 0, 18: 1 / 16, 19: 0, 20: 0,
                 21: 1 / 16, 22: 0, 23: 1 / 16, 24: 2.625 / 6, 25: 0}
    for i, val in expect_on.items():
        assert onset[f(i)] == pytest.approx(val, abs=1e-6), f"onset feature {i}"
    d_off = 0.5 + K[6:] / 16  # .75 .6875 .625 .5625 .5 .5: V = -1/16 x4, 0; A = 0, 0, 0, +1/16
    expect_off = {1: 0, 2: 4, 3: 6, 4: 0, 5: 4 / 6, 6: 0.75, 7: d_off.mean(), 8: 0, 9: 2.375 / 4, 10: d_off.std(),
                  11: 0, 12: 2.375, 13: -2.375, 14: 0, 15: 1, 16: 0, 17: 1 / 16, 18: 0, 19: 1 / 16, 20: 1 / 16,
                  21: 0, 22: 1 / 16, 23: 0, 24: -2.375 / 6, 25: 0}
    for i, val in expect_off.items():
        assert offset[f(i)] == pytest.approx(val, abs=1e-6), f"offset feature {i}"
    assert np.all(apex == 0)
    eyes_on = v[EYES, ON]  # eyes still: duration, max and mean only
    assert eyes_on[f(3)] == 6 and eyes_on[f(6)] == 0.25 and eyes_on[f(7)] == 0.25
    assert eyes_on[f(1)] == 0 and eyes_on[f(16)] == 0 and eyes_on[f(10)] == 0
    cheek = 1 - 4 * SPREAD  # falls during the onset: D- = frames 1..4
    assert v[CHEEKS, ON, f(2)] == 4 and v[CHEEKS, ON, f(6)] == 1.0
    assert v[CHEEKS, ON, f(9)] == pytest.approx(cheek[1:5].mean(), abs=1e-6)  # signed sum(D-) / eta(D-)


def test_released_feature_9_keeps_the_sign_of_negative_amplitudes():
    seq = constructed_smile()
    seq[:, 159, 1] = 0.375 + 1 / 32 + SPREAD  # right lid below the eye centre and sinking: Gamma = -1
    seq[:, 386, 1] = 0.375 + 1 / 32 + SPREAD
    rel = feats(dmarker(seq, "released", norm_range=IDENTITY))
    eye = -(1 / 32 + SPREAD) / 0.125  # decreasing during the onset
    assert rel[EYES, ON, f(9)] == pytest.approx(eye[1:5].mean(), abs=1e-6)
    paper = feats(dmarker(seq, "paper", fps=FPS))
    assert paper[EYES, ON, f(9)] == pytest.approx(np.abs(eye[1:5]).mean(), abs=1e-6)


def test_released_zero_padding_and_paper_ignores_padding():
    seq = constructed_smile()[:8]
    padded = np.zeros((1, 16, 478, 3))
    padded[0, :8] = seq
    rel = dmarker_batch(padded, "released", lengths=[8])
    # released: padded frames are zeros after normalisation -> D_lip drops to 0 at frame 8 (a decrease)
    rel_sig_drop = feats(rel[0])[LIPS, OFF, f(2)]
    assert rel_sig_drop >= 1
    paper = dmarker_batch(padded, "paper", fps=FPS, lengths=[8])
    np.testing.assert_allclose(paper[0], dmarker(seq, "paper", FPS), atol=1e-6)


def test_clip_scope_rows_equal_each_window():
    rng = np.random.default_rng(1)
    seq = face_sequence(30, seed=1) + rng.normal(0, 0.002, (30, 478, 3)).astype(np.float32)
    for variant in ("paper", "released"):
        rows = video_dmarkers(seq, variant, FPS, scope="clip", clip_len=16)
        assert rows.shape == (15, 225) and rows.dtype == np.float32
        for s in (0, 7, 14):
            np.testing.assert_allclose(rows[s], dmarker(seq[s:s + 16], variant, FPS), atol=1e-6)
        whole = video_dmarkers(seq, variant, FPS, scope="video")
        np.testing.assert_allclose(whole[0], dmarker(seq, variant, FPS), atol=1e-6)
    short = video_dmarkers(seq[:10], "released", FPS, scope="clip")
    assert short.shape == (1, 225)


def test_bad_input():
    with pytest.raises(ValueError, match="frame rate"):
        dmarker(face_sequence(5), "paper")
    with pytest.raises(ValueError, match="variant"):
        dmarker(face_sequence(5), "nope", fps=25)
    with pytest.raises(ValueError, match="shape"):
        dmarker_batch(np.zeros((2, 16, 100, 3)), "released")
    with pytest.raises(ValueError, match="scope"):
        video_dmarkers(face_sequence(5), "released", scope="frame")
    seq = face_sequence(8)
    seq[3, 62, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or inf.*frame 3"):
        dmarker(seq, "released")


def test_scaler_fitted_on_train_only():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, (50, 225))
    test = rng.normal(10.0, 1.0, (5, 225))
    train[:, 0] = 1.0  # a constant feature keeps scale 1
    sc = DMarkerScaler().fit(train)
    z = sc.transform(train)
    np.testing.assert_allclose(z[:, 1:].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z[:, 1:].std(0), 1, atol=1e-4)
    assert np.all(z[:, 0] == 0)
    np.testing.assert_allclose(sc.transform(test), (test - train.mean(0)) / np.where(train.std(0) > 0, train.std(0), 1),
                               rtol=1e-5, atol=1e-5)
    restored = DMarkerScaler.from_state_dict(sc.state_dict())
    np.testing.assert_array_equal(restored.transform(test), sc.transform(test))
    with pytest.raises(ValueError, match="NaN"):
        DMarkerScaler().fit(np.full((3, 225), np.nan))
    with pytest.raises(RuntimeError):
        DMarkerScaler().transform(test)

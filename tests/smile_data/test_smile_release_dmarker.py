"""The released D-Marker (225) and DeepMarkerNet's 216-d target against the outputs of the released code itself.

The fixture (``dmarker_fixture.pt``, produced by running the release's ``extract_dmarker_features`` and
DeepMarkerNet's ``extract_features`` on 50 demo clips; 16 of them are short videos, T = 1..15 and 8, that the release
zero-pads after normalisation) lives beside the checkout; every test here skips when it is absent.
"""
from __future__ import annotations

import numpy as np
import pytest

from common.paths import SHARED_FIXTURES_DIR
from common.smile.clips import LANDMARK_NORMS, model_clip, norm_range
from common.smile.deepmarkernet_target import DMN_TARGET_DIM, deepmarkernet_target
from common.smile.dmarker import DMARKER_DIM, LANDMARK_INDICES, dmarker_batch, video_dmarkers

FIXTURE = SHARED_FIXTURES_DIR / "dmarker_fixture.pt"
pytestmark = pytest.mark.skipif(not FIXTURE.is_file(), reason="release fixtures (../shared) not available")
ATOL = 1e-5
IDENTITY = (np.zeros(3), np.ones(3))  # the fixture's clips are already normalised
NORMS = {"uva": "uva-nemo", "bbc": "bbc-hadamard"}


@pytest.fixture(scope="module")
def fx():
    import torch

    return {k: v.numpy() for k, v in torch.load(FIXTURE, weights_only=True).items()}


def full_clips(fx, key: str) -> np.ndarray:
    """Scatter the stored 11 landmarks into zero (N, 16, 478, 3) clips, as the fixture README prescribes."""
    out = np.zeros(fx[key].shape[:2] + (478, 3), dtype=fx[key].dtype)
    out[:, :, fx["landmark_indices"]] = fx[key]
    return out


def short_rows(fx) -> np.ndarray:
    return np.flatnonzero(fx["valid_frames"] < 16)


def test_fixture_covers_short_videos(fx):
    assert len(short_rows(fx)) == 16 and set(fx["valid_frames"][short_rows(fx)]) == set(range(1, 16))
    # our 11-point order reads exactly the fixture's landmarks
    assert sorted(LANDMARK_INDICES.tolist()) == fx["landmark_indices"].tolist()


@pytest.mark.parametrize("tag", ["uva", "bbc"])
def test_normalisation_constants_are_the_released_ones(fx, tag):
    lo, hi = norm_range(NORMS[tag])
    ref = "uva" if tag == "uva" else "bbc_hadamard"
    np.testing.assert_array_equal(lo, fx[f"min_xyz_{ref}"])
    np.testing.assert_array_equal(hi, fx[f"max_xyz_{ref}"])
    # the network input: (x - min) / (max - min) in float64, cast to float32, zero padding after normalisation
    for row in (0, *short_rows(fx)[:4]):
        n = int(fx["valid_frames"][row])
        clip = model_clip(fx["raw11"][row, :n], 0, 16, lo, hi)
        np.testing.assert_array_equal(clip, fx[f"norm11_{tag}"][row])
    with pytest.raises(ValueError, match="accepted: uva-nemo, bbc-hadamard"):
        norm_range("bbc")
    assert set(LANDMARK_NORMS) == set(NORMS.values())


@pytest.mark.parametrize("tag", ["uva", "bbc"])
def test_released_dmarker_matches_the_release(fx, tag):
    want = fx[f"dmarker225_{tag}"]
    got = dmarker_batch(full_clips(fx, f"norm11_{tag}"), "released", norm_range=IDENTITY)
    assert got.shape == (50, DMARKER_DIM)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
    # the two constant sets give different D-Markers (the release computes it on the normalised clip)
    assert np.abs(fx["dmarker225_uva"] - fx["dmarker225_bbc"]).max() > 1.0


@pytest.mark.parametrize("tag", ["uva", "bbc"])
def test_released_dmarker_from_raw_landmarks_counts_padded_frames(fx, tag):
    """Raw frames + lengths (what the pipeline has): padded frames are zeros after normalisation and count."""
    lo_hi = norm_range(NORMS[tag])
    raw = full_clips(fx, "raw11")
    got = dmarker_batch(raw, "released", lengths=fx["valid_frames"], norm_range=lo_hi)
    np.testing.assert_allclose(got, fx[f"dmarker225_{tag}"], atol=ATOL, rtol=0)
    # ignoring the padded frames instead (the paper variant's treatment) would not be the release
    short = short_rows(fx)
    real_only = np.stack([dmarker_batch(raw[r:r + 1, :fx["valid_frames"][r]], "released", norm_range=lo_hi)[0]
                          for r in short])
    differs = np.abs(real_only - fx[f"dmarker225_{tag}"][short]).max(axis=1) > 1e-3
    assert differs.sum() >= len(short) // 2
    # a short video's only clip-scope row (the table the training pipeline reads) is the padded window
    for r in short[:5]:
        video = raw[r, :fx["valid_frames"][r]]
        rows = video_dmarkers(video, "released", scope="clip", clip_len=16, norm_range=lo_hi)
        assert rows.shape == (1, DMARKER_DIM)
        np.testing.assert_allclose(rows[0], fx[f"dmarker225_{tag}"][r], atol=ATOL, rtol=0)


def test_deepmarkernet_target_matches_the_release(fx):
    want = fx["dmn216_uva"]
    got = deepmarkernet_target(full_clips(fx, "norm11_uva"))
    assert got.shape == (50, DMN_TARGET_DIM) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
    # the eyelid block is zeroed, as released; padded frames (zero normal) leave finite targets
    assert not got[:, 72:144].any() and np.isfinite(got).all()
    # on a short video, statistics over the whole (partly NaN) signal are 0 while the counts still count 16 frames
    r = int(short_rows(fx)[9])
    assert got[r, 2] == pytest.approx(16 / 50) and got[r, 5] == 0.0 and got[r, 6] == 0.0


def test_deepmarkernet_target_from_the_network_input(fx):
    """The data side computes the target on the model's own clip (normalised, padded): same numbers."""
    lo, hi = norm_range("uva-nemo")
    raw = full_clips(fx, "raw11")
    clips = np.stack([model_clip(raw[r, :fx["valid_frames"][r]], 0, 16, lo, hi) for r in range(50)])
    np.testing.assert_allclose(deepmarkernet_target(clips), fx["dmn216_uva"], atol=ATOL, rtol=0)


def test_deepmarkernet_target_bad_input():
    with pytest.raises(ValueError, match=r"\(N, L, 478, 3\)"):
        deepmarkernet_target(np.zeros((16, 478, 3)))
    bad = np.zeros((1, 16, 478, 3), dtype=np.float32)
    bad[0, 3, 33, 0] = np.nan
    with pytest.raises(ValueError, match="clip 0, frame 3"):
        deepmarkernet_target(bad)

"""Seeded window sampling: every start reachable, deterministic, zero padding as released."""
import numpy as np
import pytest

from common.smile.clips import (UVA_LANDMARK_MAX, UVA_LANDMARK_MIN, all_windows, eval_window_starts, model_clip,
                                n_window_starts, normalise_landmarks, take_window, train_window_start)


def test_every_start_is_reachable_including_the_last():
    starts = {train_window_start(20, seed=0, epoch=e, index=3) for e in range(300)}
    assert starts == {0, 1, 2, 3, 4}  # T - L = 4 is drawn too


def test_released_sampling_never_draws_the_last_start():
    starts = {train_window_start(20, seed=0, epoch=e, index=3, window_sampling="released") for e in range(300)}
    assert starts == {0, 1, 2, 3}
    assert n_window_starts(17, 16, "released") == 1 and n_window_starts(17, 16) == 2


def test_same_seed_same_windows_and_epochs_differ():
    a = [train_window_start(200, 7, e, i) for e in range(5) for i in range(10)]
    b = [train_window_start(200, 7, e, i) for e in range(5) for i in range(10)]
    c = [train_window_start(200, 8, e, i) for e in range(5) for i in range(10)]
    assert a == b and a != c
    assert len({train_window_start(200, 7, e, 0) for e in range(20)}) > 5
    e1, e2 = eval_window_starts(200, 7, 4), eval_window_starts(200, 7, 4)
    assert e1.shape == (5,) and np.array_equal(e1, e2) and (e1 >= 0).all() and (e1 <= 184).all()


def test_short_video_is_zero_padded_after_normalisation():
    seq = np.random.default_rng(0).uniform(0.2, 0.6, (10, 478, 3)).astype(np.float32)
    assert n_window_starts(10) == 1 and train_window_start(10, 0, 0, 0) == 0
    clip = model_clip(seq, 0)
    assert clip.shape == (16, 478, 3) and clip.dtype == np.float32
    np.testing.assert_allclose(clip[:10], (seq - UVA_LANDMARK_MIN) / (UVA_LANDMARK_MAX - UVA_LANDMARK_MIN), rtol=1e-5)
    assert np.all(clip[10:] == 0)
    win, n_real = take_window(seq, 0)
    assert n_real == 10 and np.all(win[10:] == 0)
    exact = model_clip(np.zeros((16, 478, 3)), 0)
    np.testing.assert_allclose(exact[0, 0], normalise_landmarks(np.zeros(3)))


def test_all_windows_view():
    seq = np.arange(20 * 2).reshape(20, 2)
    windows, lengths = all_windows(seq, 16)
    assert windows.shape == (5, 16, 2) and (lengths == 16).all()
    assert np.array_equal(windows[4], seq[4:20])
    short, lengths = all_windows(seq[:3], 16)
    assert short.shape == (1, 16, 2) and lengths.tolist() == [3]


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one frame"):
        n_window_starts(0)
    with pytest.raises(ValueError, match="window_sampling"):
        n_window_starts(30, 16, "random")

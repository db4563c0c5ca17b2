"""Caches and fingerprints stand for the whole data: issue 14's stale-cache recipe, value checks on cache hits."""
import os

import numpy as np
import pytest

from common import provenance
from common.smile import data as smile_data
from common.smile.data import DataError, load_smile_dataset
from common.smile.dmarker_table import cache_paths, load_cached_table

N_FRAMES = 120  # 120 x 478 x 3 float32 = 688 KB per video: the first and last 4 KiB are a tiny part of it


def _landmarks(seed: int, n_frames: int = N_FRAMES) -> np.ndarray:
    rng = np.random.default_rng(seed)
    face = rng.uniform(0.3, 0.7, (1, 478, 3))
    t = np.linspace(0, 1, n_frames)[:, None, None]
    motion = 0.02 * np.sin(2 * np.pi * (t + rng.uniform())) * rng.normal(size=(1, 478, 3))
    return (face + motion).astype(np.float32)


@pytest.fixture
def bbc(tmp_path):
    root = tmp_path / "BBC"
    (root / "npy").mkdir(parents=True)
    for i in range(6):
        kind = "genuine" if i % 2 else "posed"
        np.save(root / "npy" / f"{kind}_{i:02d}.npy", _landmarks(i))
    return root


def _replace_middle_frames(path, values, keep_times=True):
    """Write new middle frames in place: same size, same first and last 4 KiB, mtime put back."""
    before = os.stat(path)
    arr = np.load(path)
    arr[10:-10] = values
    head = path.read_bytes()[:4096]
    np.save(path, arr)
    assert path.read_bytes()[:4096] == head and os.stat(path).st_size == before.st_size
    if keep_times:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_file_digest_covers_every_byte_and_is_memoised(tmp_path, monkeypatch):
    path = tmp_path / "a.bin"
    path.write_bytes(bytes(range(256)) * 64)
    first = provenance.file_digest(path)
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # one bit in the middle, same size, mtime restored
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = provenance.file_digest(path)
    assert second != first
    # unchanged file: served from the memo, not re-read
    monkeypatch.setattr(provenance.mmap, "mmap", lambda *a, **k: pytest.fail("re-read an unchanged file"))
    assert provenance.file_digest(path) == second
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert len(provenance.file_digest(empty)) == 32


def test_changed_middle_frames_change_the_cache_key_and_the_fingerprint(bbc, tmp_path):
    cache = tmp_path / "cache"
    before = load_smile_dataset("BBC", bbc, cache_dir=cache, n_folds=2)
    old_table = np.asarray(before.dmarker_table("paper", "video", progress=False).features).copy()
    old_fp = before.fingerprint()
    for i, path in enumerate(sorted((bbc / "npy").glob("*.npy"))):
        _replace_middle_frames(path, _landmarks(100 + i)[10:-10] * 1.3)
    after = load_smile_dataset("BBC", bbc, cache_dir=cache, n_folds=2)
    assert after.fingerprint() != old_fp
    key = ("paper", "video", 16, "-")
    assert cache_paths(after, cache, key) != cache_paths(before, cache, key)
    table = np.asarray(after.dmarker_table("paper", "video", progress=False).features)
    fresh = load_smile_dataset("BBC", bbc, cache_dir=False, n_folds=2).dmarker_table("paper", "video",
                                                                                        progress=False)
    np.testing.assert_array_equal(table, fresh.features)  # what the data give, not the stale cache
    assert not np.array_equal(table, old_table)


def test_nan_frames_are_an_error_on_a_cache_hit(bbc, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    clean = load_smile_dataset("BBC", bbc, cache_dir=cache, n_folds=2)
    clean.dmarker_table("paper", "video", progress=False)
    old_fp = clean.fingerprint()
    bad = sorted((bbc / "npy").glob("*.npy"))[3]
    _replace_middle_frames(bad, np.nan)
    # force the hit (as a cache written by an older version, or a fingerprint collision, would)
    monkeypatch.setattr(smile_data.SmileDataset, "fingerprint", lambda self: old_fp)
    hit = load_smile_dataset("BBC", bbc, cache_dir=cache, n_folds=2)
    assert load_cached_table(hit, cache, ("paper", "video", 16, "-")) is not None
    with pytest.raises(DataError, match=rf"{bad.name}: NaN or inf in 100 frame\(s\), first at frame 10"):
        hit.dmarker_table("paper", "video", progress=False)
    # the same in-memory dataset re-asked also refuses (the check is not remembered as passed)
    with pytest.raises(DataError, match="NaN or inf"):
        hit.dmarker_table("paper", "video", progress=False)


def test_array_with_no_fold_entry_is_an_error_unless_ignored(bbc):
    (bbc / "labels.json").write_text('{"posed_00": 0, "genuine_01": 1, "posed_02": 0, "genuine_03": 1}')
    with pytest.raises(DataError, match=r"2 array\(s\) .* no label/fold entry in .*labels\.json.*genuine_05\.npy"):
        load_smile_dataset("BBC", bbc, cache_dir=False, n_folds=2)
    with pytest.warns(UserWarning, match="ignored"):
        ds = load_smile_dataset("BBC", bbc, cache_dir=False, n_folds=2, unlisted_arrays="ignore")
    assert len(ds.videos) == 4 and ds.problems

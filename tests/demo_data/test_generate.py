"""The entry point: determinism (same seed => same bytes), missing-only generation, atomic writes, bad input."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datasets.demo import DEMO_NAMES, ensure_demo_data, generate, write_dataset
from datasets.demo.smile import DemoSizeError

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--size", "UvA-NEMO=10", "--size", "FER2013=0.05", "--size", "RAF-DB=0.1", "--size", "AffectNet=0.05",
         "--size", "smile-video=1.0"]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run_cli(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "datasets.demo", "--out", str(out), *extra], check=False, cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)


def test_same_seed_same_bytes_across_processes(tmp_path):
    names = ["--only", "UvA-NEMO", "SPOS", "FER2013", "RAF-DB", "AffectNet", "smile-video"]
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, "0"), (b, "0"), (c, "1")):
        proc = _run_cli(out, *names, *SMALL, "--seed", seed)
        assert proc.returncode == 0, proc.stderr[-2000:]
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert len(da) > 50 and da == db
    assert da != dc  # the seed matters
    assert not [p for p in a.rglob("*") if p.name.startswith(".")]  # no temporaries left


def test_every_folder_says_synthetic(demo_root):
    for name in DEMO_NAMES:
        note = (demo_root / name / "SYNTHETIC.md").read_text()
        assert "synthetic" in note.lower() and "python -m datasets.demo" in note


def test_ensure_generates_only_missing(tmp_path):
    keep = tmp_path / "BBC"
    keep.mkdir()
    (keep / "marker").write_text("kept")
    written = ensure_demo_data(["BBC", "SPOS"], out=tmp_path, progress=False)
    assert set(written) == {"BBC", "SPOS"}
    assert (keep / "marker").read_text() == "kept" and not (keep / "labels").exists()
    assert len(list((tmp_path / "SPOS" / "labels").iterdir())) == 7


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        write_dataset({"a/ok.txt": b"fine", "b/bad.txt": None}, tmp_path / "X")
    assert list(tmp_path.iterdir()) == []


def test_unknown_name_is_rejected_before_writing(tmp_path):
    with pytest.raises(KeyError, match="UvA-NEM0"):
        generate(["UvA-NEM0"], out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, size", [("UvA-NEMO", 9), ("MMI", 3), ("SPOS", 5), ("BBC", 4)])
def test_too_few_subjects_for_the_folds(tmp_path, name, size):
    with pytest.raises(DemoSizeError, match="subject"):
        generate(["BBC", name], out=tmp_path / "out", sizes={name: size}, progress=False)
    assert not (tmp_path / "out").exists()  # nothing written, not even the valid BBC set


def test_cli_reports_bad_input(tmp_path):
    proc = _run_cli(tmp_path / "out", "--only", "Nope")
    assert proc.returncode == 2 and "unknown demo dataset 'Nope'" in proc.stderr
    proc = _run_cli(tmp_path / "out", "--only", "UvA-NEMO", "--size", "UvA-NEMO=3")
    assert proc.returncode == 2 and "smallest valid size is 10" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, size, smallest", [("UvA-NEMO", 9, 10), ("MMI", 8, 9), ("BBC", 9, 10), ("SPOS", 8, 7)])
def test_too_small_size_names_the_smallest_valid_value(tmp_path, name, size, smallest):
    with pytest.raises(DemoSizeError, match=rf"\b{smallest}\b") as info:
        generate([name], out=tmp_path / "out", sizes={name: size}, progress=False)
    assert name in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, size", [("UvA-NEMO", 10), ("MMI", 9), ("BBC", 10)])
def test_smallest_valid_size_gives_both_classes_where_promised(tmp_path, name, size):
    """At the smallest valid size every training part holds both classes, and (except BBC) every test fold too."""
    import json

    generate([name], out=tmp_path, sizes={name: size}, progress=False)
    for fold in sorted((tmp_path / name / "labels").iterdir()):
        train = json.loads((fold / "train.json").read_text())
        test = json.loads((fold / "test.json").read_text())
        assert test and set(train.values()) == {0, 1}, fold
        if name != "BBC":
            assert set(test.values()) == {0, 1}, fold


@pytest.mark.parametrize("size", [0, -1.0, "x"])
def test_image_and_video_sizes_must_be_positive(tmp_path, size):
    with pytest.raises(ValueError, match="scale factor"):
        generate(["FER2013"], out=tmp_path / "out", sizes={"FER2013": size}, progress=False)
    with pytest.raises(ValueError, match="smallest valid value is 1.0"):
        generate(["smile-video"], out=tmp_path / "out", sizes={"smile-video": 0.5}, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seed", [1.5, "3", True, -1, None])
def test_non_integer_seed_is_rejected(tmp_path, seed):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        generate(["BBC"], out=tmp_path / "out", seed=seed, progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_rejects_a_non_integer_seed_and_size(tmp_path):
    proc = _run_cli(tmp_path / "out", "--only", "BBC", "--seed", "1.5")
    assert proc.returncode == 2 and "seed must be a non-negative integer, got '1.5'" in proc.stderr
    proc = _run_cli(tmp_path / "out", "--only", "BBC", "--size", "BBC=abc")
    assert proc.returncode == 2 and "'BBC=abc'" in proc.stderr
    assert not (tmp_path / "out").exists()

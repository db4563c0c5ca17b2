"""Video -> landmarks extractor end to end on a short real-looking video (synthetic smile of a real photograph)."""
import json

import numpy as np
import pytest

from common.smile.dmarker import dmarker_signals
from common.smile.extract import ExtractOptions, VideoError, extract_folder, fill_gaps, is_complete, main
from smile_data_helpers import make_test_video


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    make_test_video(folder / "smile.mp4", seconds=2.0, fps=25)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    import cv2

    # a decodable video with no face in it
    writer = cv2.VideoWriter(str(folder / "noface.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    for t in range(5):
        writer.write(np.full((64, 64, 3), 40 * t, np.uint8))
    writer.release()
    (folder / "notes.txt").write_text("not a video; ignored")
    return folder


def test_extract_folder_end_to_end(video_dir, tmp_path):
    out = tmp_path / "npy"
    summary = extract_folder(video_dir, out, suffix=".mp4.npy", workers=1, progress=False)
    assert summary["extracted"] == 1 and len(summary["failed"]) == 2
    arr = np.load(out / "smile.mp4.npy")
    side = json.loads((out / "smile.json").read_text())
    assert arr.shape == (side["n_frames"], 478, 3) and arr.dtype == np.float32 and np.isfinite(arr).all()
    assert side["fps"] == pytest.approx(25.0) and side["n_decoded"] == 50 and side["frames_without_face"] == 0
    assert 0.2 < arr[:, :, :2].mean() < 0.8  # normalised image coordinates
    truth_path = video_dir / "smile.landmarks.npy"
    if truth_path.exists():  # the demo video ships the mesh that drew it, and its phases
        truth = np.load(truth_path)
        assert np.abs(arr[..., :2] - truth[..., :2]).mean() < 0.01
        phases = json.loads((video_dir / "smile.json").read_text())["phases"]
        found = dmarker_signals(arr, "paper", fps=25)["phases"]
        assert abs(found["onset"][0] - phases["onset"][0]) <= 2 and abs(found["offset"][1] - phases["offset"][1]) <= 2
    problems = {f["video"]: f["problem"] for f in summary["failed"]}
    assert "cannot be opened" in problems["broken.mp4"] or "no decodable frames" in problems["broken.mp4"]
    assert "broken.mp4" in problems["broken.mp4"]
    assert "no face detected" in problems["noface.avi"]
    report = (out / "report.csv").read_text()
    assert "broken.mp4,failed" in report and "smile.mp4,extracted" in report
    assert not (out / "broken.mp4.npy").exists() and not list(out.glob(".*.tmp"))
    # resumable: a second run skips the finished video and retries only the failures
    again = extract_folder(video_dir, out, suffix=".mp4.npy", workers=1, progress=False)
    assert again["extracted"] == 0 and again["skipped_existing"] == 1 and len(again["failed"]) == 2
    # a half-finished pair (array without sidecar) is redone
    (out / "smile.json").unlink()
    assert not is_complete(out / "smile.mp4.npy", out / "smile.json")


def test_cli_with_two_worker_processes_fails_naming_the_bad_videos(video_dir, tmp_path, capsys):
    code = main([str(video_dir), str(tmp_path / "out"), "--workers", "2", "--no-progress"])
    assert code == 1  # two of the three videos failed: no silent success
    err = capsys.readouterr().err
    assert "2 of 3 videos failed (broken.mp4, noface.avi)" in err and "--allow-failures" in err
    assert (tmp_path / "out" / "smile.npy").exists()
    summary = json.loads((tmp_path / "out" / "report.json").read_text())
    assert summary["extracted"] == 1 and summary["workers"] == 2
    # the same run, failures accepted explicitly: exit 0, the failures still named
    assert main([str(video_dir), str(tmp_path / "out"), "--workers", "1", "--no-progress", "--allow-failures"]) == 0
    assert "FAILED broken.mp4" in capsys.readouterr().err


def _damaged_copies(folder, tmp_path):
    """A real mp4 (72 frames) with a 16 KiB block zeroed 30 % into the file (decoding stops after ~23 frames), and
    the same file cut in half (its index, written at the end, is lost)."""
    source = make_test_video(tmp_path / "source" / "smile.mp4", seconds=3.0, fps=24)
    data = bytearray(source.read_bytes())
    start = int(len(data) * 0.3)
    data[start:start + 16384] = bytes(16384)
    (folder / "zeroed.mp4").write_bytes(bytes(data))
    (folder / "truncated.mp4").write_bytes(source.read_bytes()[:len(data) // 2])


def test_short_reads_and_truncated_files_are_failures(tmp_path, capsys):
    import cv2

    folder = tmp_path / "videos"
    folder.mkdir()
    _damaged_copies(folder, tmp_path)
    cap = cv2.VideoCapture(str(folder / "zeroed.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 72  # the container still announces every frame
    cap.release()
    out = tmp_path / "npy"
    assert main([str(folder), str(out), "--workers", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "videos failed (truncated.mp4, zeroed.mp4)" in err and "--accept-short-reads keeps" in err
    problems = {f["video"]: f["problem"] for f in json.loads((out / "report.json").read_text())["failed"]}
    assert "zeroed.mp4: only" in problems["zeroed.mp4"] and "of the 72 frames the container announces" in \
        problems["zeroed.mp4"]
    assert "cannot be opened as a video" in problems["truncated.mp4"]
    assert not (out / "zeroed.npy").exists()
    # kept on request: the sidecar and the report say how short it is; a re-run reports it again
    assert main([str(folder), str(out), "--workers", "1", "--no-progress", "--accept-short-reads",
                 "--allow-failures"]) == 0
    side = json.loads((out / "zeroed.json").read_text())
    assert side["n_frames_header"] == 72 and side["n_decoded"] < 40 and "only" in side["short_read"]
    assert np.load(out / "zeroed.npy").shape[0] == side["n_frames"]
    assert "kept a short read zeroed.mp4" in capsys.readouterr().err
    again = extract_folder(folder, out, workers=1, progress=False)
    assert [r["video"] for r in again["short_reads_kept"]] == ["zeroed.mp4"]


def test_fill_gaps_interpolates_and_trims():
    frames = np.zeros((10, 478, 3), np.float32)
    frames[:, :, 0] = np.arange(10)[:, None]
    frames[[0, 4, 5, 9]] = np.nan
    out, info = fill_gaps(frames, max_gap=2)
    assert out.shape[0] == 8  # frames 1..8 (leading and trailing gap trimmed)
    np.testing.assert_allclose(out[:, 0, 0], np.arange(1, 9))  # linear fill of frames 4, 5
    assert info == {"frames_without_face": 4, "trimmed_start": 1, "trimmed_end": 1,
                    "interpolated_gaps": [[3, 4]], "interpolated_frames": 2}
    with pytest.raises(VideoError, match="face lost for 2 consecutive frames"):
        fill_gaps(frames, max_gap=1, name="clip.mp4")
    with pytest.raises(VideoError, match="no face"):
        fill_gaps(np.full((3, 478, 3), np.nan, np.float32), max_gap=5)


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="video folder not found"):
        extract_folder(tmp_path / "none", tmp_path / "out")
    (tmp_path / "v").mkdir()
    with pytest.raises(ValueError, match="suffix"):
        extract_folder(tmp_path / "v", tmp_path / "out", suffix=".npz")
    assert ExtractOptions().max_gap > 0
    (tmp_path / "v" / "report.mp4").write_bytes(b"x")
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    (tmp_path / "v" / "a.avi").write_bytes(b"x")
    summary = extract_folder(tmp_path / "v", tmp_path / "out", progress=False)
    problems = {f["video"]: f["problem"] for f in summary["failed"]}
    assert "reserved" in problems["report.mp4"] and "same name" in problems["a.avi"]

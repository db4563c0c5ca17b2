"""Inputs that are not readable videos or images: clear message, non-zero status, only a partial report."""
import json

from common.predict import main


def _outputs(out):
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_image_that_does_not_decode(tmp_path, capsys):
    bad = tmp_path / "photo.jpg"
    bad.write_text("this is text, not a JPEG")
    out = tmp_path / "out"
    assert main([str(bad), "--out", str(out), "--results", str(tmp_path)]) == 2
    assert "photo.jpg: not a readable image" in capsys.readouterr().err
    assert _outputs(out) == ["photo.jpg.partial.json"]  # nothing to plot, so no PNG
    summary = json.loads((out / "photo.jpg.partial.json").read_text())
    assert summary["status"] == "partial" and summary["error"]["type"] == "UnreadableInputError"
    assert summary["expressions"] is None


def test_video_that_does_not_decode(tmp_path, capsys):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(bytes(range(256)) * 40)
    out = tmp_path / "out"
    assert main([str(bad), "--out", str(out), "--results", str(tmp_path)]) == 2
    assert "clip.mp4: not a readable video" in capsys.readouterr().err
    assert _outputs(out) == ["clip.mp4.partial.json"]
    summary = json.loads((out / "clip.mp4.partial.json").read_text())
    assert summary["kind"] == "video" and summary["dmarker"] is None and summary["smile"] is None


def test_file_that_is_neither_video_nor_image(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    out = tmp_path / "out"
    assert main([str(bad), "--out", str(out)]) == 2
    assert "notes.txt: not a video or image file name" in capsys.readouterr().err
    assert _outputs(out) == []


def test_missing_path_and_empty_folder(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(tmp_path / "nothing.mp4"), "--out", str(out)]) == 2
    assert "nothing.mp4: no such file or folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), "--out", str(out)]) == 2
    assert "folder holds no video or image" in capsys.readouterr().err
    assert _outputs(out) == []


def test_bad_option_value(tmp_path, capsys):
    assert main([str(tmp_path), "--expression-fps", "0"]) == 2
    assert "--expression-fps must be > 0" in capsys.readouterr().err


def test_module_entry_point_exit_status(tmp_path):
    import subprocess
    import sys

    from common.paths import ROOT

    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG but not really")
    done = subprocess.run([sys.executable, "-m", "common.predict", str(bad), "--out", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "photo.png: not a readable image" in done.stderr
    assert "partial report:" in done.stderr and (tmp_path / "out" / "photo.png.partial.json").is_file()


def test_damaged_video_that_stops_decoding_early_is_not_analysed_silently(tmp_path, smile_video, capsys):
    data = bytearray(smile_video.read_bytes())
    start = int(len(data) * 0.3)
    data[start:start + 16384] = bytes(16384)  # decoding stops there; the container still announces every frame
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    out = tmp_path / "out"
    assert main([str(damaged), "--out", str(out), "--results", str(tmp_path)]) == 2
    assert "of the 75 frames the container announces could be decoded" in capsys.readouterr().err
    summary = json.loads((out / "damaged.mp4.partial.json").read_text())
    assert summary["error"]["type"] == "UnreadableInputError" and summary["smile"] is None

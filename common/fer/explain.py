"""Explanations: Grad-CAM maps per class (``grad-cam`` package) and SHAP attributions on the classifier's input.

Grad-CAM looks at the backbone's last convolution (the paper's "last bottleneck convolutional layer"): for each class,
the first test image of that class, explained for that class. SHAP explains the linear head
logit_c = W_c · f + b_c on the pooled features f; for a linear model with independent features ``shap.LinearExplainer``
is exact: φ_{c,j} = W_{c,j} (f_j − E[f_j]), E over a background of training features.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common import io as atomic


class _LogitsOnly(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def gradcam_per_class(model: nn.Module, split, input_size: int, per_class: int = 1) -> dict[str, Any]:
    """Grad-CAM maps (k, H, W) in [0, 1] for ``per_class`` images of each class of ``split``, explained for it."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from common.fer.augment import eval_transform

    tf = eval_transform(input_size)
    picks = [(c, int(i)) for c in range(len(split.classes)) for i in np.flatnonzero(split.labels == c)[:per_class]]
    if not picks:
        raise ValueError("no images to explain")
    model.eval()
    x = torch.stack([tf(split.images[i]) for _, i in picks]).to(next(model.parameters()).device)
    with GradCAM(model=_LogitsOnly(model), target_layers=[model.target_layer()]) as cam:
        maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c, _ in picks])
    images = np.stack([np.asarray(_resize(split.images[i], input_size)) for _, i in picks])
    with torch.no_grad():
        pred = model(x).argmax(1).tolist()
    return {"classes": [split.classes[c] for c, _ in picks], "indices": [i for _, i in picks],
            "sources": [str(split.sources[i]) for _, i in picks], "predicted": [split.classes[p] for p in pred],
            "maps": maps.astype(np.float32), "images": images}


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)


def shap_head(model: nn.Module, background: np.ndarray, explained: np.ndarray, explained_labels: np.ndarray,
              classes: tuple[str, ...], top: int = 10) -> dict[str, Any]:
    """Exact linear SHAP values of the head; per class, the mean |φ| of each feature over that class's samples."""
    import shap

    W = model.head.weight.detach().cpu().double().numpy()
    b = model.head.bias.detach().cpu().double().numpy()
    values = np.asarray(shap.LinearExplainer((W, b), background.astype(np.float64)).shap_values(
        explained.astype(np.float64)))  # (n, d, C)
    if values.ndim == 2:  # a single output
        values = values[..., None]
    importance = {}
    for c, name in enumerate(classes):
        rows = values[explained_labels == c, :, c] if np.any(explained_labels == c) else values[:, :, c]
        mean_abs = np.abs(rows).mean(0)
        order = np.argsort(-mean_abs)[:top]
        importance[name] = {"features": order.tolist(), "mean_abs_shap": mean_abs[order].round(6).tolist()}
    return {"explainer": "shap.LinearExplainer on the classifier head", "feature_dim": int(W.shape[1]),
            "n_background": len(background), "n_explained": len(explained), "top_features": importance,
            "mean_abs_by_class": np.abs(values).mean(0).T.round(6).tolist()}


def explain_model(model: nn.Module, data, cfg: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """Grad-CAM on the test split (one image per class) and SHAP on validation features; write ``explain/``."""
    from torch.utils.data import DataLoader

    from common.fer.augment import eval_transform
    from common.fer.datasets import FerTorchDataset
    from common.engine import resolve_device
    from common.fer.data import stratified_cap
    from common.fer.engine import predict_proba

    folder = Path(folder)
    files = []
    cams = gradcam_per_class(model, data.test, cfg["input_size"])
    atomic.save_npy(folder / "explain" / "gradcam_maps.npy", cams["maps"])
    atomic.write_json(folder / "explain" / "gradcam.json", {k: v for k, v in cams.items() if k not in ("maps", "images")})
    files += ["explain/gradcam_maps.npy", "explain/gradcam.json"]

    def feats(split, n):
        sub = split.subset(stratified_cap(split.labels, n, cfg["seed"]))
        loader = DataLoader(FerTorchDataset(sub, eval_transform(cfg["input_size"]), cfg["input_size"]),
                            batch_size=cfg["batch_size"])
        _, y, f = predict_proba(model, loader, resolve_device(cfg["device"]), return_features=True)
        return f, y

    bg, _ = feats(data.train, max(cfg["shap_samples"], 16))
    ex, ey = feats(data.val, cfg["shap_samples"])
    shap_result = shap_head(model, bg, ex, ey, data.classes)
    atomic.write_json(folder / "explain" / "shap.json", shap_result)
    files.append("explain/shap.json")
    return {"gradcam": cams, "shap": shap_result, "files": files}


def plot_gradcam(cams: Mapping[str, Any]):
    """One column per explained image: the face, and the Grad-CAM map over it (titles: true -> predicted)."""
    import matplotlib.pyplot as plt

    n = len(cams["classes"])
    fig, axes = plt.subplots(2, n, figsize=(1.8 * n, 3.8), squeeze=False)
    for k in range(n):
        img = cams["images"][k]
        axes[0, k].imshow(img)
        axes[0, k].set_title(f"{cams['classes'][k]}\n-> {cams['predicted'][k]}", fontsize=8)
        axes[1, k].imshow(img)
        axes[1, k].imshow(cams["maps"][k], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        for ax in axes[:, k]:
            ax.axis("off")
    fig.suptitle("Grad-CAM (last backbone convolution), one test image per class")
    fig.tight_layout()
    return fig


def plot_shap(shap_result: Mapping[str, Any], classes: tuple[str, ...]):
    """Heat map of mean |SHAP| per class over the head's input features (top 30 overall)."""
    import matplotlib.pyplot as plt

    m = np.asarray(shap_result["mean_abs_by_class"])  # (C, d)
    order = np.argsort(-m.sum(0))[:30]
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(classes) + 1.2))
    im = ax.imshow(m[:, order], aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xticks(range(len(order)), order, fontsize=6, rotation=90)
    ax.set_xlabel("pooled feature index (classifier input)")
    ax.set_title("mean |SHAP| per class (linear head, exact)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig

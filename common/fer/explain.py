"""Explanations of a trained HAFEM model: Grad-CAM on the faces it sees, SHAP on its head, both summarised by region.

- **Grad-CAM** (Selvaraju et al., ICCV 2017) at the backbone's last convolution (the paper's "last bottleneck
  convolutional layer"): weights = spatial mean of d(logit)/d(activation), map = ReLU(Σ_k w_k A_k), computed by us with
  a forward hook, then upsampled bicubically from the feature grid (2×2 at the demo's 64 px, 7×7 at 224 px) to the
  model's input resolution and divided by its peak. The gallery shows, for every class, one correctly and one wrongly
  predicted test image, each explained for the class the model predicted, over the face exactly as the model saw it
  (resized to the input size). Explaining a misclassified face for its true class — what the first version did — gives
  a map of zeros whenever that class has no positive evidence anywhere (ReLU of a negative sum): the empty panels. A
  map that is still all zero is flagged (``peak`` 0) and drawn as such.
- **SHAP on the head**: the linear head logit_c = W_c · f + b_c on the pooled features f; for a linear model with
  independent features ``shap.LinearExplainer`` is exact: φ_{c,j} = W_{c,j} (f_j − E[f_j]), E over training features.
- **By facial region** (eyes, brows, nose, mouth, cheeks; :data:`common.face.topology.FACE_REGIONS`): MediaPipe Face
  Mesh (478 points) on each explained face, regions filled as convex hulls of their vertices (disjoint; earlier regions
  win where hulls touch). Grad-CAM: the mean of the [0, 1] map inside each region. SHAP: the regions are the players of
  an exact Shapley game (``shap.KernelExplainer`` enumerating all 2^5 coalitions), a region "absent" being replaced by
  a heavily blurred copy of the face; the value is the region's contribution to the class probability (the five values
  add up to p(face) − p(face with all five regions blurred)). Per class: the first
  :data:`REGION_IMAGES_PER_CLASS` test images of the class, explained for it; faces where no mesh is found are skipped
  and counted.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common import io as atomic
from common.face.topology import FACE_REGIONS

REGIONS: tuple[str, ...] = tuple(FACE_REGIONS)  # eyes, brows, nose, mouth, cheeks
REGION_IMAGES_PER_CLASS = 8     # test images per class summarised by region
MESH_SIDE = 256                 # faces are upsampled to this side before Face Mesh (small crops are missed otherwise)
SHAP_BLUR = 1 / 12              # Gaussian sigma of the "absent region" baseline, as a fraction of the face side
_BATCH = 32


# ------------------------------------------------------------------------------------------------------- faces

def model_faces(images: Sequence, input_size: int) -> np.ndarray:
    """(n, S, S, 3) uint8: each image exactly as the model sees it (gray replicated, bicubic resize to ``S``)."""
    from common.fer.augment import to_float_tensor

    return np.stack([(to_float_tensor(img, input_size).permute(1, 2, 0).numpy() * 255).round().clip(0, 255)
                     .astype(np.uint8) for img in images])


def _tensor(faces: np.ndarray, device) -> torch.Tensor:
    from common.fer.augment import eval_transform

    tf = eval_transform(faces.shape[1])
    return torch.stack([tf(f) for f in faces]).to(device)


def _device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def probabilities(model: nn.Module, faces: np.ndarray) -> np.ndarray:
    """(n, C) softmax probabilities for uint8 faces at the model's input size."""
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(faces), _BATCH):
            out.append(torch.softmax(model(_tensor(faces[s:s + _BATCH], _device(model))).float(), -1).cpu())
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, 0))


# ---------------------------------------------------------------------------------------------------- Grad-CAM

def grad_cam(model: nn.Module, faces: np.ndarray, targets: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps (n, S, S) in [0, 1] at the faces' resolution and each map's raw peak (0: no positive evidence)."""
    import cv2

    if len(faces) != len(targets):
        raise ValueError(f"{len(faces)} faces but {len(targets)} targets")
    layer = model.target_layer()
    model.eval()
    maps, peaks = [], []
    for s in range(0, len(faces), _BATCH):
        store: dict[str, torch.Tensor] = {}
        handle = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("act", out))
        try:
            with torch.enable_grad():
                x = _tensor(faces[s:s + _BATCH], _device(model)).requires_grad_(True)
                logits = model(x)
                act = store["act"]
                if not isinstance(act, torch.Tensor) or act.dim() != 4:
                    raise ValueError(f"Grad-CAM needs a (B, C, H, W) activation at {type(layer).__name__}, got "
                                     f"{type(act).__name__} {tuple(getattr(act, 'shape', ()))}")
                t = torch.as_tensor(list(targets[s:s + _BATCH]), device=logits.device).view(-1, 1)
                grad, = torch.autograd.grad(logits.gather(1, t).sum(), act)
        finally:
            handle.remove()
        weights = grad.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((weights * act).sum(1)).detach().float().cpu().numpy()  # (b, h, w) on the feature grid
        for c in cam:
            peak = float(c.max())
            up = cv2.resize(c, (faces.shape[2], faces.shape[1]), interpolation=cv2.INTER_CUBIC).clip(0, None)
            maps.append(up / up.max() if peak > 0 and up.max() > 0 else np.zeros_like(up))
            peaks.append(peak)
    return np.stack(maps).astype(np.float32), np.asarray(peaks)


def gradcam_gallery(model: nn.Module, split, input_size: int) -> dict[str, Any]:
    """Per class, one correctly and one wrongly predicted test image (the first of each), explained for the
    predicted class, with the faces (as the model saw them) under the maps."""
    faces = model_faces(split.images, input_size)
    pred = probabilities(model, faces).argmax(1)
    picks = []
    for c in range(len(split.classes)):
        for outcome, hit in (("correct", pred == c), ("wrong", pred != c)):
            idx = np.flatnonzero((split.labels == c) & hit)
            if len(idx):
                picks.append((int(idx[0]), outcome))
    if not picks:
        raise ValueError(f"{split.dataset}/{split.split}: no images to explain")
    idx = [i for i, _ in picks]
    maps, peaks = grad_cam(model, faces[idx], [int(pred[i]) for i in idx])
    return {"classes": [split.classes[split.labels[i]] for i in idx],
            "predicted": [split.classes[pred[i]] for i in idx],
            "outcome": [o for _, o in picks], "explained_for": "predicted class", "indices": idx,
            "sources": [str(split.sources[i]) for i in idx], "peak": [round(float(p), 6) for p in peaks],
            "maps": maps, "images": faces[idx]}


# ------------------------------------------------------------------------------------------------------ regions

def mesh_points(faces: np.ndarray) -> list[np.ndarray | None]:
    """(478, 2) Face Mesh points in each face's pixel coordinates, or None where no face mesh is found."""
    import cv2

    from common.face.mesh import FaceMesh

    out: list[np.ndarray | None] = []
    with FaceMesh(tracking=False) as mesh:
        for face in faces:
            scale = MESH_SIDE / face.shape[0]
            found = mesh.pixels(cv2.resize(face, (MESH_SIDE, MESH_SIDE), interpolation=cv2.INTER_CUBIC))
            out.append(found[0][:, :2] / scale if found else None)
    return out


def region_masks(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(len(REGIONS), H, W) disjoint boolean masks: the convex hull of each region's vertex sets."""
    import cv2

    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < 468 or pts.shape[1] < 2:
        raise ValueError(f"region masks need (478, >=2) mesh points, got shape {pts.shape}")
    taken = np.zeros(shape, dtype=bool)
    masks = np.zeros((len(REGIONS), *shape), dtype=bool)
    for r, name in enumerate(REGIONS):
        canvas = np.zeros(shape, dtype=np.uint8)
        for vertices in FACE_REGIONS[name]:
            hull = cv2.convexHull(np.round(pts[list(vertices), :2] * 16).astype(np.int32))
            cv2.fillConvexPoly(canvas, hull, 1, lineType=cv2.LINE_8, shift=4)
        masks[r] = canvas.astype(bool) & ~taken
        taken |= masks[r]
    return masks


def region_means(attribution: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(len(REGIONS),) mean of a (H, W) attribution map inside each mask (NaN for an empty mask)."""
    a = np.asarray(attribution, dtype=np.float64)
    if a.shape != masks.shape[1:]:
        raise ValueError(f"attribution map {a.shape} and region masks {masks.shape[1:]} differ in size")
    return np.array([a[m].mean() if m.any() else np.nan for m in masks])


def region_shapley(predict: Callable[[np.ndarray], np.ndarray], face: np.ndarray, masks: np.ndarray,
                   target: int) -> np.ndarray:
    """Exact Shapley values of the regions for ``predict(faces)[:, target]``: regions are blurred out when absent."""
    import cv2
    import shap

    n = len(masks)
    blurred = cv2.GaussianBlur(face, (0, 0), sigmaX=max(1.0, SHAP_BLUR * face.shape[0]))

    def f(coalitions: np.ndarray) -> np.ndarray:
        out = []
        for z in np.asarray(coalitions) > 0.5:
            absent = masks[~z].any(axis=0) if (~z).any() else np.zeros(face.shape[:2], dtype=bool)
            out.append(np.where(absent[..., None], blurred, face))
        return predict(np.stack(out))[:, target]

    explainer = shap.KernelExplainer(f, np.zeros((1, n)))
    values = explainer.shap_values(np.ones((1, n)), nsamples=2 ** n, silent=True)
    return np.asarray(values, dtype=np.float64).reshape(n)


def region_attribution(model: nn.Module, split, input_size: int,
                       per_class: int = REGION_IMAGES_PER_CLASS) -> dict[str, Any]:
    """Grad-CAM and SHAP per facial region and class, over the first ``per_class`` test images of each class,
    explained for their class. Faces without a mesh are skipped and counted."""
    picks = [int(i) for c in range(len(split.classes)) for i in np.flatnonzero(split.labels == c)[:per_class]]
    if not picks:
        raise ValueError(f"{split.dataset}/{split.split}: no images to explain")
    faces = model_faces([split.images[i] for i in picks], input_size)
    labels = split.labels[picks]
    points = mesh_points(faces)
    found = [k for k, p in enumerate(points) if p is not None]
    cam_means = np.full((len(picks), len(REGIONS)), np.nan)
    shap_values = np.full((len(picks), len(REGIONS)), np.nan)
    if found:
        maps, _ = grad_cam(model, faces[found], [int(labels[k]) for k in found])
        for m, k in zip(maps, found):
            masks = region_masks(points[k], faces.shape[1:3])
            cam_means[k] = region_means(m, masks)
            shap_values[k] = region_shapley(lambda x: probabilities(model, x), faces[k], masks, int(labels[k]))
    rows = []
    for c, name in enumerate(split.classes):
        mine = labels == c
        used = mine & ~np.isnan(cam_means).all(axis=1)
        for method, values, unit in (("gradcam", cam_means, "mean Grad-CAM (0-1)"),
                                     ("shap", shap_values, "Shapley value (probability)")):
            for r, region in enumerate(REGIONS):
                v = values[used, r]
                v = v[~np.isnan(v)]
                rows.append({"method": method, "class": name, "region": region,
                             "value": round(float(v.mean()), 6) if len(v) else None, "unit": unit,
                             "n_images": int(used.sum()), "n_no_mesh": int(mine.sum() - used.sum())})
    return {"regions": list(REGIONS), "classes": list(split.classes), "images_per_class": per_class,
            "explained_for": "the image's true class", "n_faces": len(picks),
            "n_no_mesh": len(picks) - len(found), "rows": rows,
            "shap_baseline": f"Gaussian blur, sigma = {SHAP_BLUR:.4f} x face side"}


def region_table(result: Mapping[str, Any], method: str) -> np.ndarray:
    """(classes, regions) matrix of one method's region values (NaN where a class had no usable face)."""
    m = np.full((len(result["classes"]), len(result["regions"])), np.nan)
    for row in result["rows"]:
        if row["method"] == method and row["value"] is not None:
            m[result["classes"].index(row["class"]), result["regions"].index(row["region"])] = row["value"]
    return m


REGION_COLUMNS = ("method", "class", "region", "value", "unit", "n_images", "n_no_mesh")


def write_regions(result: Mapping[str, Any], folder: Path) -> list[str]:
    """``explain/regions.csv`` (one row per method, class and region) and ``explain/regions.json``."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=REGION_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in result["rows"]:
        w.writerow({k: "" if row[k] is None else row[k] for k in REGION_COLUMNS})
    atomic.write_text(Path(folder) / "explain" / "regions.csv", buf.getvalue())
    atomic.write_json(Path(folder) / "explain" / "regions.json", dict(result))
    return ["explain/regions.csv", "explain/regions.json"]


# --------------------------------------------------------------------------------------------------------- SHAP

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
    """Grad-CAM gallery and region summary on the test split, SHAP on validation features; write ``explain/``."""
    from torch.utils.data import DataLoader

    from common.engine import resolve_device
    from common.fer.augment import eval_transform
    from common.fer.data import stratified_cap
    from common.fer.datasets import FerTorchDataset
    from common.fer.engine import predict_proba

    folder = Path(folder)
    cams = gradcam_gallery(model, data.test, cfg["input_size"])
    atomic.save_npy(folder / "explain" / "gradcam_maps.npy", cams["maps"])
    atomic.save_npy(folder / "explain" / "gradcam_faces.npy", cams["images"])
    atomic.write_json(folder / "explain" / "gradcam.json",
                      {k: v for k, v in cams.items() if k not in ("maps", "images")})
    files = ["explain/gradcam_maps.npy", "explain/gradcam_faces.npy", "explain/gradcam.json"]
    regions = region_attribution(model, data.test, cfg["input_size"])
    files += write_regions(regions, folder)

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
    return {"gradcam": cams, "regions": regions, "shap": shap_result, "files": files}


# ------------------------------------------------------------------------------------------------------ figures

def overlay(ax, face: np.ndarray | None, heat: np.ndarray, alpha: float = 0.45) -> None:
    """``heat`` (in [0, 1]) over ``face`` in ``ax``; jet alone where the face is unknown."""
    if face is not None:
        ax.imshow(face, cmap="gray" if np.ndim(face) == 2 else None)
        h, w = np.shape(face)[:2]
        ax.imshow(heat, cmap="jet", alpha=alpha, vmin=0, vmax=1, interpolation="bilinear",
                  extent=(-0.5, w - 0.5, h - 0.5, -0.5))
    else:
        ax.imshow(heat, cmap="jet", vmin=0, vmax=1, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_gradcam(cams: Mapping[str, Any]):
    """Rows: correct and wrong predictions; one column per true class; each map over its face (true -> predicted)."""
    import matplotlib.pyplot as plt

    classes = list(dict.fromkeys(cams["classes"]))
    outcomes = cams.get("outcome") or ["correct" if t == p else "wrong"
                                       for t, p in zip(cams["classes"], cams["predicted"])]
    fig, axes = plt.subplots(2, len(classes), figsize=(1.7 * len(classes) + 0.6, 4.2), squeeze=False)
    for (r, c), ax in np.ndenumerate(axes):
        ax.axis("off")
        ax.text(0.5, 0.5, f"{classes[c]}:\nno {('correct', 'wrong')[r]} prediction", ha="center", va="center",
                fontsize=7, color="#777777", transform=ax.transAxes)
    for k, (true, pred, outcome) in enumerate(zip(cams["classes"], cams["predicted"], outcomes)):
        ax = axes[0 if outcome == "correct" else 1, classes.index(true)]
        ax.axis("on")
        ax.texts[0].remove()
        overlay(ax, cams["images"][k] if cams.get("images") is not None else None, cams["maps"][k])
        peak = (cams.get("peak") or [1.0] * len(cams["classes"]))[k]
        ax.set_title(f"{true} -> {pred}" + ("\n(no positive evidence)" if peak <= 0 else ""), fontsize=7)
    for row, label in zip(axes[:, 0], ("correct", "wrong")):
        row.text(-0.08, 0.5, label, transform=row.transAxes, rotation=90, ha="right", va="center", fontsize=8)
    fig.suptitle("Grad-CAM (last backbone convolution) for the predicted class, over the model's input face",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_regions(regions: Mapping[str, Any]):
    """Two heat maps, classes x facial regions: mean Grad-CAM inside each region and the region's Shapley value."""
    import matplotlib.pyplot as plt

    classes, names = regions["classes"], regions["regions"]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 0.45 * len(classes) + 1.6))
    for ax, method, cmap, title in ((axes[0], "gradcam", "viridis", "mean Grad-CAM in region (0-1)"),
                                    (axes[1], "shap", "RdBu_r", "Shapley value of region (Δ probability)")):
        m = region_table(regions, method)
        lim = np.nanmax(np.abs(m)) if np.isfinite(m).any() else 1.0
        im = ax.imshow(m, cmap=cmap, aspect="auto", vmin=-lim if method == "shap" else 0, vmax=lim or 1.0)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, "–" if np.isnan(m[i, j]) else f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(names)), names)
        ax.set_yticks(range(len(classes)), classes)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax)
    fig.suptitle(f"attribution by facial region (Face Mesh on the aligned face; {regions['n_no_mesh']} of "
                 f"{regions['n_faces']} faces without a mesh skipped)", fontsize=9)
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

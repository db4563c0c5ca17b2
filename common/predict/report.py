"""The PNG report of :mod:`common.predict` (matplotlib, no pyplot state, deterministic PNG bytes).

Video: title (decision, P(spontaneous), models and the data they were trained on) / a strip of frames (the face crop
with its 478 landmarks, the D-Marker's lip-corner, eyelid and cheek points coloured like their signals) / lip, eye
and cheek amplitude over time with onset, apex and offset shaded and the strip's frames marked / P(spontaneous) per
clip against the threshold / the per-frame expression strip. Image: the input with the face boxes / the aligned face /
expression probabilities / Grad-CAM overlay.
A partial report says so in red at the top, with the error.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from common import io as atomic

PHASE_COLOURS = {"onset": "#4daf4a", "apex": "#ff7f00", "offset": "#377eb8"}
SIGNAL_COLOURS = {"lip": "#e41a1c", "eye": "#984ea3", "cheek": "#a65628"}
STRIP_FRAMES = 6        # evenly spaced frames of the strip (plus the frame where D_lip peaks)
STRIP_HEIGHT = 180      # pixel height of each face crop in the strip
STRIP_MARGIN = 0.18     # crop margin around the landmarks, as a fraction of their extent


def _empty_panel(ax, text: str, duration: float) -> None:
    """A timeline panel whose model did not run: the reason in its middle, the shared time axis kept."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_yticks([])
    ax.set_xlim(0, duration)


def _signal_points() -> dict[str, tuple[int, ...]]:
    from common.face import topology as T

    return {"lip": T.INNER_MOUTH_CORNERS,
            "eye": (T.RIGHT_EYE_OUTER, T.RIGHT_EYE_UPPER, T.RIGHT_EYE_INNER, T.LEFT_EYE_INNER, T.LEFT_EYE_UPPER,
                    T.LEFT_EYE_OUTER),
            "cheek": (T.RIGHT_CHEEK, T.LEFT_CHEEK)}


def strip_frame_indices(n_frames: int, lip: np.ndarray, n: int = STRIP_FRAMES) -> list[int]:
    """Landmark-frame indices of the strip: ``n`` evenly spaced over the video, the one nearest the D_lip peak
    replaced by the peak itself."""
    if n_frames < 1:
        return []
    picks = sorted({int(round(x)) for x in np.linspace(0, n_frames - 1, min(n, n_frames))})
    lip = np.asarray(lip, dtype=np.float64)
    if len(lip) == n_frames and np.isfinite(lip).any():
        peak = int(np.nanargmax(lip))
        picks[int(np.argmin([abs(p - peak) for p in picks]))] = peak
    return sorted(set(picks))


def strip_frames(path: str | Path, landmarks: np.ndarray, first: int, lip: np.ndarray,
                 n: int = STRIP_FRAMES) -> dict[str, Any]:
    """Face crops of the strip's frames with the landmarks in crop pixels. ``landmarks`` (T, 478, >=2) are
    MediaPipe-normalised for video frames ``first .. first + T - 1``."""
    import cv2

    from common.face.media import read_frames

    landmarks = np.asarray(landmarks)
    picks = strip_frame_indices(len(landmarks), lip, n)
    frames = read_frames(path, [first + j for j in picks])
    out: dict[str, Any] = {"frames": [], "images": [], "points": []}
    for j in picks:
        frame = frames.get(first + j)
        if frame is None:
            continue
        h, w = frame.shape[:2]
        pts = landmarks[j, :, :2] * np.array([w, h])
        lo, hi = pts.min(0), pts.max(0)
        centre, side = (lo + hi) / 2, (hi - lo).max() * (1 + 2 * STRIP_MARGIN)
        x0, y0 = (int(max(0, np.floor(c - side / 2))) for c in centre)
        x1, y1 = int(min(w, np.ceil(centre[0] + side / 2))), int(min(h, np.ceil(centre[1] + side / 2)))
        crop = frame[y0:y1, x0:x1]
        scale = STRIP_HEIGHT / max(1, crop.shape[0])
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), STRIP_HEIGHT), interpolation=cv2.INTER_AREA)
        out["frames"].append(first + j)
        out["images"].append(crop)
        out["points"].append((pts - [x0, y0]) * scale)
    return out


def _draw_strip(fig, cell, strip: Mapping[str, Any] | None, fps: float) -> None:
    frames = [] if strip is None else strip["frames"]
    if not frames:
        ax = fig.add_subplot(cell)
        ax.axis("off")
        ax.text(0.5, 0.5, "no frames for the strip (no landmarks)", ha="center", va="center", transform=ax.transAxes)
        return
    axes = cell.subgridspec(1, len(frames), wspace=0.02).subplots(squeeze=False)[0]
    named = _signal_points()
    for k, (ax, frame, image, pts) in enumerate(zip(axes, frames, strip["images"], strip["points"])):
        ax.imshow(image)
        ax.scatter(pts[:, 0], pts[:, 1], s=0.4, c="#f0f0f0", alpha=0.6, linewidths=0)
        for name, idx in named.items():
            ax.scatter(pts[list(idx), 0], pts[list(idx), 1], s=9, c=SIGNAL_COLOURS[name], edgecolors="white",
                       linewidths=0.4, label=f"{name} points" if k == 0 else None)
        ax.set_xlim(-0.5, image.shape[1] - 0.5)
        ax.set_ylim(image.shape[0] - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{k + 1}: frame {frame}, {frame / fps:.2f} s", fontsize=8)
    axes[0].legend(loc="lower left", fontsize=6, markerscale=0.8, framealpha=0.7, borderpad=0.2, handletextpad=0.2)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _header(analysis) -> str:
    s = analysis.summary
    lines = [f"{analysis.path.name}  ({s['kind']})"]
    if s["status"] == "partial":
        err = s.get("error") or {}
        text = "PARTIAL REPORT — " + err.get("message", "stopped early")
        text += f" ({err['hint']})" if err.get("hint") else ""
        lines[:0] = textwrap.wrap(text, 170, max_lines=4)
    for role, label in (("smile", "smile model"), ("expression", "expression model")):
        m = s["models"].get(role)
        if m:
            n = len(m["members"])
            held = m.get("held_out_score")
            scores = f" · held-out test accuracy {held:.3f}" if held is not None else ""
            flag = " (NEAR CHANCE)" if m.get("held_out_near_chance") else ""
            lines.append(f"{label}: {m['variant']} · {m['dataset']} · {n} checkpoint{'s' if n > 1 else ''} "
                         f"(ensemble){scores}{flag} · config {m['config_hash']} — {m['trained_on']}")
    for w in s["warnings"]:
        lines.append("warning: " + textwrap.shorten(w, 150))
    return "\n".join(lines)


def draw_report(analysis):
    """A matplotlib Figure for ``analysis`` (video or image)."""
    return _draw_video(analysis) if analysis.kind == "video" else _draw_image(analysis)


def _suptitle(fig, analysis) -> None:
    partial = analysis.summary["status"] == "partial"
    fig.suptitle(_header(analysis), fontsize=8.5, ha="left", x=0.01, color="#b00000" if partial else "black")


def _draw_video(analysis):
    s = analysis.summary
    fig = _figure(12, 12.5)
    grid = fig.add_gridspec(4, 1, height_ratios=[2.2, 2.6, 1.2, 1.8])
    _suptitle(fig, analysis)
    fps = s["input"].get("fps") or 1.0
    duration = s["input"].get("duration_s") or 1.0
    strip = analysis.plots.get("strip")
    _draw_strip(fig, grid[0], strip, fps)

    ax = fig.add_subplot(grid[1])
    signals = analysis.plots.get("signals")
    if signals is not None:
        first = s["dmarker"]["first_frame"]
        t = (first + np.arange(len(np.asarray(signals["lip"])))) / fps
        for name in ("onset", "apex", "offset"):
            span = s["dmarker"]["phases_frames"][name]  # inclusive frames, None when empty
            if span is not None:
                ax.axvspan(span[0] / fps, (span[1] + 1) / fps, color=PHASE_COLOURS[name], alpha=0.18, label=name)
        for name in ("lip", "eye", "cheek"):
            ax.plot(t, np.asarray(signals[name]), color=SIGNAL_COLOURS[name], lw=1.4, label=f"D_{name}")
        for k, frame in enumerate((strip or {}).get("frames", [])):
            ax.axvline(frame / fps, color="#444444", ls=":", lw=1)
            ax.annotate(str(k + 1), (frame / fps, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=8)
        ax.legend(loc="upper right", fontsize=8, ncol=2)
        ax.set_xlim(0, duration)
    else:
        ax.text(0.5, 0.5, "no landmarks", ha="center", va="center", transform=ax.transAxes)
    variant = (s.get("dmarker") or {}).get("variant", "")
    ax.set_title(f"D-Marker amplitudes ({variant}) with smile phases from D_lip; dotted: the frames above",
                 fontsize=10, pad=12)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude (relative)")

    ax = fig.add_subplot(grid[2])
    smile = s.get("smile")
    if smile:
        starts = np.array([c["start_frame"] for c in smile["clips"]], dtype=float) / fps
        width = smile["clip_len"] / fps
        probs = [c["p_spontaneous"] for c in smile["clips"]]
        ax.bar(starts, probs, width=width * 0.95, align="edge", color="#999999", alpha=0.7,
               label="P(spontaneous) per clip")
        ax.axhline(smile["threshold"], color="black", ls="--", lw=1, label="threshold")
        ax.axhline(smile["p_spontaneous"], color="#e41a1c", lw=2, label=f"mean {smile['p_spontaneous']:.3f}")
        ax.set_ylim(0, 1)
        ax.legend(loc="upper right", fontsize=8, ncol=3)
        ax.set_title(f"decision: {smile['decision'].upper()} smile, P(spontaneous) = {smile['p_spontaneous']:.3f}",
                     fontsize=11, fontweight="bold")
        ax.set_xlim(0, duration)
    else:
        _empty_panel(ax, "no smile decision (model not run)", duration)
    ax.set_xlabel("time (s)")

    ax = fig.add_subplot(grid[3])
    expr = s.get("expressions")
    if expr:
        proba = np.asarray(expr["proba"]).T  # (classes, sampled frames)
        times = np.asarray(expr.get("times_s") or expr["frames"], dtype=float)
        half = (np.median(np.diff(times)) / 2) if len(times) > 1 else 0.5 / fps
        image = ax.imshow(proba, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest",
                          extent=(times[0] - half, times[-1] + half, len(expr["classes"]) - 0.5, -0.5))
        ax.set_yticks(range(len(expr["classes"])), expr["classes"], fontsize=8)
        # an inset colour bar keeps this panel as wide as the ones above, so the time axes line up
        fig.colorbar(image, cax=ax.inset_axes((1.005, 0.0, 0.01, 1.0)), label="probability")
        ax.set_title(f"expression per sampled frame (mean top: {expr['top']})", fontsize=10)
        ax.set_xlim(0, duration)
    else:
        _empty_panel(ax, "no expression model run", duration)
    ax.set_xlabel("time (s)")
    return fig


def _draw_image(analysis):
    s = analysis.summary
    fig = _figure(15, 4.8)
    axes = fig.subplots(1, 4, width_ratios=[1, 1, 1.2, 1])
    _suptitle(fig, analysis)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])

    image = analysis.plots.get("image")
    if image is not None:
        axes[0].imshow(image)
        from matplotlib.patches import Rectangle

        for box in analysis.plots.get("boxes") or []:
            used = analysis.plots.get("box") is not None and np.allclose(box, analysis.plots["box"])
            x0, y0, x1, y1 = box
            axes[0].add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=2,
                                        edgecolor="#00ff00" if used else "#ff4040"))
    axes[0].set_title("input (green: analysed face)", fontsize=9)

    aligned = analysis.plots.get("aligned")
    if aligned is not None:
        axes[1].imshow(aligned, cmap="gray" if np.ndim(aligned) == 2 else None)
    size = analysis.plots.get("input_size")
    axes[1].set_title("aligned face (model input" + (f", seen at {size} px)" if size else ")"), fontsize=9)

    expr = s.get("expressions")
    ax = axes[2]
    if expr:
        proba = np.asarray(expr["proba"][0])
        colours = ["#e41a1c" if i == int(np.argmax(proba)) else "#999999" for i in range(len(proba))]
        ax.barh(range(len(proba)), proba, color=colours)
        ax.set_yticks(range(len(proba)), expr["classes"], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.5, 1])
        ax.set_title(f"expression: {expr['top']} ({proba.max():.3f})", fontsize=10, fontweight="bold")
    else:
        ax.set_title("no expression model run", fontsize=9)

    heat = analysis.plots.get("gradcam")
    if heat is not None and aligned is not None:
        axes[3].imshow(aligned)
        axes[3].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1,
                       extent=(-0.5, aligned.shape[1] - 0.5, aligned.shape[0] - 0.5, -0.5))
        flat = " (all zero: no positive evidence)" if float(np.max(heat)) < 1e-6 else ""
        axes[3].set_title(f"Grad-CAM for '{s['gradcam']['target_class']}'{flat}", fontsize=9)
    else:
        axes[3].set_title("Grad-CAM not computed", fontsize=9)
    return fig


def save_figure(fig: Any, target: str | Path) -> Path:
    """PNG through a temporary file; no software/date metadata, so the same report gives the same bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic.atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return Path(target)

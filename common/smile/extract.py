"""Video -> (T, 478, 3) landmark arrays with MediaPipe Face Mesh, in the published format.

    python -m common.smile.extract VIDEO_DIR OUT_DIR [--suffix .npy|.mp4.npy] [--workers N] [--max-gap F]
                                   [--allow-failures] [--accept-short-reads]

Per video: frames are decoded with OpenCV (:class:`common.face.VideoReader`), downscaled so the longer side is at most ``--max-side`` pixels (landmarks
are normalised to the frame, so this only trades precision for speed), and fed to
MediaPipe Face Mesh (:class:`common.face.FaceMesh` in tracking mode, ``refine_landmarks=True``, one face): 478 points
(468 face + 10 iris), normalised x, y and relative z as MediaPipe returns them.
Frames without a face: leading and trailing ones are trimmed; interior gaps of at most ``--max-gap`` frames are
linearly interpolated and listed in the sidecar; a longer gap, no face at all, or a video that cannot be decoded
skips that video with a line in ``OUT_DIR/report.csv`` (and a summary in ``report.json``) while the run goes on.
A video that stops decoding clearly before the frame count its container announces (a damaged or truncated file) is a
*short read*: it fails too, unless ``--accept-short-reads`` keeps it (the sidecar and the report then say so).

Exit status: 0 when every video was extracted (or already done); 1 when any video failed or was a short read, with
each one named on stderr -- unless ``--allow-failures``, which reports them the same way but exits 0.

Outputs (atomic: an interrupted run leaves no partial file): ``OUT_DIR/<stem><suffix>`` (float32) and the sidecar
``OUT_DIR/<stem>.json`` {fps, n_frames, n_decoded, width, height, frames_without_face, interpolated_gaps,
trimmed_start, trimmed_end, ...}, written after the array. A video whose array and sidecar both exist and agree is
skipped on a re-run (resumable).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import io as atomic
from common.face.media import VIDEO_SUFFIXES, UnreadableMediaError, VideoReader
from common.face.mesh import FaceMesh
from common.face.topology import N_POINTS

REPORT_FIELDS = ("video", "status", "problem", "n_frames", "frames_without_face", "interpolated_frames", "seconds")


class VideoError(RuntimeError):
    """A video cannot be turned into landmarks; the message names the file and the reason."""


@dataclass(frozen=True)
class ExtractOptions:
    max_side: int = 640
    max_gap: int = 10
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    accept_short_reads: bool = False


def _face_mesh(opts: ExtractOptions) -> FaceMesh:
    return FaceMesh(tracking=True, max_faces=1, min_detection_confidence=opts.min_detection_confidence,
                    min_tracking_confidence=opts.min_tracking_confidence)


def fill_gaps(frames: np.ndarray, max_gap: int, name: str = "video"):
    """Trim face-less (NaN) frames at both ends and linearly interpolate interior gaps of <= ``max_gap`` frames.

    Returns (filled array, info) with info = {frames_without_face, trimmed_start, trimmed_end,
    interpolated_gaps: [[first, last], ...] in output-frame indices}. Raises VideoError for no face or a longer gap.
    """
    has_face = ~np.isnan(frames).any(axis=(1, 2))
    n_missing = int((~has_face).sum())
    if not has_face.any():
        raise VideoError(f"{name}: no face detected in any of {len(frames)} frames")
    first, last = int(np.argmax(has_face)), len(has_face) - 1 - int(np.argmax(has_face[::-1]))
    out = frames[first:last + 1].copy()
    face = has_face[first:last + 1]
    gaps = []
    t = 0
    while t < len(face):
        if face[t]:
            t += 1
            continue
        start = t
        while not face[t]:
            t += 1
        if t - start > max_gap:
            raise VideoError(f"{name}: face lost for {t - start} consecutive frames (frames {first + start}.."
                             f"{first + t - 1}), more than --max-gap {max_gap}")
        w = (np.arange(start, t) - (start - 1)) / (t - (start - 1))
        out[start:t] = out[start - 1] * (1 - w)[:, None, None] + out[t] * w[:, None, None]
        gaps.append([start, t - 1])
    info = {"frames_without_face": n_missing, "trimmed_start": first, "trimmed_end": len(frames) - 1 - last,
            "interpolated_gaps": gaps, "interpolated_frames": int(sum(b - a + 1 for a, b in gaps))}
    return out.astype(np.float32), info


def extract_video(path: str | Path, options: ExtractOptions = ExtractOptions(), face_mesh: FaceMesh | None = None):
    """Landmarks of one video: ((T, 478, 3) float32, sidecar dict). Raises :class:`VideoError` when unusable."""
    import cv2

    path = Path(path)
    try:
        reader = VideoReader(path)
    except UnreadableMediaError as exc:
        raise VideoError(str(exc)) from exc
    own_mesh = face_mesh is None
    mesh = _face_mesh(options) if own_mesh else face_mesh
    if not own_mesh:
        mesh.reset()  # never carry tracking state from one video into the next
    frames, width, height = [], 0, 0
    try:
        for bgr in reader:
            height, width = bgr.shape[:2]
            scale = options.max_side / max(height, width)
            if scale < 1.0:
                # bilinear: ~8x cheaper than INTER_AREA on HD frames; the mesh crops and resizes the face anyway
                bgr = cv2.resize(bgr, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)
            found = mesh.normalised(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            frames.append(found[0] if found else np.full((N_POINTS, 3), np.nan, dtype=np.float32))
    finally:
        reader.close()
        if own_mesh:
            mesh.close()
    if not frames:
        raise VideoError(f"{path}: no decodable frames (corrupt, empty or unsupported file)")
    short = reader.short_read()
    if short and not options.accept_short_reads:
        raise VideoError(short)
    array, info = fill_gaps(np.stack(frames), options.max_gap, str(path))
    fps = reader.info.fps
    sidecar = {
        "video": path.stem, "source": path.name, "fps": fps, "n_frames": int(array.shape[0]),
        "n_decoded": len(frames), "n_frames_header": reader.info.n_frames_header, "short_read": short,
        "width": int(width), "height": int(height), **info,
        "landmarks": N_POINTS, "extractor": mesh.description, "max_side": options.max_side,
    }
    return array, sidecar


def output_paths(video: Path, out_dir: Path, suffix: str) -> tuple[Path, Path]:
    return out_dir / f"{video.stem}{suffix}", out_dir / f"{video.stem}.json"


def completed_sidecar(array_path: Path, sidecar_path: Path) -> dict | None:
    """The sidecar if both outputs exist and agree (shape (n_frames, 478, 3)), else None (a half-finished pair is
    redone)."""
    try:
        side = json.loads(sidecar_path.read_text())
        arr = np.load(array_path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    ok = isinstance(side, dict) and arr.ndim == 3 and arr.shape == (side.get("n_frames"), N_POINTS, 3)
    return side if ok else None


def is_complete(array_path: Path, sidecar_path: Path) -> bool:
    return completed_sidecar(array_path, sidecar_path) is not None


# ------------------------------------------------------------------------------------------------ worker side
_WORKER_MESH = None
_WORKER_OPTS: ExtractOptions | None = None


def _init_worker(options: ExtractOptions) -> None:
    global _WORKER_MESH, _WORKER_OPTS
    import cv2

    cv2.setNumThreads(1)  # one core per worker process
    _WORKER_OPTS = options
    _WORKER_MESH = _face_mesh(options)


def _process(video: str, out_dir: str, suffix: str) -> dict:
    """Extract and save one video; never raises (the problem goes into the returned report row)."""
    t0 = time.time()
    video_path, out = Path(video), Path(out_dir)
    array_path, sidecar_path = output_paths(video_path, out, suffix)
    row = {"video": video_path.name, "status": "failed", "problem": "", "n_frames": "", "frames_without_face": "",
           "interpolated_frames": "", "seconds": ""}
    try:
        array, sidecar = extract_video(video_path, _WORKER_OPTS, _WORKER_MESH)
        atomic.save_npy(array_path, array)
        atomic.write_json(sidecar_path, sidecar)  # last: its presence marks the pair complete
        row.update(status="extracted", n_frames=sidecar["n_frames"], frames_without_face=sidecar["frames_without_face"],
                   interpolated_frames=sidecar["interpolated_frames"], problem=sidecar["short_read"] or "")
        row["n_decoded"] = sidecar["n_decoded"]
    except VideoError as exc:
        row["problem"] = str(exc)
    except Exception as exc:  # noqa: BLE001  one bad video never stops the run
        row["problem"] = f"{video_path}: {type(exc).__name__}: {exc}"
    row["seconds"] = round(time.time() - t0, 3)
    return row


# ------------------------------------------------------------------------------------------------ driver
def list_videos(video_dir: Path) -> list[Path]:
    return sorted(p for p in Path(video_dir).iterdir()
                  if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))


def extract_folder(video_dir: str | Path, out_dir: str | Path, suffix: str = ".npy", workers: int = 1,
                   options: ExtractOptions = ExtractOptions(), progress: bool = True) -> dict:
    """Extract every video of ``video_dir`` into ``out_dir``; return the summary also written to report.json."""
    from tqdm.auto import tqdm

    video_dir, out_dir = Path(video_dir), Path(out_dir)
    if not video_dir.is_dir():
        raise FileNotFoundError(f"{video_dir}: video folder not found")
    if suffix not in (".npy", ".mp4.npy"):
        raise ValueError(f"--suffix must be .npy or .mp4.npy, got {suffix!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale_temporaries(out_dir)
    videos = list_videos(video_dir)
    stems = [v.stem for v in videos]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    rows, todo = [], []
    for v in videos:
        if v.stem in dupes:
            rows.append({"video": v.name, "status": "failed", "problem": f"{v}: another video has the same name "
                         f"{v.stem!r} (different extension); rename one"})
        elif v.stem == "report":  # its sidecar would overwrite the run's report.json
            rows.append({"video": v.name, "status": "failed", "problem": f"{v}: the name 'report' is reserved for "
                         "the run report in OUT_DIR; rename the video"})
        elif (done := completed_sidecar(*output_paths(v, out_dir, suffix))) is not None:
            rows.append({"video": v.name, "status": "skipped_existing", "problem": done.get("short_read") or ""})
        else:
            todo.append(v)
    t0 = time.time()
    bar = tqdm(total=len(todo), desc="videos -> landmarks", unit="video", disable=not progress)
    try:
        if workers <= 1:
            _init_worker(options)
            for v in todo:
                rows.append(_process(str(v), str(out_dir), suffix))
                bar.update()
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                     initializer=_init_worker, initargs=(options,)) as pool:
                futures = {pool.submit(_process, str(v), str(out_dir), suffix): v for v in todo}
                for fut in as_completed(futures):
                    try:
                        rows.append(fut.result())
                    except Exception as exc:  # noqa: BLE001  a crashed worker only fails its own video
                        rows.append({"video": futures[fut].name, "status": "failed",
                                     "problem": f"{futures[fut]}: worker crashed ({type(exc).__name__}: {exc})"})
                    bar.update()
    finally:
        bar.close()
        summary = _write_report(out_dir, rows, time.time() - t0, workers)
    return summary


def _write_report(out_dir: Path, rows: list[dict], seconds: float, workers: int) -> dict:
    rows = sorted(rows, key=lambda r: r["video"])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=REPORT_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r.get(k, "") for k in REPORT_FIELDS})
    atomic.write_text(out_dir / "report.csv", buf.getvalue())
    decoded = sum(int(r.get("n_decoded") or 0) for r in rows)
    summary = {
        "videos": len(rows),
        "extracted": sum(r["status"] == "extracted" for r in rows),
        "skipped_existing": sum(r["status"] == "skipped_existing" for r in rows),
        "failed": [{"video": r["video"], "problem": r["problem"]} for r in rows if r["status"] == "failed"],
        "short_reads_kept": [{"video": r["video"], "problem": r["problem"]} for r in rows
                             if r["status"] != "failed" and r.get("problem")],
        "frames_decoded": decoded, "seconds": round(seconds, 3), "workers": workers,
        "frames_per_second": round(decoded / seconds, 2) if seconds > 0 else None,
    }
    atomic.write_json(out_dir / "report.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.smile.extract", description=__doc__.split("\n\n")[0])
    parser.add_argument("video_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--suffix", default=".npy", choices=(".npy", ".mp4.npy"),
                        help="output naming: .mp4.npy for UvA-NEMO, .npy for MMI/SPOS/BBC")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1 = in this process)")
    parser.add_argument("--max-side", type=int, default=ExtractOptions.max_side,
                        help="downscale frames whose longer side exceeds this many pixels")
    parser.add_argument("--max-gap", type=int, default=ExtractOptions.max_gap,
                        help="longest interior run of face-less frames to interpolate")
    parser.add_argument("--allow-failures", action="store_true",
                        help="exit 0 even when videos failed (they are still listed on stderr and in report.csv)")
    parser.add_argument("--accept-short-reads", action="store_true",
                        help="keep a video that decodes fewer frames than its container announces")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    opts = ExtractOptions(max_side=args.max_side, max_gap=args.max_gap, accept_short_reads=args.accept_short_reads)
    summary = extract_folder(args.video_dir, args.out_dir, args.suffix, args.workers, opts, not args.no_progress)
    print(f"{summary['extracted']} extracted, {summary['skipped_existing']} already done, "
          f"{len(summary['failed'])} failed ({summary['frames_per_second']} frames/s); "
          f"report: {args.out_dir / 'report.csv'}")
    for f in summary["failed"]:
        print(f"  FAILED {f['video']}: {f['problem']}", file=sys.stderr)
    for f in summary["short_reads_kept"]:
        print(f"  kept a short read {f['video']}: {f['problem']}", file=sys.stderr)
    if any("the container announces" in f["problem"] for f in summary["failed"]):
        print("  (a short read: --accept-short-reads keeps the frames that decoded)", file=sys.stderr)
    if summary["failed"] and not args.allow_failures:
        print(f"error: {len(summary['failed'])} of {summary['videos']} videos failed "
              f"({', '.join(f['video'] for f in summary['failed'])}); fix or remove them, or pass --allow-failures",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Video -> landmarks throughput (decode + MediaPipe face mesh in tracking mode), frames per second.

    python benchmarks/bench_extract.py [--videos 12] [--seconds 6] [--workers 2] [--height 0]

Uses the demo smile videos (a real photograph animated by the action-unit model; synthetic), generated once into
benchmarks/out/bench_extract_videos/ (``--height`` re-encodes them at that frame height, e.g. 1080, to include the
downscaling path). Reports the end-to-end rate (wall time of the whole run, including starting the worker processes
and loading the models) and the steady rate (frames / per-video processing time, times the workers). Writes
benchmarks/out/bench_extract.json.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import io as atomic  # noqa: E402
from common.smile.extract import ExtractOptions, extract_folder  # noqa: E402


def make_videos(folder: Path, n: int, seconds: float, height: int) -> list[Path]:
    import cv2

    from datasets.demo.video import make_smile_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"smile_{i:02d}_{seconds:g}s_h{height}.mp4"
        if not path.exists():
            tmp = Path(tempfile.mkdtemp()) / "v.mp4"
            make_smile_video(tmp, seed=i, fps=25, seconds=seconds)
            if height:
                from common.face.media import VideoReader

                with VideoReader(tmp) as reader:
                    frames = [cv2.resize(f, (round(f.shape[1] * height / f.shape[0]), height)) for f in reader]
                with atomic.atomic_path(path) as out:
                    w = cv2.VideoWriter(str(out) + ".mp4", cv2.VideoWriter_fourcc(*"mp4v"), 25,
                                        (frames[0].shape[1], height))
                    for f in frames:
                        w.write(f)
                    w.release()
                    Path(str(out) + ".mp4").replace(out)
            else:
                shutil.copy(tmp, path)
            shutil.rmtree(tmp.parent)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--height", type=int, default=0, help="re-encode at this frame height (0 = 384 px demo)")
    parser.add_argument("--max-side", type=int, default=ExtractOptions.max_side)
    args = parser.parse_args()
    video_dir = ROOT / "benchmarks" / "out" / "bench_extract_videos"
    make_videos(video_dir, args.videos, args.seconds, args.height)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "videos"
        src.mkdir()
        for p in sorted(video_dir.glob(f"smile_*_{args.seconds:g}s_h{args.height}.mp4"))[: args.videos]:
            (src / p.name).symlink_to(p)
        t0 = time.perf_counter()
        summary = extract_folder(src, Path(tmp) / "npy", ".npy", args.workers, ExtractOptions(max_side=args.max_side),
                                 progress=False)
        wall = time.perf_counter() - t0
        rows = list(csv.DictReader(open(Path(tmp) / "npy" / "report.csv")))
    frames = summary["frames_decoded"]
    busy = sum(float(r["seconds"]) for r in rows if r["status"] == "extracted")
    result = {
        "videos": args.videos, "frames": frames, "workers": args.workers, "frame_height": args.height or 384,
        "max_side": args.max_side, "failed": len(summary["failed"]), "wall_seconds": round(wall, 2),
        "end_to_end_fps": round(frames / wall, 1), "per_worker_fps": round(frames / busy, 1),
        "steady_fps": round(args.workers * frames / busy, 1), "synthetic": True,
    }
    print(f"{frames} frames ({args.videos} videos, height {result['frame_height']}) with {args.workers} workers: "
          f"end-to-end {result['end_to_end_fps']} frames/s (wall {wall:.1f} s incl. start-up), "
          f"steady {result['steady_fps']} frames/s ({result['per_worker_fps']} per worker)")
    atomic.write_json(ROOT / "benchmarks" / "out" / "bench_extract.json", result)


if __name__ == "__main__":
    main()

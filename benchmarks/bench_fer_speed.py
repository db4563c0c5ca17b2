"""HAFEM inference speed on this machine: model-only and end-to-end FPS, batch 1 and batched, PyTorch and ONNX Runtime.

    python benchmarks/bench_fer_speed.py                 # both configurations, 2 threads, -> benchmarks/out/fer_speed.json
    python benchmarks/bench_fer_speed.py --only cpu_deploy --seconds 5

Configurations (common.fer.speed): ``cpu_deploy`` = EfficientNet-Lite0 (packaged ImageNet weights) + 2-layer 192-wide
transformer at 128 px with a 4x4 token grid; ``paper`` = EfficientNet-B5 + CBAM + 6 x (2048, 8 heads, FF 4096) at 224 px.
End to end = JPEG bytes of a 640x480 frame -> decode -> MediaPipe detection -> eye alignment (1.3x box) -> bicubic crop
-> CLAHE on L -> normalisation -> model. Every figure is taken after a warm-up and states threads, device, precision.
The paper's 52 FPS is for an RTX 3090 GPU and does not say whether detection/alignment are inside the timed loop.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAPER_CLAIM = {"fps": 52, "hardware": "NVIDIA RTX 3090 (GPU), batch size and timed stages not stated"}
TARGET_CPU_FPS = 30


def bench_config(name: str, config: dict, threads: int, seconds: float, batch: int, frames) -> dict:
    import torch

    from common.fer import speed

    torch.set_num_threads(threads)
    model = speed.build_speed_model(config)
    size = config["input_size"]
    out = {"config": {k: v for k, v in config.items()}, "params": sum(p.numel() for p in model.parameters())}
    results = []
    # eager PyTorch at the requested threads and at one thread: on a shared 2-core machine its OpenMP workers
    # can stall each other, so both are reported
    for t in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(t)
        for b in (1, batch):
            results.append(speed.model_fps(model, size, batch_size=b, seconds=seconds))
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = speed.export_onnx(model, size, Path(tmp) / f"{name}.onnx")
        session = speed.onnx_session(onnx_path, threads)
        for b in (1, batch):
            results.append(speed.onnx_fps(session, size, batch_size=b, seconds=seconds))
        best = max((r for r in results if r["batch_size"] == 1), key=lambda r: r["fps"])
        use_onnx = best["runtime"].startswith("onnx")
        if not use_onnx:
            torch.set_num_threads(best["torch_threads"])
        infer = speed.onnx_infer(session) if use_onnx else speed.torch_infer(model)
        runtime = best["runtime"]
        for b in (1, batch):
            results.append(speed.end_to_end_fps(infer, frames, size, batch_size=b, seconds=seconds, runtime=runtime))
    out["results"] = results
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", choices=("cpu_deploy", "paper"), default=["cpu_deploy", "paper"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=4.0, help="timed seconds per measurement (after warm-up)")
    p.add_argument("--batch", type=int, default=8, help="the batched measurement's batch size")
    p.add_argument("--name", default="fer_speed", help="output file benchmarks/out/<name>.json")
    args = p.parse_args(argv)

    from common import io as atomic
    from common.fer import speed

    frames = speed.sample_frames(4)
    configs = {"cpu_deploy": speed.CPU_DEPLOY, "paper": speed.PAPER_SIZE}
    report = {"paper_claim": PAPER_CLAIM, "cpu_target_fps_end_to_end_batch1": TARGET_CPU_FPS,
              "threads": args.threads, "configs": {}}
    for name in args.only:
        report["configs"][name] = bench_config(name, configs[name], args.threads, args.seconds, args.batch, frames)
    deploy = report["configs"].get("cpu_deploy")
    if deploy:
        e2e1 = next(r for r in deploy["results"] if r["what"].startswith("end to end") and r["batch_size"] == 1)
        report["cpu_deploy_meets_target"] = e2e1["fps"] >= TARGET_CPU_FPS
    out = ROOT / "benchmarks" / "out" / f"{args.name}.json"
    atomic.write_json(out, report)
    print(f"{'config':<11} {'what':<11} {'runtime':<16} {'batch':>5} {'FPS':>8} {'ms/batch':>9}  threads  load")
    for name, block in report["configs"].items():
        for r in block["results"]:
            what = "end2end" if r["what"].startswith("end") else "model"
            print(f"{name:<11} {what:<11} {r['runtime']:<16} {r['batch_size']:>5} {r['fps']:>8.1f} "
                  f"{r['ms_per_batch_median']:>9.1f}  {r.get('ort_threads', r['torch_threads']):>7}  "
                  f"{r.get('load_average_1min', float('nan')):.1f}")
    print(f"paper claim: {PAPER_CLAIM['fps']} FPS on {PAPER_CLAIM['hardware']}")
    if deploy:
        print(f"cpu_deploy end to end at batch 1 >= {TARGET_CPU_FPS} FPS: {report['cpu_deploy_meets_target']}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""GPU check: both studies at paper size on CUDA through common.engine, the smile backbone's custom autograd
operations on GPU against CPU, throughput, peak memory and a GPU-hour estimate of the paper grid.

    python benchmarks/gpu_check.py [--steps 20] [--smile-batch 16] [--hafem-batch 64] [--no-hafem]

Without CUDA it says so and exits 0 (``--device cpu --steps 2 --smile-batch 2 --hafem-batch 2`` runs the same code
on the CPU, as a check of this script; its figures mean nothing for a GPU). On one GPU it finishes in a few minutes
(every stage runs a fixed number of steps on generated tensors, no data set is read). It prints, and writes
``benchmarks/out/gpu_check.json``:

* training throughput through :func:`common.engine.fit` (mixed precision as the studies run it: bf16 where the GPU
  supports it, else fp16 with a gradient scaler) for the smile model (paper size: 478 points, k = 20, the paper
  backbone, 16-frame clips; clips/s) and HAFEM (EfficientNet-B5 at 224 px + the paper transformer; images/s), with
  the peak GPU memory of each;
* the smile backbone (its custom autograd operations included) in float32 on GPU vs CPU from the same weights and
  input: largest relative difference of the output and of every gradient, against :data:`TOLERANCE`;
* GPU-hours: one UvA-NEMO fold (mean released fold: 1,116 training / 124 test videos, 300 epochs, 5 test windows
  per video and the validation part) and the whole smile grid (every torch variant x every dataset x its folds x 300
  epochs), and the HAFEM paper profile (140 epochs of FER2013-sized training per seed), each from the measured step
  and evaluation rates. The estimates assume the data loader keeps up and no early stopping (an upper bound).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOLERANCE = 1e-3  # max |gpu - cpu| / (max |cpu| + 1e-6), float32 forward and gradients (TF32 off)
# mean train / test videos per fold of the released fold files, and the number of folds
SMILE_FOLDS = {"UvA-NEMO": (10, 1116, 124), "MMI": (9, 164, 20), "SPOS": (7, 69, 11), "BBC": (10, 18, 2)}
FER2013_TRAIN, FER2013_EVAL = 28_709, 3_589  # FER2013 training images; PublicTest (validation) images


def smile_model(cfg):
    from common.smile.models import build_from_spec, model_spec

    return build_from_spec(model_spec(cfg))


def _pin(t, device: str):
    return t.pin_memory() if device == "cuda" else t


def smile_batches(cfg, batch: int, steps: int, dmarker_dim: int, device: str):
    import torch

    g = torch.Generator().manual_seed(0)
    return [{"clip": _pin(torch.randn(batch, cfg["clip_len"], cfg["n_points"], 3, generator=g), device),
             "dmarker": _pin(torch.randn(batch, dmarker_dim, generator=g), device),
             "label": _pin((torch.rand(batch, generator=g) > 0.5).float(), device)} for _ in range(steps)]


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def timed_fit(model, optimizer, batches, task, device: str, warmup: int = 3) -> dict:
    """engine.fit over ``batches`` after ``warmup`` steps; items/s of the timed pass and peak memory."""
    import torch

    from common.engine import FitSettings, fit

    fit(model, optimizer, batches[:warmup], {}, task, FitSettings(epochs=1, device=device, keep="last"))
    _sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    fit(model, optimizer, batches, {}, task, FitSettings(epochs=1, device=device, keep="last"))
    _sync(device)
    seconds = time.perf_counter() - t0
    n = sum(int(_size(b)) for b in batches)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    return {"items_per_s": n / seconds, "step_s": seconds / len(batches), "steps": len(batches), "peak_gpu_gib": peak}


def _size(batch) -> int:
    return batch["label"].shape[0] if isinstance(batch, dict) else batch[1].shape[0]


def eval_rate(model, make_input, batch: int, device: str, steps: int = 5) -> float:
    """Items/s of inference under the same autocast."""
    import torch

    from common.engine import Precision

    precision = Precision.choose(torch.device(device))
    model.eval()
    with torch.no_grad(), precision.autocast():
        x = make_input(batch)
        model(*x)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            model(*x)
        _sync(device)
    return batch * steps / (time.perf_counter() - t0)


def check_backbone_on_gpu(cfg, device: str) -> dict:
    """The backbone (custom autograd ops included) in float32 on GPU vs CPU: output and gradient differences."""
    import copy
    import inspect

    import torch

    from common.smile.encoder import curves, lpfa

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    cpu = smile_model(cfg).backbone
    gpu = copy.deepcopy(cpu).to(device)
    clip = torch.randn(2, cfg["clip_len"], cfg["n_points"], 3)
    out = {}
    for name, net, x in (("cpu", cpu, clip.clone().requires_grad_()), ("gpu", gpu, clip.to(device).requires_grad_())):
        net.eval()  # no dropout, BatchNorm from its running statistics: both devices compute the same function
        h, frames = net(x)
        (h.float().square().mean() + frames.float().square().mean()).backward()
        grads = {"input": x.grad.detach().cpu()}
        grads.update({n: p.grad.detach().cpu() for n, p in net.named_parameters() if p.grad is not None})
        out[name] = (h.detach().cpu(), frames.detach().cpu(), grads)

    def rel(a, b):
        return float((a.float() - b.float()).abs().max() / (b.float().abs().max() + 1e-6))

    diffs = {"output_h": rel(out["gpu"][0], out["cpu"][0]), "output_frames": rel(out["gpu"][1], out["cpu"][1])}
    grad_diffs = {n: rel(out["gpu"][2][n], g) for n, g in out["cpu"][2].items()}
    worst = max(grad_diffs, key=grad_diffs.get)
    ops = [n for module in (lpfa, curves) for n, obj in vars(module).items()
           if inspect.isclass(obj) and issubclass(obj, torch.autograd.Function) and obj is not torch.autograd.Function]
    ok = max(diffs.values()) <= TOLERANCE and grad_diffs[worst] <= TOLERANCE
    return {"custom_autograd_functions": ops, "tolerance": TOLERANCE, **diffs, "worst_gradient": worst,
            "worst_gradient_rel_diff": grad_diffs[worst], "n_gradients": len(grad_diffs), "within_tolerance": ok}


def smile_stage(steps: int, batch: int, device: str) -> dict:
    import torch

    from common.smile.dmarker import DMARKER_DIM
    from common.smile.engine import TASK
    from common.smile.run import resolve_config

    cfg = resolve_config({"profile": "paper", "dataset": "UvA-NEMO", "variant": "hadamard"})
    torch.manual_seed(0)
    model = smile_model(cfg)
    dmarker_dim = int(getattr(model.fusion, "dmarker_dim", DMARKER_DIM))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"])
    train = timed_fit(model, optimizer, smile_batches(cfg, batch, steps, dmarker_dim, device), TASK, device)

    def make_input(b):
        return (torch.randn(b, cfg["clip_len"], cfg["n_points"], 3, device=device),
                torch.randn(b, dmarker_dim, device=device))

    windows_per_s = eval_rate(model, make_input, batch * cfg["n_eval_clips"], device)
    per_epoch = {}
    for ds, (folds, n_train, n_test) in SMILE_FOLDS.items():
        n_val = round(cfg["val_fraction"] * n_train)
        steps_per_epoch = (n_train - n_val) // batch
        eval_windows = (n_val + n_test) * cfg["n_eval_clips"]
        per_epoch[ds] = steps_per_epoch * train["step_s"] + eval_windows / windows_per_s
    fold_hours = per_epoch["UvA-NEMO"] * cfg["epochs"] / 3600
    from common.smile.models import is_handcrafted, variants

    torch_variants = [v for v in variants() if not is_handcrafted(v)]
    grid_hours = sum(per_epoch[ds] * cfg["epochs"] * SMILE_FOLDS[ds][0] for ds in SMILE_FOLDS) \
        * len(torch_variants) / 3600
    return {"batch": batch, "train_clips_per_s": train["items_per_s"], "step_s": train["step_s"],
            "peak_gpu_gib": train["peak_gpu_gib"], "eval_windows_per_s": windows_per_s,
            "uva_nemo_fold_gpu_hours": fold_hours, "uva_nemo_fold_minutes": fold_hours * 60,
            "target_fold_minutes": 30, "grid_gpu_hours": grid_hours, "grid_variants": len(torch_variants),
            "epochs": cfg["epochs"], "backbone": check_backbone_on_gpu(cfg, device)}


def hafem_stage(steps: int, batch: int, device: str) -> dict:
    import torch

    from common.fer.engine import TrainSettings, hafem_task, make_optimizer
    from common.fer.loss import LOSSES
    from common.fer.model import build_fer_model
    from common.fer.study import HAFEM

    cfg = HAFEM.resolve({"profile": "paper", "pretrained": "none", "baseline_pretrained": "none"})
    torch.manual_seed(0)
    model = build_fer_model(cfg, 7, "hafem")
    criterion = LOSSES.create("compound", num_classes=7, feat_dim=model.feature_dim, class_counts=[1] * 7)
    settings = TrainSettings(epochs=cfg["epochs"], warmup_epochs=cfg["warmup_epochs"], mixup_prob=cfg["mixup_prob"],
                             device=device, progress=False)
    task = hafem_task(criterion, settings, torch.Generator().manual_seed(0))
    optimizer = make_optimizer(model, cfg["lr_max"], extra=list(criterion.named_parameters()))
    g = torch.Generator().manual_seed(0)
    size = cfg["input_size"]
    batches = [(_pin(torch.randn(batch, 3, size, size, generator=g), device),
                _pin(torch.randint(0, 7, (batch,), generator=g), device)) for _ in range(steps)]
    train = timed_fit(model, optimizer, batches, task, device)
    images_per_s = eval_rate(model, lambda b: (torch.randn(b, 3, size, size, device=device),), batch, device)
    epoch_s = FER2013_TRAIN / train["items_per_s"] + FER2013_EVAL / images_per_s
    seeds = len(cfg["seeds"].split(","))
    return {"batch": batch, "params_millions": sum(p.numel() for p in model.parameters()) / 1e6,
            "train_images_per_s": train["items_per_s"], "step_s": train["step_s"],
            "peak_gpu_gib": train["peak_gpu_gib"],
            "eval_images_per_s": images_per_s, "fer2013_seed_gpu_hours": epoch_s * cfg["epochs"] / 3600,
            "fer2013_all_seeds_gpu_hours": epoch_s * cfg["epochs"] * seeds / 3600, "seeds": seeds}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="timed training steps per study")
    p.add_argument("--smile-batch", type=int, default=16)
    p.add_argument("--hafem-batch", type=int, default=64)
    p.add_argument("--no-hafem", action="store_true")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cpu: a check of this script only")
    args = p.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"no CUDA: torch {torch.__version__} sees no GPU here; nothing to check (exit 0). Run this on a "
              "machine with a CUDA GPU to measure the paper profiles.")
        return 0
    from common.engine import Precision

    t0 = time.perf_counter()
    info = {"device": args.device, "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "precision": Precision.choose(torch.device(args.device)).name}
    print(json.dumps(info))
    info["smile"] = smile_stage(args.steps, args.smile_batch, args.device)
    print(json.dumps({"smile": info["smile"]}, indent=1))
    if not args.no_hafem:
        info["hafem"] = hafem_stage(args.steps, args.hafem_batch, args.device)
        print(json.dumps({"hafem": info["hafem"]}, indent=1))
    info["seconds"] = time.perf_counter() - t0
    out = ROOT / "benchmarks" / "out" / f"gpu_check{'' if args.device == 'cuda' else '_cpu'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(info, indent=2) + "\n")
    ok = info["smile"]["backbone"]["within_tolerance"]
    print(f"{'OK' if ok else 'MISMATCH'}: smile backbone GPU vs CPU within {TOLERANCE}; "
          f"{info['seconds']:.0f} s; written {out.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Training step of a demo FER model (default HAFEM: EfficientNet-Lite0 at 112 px, batch 32, compound loss, AdamW with
layer-wise decay) on the CPU, with the convolution weights in channels-last (what ``build_fer_model`` returns) and in
the default contiguous layout; interleaved rounds, so both see the same machine load.

The two layouts compute the same function with different kernels (NHWC vs NCHW): the script checks that the eval-mode
logits of the two copies (same weights) agree to float32 rounding before timing anything.

    python benchmarks/bench_fer_train.py                      # demo HAFEM, 1 thread -> benchmarks/out/bench_fer_train_hafem.json
    python benchmarks/bench_fer_train.py --variant resnet18 --steps 4 --rounds 2   # another demo model
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.fer.engine import TrainSettings, hafem_task, make_optimizer  # noqa: E402
from common.fer.loss import LOSSES  # noqa: E402
from common.fer.model import build_fer_model  # noqa: E402
from common.fer.study import HAFEM  # noqa: E402


def timed_steps(model, criterion, cfg, batches) -> list[float]:
    """Wall seconds of each full training step (forward, compound loss, backward, AdamW) over ``batches``."""
    settings = TrainSettings(epochs=cfg["epochs"], lr_max=cfg["lr_max"], warmup_epochs=cfg["warmup_epochs"],
                             mixup_prob=cfg["mixup_prob"], progress=False)
    task = hafem_task(criterion, settings, torch.Generator().manual_seed(0))
    optimizer = make_optimizer(model, cfg["lr_max"], extra=list(criterion.named_parameters()))
    model.train()
    seconds = []
    for batch in batches:
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        task.loss(model, batch).loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - t0)
    return seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads (the demo profile uses 1)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each: channels-last, then contiguous)")
    p.add_argument("--batch", type=int, default=None, help="default: the demo profile's batch size")
    p.add_argument("--variant", default="hafem", help="a registered FER model (hafem, resnet18, efficientnet_b0, ...)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    cfg = HAFEM.resolve({"profile": "demo", "pretrained": "none"})
    batch, size = args.batch or cfg["batch_size"], cfg["input_size"]
    torch.manual_seed(0)
    channels_last = build_fer_model(cfg, 7, args.variant)
    contiguous = copy.deepcopy(channels_last).to(memory_format=torch.contiguous_format)
    layouts = {"channels_last": channels_last, "contiguous": contiguous}

    g = torch.Generator().manual_seed(0)
    probe = torch.randn(4, 3, size, size, generator=g)
    with torch.no_grad():
        logits = {name: m.eval()(probe) for name, m in layouts.items()}
    max_diff = float((logits["channels_last"] - logits["contiguous"]).abs().max())
    if not torch.allclose(logits["channels_last"], logits["contiguous"], rtol=1e-4, atol=1e-5):
        raise SystemExit(f"the two layouts disagree: max |logit difference| {max_diff:.3g}")

    batches = [(torch.randn(batch, 3, size, size, generator=g), torch.randint(0, 7, (batch,), generator=g))
               for _ in range(args.steps)]
    criteria = {name: LOSSES.create("compound", num_classes=7, feat_dim=m.feature_dim, class_counts=[1] * 7)
                for name, m in layouts.items()}
    for name, m in layouts.items():               # warm-up: first-call allocations and kernel choices
        timed_steps(m, criteria[name], cfg, batches[:1])
    steps: dict[str, list[float]] = {name: [] for name in layouts}
    load_before = os.getloadavg()[0]
    for r in range(args.rounds):
        for name, m in layouts.items():
            seconds = timed_steps(m, criteria[name], cfg, batches)
            steps[name] += seconds
            print(f"round {r + 1}: {name:13s} median step {statistics.median(seconds):.3f} s")
    load_after = os.getloadavg()[0]

    medians = {name: statistics.median(s) for name, s in steps.items()}
    result = {"variant": args.variant, "backbone": cfg["backbone"], "input_size": size, "batch": batch, "threads": args.threads,
              "steps_per_round": args.steps, "rounds": args.rounds, "torch": torch.__version__,
              "load_avg_before_after": [load_before, load_after], "max_abs_logit_diff_eval": max_diff,
              "median_step_s": medians, "min_step_s": {n: min(s) for n, s in steps.items()},
              "speedup_median": medians["contiguous"] / medians["channels_last"]}
    print(json.dumps(result, indent=1))
    out = ROOT / "benchmarks" / "out" / f"bench_fer_train_{args.variant}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

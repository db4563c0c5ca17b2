"""The command line of ``python -m common.predict`` (see :mod:`common.predict` for what it does)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from common.checkpoints import CheckpointError
from common.paths import RESULTS_DIR
from common.predict.checkpoints import DEFAULT_DATASET
from common.predict.errors import EXIT_UNREADABLE, PredictError, exit_code_of
from common.predict.pipeline import Analysis, Options, default_out_dir, list_inputs, output_paths, predict_file

USAGE = """\
    python -m common.predict PATH [--checkpoint CKPT] [--fer-checkpoint CKPT] [--out DIR] [--results DIR]
                                  [--dataset NAME] [--variant NAME] [--fer-dataset NAME] [--fer-variant NAME]

exit status: 0 every input analysed; 2 not a readable video or image; 3 no face found; 4 no trained checkpoint
under results/; 5 a checkpoint that cannot be used (the first problem's status when a folder has several)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m common.predict", epilog=USAGE,
                                description="Analyse a smile video or a face photo with the trained models: "
                                            "a JSON summary and a PNG report.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="a video, an image, or a folder of them")
    p.add_argument("--checkpoint", help="one smile model checkpoint (.pt) instead of the ensemble chosen by the rule "
                                        "of common.predict.checkpoints")
    p.add_argument("--fer-checkpoint", help="one expression (HAFEM) checkpoint instead of the chosen ensemble")
    p.add_argument("--out", help="output folder (default: <results>/predict)")
    p.add_argument("--results", help=f"results folder searched for checkpoints (default: {RESULTS_DIR})")
    p.add_argument("--dataset", help=f"dataset whose smile models are used (default: {DEFAULT_DATASET['smile']})")
    p.add_argument("--variant", help="smile variant (default: the one with the best mean validation score)")
    p.add_argument("--fer-dataset", help=f"dataset whose expression models are used "
                                         f"(default: {DEFAULT_DATASET['hafem']})")
    p.add_argument("--fer-variant", help="expression model variant (default: hafem, the full model)")
    p.add_argument("--expression-fps", type=float, default=5.0, help="video: frames per second sampled for "
                                                                      "expressions (default 5)")
    p.add_argument("--no-expressions", action="store_true", help="video: skip the expression model")
    p.add_argument("--no-gradcam", action="store_true", help="image: skip Grad-CAM")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    return p


def one_line(analysis: Analysis) -> str:
    s = analysis.summary
    parts = [f"{analysis.path.name}:"]
    if s.get("smile"):
        n = len(s["models"]["smile"]["members"])
        parts.append(f"{s['smile']['decision']} smile (P(spontaneous) = {s['smile']['p_spontaneous']:.3f}, "
                     f"{n} model{'s' if n > 1 else ''}, {s['models']['smile']['trained_on']})")
    if s.get("expressions"):
        e = s["expressions"]
        parts.append(f"expression {e['top']} ({e['mean'][e['top']]:.3f}, {s['models']['expression']['trained_on']})")
    for w in s["warnings"]:
        parts.append(f"[warning: {w}]")
    parts.append(f"-> {s['outputs'].get('json')}")
    return " ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.expression_fps <= 0:
        print(f"error: --expression-fps must be > 0, got {args.expression_fps}", file=sys.stderr)
        return EXIT_UNREADABLE
    if args.threads < 0:
        print(f"error: --threads must be >= 0, got {args.threads}", file=sys.stderr)
        return EXIT_UNREADABLE
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    options = Options(checkpoint=args.checkpoint, fer_checkpoint=args.fer_checkpoint, results=args.results,
                      variant=args.variant, fer_variant=args.fer_variant, dataset=args.dataset,
                      fer_dataset=args.fer_dataset, expression_fps=args.expression_fps,
                      expressions=not args.no_expressions, gradcam=not args.no_gradcam)
    try:
        files = list_inputs(args.path)
    except PredictError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    out_dir = Path(args.out) if args.out else default_out_dir(args.results)
    status = 0
    for path in files:
        try:
            analysis = predict_file(path, out_dir, options)
        except (PredictError, CheckpointError) as exc:
            status = status or exit_code_of(exc)
            print(f"error: {exc}", file=sys.stderr)
            partial = output_paths(path, out_dir, partial=True)[0]
            if partial.exists():
                print(f"  partial report: {partial}", file=sys.stderr)
            continue
        print(one_line(analysis))
    return status

"""``python -m datasets.demo``: generate the synthetic demo datasets (see ``datasets/demo/__init__.py``)."""
from __future__ import annotations

import argparse
import sys

from datasets.demo import DEFAULT_SEED, DEMO_NAMES, generate


def _seed(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"the generator seed must be a non-negative integer, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets.demo", description=__doc__)
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help=f"datasets to generate (default all): {', '.join(DEMO_NAMES)}")
    parser.add_argument("--out", help="output folder (default: common.paths.DEMO_DATA_DIR)")
    parser.add_argument("--seed", type=_seed, default=DEFAULT_SEED, help="non-negative integer (default 0)")
    parser.add_argument("--missing-only", action="store_true", help="keep datasets that already exist")
    parser.add_argument("--size", action="append", default=[], metavar="NAME=VALUE",
                        help="smaller/larger set: smile sets take a number of subjects, image sets a scale factor, "
                             "smile-video a length in seconds (e.g. --size UvA-NEMO=12 --size FER2013=0.1)")
    args = parser.parse_args(argv)
    try:
        sizes = {}
        for item in args.size:
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--size expects NAME=VALUE, got {item!r}")
            try:
                sizes[name] = int(value) if value.strip().isdigit() else float(value)
            except ValueError:
                raise ValueError(f"--size {item!r}: {value!r} is not a number") from None
        written = generate(args.only, out=args.out, seed=args.seed, sizes=sizes, force=not args.missing_only)
    except (KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

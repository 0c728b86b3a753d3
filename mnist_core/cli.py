"""The `mnist-report` command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import MnistReportError, __version__
from .config import DEFAULT_MODELS, MODELS


def _models(value: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model {', '.join(unknown) or repr(value)}; choose from {', '.join(MODELS)}")
    return names


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("results"),
                   help="results folder: experiments, figures and documents (default: results)")
    p.add_argument("--data-dir", default=None,
                   help="folder with the MNIST IDX files or mnist.npz (default: $MNIST_DATA_DIR, "
                        "then Keras' cache, then Keras' download)")


def _add_training(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=_positive, default=None,
                   help="epochs for every model trained (default: each model's own)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 3,000 training images, 1,000 test images, 1 epoch")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="mnist-report",
        description="Train Keras models on MNIST and publish the tutorial (HTML and PDF).")
    ap.add_argument("--version", action="version", version=f"mnist-report {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    b = sub.add_parser("build", help="train what has no current results, then render HTML and PDF")
    _add_common(b)
    _add_training(b)
    b.add_argument("--models", type=_models, default=DEFAULT_MODELS,
                   help=f"comma-separated models to build (default: {','.join(DEFAULT_MODELS)})")
    b.add_argument("--force", nargs="?", const="__all__", default=None, metavar="NAME",
                   help="retrain regardless of saved results (all models, or NAME)")
    b.add_argument("--no-render", action="store_true", help="train only; skip the documents")
    b.add_argument("--no-site", action="store_true",
                   help="skip `quarto render` of the site (run when quarto is on PATH)")

    t = sub.add_parser("train", help="train one model (if stale) without rendering")
    _add_common(t)
    _add_training(t)
    t.add_argument("--model", required=True, choices=list(MODELS), help="model to train")
    t.add_argument("--force", action="store_true", help="retrain even if results are current")
    return ap


def _build(args: argparse.Namespace) -> int:
    from .build import BuildOptions, build

    if args.command == "train":
        models, render, site = (args.model,), False, False
        force = models if args.force else ()
    else:
        models, render, site = args.models, not args.no_render, not args.no_site
        force = models if args.force == "__all__" else ((args.force,) if args.force else ())
        if force and force[0] not in MODELS:
            raise MnistReportError(f"--force: unknown model {force[0]!r}; "
                                   f"choose from {', '.join(MODELS)}")
    options = BuildOptions(out=args.out, data_dir=args.data_dir, models=models,
                           epochs=args.epochs, seed=args.seed, quick=args.quick,
                           force=force, render=render, site=site)
    summary = build(options)
    trained = ", ".join(summary["trained"]) or "nothing (all results current)"
    print(f"[mnist-report] done in {summary['seconds']:.1f} s; trained: {trained}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return 2
    try:
        return _build(args)
    except MnistReportError as exc:
        print(f"mnist-report: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mnist-report: interrupted; results that were already complete are kept",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

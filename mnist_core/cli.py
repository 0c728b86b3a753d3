"""The `mnist-report` command line."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from . import MnistReportError, UsageError, __version__, log
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


def _add_common(p: argparse.ArgumentParser, data: bool = True) -> None:
    """--out, and --data-dir where the command reads MNIST (render, status and clean key the
    results by verified MNIST's checksum and read no data)."""
    p.add_argument("--out", type=Path, default=Path("results"),
                   help="results folder: experiments, figures and documents (default: results)")
    if data:
        p.add_argument("--data-dir", default=None,
                       help="folder with the MNIST IDX files or mnist.npz (default: "
                            "$MNIST_DATA_DIR, then Keras' cache, then Keras' download)")


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

    r = sub.add_parser("render", help="render HTML and PDF from saved results, never training "
                                      "(stale results are used and flagged)")
    _add_common(r, data=False)
    _add_training(r)
    r.add_argument("--models", type=_models, default=DEFAULT_MODELS,
                   help=f"comma-separated models to show (default: {','.join(DEFAULT_MODELS)})")

    s = sub.add_parser("status", help="list experiments as fresh or stale, with the reason")
    _add_common(s, data=False)
    _add_training(s)
    s.add_argument("--models", type=_models, default=DEFAULT_MODELS,
                   help=f"comma-separated models (default: {','.join(DEFAULT_MODELS)})")

    c = sub.add_parser("clean", help="remove result folders that no model's current key points "
                                     "to (full or --quick runs of any model are kept)")
    _add_common(c, data=False)
    c.add_argument("--epochs", type=_positive, default=None,
                   help="the epochs the kept results were trained with (default: each model's own)")
    c.add_argument("--seed", type=int, default=1, help="the seed of the kept results (default: 1)")
    c.add_argument("--dry-run", action="store_true",
                   help="list what would be removed, with sizes, and remove nothing")

    p = sub.add_parser("predict", help="tell which digit is written in each image")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, GIF, ...)")
    p.add_argument("--model", type=Path, default=None,
                   help="a saved .keras model (default: the best model in --out)")
    p.add_argument("--out", type=Path, default=Path("results"),
                   help="results folder to take the best model from (default: results)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list of {file, digit, confidence, probabilities, unsure}")
    p.add_argument("--min-confidence", type=_fraction, default=None, metavar="P",
                   help="call an answer unsure below this calibrated confidence, 0-1 "
                        "(default: 0.97, chosen on validation digits and made-up non-digits)")
    e = sub.add_parser("export", help="write the best model (or --model) for other runtimes "
                                      "(ONNX: ONNX Runtime, in Python, C++, the browser, ...)")
    e.add_argument("--model", type=Path, default=None,
                   help="a saved .keras model (default: the best model in --results)")
    e.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results folder to take the best model from (default: results)")
    e.add_argument("--format", default="onnx", choices=["onnx"], help="file format (default: onnx)")
    # --out names the file written here, as other tools' export commands do; the results folder
    # that other commands call --out is --results here.
    e.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="file to write, e.g. model.onnx")
    return ap


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def _export(args: argparse.Namespace) -> int:
    from .export import export_model
    from .predict import find_best_model

    model = args.model or find_best_model(args.results)
    path = export_model(model, args.out, args.format)
    print(f"[mnist-report] wrote {path} ({path.stat().st_size:,} bytes, {args.format}) from {model}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import json

    from .predict import Recognizer, find_best_model
    from .preprocess import prepare

    # Read every image before loading TensorFlow: bad files fail fast, one line each.
    inputs, errors = {}, {}
    for path in args.images:
        try:
            inputs[path] = prepare(path)
        except MnistReportError as exc:
            message = str(exc)
            errors[path] = message if message.startswith(path) else f"{path}: {message}"
    results = {}
    if inputs:
        recognizer = Recognizer(args.model or find_best_model(args.out),
                                min_confidence=args.min_confidence)
        results = dict(zip(inputs, recognizer.predictions(list(inputs.values()))))
    report = []
    for path in args.images:
        if path in errors:
            print(f"mnist-report: error: {errors[path]}", file=sys.stderr)
            continue
        answer = results[path]
        report.append({"file": path, "digit": answer.digit, "confidence": answer.confidence,
                       "probabilities": answer.probabilities, "unsure": answer.unsure})
        if not args.json:
            second = answer.runner_up
            print(f"{path}: {answer.digit} ({answer.confidence:.1%}), runner-up {second} "
                  f"({answer.probabilities[second]:.1%})" + (" (unsure)" if answer.unsure else ""))
    if args.json:
        print(json.dumps(report, indent=1))
    return 1 if errors else 0


def _options(args: argparse.Namespace, **overrides):
    """BuildOptions from whichever of its fields this subcommand has, plus ``overrides``."""
    from .experiments import BuildOptions

    names = {f.name for f in dataclasses.fields(BuildOptions)}
    fields = {k: v for k, v in vars(args).items() if k in names and k not in overrides}
    return BuildOptions(**fields, **overrides)


def _status(args: argparse.Namespace) -> int:
    from .experiments import status
    from .results import load_results

    report = status(_options(args))
    for item in report["planned"]:
        if item.fresh:
            results = load_results(item.folder)
            accuracy = results["metrics"]["test"]["accuracy"]
            print(f"{item.config.model:<8} fresh  {item.folder}  test accuracy {accuracy:.4f}, "
                  f"trained {results['provenance']['date']}")
        else:
            print(f"{item.config.model:<8} stale  {'; '.join(item.reasons)}")
    if report["unreferenced"]:
        print("not used by the current configuration (`mnist-report clean` removes them):")
        for path in report["unreferenced"]:
            print(f"  {path}")
    return 0


def _clean(args: argparse.Namespace) -> int:
    from .experiments import clean

    removed = clean(_options(args), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path, size in removed:
        print(f"{verb} {path} ({size / 1e6:.1f} MB)")
    total = sum(size for _, size in removed) / 1e6
    log(f"{verb} {len(removed)} folder(s), {total:.1f} MB")
    return 0


def _render(args: argparse.Namespace) -> int:
    from .build import render_only

    render_only(_options(args))
    return 0


def _build(args: argparse.Namespace) -> int:
    from .build import build

    if args.command == "train":
        models, render, site = (args.model,), False, False
        force = models if args.force else ()
    else:
        models, render, site = args.models, not args.no_render, not args.no_site
        force = models if args.force == "__all__" else ((args.force,) if args.force else ())
        if force and force[0] not in MODELS:
            raise UsageError(f"--force: unknown model {force[0]!r}; "
                                   f"choose from {', '.join(MODELS)}")
        # A known model that is not being built: BuildOptions says so.
    summary = build(_options(args, models=models, force=force, render=render, site=site))
    trained = ", ".join(summary["trained"]) or "nothing (all results current)"
    log(f"done in {summary['seconds']:.1f} s; trained: {trained}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return 2
    handlers = {"build": _build, "train": _build, "render": _render, "status": _status,
                "clean": _clean, "predict": _predict, "export": _export}
    try:
        return handlers[args.command](args)
    except MnistReportError as exc:
        print(f"mnist-report: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "tensorflow":
            raise
        print("mnist-report: error: TensorFlow is not installed: install the project with the "
              "extra for your machine, `pip install 'mnist-report[cpu]'` (or `[gpu]` for NVIDIA "
              "GPUs); a TensorFlow you already have is used as it is", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mnist-report: interrupted; results that were already complete are kept",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

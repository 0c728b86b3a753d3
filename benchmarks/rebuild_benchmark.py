"""How fast is a rebuild? No-op rebuild and template-only change, timed as a user sees them.

Usage: python benchmarks/rebuild_benchmark.py [--out results] [--models classic,mlp,cnn]
                                              [--repeat 3] [--quick]

Needs a results folder with current results for the models (run `mnist-report build` first).
Works on a throwaway copy of the project and of the results, so nothing of yours changes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cli_args(command: str, out: Path, args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "mnist_core.cli", command, "--out", str(out),
            "--models", args.models]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    if args.quick:
        argv.append("--quick")
    return argv


def timed_build(project: Path, out: Path, args: argparse.Namespace) -> tuple[float, str]:
    argv = cli_args("build", out, args)
    env = dict(os.environ, PYTHONPATH=str(project))
    start = time.perf_counter()
    run = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"build failed:\n{run.stdout}\n{run.stderr}")
    return elapsed, run.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "results")
    ap.add_argument("--models", default="classic,mlp,cnn")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="time against --quick results")
    args = ap.parse_args()
    # The builds run in a throwaway copy of the project: paths given relative to here must
    # still point at the same folders from there.
    args.out = args.out.resolve()
    if args.data_dir:
        args.data_dir = str(Path(args.data_dir).resolve())
    elif os.environ.get("MNIST_DATA_DIR"):
        os.environ["MNIST_DATA_DIR"] = str(Path(os.environ["MNIST_DATA_DIR"]).resolve())

    # Never train from a benchmark: refuse unless every result is current.
    status = subprocess.run(cli_args("status", args.out, args), cwd=REPO, capture_output=True,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if status.returncode != 0 or " stale " in status.stdout:
        sys.exit(f"results in {args.out} are not all current; run `mnist-report build` first\n"
                 f"{status.stdout}{status.stderr}")

    with tempfile.TemporaryDirectory() as tmp:
        project, out = Path(tmp) / "project", Path(tmp) / "results"
        # symlinks=True: mnist_core/templates stays a link to the copy's templates/, so the
        # template edit below is the one the build renders.
        for part in ("mnist_core", "templates"):
            shutil.copytree(REPO / part, project / part, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(args.out, out, ignore=shutil.ignore_patterns(".lock"))
        _, log = timed_build(project, out, args)  # warms the figure stamps
        assert "trained: nothing" in log, log
        noop, template = [], []
        narrative = project / "templates" / "tutorial.md.j2"
        for i in range(args.repeat):
            noop.append(timed_build(project, out, args)[0])
            narrative.write_text(narrative.read_text() + f"\nTemplate edit number {i}.\n")
            seconds, log = timed_build(project, out, args)
            assert "trained: nothing" in log, log
            assert f"Template edit number {i}." in (out / "tutorial.html").read_text()
            template.append(seconds)
        result = {
            "noop_rebuild_s": {"median": statistics.median(noop), "runs": noop},
            "template_change_s": {"median": statistics.median(template), "runs": template},
            "models": args.models,
            "cpu_count": os.cpu_count(),
        }
    print("| rebuild | median (s) | runs (s) |\n|---|--:|---|")
    print(f"| no-op (nothing changed) | {result['noop_rebuild_s']['median']:.2f} | "
          + ", ".join(f"{t:.2f}" for t in noop) + " |")
    print(f"| template-only change (HTML + PDF) | {result['template_change_s']['median']:.2f} | "
          + ", ".join(f"{t:.2f}" for t in template) + " |")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

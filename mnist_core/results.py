"""The results folder: one content-addressed folder per experiment, written atomically.

Layout of ``OUT/experiments/<model>-<key>/``: ``results.json`` (written last:
its presence marks a complete folder), ``model.keras`` and ``figures/``.
A folder is built under a temporary name and renamed into place, so a crash
never leaves a half-written folder that a later step trusts.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from . import MnistReportError

SCHEMA_VERSION = 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create private files; results are meant to be read and served.
FILE_MODE = 0o666 & ~_umask()
DIR_MODE = 0o777 & ~_umask()
RESULTS_FILE = "results.json"
MODEL_FILE = "model.keras"


def experiments_dir(out: Path) -> Path:
    return Path(out) / "experiments"


def experiment_dir(out: Path, model: str, key: str) -> Path:
    return experiments_dir(out) / f"{model}-{key}"


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file beside ``path``, then rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: dict) -> None:
    write_bytes_atomic(path, json.dumps(data, separators=(",", ":")).encode())


def new_staging_dir(out: Path, name: str) -> Path:
    """A private folder to build an experiment in, on the same filesystem as its destination."""
    experiments_dir(out).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=experiments_dir(out)))
    staging.chmod(DIR_MODE)
    return staging


def publish_dir(staging: Path, final: Path) -> None:
    """Move a finished staging folder into place, replacing any older copy in one rename."""
    if final.exists():
        trash = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.replace(final, trash)
        os.replace(staging, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, final)


def load_results(folder: Path) -> dict:
    """Read and sanity-check one experiment's results.json."""
    path = Path(folder) / RESULTS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise MnistReportError(f"{path} does not exist; run `mnist-report build` first") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise MnistReportError(f"{path}: not readable JSON ({exc})") from None
    if data.get("schema_version") != SCHEMA_VERSION:
        raise MnistReportError(
            f"{path}: schema version {data.get('schema_version')} is not "
            f"{SCHEMA_VERSION}; rebuild with `mnist-report build --force`"
        )
    return data


def is_complete(folder: Path) -> bool:
    return (Path(folder) / RESULTS_FILE).is_file()


def list_experiment_dirs(out: Path) -> list[Path]:
    root = experiments_dir(out)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def complete_by_model(out: Path) -> dict[str, list[Path]]:
    """Every complete results folder in ``out``, by model name (folders are ``model-key``)."""
    found: dict[str, list[Path]] = {}
    for folder in list_experiment_dirs(out):
        if is_complete(folder):
            found.setdefault(folder.name.rsplit("-", 1)[0], []).append(folder)
    return found


def newest_results(folders: list[Path]) -> Path:
    """The folder whose results were written last."""
    return max(folders, key=lambda p: (Path(p) / RESULTS_FILE).stat().st_mtime)


def validation_accuracy(results: dict) -> float:
    """The final model's accuracy on the held-out validation images."""
    validation = results["metrics"].get("validation") or {}
    if validation.get("accuracy") is not None:
        return float(validation["accuracy"])
    # Results from before validation metrics were saved: Keras measured the same images
    # with the final weights at the end of the last epoch.
    history = results.get("history", {}).get("val_accuracy") or [0.0]
    return float(history[-1])


def is_quick(results: dict) -> bool:
    """A `--quick` smoke run (a few thousand images), never the tutorial's real numbers."""
    return results.get("config", {}).get("train_limit") is not None


def best_experiment(candidates: list[dict]) -> dict:
    """The one rule for "the best model": the highest validation accuracy.

    Full runs before quick smoke runs; ties go to fewer parameters, then shorter training.
    The test set is never looked at, so the test accuracy of the chosen model stays an
    honest estimate.
    """
    if not candidates:
        raise MnistReportError("no results to choose a best model from")
    return max(candidates, key=lambda r: (not is_quick(r), validation_accuracy(r),
                                          -r["model"]["params_total"],
                                          -r["training"]["wall_time_s"]))


BEST_MODEL_RULE = ("the highest accuracy on the validation images (ties: fewer parameters, "
                   "then shorter training); the test set plays no part in the choice")


def best_folder(loaded: dict[Path, dict]) -> Path:
    """The folder, among loaded results (folder -> results.json), that ``best_experiment`` picks."""
    chosen = best_experiment(list(loaded.values()))
    return next(folder for folder, results in loaded.items() if results is chosen)


def best_model_folder(out: Path) -> Path:
    """The complete experiment folder in ``out`` whose model ``best_experiment`` picks."""
    found = {}
    for folder in list_experiment_dirs(out):
        if (folder / MODEL_FILE).is_file():
            try:
                found[folder] = load_results(folder)
            except MnistReportError:
                continue
    if not found:
        raise MnistReportError(f"no trained model in {out}; run `mnist-report build` first "
                               "(or pass --model PATH)")
    return best_folder(found)

"""What determines a result (its key) and where it came from (provenance).

No TensorFlow import here: versions come from package metadata, so a build with
nothing to retrain can decide that without loading TensorFlow.
"""

from __future__ import annotations

import ast
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .config import MODELS, ExperimentConfig

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
# Modules whose code runs in every training and evaluation (predict.py makes the worked
# "recognize your own digit" example); models.py counts per builder function, so editing
# one model retrains that model only, and build.py counts only for run_experiment, the
# function that assembles results.json.
TRAINING_MODULES = ("data.py", "train.py", "evaluate.py", "predict.py")


def _sha(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def function_source(module_path: Path, name: str) -> str:
    """The source text of a top-level function or class, read without importing the module."""
    source = module_path.read_text()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign)) and (
            getattr(node, "name", None) == name
            or any(getattr(t, "id", None) == name for t in getattr(node, "targets", []))
        ):
            return ast.get_source_segment(source, node) or ""
    raise KeyError(f"{name} not found in {module_path.name}")


def package_version(*names: str) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def library_versions() -> dict[str, str]:
    return {
        "tensorflow": package_version("tensorflow", "tensorflow-cpu"),
        "keras": package_version("keras"),
        "numpy": package_version("numpy"),
    }


def key_inputs(config: ExperimentConfig, data_sha256: str) -> dict:
    """Everything that decides an experiment's results, as a readable dict."""
    code = {name: _sha((PACKAGE_DIR / name).read_text()) for name in TRAINING_MODULES}
    code["build.py:run_experiment"] = _sha(function_source(PACKAGE_DIR / "build.py",
                                                           "run_experiment"))
    for builder in MODELS[config.model].builders:
        code[f"models.py:{builder}"] = _sha(function_source(PACKAGE_DIR / "models.py", builder))
    return {
        "config": config.to_dict(),
        "code": code,
        "data_sha256": data_sha256,
        "versions": library_versions(),
    }


def experiment_key(inputs: dict) -> str:
    return _sha(json.dumps(inputs, sort_keys=True))[:12]


def explain_change(old: dict, new: dict) -> list[str]:
    """Why an experiment is stale: the parts of its key inputs that differ."""
    reasons = []
    for field, label in (("config", "config"), ("code", "code"), ("versions", "version")):
        before, after = old.get(field, {}), new.get(field, {})
        for name in sorted(set(before) | set(after)):
            if before.get(name) != after.get(name):
                if field == "code":
                    reasons.append(f"code changed: {name}")
                else:
                    reasons.append(f"{label} {name}: {before.get(name)} -> {after.get(name)}")
    if old.get("data_sha256") != new.get("data_sha256"):
        reasons.append("data checksum changed")
    return reasons


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(data_sha256: str, data_source: str) -> dict:
    """Where and with what a result was made, for results.json and every document."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": bool(status) if status is not None else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "versions": library_versions(),
        "data_source": data_source,
        "data_sha256": data_sha256,
    }

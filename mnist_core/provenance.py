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
# Where training starts: the code these reach inside mnist_core (found by walking the calls,
# see code_fingerprints) is the code whose edits retrain a model. Each model's builder is a
# root of its own, so editing one model's code retrains that model only.
TRAINING_ROOTS = (("train.py", "make_splits"), ("train.py", "train"),
                  ("models.py", "served_model"), ("evaluate.py", "evaluate"))
# Registries name every model: walking into them would tie each model to all the others.
# Their entry for the model at hand enters the key as configuration instead.
REGISTRIES = {("config.py", "MODELS"), ("config.py", "DEFAULT_MODELS")}


def _sha(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def _top_level(module_path: Path) -> tuple[str, dict[str, ast.AST]]:
    source = module_path.read_text()
    names: dict[str, ast.AST] = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    names[target.id] = node
    return source, names


def function_source(module_path: str | Path, name: str) -> str:
    """The source text of a top-level function, class or assignment, read without importing.

    ``module_path`` is a file of mnist_core (``"data.py"``) or a full path. The documents show
    code through this one function, so what they print is the code that ran.
    """
    module_path = PACKAGE_DIR / module_path
    source, names = _top_level(module_path)
    if name not in names:
        raise KeyError(f"{name} not found in {module_path.name}")
    return ast.get_source_segment(source, names[name]) or ""


class _Normalise(ast.NodeTransformer):
    """Strip what cannot change a result: docstrings, messages of raised errors, log lines.

    Comments are gone already (the AST has none), so what is left is the code that runs.
    """

    def _strip_docstring(self, node):
        self.generic_visit(node)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Module = _strip_docstring

    def visit_Raise(self, node: ast.Raise):
        if isinstance(node.exc, ast.Call):
            node.exc = ast.Call(func=node.exc.func, args=[], keywords=[])
        return node

    def visit_Expr(self, node: ast.Expr):
        call = node.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) \
                and call.func.id in ("print", "_log"):
            return ast.Pass()
        return self.generic_visit(node)


def normalised_source(node: ast.AST) -> str:
    """The code of one definition as it runs: the same for a docstring or comment edit."""
    import copy

    return ast.unparse(_Normalise().visit(copy.deepcopy(node)))


def _module_imports(tree: ast.AST, package: Path) -> tuple[dict[str, tuple[str, str]],
                                                           dict[str, str]]:
    """Names bound by ``from .x import y`` (-> (file, name)) and ``from . import x`` (-> file)."""
    names: dict[str, tuple[str, str]] = {}
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                bound = alias.asname or alias.name
                if node.module is not None:
                    names[bound] = (f"{node.module}.py", alias.name)
                elif (package / f"{alias.name}.py").is_file():
                    modules[bound] = f"{alias.name}.py"
                else:  # a name defined in the package's __init__.py
                    names[bound] = ("__init__.py", alias.name)
    return names, modules


def code_fingerprints(roots: list[tuple[str, str]], package: Path = PACKAGE_DIR) -> dict[str, str]:
    """``"file.py:name" -> sha256`` of every mnist_core definition reachable from ``roots``.

    A static walk of the calls: each definition's names are looked up in its own module, in
    what it imports from mnist_core (``from .data import x``, ``from . import models``), and
    followed. Module-level statements that are not definitions (settings made at import
    time) count for every module reached. External libraries count through their versions.
    """
    parsed: dict[str, tuple[ast.Module, dict[str, ast.AST]]] = {}

    def module(file: str):
        if file not in parsed:
            path = package / file
            tree = ast.parse(path.read_text())
            parsed[file] = (tree, _top_level(path)[1])
        return parsed[file]

    prints: dict[str, str] = {}
    todo = list(roots)
    while todo:
        file, name = todo.pop()
        label = f"{file}:{name}"
        if label in prints or (file, name) in REGISTRIES:
            continue
        tree, defs = module(file)
        if name not in defs:
            raise KeyError(f"{name} not found in {file}")
        node = defs[name]
        prints[label] = _sha(normalised_source(node))
        if f"{file}:<module>" not in prints:
            loose = [n for n in tree.body if not isinstance(
                n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
                    ast.AnnAssign, ast.Import, ast.ImportFrom))]
            loose_code = "\n".join(normalised_source(n) for n in loose
                                    if not isinstance(n, ast.Expr) or not isinstance(
                                        getattr(n, "value", None), ast.Constant))
            prints[f"{file}:<module>"] = _sha(loose_code)
        imported, modules = _module_imports(tree, package)
        local_imported, local_modules = _module_imports(node, package)
        imported, modules = {**imported, **local_imported}, {**modules, **local_modules}
        for ref in ast.walk(node):
            if isinstance(ref, ast.Name):
                if ref.id in defs and ref.id != name:
                    todo.append((file, ref.id))
                elif ref.id in imported:
                    todo.append(imported[ref.id])
            elif isinstance(ref, ast.Attribute) and isinstance(ref.value, ast.Name) \
                    and ref.value.id in modules:
                target = modules[ref.value.id]
                if ref.attr in module(target)[1]:
                    todo.append((target, ref.attr))
    return dict(sorted(prints.items()))


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
    from .results import SCHEMA_VERSION

    builder = f"build_{config.model}"
    code = code_fingerprints([*TRAINING_ROOTS, ("models.py", builder)])
    return {
        "config": {**config.to_dict(), **MODELS[config.model].training_settings()},
        "code": code,
        "data_sha256": data_sha256,
        "versions": library_versions(),
        "schema_version": SCHEMA_VERSION,
    }


def experiment_key(inputs: dict) -> str:
    return _sha(json.dumps(inputs, sort_keys=True))[:12]


def explain_change(old: dict, new: dict, most: int = 3) -> list[str]:
    """Why an experiment is stale: the parts of its key inputs that differ.

    Code changes are named one by one up to ``most``; beyond that, by file, so that a
    change to shared code reads as one line rather than forty.
    """
    reasons, code = [], []
    for field, label in (("config", "config"), ("code", "code"), ("versions", "version")):
        before, after = old.get(field, {}), new.get(field, {})
        for name in sorted(set(before) | set(after)):
            if before.get(name) != after.get(name):
                if field == "code":
                    code.append(name)
                else:
                    reasons.append(f"{label} {name}: {before.get(name, '-')} -> "
                                   f"{after.get(name, '-')}")
    if len(code) <= most:
        reasons.extend(f"code changed: {name}" for name in code)
    else:
        files = sorted({name.split(":")[0] for name in code})
        reasons.append(f"code changed in {', '.join(files)} ({len(code)} definitions)")
    if old.get("data_sha256") != new.get("data_sha256"):
        reasons.append("data checksum changed")
    if old.get("schema_version") != new.get("schema_version"):
        reasons.append(f"results format: {old.get('schema_version', '-')} -> "
                       f"{new.get('schema_version', '-')}")
    return reasons


def _git(*args: str) -> str | None:
    try:
        # The commit of the code that ran: none when the package is installed from a wheel.
        out = subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpuinfo(field: str) -> str | None:
    """The first value of ``field`` in Linux's /proc/cpuinfo (None elsewhere, or unreadable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty elsewhere, or where unreadable)."""
    return frozenset((_cpuinfo("flags") or "").split())


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


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

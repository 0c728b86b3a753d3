"""The experiments of a results folder: which are current (keys), training the stale ones,
status and clean. Knows nothing of documents; mnist_core.build runs train -> render -> site.

TensorFlow is imported only when something must be trained, so a rebuild
after a template edit stays fast.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import filelock

from . import MnistReportError, UsageError, interrupts, log, quiet_tensorflow
from .config import DEFAULT_MODELS, MODELS, PRECISION_VARIABLE, ExperimentConfig, default_config
from .data import MNIST_SHA256, Mnist, describe_shapes, load_mnist
from .provenance import cpu_flags, experiment_key, explain_change, key_inputs, provenance
from .results import (MODEL_FILE, RESULTS_FILE, SCHEMA_VERSION, complete_by_model,
                      experiment_dir, is_complete, load_results, new_staging_dir, newest_results,
                      publish_dir, write_json_atomic)



@dataclass(frozen=True)
class BuildOptions:
    """What `mnist-report build` was asked to do."""

    out: Path = Path("results")
    data_dir: str | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    epochs: int | None = None
    seed: int = 1
    quick: bool = False
    force: tuple[str, ...] = ()
    render: bool = True
    # `quarto render` after the documents; the CLI turns it on (see quarto.render_site).
    site: bool = False

    def configs(self) -> list[ExperimentConfig]:
        return [default_config(m, epochs=self.epochs, seed=self.seed, quick=self.quick)
                for m in self.models]

    def __post_init__(self) -> None:
        unknown = [m for m in self.force if m not in self.models]
        if unknown:
            raise UsageError(
                f"--force {', '.join(unknown)}: not among the models being built "
                f"({', '.join(self.models)}); add it with --models")


@dataclass
class Planned:
    """One experiment of a build: where its results live and whether they are current."""

    config: ExperimentConfig
    inputs: dict
    key: str
    folder: Path
    fresh: bool
    reasons: list[str] = field(default_factory=list)


@contextmanager
def build_lock(out: Path):
    """One build per results folder at a time; a second one waits and says so.

    filelock takes an OS lock (flock on Unix, msvcrt on Windows) that dies with the
    process, so a killed build never leaves the folder locked.
    """
    out.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(out / ".lock")
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        log(f"waiting for the build already running in {out} ...")
        lock.acquire()
    try:
        interrupts.checkpoint("locked")
        yield
    finally:
        lock.release()


def plan(options: BuildOptions, data_sha256: str = MNIST_SHA256) -> list[Planned]:
    """Key every configured experiment and compare with what is on disk (``data_sha256``:
    the training data's checksum, by default verified MNIST's, so no files are read)."""
    planned = []
    previous = complete_by_model(options.out)
    for config in options.configs():
        inputs = key_inputs(config, data_sha256)
        key = experiment_key(inputs)
        folder = experiment_dir(options.out, config.model, key)
        fresh = is_complete(folder) and config.model not in options.force
        reasons: list[str] = []
        if config.model in options.force:
            reasons = ["forced (--force)"]
        elif not fresh:
            reasons = _stale_reasons(previous.get(config.model, []), inputs)
        planned.append(Planned(config, inputs, key, folder, fresh, reasons))
    return planned


def renderable(planned: list[Planned], out: Path) -> tuple[list[Path], dict[str, list[str]]]:
    """The folders to render: current ones, else the newest stale one (flagged), per model."""
    previous = complete_by_model(out)
    folders, stale = [], {}
    for item in planned:
        if is_complete(item.folder):
            folders.append(item.folder)
        elif previous.get(item.config.model):
            folders.append(newest_results(previous[item.config.model]))
            stale[item.config.model] = item.reasons
    return folders, stale


def current_folders(options: BuildOptions) -> set[Path]:
    """The folder of every model's current key, full and quick, with these epochs and seed.

    Whatever the flags of one command, results that any model's build would reuse today
    are never unreferenced.
    """
    folders = set()
    for quick in (False, True):
        wide = BuildOptions(out=options.out, models=tuple(MODELS), epochs=options.epochs,
                            seed=options.seed, quick=quick)
        folders.update(item.folder for item in plan(wide))
    return folders


def unreferenced(out: Path, keep: set[Path]) -> list[Path]:
    """Result folders outside ``keep``, and leftovers of interrupted builds."""
    root = out / "experiments"
    if not root.is_dir():
        return []
    names = {folder.name for folder in keep}
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and (p.name.startswith(".") or p.name not in names))


def remove_leftovers(out: Path) -> None:
    """What a killed build left half-written; safe to delete while we hold the lock.

    Staging folders of experiments, and the temporary files that documents are written to
    before they are renamed into place (``.tutorial.pdf.<random>.pdf`` and the like).
    """
    root = out / "experiments"
    if root.is_dir():
        for path in root.iterdir():
            if path.name.startswith((".tmp-", ".old-")):
                shutil.rmtree(path, ignore_errors=True)
    for path in Path(out).glob(".tutorial.*"):
        path.unlink(missing_ok=True)


def _stale_reasons(candidates: list[Path], inputs: dict) -> list[str]:
    """Explain against the newest earlier result of the same model, if any."""
    if not candidates:
        return ["no results yet"]
    newest = newest_results(candidates)
    try:
        old = load_results(newest).get("key_inputs", {})
    except MnistReportError:
        return ["previous results unreadable"]
    return explain_change(old, inputs) or ["no results for this key yet"]


def run_experiment(item: Planned, data: Mnist, out: Path,
                   position: tuple[int, int] = (1, 1), later: float = 0.0,
                   precision: str = "float32") -> Path:
    """Train (its layers computing in ``precision``), evaluate and save one experiment,
    publishing its folder only when complete.

    Only what the key covers is computed here; what the documents add (figures, the
    worked example) is made at render time.
    """
    quiet_tensorflow()  # TensorFlow loads here, only when needed
    from . import evaluate, models, train

    config = item.config
    splits = train.make_splits(data, config)
    log(f"training {config.model}: {len(splits.x_train)} training, {len(splits.x_val)} "
         f"validation, {len(splits.x_test)} test images, {config.epochs} epochs, "
         f"batch {config.batch_size}, seed {config.seed}"
         + (f", computing in bfloat16 ({PRECISION_VARIABLE}=float32 turns it off)"
            if precision == "bfloat16" else ""))
    run = train.train(config, splits, position, later, precision)
    log(f"{config.model}: trained in {run.wall_time_s:.1f} s; evaluating")
    # What is evaluated is what is saved, predicted with and exported: the trained network,
    # for the cnn inside ShiftedViews (its unsure images answered from nine views).
    served = models.served_model(run.model, config)
    evaluation = evaluate.evaluate(served, splits)
    interrupts.check()
    info = MODELS[config.model]
    results = {
        "schema_version": SCHEMA_VERSION,
        "experiment": config.model,
        "key": item.key,
        "key_inputs": item.inputs,
        "config": config.to_dict(),
        "model": {
            "name": config.model,
            "title": info.title,
            "summary": info.summary,
            "input_kind": info.input_kind,
            # The confidence under which the saved model answers from nine views (or None).
            "shifts_below": models.SHIFTS_BELOW if info.test_time_shifts else None,
            "params_total": int(run.model.count_params()),
            "params_trainable": int(sum(int(w.numpy().size) for w in run.model.trainable_weights)),
            "summary_text": models.summary_text(run.model),
            "summary_rows": models.summary_rows(run.model),
        },
        "data": {
            "source": data.source,
            "sha256": data.sha256,
            "shapes": data.shapes(),
            "shapes_text": describe_shapes(data),
            "train_size": len(splits.x_train),
            "val_size": len(splits.x_val),
            "test_size": len(splits.x_test),
            "train_samples": [{"true": int(data.y_train[i]), "image": data.x_train[i].tolist()}
                              for i in range(9)],
        },
        "history": run.history,
        "training": {
            "wall_time_s": run.wall_time_s,
            "epoch_times_s": run.epoch_times,
            "images_per_s": run.train_size * config.epochs / run.wall_time_s,
            "epochs": config.epochs,
            "precision": run.precision,
        },
        **evaluation,
        "provenance": provenance(data.sha256, data.source),
    }
    staging = new_staging_dir(out, config.model)
    try:
        served.save(staging / MODEL_FILE)
        interrupts.checkpoint("staged")
        # results.json last: its presence is what marks the folder complete.
        write_json_atomic(staging / RESULTS_FILE, results)
        publish_dir(staging, item.folder)
        interrupts.checkpoint("published")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    test = results["metrics"]["test"]
    log(f"{config.model}: test accuracy {test['accuracy']:.4f} ({test['errors']} errors "
         f"of {test['size']}); results in {item.folder}")
    return item.folder


PRECISIONS = ("float32", "bfloat16")
# Where oneDNN has bfloat16 matrix instructions (AVX512_BF16 on AMD Zen 4 and Intel Cooper Lake
# or later, AMX on Sapphire Rapids) bfloat16 is faster than float32 (docs/benchmarks.md);
# without them it is emulated and slower.
BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def training_precision(model: str, flags: frozenset[str] | None = None) -> str:
    """"bfloat16" (Keras' mixed precision: bfloat16 arithmetic, float32 weights) for a model
    that allows it (``ModelInfo.bfloat16``) on a CPU with bfloat16 instructions, else "float32".

    $MNIST_REPORT_PRECISION=float32 or bfloat16 overrides the CPU check (``auto``: the check).
    The precision is not part of a result's key: like the kernels oneDNN picks for a CPU, it
    changes how this machine computes a result, not what is computed.
    """
    value = os.environ.get(PRECISION_VARIABLE, "")
    wanted = value.strip().lower() or "auto"
    if wanted not in (*PRECISIONS, "auto"):
        raise MnistReportError(f"{PRECISION_VARIABLE}={value!r}: use auto, float32 or bfloat16")
    if not MODELS[model].bfloat16 or wanted == "float32":
        return "float32"
    if wanted == "bfloat16":
        return "bfloat16"
    return "bfloat16" if BFLOAT16_FLAGS & (cpu_flags() if flags is None else flags) else "float32"


def training_work(config: ExperimentConfig, available: int, precision: str = "float32") -> float:
    """How much training ``config`` asks for out of ``available`` images, in ``precision``,
    in ``ModelInfo.train_cost``'s seconds."""
    images = min(config.train_limit or available, available) - config.val_size
    info = MODELS[config.model]
    cost = (info.bfloat16_cost or info.train_cost) if precision == "bfloat16" else info.train_cost
    return cost * images / 1000 * config.epochs


def train_stale(options: BuildOptions, data: Mnist) -> tuple[list[Planned], list[str]]:
    """Plan, then train every experiment without current results. Call under ``build_lock``."""
    remove_leftovers(options.out)
    planned = plan(options, data.sha256)
    stale = [item for item in planned if not item.fresh]
    for item in planned:
        if item.fresh:
            log(f"{item.config.model}: up to date ({item.folder.name}), reusing")
    # Decided once per model, before anything is printed or trained: a bad
    # $MNIST_REPORT_PRECISION stops the build here.
    precisions = [training_precision(item.config.model) for item in stale]
    work = [training_work(item.config, len(data.x_train), precision)
            for item, precision in zip(stale, precisions)]
    if stale:
        print(describe_shapes(data), flush=True)  # as the classic tutorial does
    trained = []
    for n, item in enumerate(stale, 1):
        log(f"model {n} of {len(stale)}: {item.config.model} needs training "
            f"({'; '.join(item.reasons)})")
        run_experiment(item, data, Path(options.out), (n, len(stale)),
                       later=sum(work[n:]) / work[n - 1], precision=precisions[n - 1])
        trained.append(item.config.model)
        interrupts.check()
    return planned, trained


def train_experiments(options: BuildOptions) -> list[str]:
    """Train the stale experiments of ``options`` under the folder's lock; no documents."""
    with interrupts.deferred(), build_lock(Path(options.out)):
        return train_stale(options, load_mnist(options.data_dir))[1]


def status(options: BuildOptions) -> dict:
    """Each configured experiment, fresh or stale with the reason, and unreferenced folders."""
    out = Path(options.out)
    return {"planned": plan(options), "unreferenced": unreferenced(out, current_folders(options))}


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def clean(options: BuildOptions, dry_run: bool = False) -> list[tuple[Path, int]]:
    """Remove result folders that no current key of any model (full or quick) points to.

    Returns each folder with its size in bytes; ``dry_run`` removes nothing.
    """
    out = Path(options.out)
    with interrupts.deferred(), build_lock(out):
        doomed = [(path, folder_size(path)) for path in unreferenced(out, current_folders(options))]
        if not dry_run:
            for path, _ in doomed:
                shutil.rmtree(path)
                interrupts.check()
        return doomed

"""CI guard: the documents exist and the current results are in their expected ranges."""

from __future__ import annotations

import sys
from pathlib import Path

from mnist_core.build import BuildOptions, plan
from mnist_core.results import best_experiment, load_results

# Guards, not targets: a build outside these ranges is broken, not unlucky.
RANGES = {"classic": (0.85, 0.91)}
BEST_AT_LEAST = 0.995


def main(out: Path) -> int:
    failures = []
    for name in ("tutorial.html", "tutorial.pdf", "tutorial.ipynb"):
        path = out / name
        if not path.is_file() or path.stat().st_size < 10_000:
            failures.append(f"{path} is missing or too small")
    accuracies, current = {}, []
    for item in plan(BuildOptions(out=out)):
        if not item.fresh:
            failures.append(f"{item.config.model}: no current results ({'; '.join(item.reasons)})")
            continue
        results = load_results(item.folder)
        current.append(results)
        accuracy = results["metrics"]["test"]["accuracy"]
        accuracies[item.config.model] = accuracy
        low, high = RANGES.get(item.config.model, (0.0, 1.0))
        status = "ok" if low <= accuracy <= high else "OUT OF RANGE"
        print(f"{item.config.model}: test accuracy {accuracy:.4f} (allowed {low}-{high}) {status}")
        if status != "ok":
            failures.append(f"{item.config.model}: test accuracy {accuracy:.4f} not in {low}-{high}")
    if current:
        best = best_experiment(current)["experiment"]  # the documents' and predict's choice
        print(f"best model (by validation accuracy): {best}, test accuracy {accuracies[best]:.4f} "
              f"(must be at least {BEST_AT_LEAST})")
        if accuracies[best] < BEST_AT_LEAST:
            failures.append(f"best model {best}: {accuracies[best]:.4f} < {BEST_AT_LEAST}")
    for failure in failures:
        print(f"CI check failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "results")))

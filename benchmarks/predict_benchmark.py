"""Is `predict` faithful to MNIST, and fast? Round trip through PNG files, throughput, start-up.

Usage: python benchmarks/predict_benchmark.py [--model PATH] [--out results] [--json FILE]

1. Round trip: the 10,000 MNIST test images are written as PNG files, read back through
   `preprocess` and classified; accuracy is compared with feeding the arrays directly.
2. Throughput in process: images/second for a batch (all 10,000 preprocessed images) and
   the median latency of one warm image (preprocess + model).
3. CLI start-up to first answer for one image (a fresh process each time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mnist_core.data import load_mnist  # noqa: E402
from mnist_core.predict import Recognizer, find_best_model  # noqa: E402
from mnist_core.preprocess import preprocess  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "results")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    model_path = args.model or find_best_model(args.out)
    data = load_mnist(args.data_dir)
    recognizer = Recognizer(model_path)
    x, y = data.x_test, data.y_test

    direct = (recognizer.probabilities(x).argmax(1) == y).mean()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"{i:05d}.png" for i in range(len(x))]
        for path, image in zip(paths, x):
            Image.fromarray(image).save(path)
        start = time.perf_counter()
        batch = np.stack([preprocess(path) for path in paths])
        probs = recognizer.probabilities(batch)
        batch_seconds = time.perf_counter() - start
        round_trip = (probs.argmax(1) == y).mean()
        identical = float((batch == x).reshape(len(x), -1).all(axis=1).mean())

        arrays_start = time.perf_counter()
        recognizer.probabilities(np.stack([preprocess(image) for image in x]))
        arrays_seconds = time.perf_counter() - arrays_start

        recognizer.recognize(paths[0])  # warm
        latencies = []
        for path in paths[:300]:
            t = time.perf_counter()
            recognizer.recognize(path)
            latencies.append(time.perf_counter() - t)

        startup = []
        for path in paths[:3]:
            t = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "mnist_core.cli", "predict", str(path),
                                  "--model", str(model_path)], capture_output=True, text=True,
                                 cwd=REPO)
            startup.append(time.perf_counter() - t)
            assert run.returncode == 0, run.stderr
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True)
        tf_import = time.perf_counter() - t

    result = {
        "model": str(model_path),
        "direct_accuracy": float(direct),
        "round_trip_accuracy": float(round_trip),
        "round_trip_loss_points": float(100 * (direct - round_trip)),
        "bit_identical_fraction": identical,
        "batch_png_images_per_s": len(x) / batch_seconds,
        "batch_array_images_per_s": len(x) / arrays_seconds,
        "single_warm_ms_median": 1000 * statistics.median(latencies),
        "cli_first_answer_s_median": statistics.median(startup),
        "tensorflow_import_s": tf_import,
    }
    print(f"model: {model_path}")
    print("| measure | value |\n|---|--:|")
    print(f"| test accuracy, arrays fed directly | {100 * direct:.2f}% |")
    print(f"| test accuracy, PNG files through preprocess | {100 * round_trip:.2f}% |")
    print(f"| accuracy lost in the round trip | {result['round_trip_loss_points']:.2f} points |")
    print(f"| test images bit-identical after preprocess | {100 * identical:.1f}% |")
    print(f"| batch throughput, PNG files (decode + preprocess + model) | "
          f"{result['batch_png_images_per_s']:,.0f} images/s |")
    print(f"| batch throughput, arrays (preprocess + model) | "
          f"{result['batch_array_images_per_s']:,.0f} images/s |")
    print(f"| one warm image (PNG file, preprocess + model), median | "
          f"{result['single_warm_ms_median']:.1f} ms |")
    print(f"| CLI start-up to first answer, median of 3 | {result['cli_first_answer_s_median']:.2f} s |")
    print(f"| of which `import tensorflow` alone | {tf_import:.2f} s |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

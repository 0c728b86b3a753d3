"""`mnist-report predict` and the preprocessing behind it, on real MNIST and drawn digits."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_core import MnistReportError
from mnist_core.predict import Recognizer, find_best_model, preprocess, preprocess_steps

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
DRAWN = {
    "seven_black_on_white.png": 7,
    "two_white_on_black.jpg": 2,
    "four_rgba_transparent.png": 4,
    "one_palette.png": 1,
    "zero_16bit.png": 0,
}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, mnist):
    """A small real model: the mlp on 12,000 images for 3 epochs (about 92% accurate)."""
    from mnist_core import train
    from mnist_core.config import ExperimentConfig

    config = ExperimentConfig(model="mlp", epochs=3, train_limit=12000, val_size=1000,
                              test_limit=1000)
    run = train.train(config, train.make_splits(mnist, config))
    path = tmp_path_factory.mktemp("model") / "model.keras"
    run.model.save(path)
    return path


def cli(*args: str):
    return subprocess.run([sys.executable, "-m", "mnist_core.cli", "predict", *args],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)


def test_preprocess_leaves_mnist_digits_as_they_are(mnist):
    images = mnist.x_test[:1000]
    processed = np.stack([preprocess(image) for image in images])
    diff = np.abs(processed.astype(int) - images.astype(int))
    assert diff.mean() < 0.1
    assert (diff.reshape(1000, -1).max(axis=1) == 0).mean() > 0.8


def test_preprocess_undoes_inversion_and_size(mnist):
    digit = mnist.x_test[0]
    photo = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BICUBIC)
    padded = Image.new("L", (500, 400), 255)
    padded.paste(photo, (30, 90))
    result = preprocess(padded).astype(int)
    assert np.abs(result - digit.astype(int)).mean() < 8
    steps = preprocess_steps(padded)
    assert [name for name, _ in steps] == ["gray levels", "light on dark", "cropped",
                                           "fit in 20x20", "28x28, centred"]
    assert max(steps[3][1].shape) == 20 and steps[4][1].shape == (28, 28)


def test_recognize_path_pil_array_and_batch(model_path, mnist):
    recognizer = Recognizer(model_path)
    digit = mnist.x_test[1]  # a 2
    assert mnist.y_test[1] == 2
    from_array = recognizer.recognize(digit)
    from_pil = recognizer.recognize(Image.fromarray(digit))
    assert from_array.digit == from_pil.digit == 2
    assert from_array.probabilities == pytest.approx(from_pil.probabilities)
    assert sum(from_array.probabilities) == pytest.approx(1.0)
    batch = recognizer.recognize_batch([DATA / name for name in DRAWN])
    assert [p.digit for p in batch] == list(DRAWN.values())
    accuracy = (recognizer.probabilities(mnist.x_test[:2000]).argmax(1) == mnist.y_test[:2000])
    assert accuracy.mean() > 0.9


def _bad_files(tmp: Path) -> dict[str, str]:
    """Every kind of bad input, with the message each must give."""
    (tmp / "empty.png").write_bytes(b"")
    (tmp / "notes.txt").write_text("not an image")
    png = (DATA / "seven_black_on_white.png").read_bytes()
    (tmp / "truncated.png").write_bytes(png[: len(png) // 2])
    Image.new("L", (64, 64), 200).save(tmp / "blank.png")
    Image.new("1", (15000, 12500)).save(tmp / "huge.png")
    (tmp / "folder").mkdir()
    return {
        str(tmp / "missing.png"): "no such file",
        str(tmp / "folder"): "is a directory",
        str(tmp / "empty.png"): r"empty file \(0 bytes\)",
        str(tmp / "notes.txt"): "not an image Pillow can read",
        str(tmp / "truncated.png"): "damaged or truncated image",
        str(tmp / "blank.png"): "blank image: no digit found",
        str(tmp / "huge.png"): "image too large",
    }


def test_animated_gif_uses_first_frame(tmp_path, model_path):
    seven = Image.open(DATA / "seven_black_on_white.png").convert("L")
    blank = Image.new("L", seven.size, 235)
    seven.save(tmp_path / "anim.gif", save_all=True, append_images=[blank, blank], duration=100)
    assert Recognizer(model_path).recognize(tmp_path / "anim.gif").digit == 7


def test_cli_batch_with_bad_files_reports_each_and_keeps_going(tmp_path, model_path):
    import re

    bad = _bad_files(tmp_path)
    good = [str(DATA / name) for name in DRAWN]
    run = cli(*good[:2], *bad, *good[2:], "--model", str(model_path))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("mnist-report: error:")]
    assert len(errors) == len(bad)
    for path, message in bad.items():
        assert any(path in line and re.search(message, line) for line in errors), (path, errors)
    lines = run.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == good
    for line, expected in zip(lines, DRAWN.values()):
        assert re.fullmatch(rf".*: {expected} \(\d+\.\d%\), runner-up \d \(\d+\.\d%\)", line)


def test_cli_json(model_path):
    run = cli(*(str(DATA / name) for name in DRAWN), "--model", str(model_path), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert [r["digit"] for r in report] == list(DRAWN.values())
    for r in report:
        assert set(r) == {"file", "digit", "confidence", "probabilities"}
        assert len(r["probabilities"]) == 10 and sum(r["probabilities"]) == pytest.approx(1.0)
        assert r["confidence"] == max(r["probabilities"])


def test_model_missing_or_not_keras(tmp_path):
    image = str(DATA / "seven_black_on_white.png")
    run = cli(image, "--model", str(tmp_path / "none.keras"))
    assert run.returncode == 1 and "model file not found" in run.stderr
    (tmp_path / "fake.keras").write_text("I am not a model")
    run = cli(image, "--model", str(tmp_path / "fake.keras"))
    assert run.returncode == 1 and "not a Keras model" in run.stderr
    with zipfile.ZipFile(tmp_path / "zip.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    run = cli(image, "--model", str(tmp_path / "zip.keras"))
    assert run.returncode == 1 and "not a Keras model" in run.stderr
    assert "Traceback" not in run.stderr


def test_no_model_in_results_says_to_build(tmp_path):
    run = cli(str(DATA / "seven_black_on_white.png"), "--out", str(tmp_path))
    assert run.returncode == 1 and "run `mnist-report build` first" in run.stderr
    with pytest.raises(MnistReportError):
        find_best_model(tmp_path)


def test_safe_mode_refuses_code_in_a_model(tmp_path):
    import keras

    model = keras.Sequential([keras.Input(shape=(784,)),
                              keras.layers.Lambda(lambda x: x * 2),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(MnistReportError, match="not a Keras model"):
        Recognizer(tmp_path / "lambda.keras")


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

from mnist_core import MnistReportError, calibration, photos
from mnist_core.predict import Recognizer, find_best_model, unsure_reason
from mnist_core.preprocess import MIN_CONTRAST, prepare, preprocess, preprocess_steps

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# Photo-like pictures drawn by tests/data/make_digits.py: (file, digit or None for "not one digit")
PHOTOS = {
    "five_gray_paper.jpg": 5,
    "two_sideways_exif.jpg": 2,
    "four_small_on_page.jpg": 4,
    "seven_red_lined.jpg": 7,
}
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
    assert [name for name, _ in steps] == ["gray levels", "light on dark", "ink found",
                                           "cropped", "fit in 20x20", "28x28, centred"]
    assert max(steps[4][1].shape) == 20 and steps[5][1].shape == (28, 28)


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
        assert re.fullmatch(rf".*: {expected} \(\d+\.\d%\), runner-up \d \(\d+\.\d%\)"
                            r"( \(unsure\))?", line)


def test_cli_json(model_path):
    run = cli(*(str(DATA / name) for name in DRAWN), "--model", str(model_path), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert [r["digit"] for r in report] == list(DRAWN.values())
    for r in report:
        assert set(r) == {"file", "digit", "confidence", "probabilities", "unsure"}
        assert isinstance(r["unsure"], bool)
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



# --- Real photos ---------------------------------------------------------------------------------

def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two images, each blurred a little (a one-pixel shift is no difference)."""
    from scipy import ndimage

    a, b = (ndimage.gaussian_filter(np.asarray(i, float), 1.0).ravel() for i in (a, b))
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("condition", list(photos.CONDITIONS))
def test_photo_conditions_give_the_clean_digit(condition, mnist):
    """Each photo condition of the benchmark, on three test digits: the 28x28 input the model
    gets is the one the clean MNIST digit gives (gray paper read with a fixed gray level, or a
    sideways photo, or a speck in the crop would not be)."""
    rng = np.random.default_rng(7)
    scores = [_similarity(preprocess(photos.CONDITIONS[condition](mnist.x_test[i], rng)),
                          mnist.x_test[i]) for i in range(3)]
    assert min(scores) > 0.7 and np.mean(scores) > 0.85, scores


def test_exif_orientation_is_applied_first(tmp_path, mnist):
    rng = np.random.default_rng(3)
    upright = photos.photo(photos.coverage(mnist.x_test[0], 200, rng), rng, noise=(1, 2))
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to view"
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "side.jpg", quality=95,
                                                      exif=exif.tobytes())
    upright.save(tmp_path / "up.jpg", quality=95)
    side, up = preprocess(tmp_path / "side.jpg"), preprocess(tmp_path / "up.jpg")
    assert _similarity(side, up) > 0.95
    assert _similarity(np.rot90(side), up) < 0.8  # the tag really mattered


def test_specks_and_far_marks_are_dropped_a_digits_parts_kept(mnist):
    digit = np.zeros((200, 300), np.uint8)
    digit[40:180, 60:200] = np.asarray(Image.fromarray(mnist.x_test[0]).resize((140, 140)))
    clean = preprocess(digit)
    specked = digit.copy()
    specked[10:14, 280:284] = 255          # a speck far away
    specked[100:103, 220:223] = 255        # a speck near the digit
    assert _similarity(preprocess(specked), clean) > 0.98
    assert prepare(specked).other_marks == 0
    # A 5 whose top bar does not touch its body: both parts are the digit.
    five = np.zeros((120, 100), np.uint8)
    five[10:18, 30:80] = 255                                   # the bar, apart
    five[26:60, 30:38] = 255                                   # the body: down, round, back
    five[52:60, 30:70] = 255
    five[52:100, 66:74] = 255
    five[92:100, 25:74] = 255
    steps = dict(preprocess_steps(five))
    assert (steps["ink found"] == 255).sum() == (five > 0).sum()
    # Two digits side by side, apart: a second digit-sized mark.
    pair = np.concatenate([digit[:, 40:220], digit[:, 40:220]], axis=1)
    assert prepare(pair).other_marks == 1


def test_dark_or_light_ink_on_any_paper_level(mnist):
    digit = mnist.x_test[3].astype(float) / 255
    big = np.asarray(Image.fromarray(digit.astype(np.float32), "F").resize((112, 112)))
    for paper, ink in [(120, 30), (95, 10), (140, 200), (30, 230), (230, 120)]:
        picture = np.clip(paper + (ink - paper) * np.clip(big, 0, 1), 0, 255).astype(np.uint8)
        assert _similarity(preprocess(picture), mnist.x_test[3]) > 0.9, (paper, ink)


def test_photo_pictures_read_right(model_path):
    recognizer = Recognizer(model_path)
    for name, digit in PHOTOS.items():
        prepared = prepare(DATA / name)
        assert prepared.other_marks == 0 and prepared.contrast > MIN_CONTRAST, name
        assert recognizer.recognize(DATA / name).digit == digit, name


def test_not_one_digit_is_unsure(model_path):
    empty = prepare(DATA / "empty_gray_page.jpg")
    assert unsure_reason(empty, 1.0, 0.0) == "no clear ink"
    pair = prepare(DATA / "two_digits_47.jpg")
    assert unsure_reason(pair, 1.0, 0.0) == "more than one mark"
    five = prepare(DATA / "five_gray_paper.jpg")
    assert unsure_reason(five, 0.99, 0.9) is None
    assert unsure_reason(five, 0.5, 0.9) == "low confidence"
    with pytest.raises(MnistReportError, match="blank image"):
        preprocess(np.full((50, 50), 128, np.uint8))


def test_cli_unsure_and_min_confidence(model_path):
    files = [str(DATA / "five_gray_paper.jpg"), str(DATA / "empty_gray_page.jpg")]
    run = cli(*files, "--model", str(model_path), "--json", "--min-confidence", "0")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert [r["unsure"] for r in report] == [False, True]  # an empty page, whatever the threshold
    run = cli(*files, "--model", str(model_path), "--min-confidence", "1")
    assert run.returncode == 0, run.stderr
    assert all(line.endswith(" (unsure)") for line in run.stdout.splitlines())
    from mnist_core.cli import parser
    from mnist_core.predict import MIN_CONFIDENCE

    helps = parser()._subparsers._group_actions[0].choices["predict"].format_help()
    assert f"default: {MIN_CONFIDENCE}" in " ".join(helps.split())  # the help tells the truth
    run = cli(*files, "--model", str(model_path), "--min-confidence", "1.5")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "error: argument --min-confidence: expected a number from 0 to 1" in run.stderr


# --- Calibration ----------------------------------------------------------------------------

def test_temperature_is_recovered_and_ece_falls():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20000, 10))
    true_t = 2.5  # the labels follow softmax(logits / 2.5); the model claims softmax(logits)
    truth = calibration.apply_temperature(np.exp(logits), true_t)
    labels = (truth.cumsum(axis=1) > rng.random((len(truth), 1))).argmax(axis=1)
    claimed = calibration.apply_temperature(np.exp(logits), 1.0)
    fitted = calibration.fit_temperature(claimed[:10000], labels[:10000])
    assert fitted == pytest.approx(true_t, rel=0.05)
    before = calibration.expected_calibration_error(claimed[10000:], labels[10000:])
    after = calibration.expected_calibration_error(
        calibration.apply_temperature(claimed[10000:], fitted), labels[10000:])
    assert before > 0.1 and after < 0.02
    # the predicted digit never changes
    assert (calibration.apply_temperature(claimed, fitted).argmax(1) == claimed.argmax(1)).all()


def test_evaluation_calibrates_on_validation_and_predict_uses_it(quick_build, model_path):
    results = json.loads((quick_build["folder"] / "results.json").read_text())
    cal = results["calibration"]
    assert cal["validation_size"] == results["metrics"]["validation"]["size"] > 0
    assert 0.05 < cal["temperature"] < 20 and cal["temperature"] != pytest.approx(1.0, abs=1e-3)
    assert 0 <= cal["test_ece_after"] <= 1 and 0 <= cal["test_ece_before"] <= 1
    recognizer = Recognizer(quick_build["folder"] / "model.keras")
    assert recognizer.temperature == pytest.approx(cal["temperature"])
    raw = recognizer.raw_probabilities(np.zeros((1, 28, 28), np.uint8))
    assert recognizer.probabilities(np.zeros((1, 28, 28), np.uint8)) == pytest.approx(
        calibration.apply_temperature(raw, cal["temperature"]))
    assert Recognizer(model_path).temperature == 1.0  # a bare model file: as it is

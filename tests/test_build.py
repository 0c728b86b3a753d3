"""A real (short) build: results folder, figures, documents, reuse and atomicity."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from pypdf import PdfReader

from mnist_core import MnistReportError
from mnist_core.config import ExperimentConfig
from mnist_core.results import list_experiment_dirs, load_results

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_results_folder_is_complete(quick_build):
    folder = quick_build["folder"]
    results = load_results(folder)
    assert quick_build["summary"]["trained"] == ["classic"]
    assert quick_build["summary"]["documents"] == {
        "html": quick_build["out"] / "tutorial.html", "pdf": quick_build["out"] / "tutorial.pdf",
        "notebook": quick_build["out"] / "tutorial.ipynb"}
    assert results["experiment"] == "classic"
    # --quick: 3,000 training images of which the last 500 validate, the first 1,000 test images.
    assert (results["data"]["train_size"], results["data"]["val_size"],
            results["data"]["test_size"]) == (2500, 500, 1000)
    assert results["config"]["epochs"] == 1 and results["config"]["seed"] == 1
    assert results["model"]["params_trainable"] == 63018
    assert "Dense" in results["model"]["summary_text"]
    assert len(results["model"]["summary_rows"]) == 7  # the Input, as the functional API has it
    for metric in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert len(results["history"][metric]) == 1
    assert len(results["training"]["epoch_times_s"]) == 1
    analysis = results["analysis"]
    test = results["metrics"]["test"]
    assert len(analysis["predicted"]) == test["size"] == 1000
    assert len(analysis["correct_indices"]) + len(analysis["wrong_indices"]) == 1000
    assert test["errors"] == len(analysis["wrong_indices"])
    assert abs(test["accuracy"] - len(analysis["correct_indices"]) / 1000) < 1e-6
    assert sum(map(sum, analysis["confusion_matrix"])) == 1000
    for sample in analysis["wrong_samples"]:
        assert sample["true"] != sample["predicted"]
        assert len(sample["image"]) == 28 and len(sample["image"][0]) == 28
    assert results["provenance"]["data_sha256"] == results["data"]["sha256"]
    for name in ("loss", "accuracy", "correct", "wrong"):
        assert (folder / "figures" / f"{name}.svg").stat().st_size > 1000
    assert (folder / "model.keras").stat().st_size > 100_000


def test_grid_titles_follow_the_classic_tutorial(quick_build):
    svg = (quick_build["folder"] / "figures" / "wrong.svg").read_text()
    results = load_results(quick_build["folder"])
    first = results["analysis"]["wrong_samples"][0]
    # Matplotlib writes text as paths; the title survives in the SVG's comments.
    assert f"Predicted {first['predicted']}, Class {first['true']}" in svg


def test_html_is_self_contained_with_curves_and_grids(quick_build):
    html = (quick_build["out"] / "tutorial.html").read_text()
    for figure_id in ("fig-loss", "fig-accuracy", "fig-correct", "fig-wrong"):
        match = re.search(rf'<figure id="{figure_id}"><img src="data:image/svg\+xml;base64,', html)
        assert match, f"{figure_id} missing or not embedded"
    # Nothing the page shows is loaded from elsewhere; links lead to the PDF, the notebook
    # written beside it, or the sources it credits.
    assert not re.search(r'src="(?!data:)', html)
    assert not re.search(r'href="(?!data:|#|tutorial.pdf|tutorial.ipynb|https://)', html)
    results = load_results(quick_build["folder"])
    accuracy = f"{100 * results['metrics']['test']['accuracy']:.2f}%"
    assert f"Test accuracy: <strong>{accuracy}</strong>" in html
    assert "X_train original shape (60000, 28, 28)" in html
    assert "LeCun" in html and "CC BY-SA 3.0" in html


def test_pdf_has_accuracy_summary_table_and_toc(quick_build):
    reader = PdfReader(quick_build["out"] / "tutorial.pdf")
    text = "\n".join(page.extract_text() for page in reader.pages)
    results = load_results(quick_build["folder"])
    accuracy = f"{100 * results['metrics']['test']['accuracy']:.2f}%"
    assert accuracy in text
    assert "Contents" in text and "The model summary" in text
    for row in results["model"]["summary_rows"]:
        assert row["layer"] in text
    assert "50,240" in text  # first Dense layer's parameters, from the summary table
    assert "LeCun" in text
    assert len(reader.pages) >= 5


def test_rebuild_reuses_results_without_tensorflow(quick_build, mnist_dir):
    out = quick_build["out"]
    html_before = (out / "tutorial.html").read_bytes()
    code = (
        "import sys; from mnist_core.build import BuildOptions, build;"
        f"s = build(BuildOptions(out=__import__('pathlib').Path({str(out)!r}), "
        f"data_dir={str(mnist_dir)!r}, models=('classic',), quick=True));"
        "print('TRAINED', s['trained']); print('TF', 'tensorflow' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "TRAINED []" in run.stdout and "TF False" in run.stdout
    assert "up to date" in run.stdout
    assert (out / "tutorial.html").read_bytes() == html_before


def test_failed_experiment_leaves_no_folder(tmp_path, mnist_dir, monkeypatch):
    from mnist_core import experiments
    from mnist_core.build import BuildOptions, build

    def broken(*args, **kwargs):
        raise RuntimeError("disk full (simulated)")

    # Writing results.json, the last step of an experiment, fails.
    monkeypatch.setattr(experiments, "write_json_atomic", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        build(BuildOptions(out=tmp_path, data_dir=str(mnist_dir), models=("classic",),
                           quick=True))
    assert list_experiment_dirs(tmp_path) == []
    assert [p.name for p in (tmp_path / "experiments").iterdir()] == []
    assert not (tmp_path / "tutorial.html").exists()


def test_saved_model_gives_the_reported_numbers(quick_build, mnist):
    """results.json describes the model saved beside it, on the images the config names."""
    import keras
    import numpy as np

    from mnist_core.train import prepare

    folder = quick_build["folder"]
    results = load_results(folder)
    config = results["config"]
    model = keras.saving.load_model(folder / "model.keras", safe_mode=True)

    def accuracy_on(images, labels):
        predicted = model.predict(prepare(images, labels, flat=True)[0], batch_size=1000,
                                  verbose=0).argmax(1)
        return predicted, float((predicted == labels).mean())

    x_test, y_test = mnist.x_test[:config["test_limit"]], mnist.y_test[:config["test_limit"]]
    predicted, test_accuracy = accuracy_on(x_test, y_test)
    assert predicted.tolist() == results["analysis"]["predicted"]
    assert test_accuracy == pytest.approx(results["metrics"]["test"]["accuracy"], abs=1e-6)
    # Validation: the last val_size of the training images used, never test images.
    end = config["train_limit"]
    _, val_accuracy = accuracy_on(mnist.x_train[end - config["val_size"]:end],
                                  mnist.y_train[end - config["val_size"]:end])
    assert val_accuracy == pytest.approx(results["metrics"]["validation"]["accuracy"], abs=1e-6)
    # Keras' own end-of-epoch validation saw the same images (one image is 0.002).
    assert results["history"]["val_accuracy"][-1] == pytest.approx(val_accuracy, abs=0.0021)
    # The confusion matrix counts these test images; the samples are these images.
    matrix = np.array(results["analysis"]["confusion_matrix"])
    assert matrix.sum(axis=1).tolist() == np.bincount(y_test, minlength=10).tolist()
    assert np.trace(matrix) == round(test_accuracy * len(y_test))
    for sample in results["analysis"]["wrong_samples"] + results["analysis"]["correct_samples"]:
        assert sample["image"] == x_test[sample["index"]].tolist()
        assert sample["true"] == y_test[sample["index"]]
        assert sample["predicted"] == predicted[sample["index"]]


def test_results_json_is_plain_json(quick_build):
    data = json.loads((quick_build["folder"] / "results.json").read_text())
    assert data["schema_version"] == 1
    assert data["key"] in quick_build["folder"].name


def test_progress_line_estimates_the_model_and_the_rest_of_the_build(capsys):
    import time

    from mnist_core.config import default_config
    from mnist_core.experiments import training_work
    from mnist_core.train import Progress

    progress = Progress("mlp", 10, (2, 3), later=2.0)
    progress._start = time.perf_counter() - 20.0  # four of ten epochs took 20 s
    progress.on_epoch_end(3, {"accuracy": 0.9, "loss": 0.3})
    line = capsys.readouterr().out
    assert "mlp (model 2 of 3) Epoch 4/10: accuracy 90.00%, loss 0.3000" in line
    # 30 s left for mlp (50 s in all), then twice mlp's training: 130 s.
    assert "20s elapsed, about 30s left for mlp, about 2m10s until all 3 models are trained" in line

    last = Progress("cnn", 15, (3, 3))
    last._start = time.perf_counter() - 30.0
    last.on_epoch_end(14, {})
    assert capsys.readouterr().out.rstrip().endswith("about 0s left for cnn")

    # The default build's first model: the cnn's work dwarfs the classic network's.
    full = [training_work(default_config(m), 60_000) for m in ("classic", "mlp", "cnn")]
    assert full[2] > 10 * full[0] and full[1] > full[0]
    quick = training_work(default_config("cnn", quick=True), 60_000)
    assert quick == pytest.approx(full[2] * 2500 / 55000 / 15)
    # Training in bfloat16, the cnn is estimated at its measured bfloat16 cost.
    in_float32 = training_work(default_config("cnn"), 60_000, "float32")
    in_bfloat16 = training_work(default_config("cnn"), 60_000, "bfloat16")
    assert 0.3 * in_float32 < in_bfloat16 < 0.8 * in_float32


@pytest.mark.parametrize("flags, variable, expected", [
    ({"avx2", "avx512f", "avx512_bf16"}, None, {"cnn": "bfloat16", "mlp": "float32"}),
    ({"avx2", "amx_bf16"}, "auto", {"cnn": "bfloat16", "classic": "float32"}),
    ({"avx2", "avx512f"}, None, {"cnn": "float32", "keras_example": "float32"}),
    ({"avx2", "avx512_bf16"}, "float32", {"cnn": "float32"}),
    ({"avx2"}, "BFloat16", {"cnn": "bfloat16", "classic": "float32"}),
])
def test_training_precision_follows_the_cpu_and_the_variable(monkeypatch, flags, variable,
                                                             expected):
    from mnist_core.experiments import PRECISION_VARIABLE, training_precision

    if variable is None:
        monkeypatch.delenv(PRECISION_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(PRECISION_VARIABLE, variable)
    assert {m: training_precision(m, frozenset(flags)) for m in expected} == expected


def test_training_precision_names_a_bad_variable(monkeypatch):
    from mnist_core.experiments import training_precision

    monkeypatch.setenv("MNIST_REPORT_PRECISION", "Half")
    with pytest.raises(MnistReportError, match="MNIST_REPORT_PRECISION='Half'.*auto, float32"):
        training_precision("cnn", frozenset())


def test_bfloat16_training_gives_a_float32_network(mnist, tmp_path):
    """Trained in bfloat16, the cnn is evaluated, saved and exported as a float32 network with
    the trained weights, and training leaves Keras' global dtype policy as it was."""
    import warnings

    import keras
    import numpy as np

    from mnist_core import train

    config = ExperimentConfig(model="cnn", epochs=1, val_size=200, train_limit=1200,
                              test_limit=200)
    splits = train.make_splits(mnist, config)
    trained = train.built(config, 10, "bfloat16")
    assert trained.layers[1].dtype_policy.compute_dtype == "bfloat16"
    assert trained.layers[-1].dtype_policy.compute_dtype == "float32"  # the softmax
    run = train.train(config, splits, precision="bfloat16")
    assert run.precision == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    assert {layer.dtype_policy.name for layer in run.model.layers} == {"float32"}
    assert "val_accuracy" in run.history and len(run.epoch_times) == 1
    probs = np.asarray(run.model.predict(splits.x_val, verbose=0))
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # The float32 copy answers as the bfloat16 network did at the end of training (Keras'
    # validation accuracy), up to rounding: the trained weights came across.
    accuracy = (probs.argmax(1) == splits.y_val.argmax(1)).mean()
    assert abs(accuracy - run.history["val_accuracy"][-1]) <= 0.02
    train.seed_everything(config.seed)
    initial = train.built(config, 10).get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(initial, run.model.get_weights()))
    # Saved and loaded as a float32-trained model is: optimizer state included, no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # Keras says what it skipped loading
        run.model.save(tmp_path / "model.keras")
        loaded = keras.models.load_model(tmp_path / "model.keras")
    assert int(loaded.optimizer.iterations) == int(run.model.optimizer.iterations) > 0

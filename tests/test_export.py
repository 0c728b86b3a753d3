"""`mnist-report export`: the ONNX file gives the Keras model's probabilities (onnxruntime)."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_core import MnistReportError
from mnist_core.cli import main
from mnist_core.export import INPUT_NAME, OUTPUT_NAME, export_model
from mnist_core.predict import Recognizer

ort = pytest.importorskip("onnxruntime")


def _parity(model_path, onnx_path, images: np.ndarray) -> float:
    recognizer = Recognizer(model_path)
    # The model's own output (a calibrated Recognizer divides its log-probabilities by a
    # temperature afterwards; the exported graph is the model alone).
    keras_probs = getattr(recognizer, "raw_probabilities", recognizer.probabilities)(images)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    x = images.astype(np.float32) / 255.0
    x = x.reshape(len(x), *[int(d) for d in shape[1:]])
    onnx_probs = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    assert onnx_probs.shape == (len(images), 10)
    assert (onnx_probs.argmax(1) == keras_probs.argmax(1)).all()
    return float(np.abs(onnx_probs - keras_probs).max())


def test_export_matches_keras_on_1000_test_images(quick_build, mnist, tmp_path, capsys):
    model = quick_build["folder"] / "model.keras"
    out = tmp_path / "model.onnx"
    assert main(["export", "--model", str(model), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    images = mnist.x_test[:1000]
    diff = _parity(model, out, images)
    print(f"max |p_onnx - p_keras| on 1,000 test images: {diff:.2e}")
    assert diff <= 1e-4


def test_export_takes_the_best_model_of_a_results_folder(quick_build, tmp_path):
    out = tmp_path / "best.onnx"
    assert main(["export", "--results", str(quick_build["out"]), "--out", str(out)]) == 0
    import onnx

    proto = onnx.load(out)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["mnist_report.source"] == "model.keras"
    assert [i.name for i in proto.graph.input] == [INPUT_NAME]


@pytest.mark.parametrize("args, message", [
    (["--model", "missing.keras"], "model file not found"),
    (["--results", "no-such-folder"], "no trained model"),
])
def test_export_bad_input_is_one_line(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["export", *args, "--out", "m.onnx"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mnist-report: error: ") and message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()


def test_export_refuses_unknown_format_and_missing_folder(quick_build, tmp_path):
    model = quick_build["folder"] / "model.keras"
    with pytest.raises(MnistReportError, match="unknown export format"):
        export_model(model, tmp_path / "m.tfjs", "tfjs")
    with pytest.raises(MnistReportError, match="no such directory"):
        export_model(model, tmp_path / "nope" / "m.onnx")


# --- The tutorial's widget: what the render step gets (the browser test is test_widget.py) ---

def test_widget_without_runtime_says_how_to_enable_it(quick_build, tmp_path, monkeypatch):
    from mnist_core import web

    monkeypatch.setattr(web, "runtime_dir", lambda: None)
    w = web.widget(tmp_path, quick_build["folder"] / "model.keras")
    assert not w.available and "npm ci" in w.html
    assert (tmp_path / w.still).is_file()  # the PDF's still is there all the same
    assert not (tmp_path / "web" / "model.onnx").exists()


def test_rendered_tutorial_has_the_widget_or_says_why(quick_build):
    from mnist_core import web

    html = (quick_build["out"] / "tutorial.html").read_text()
    typ = (quick_build["out"] / "tutorial.typ").read_text()
    # The PDF shows what the widget answers for the worked example, with this build's model.
    assert 'id="draw"' in html and "recognize_answer.svg" in typ and "tutorial.html#draw" in typ
    if web.runtime_dir() is None:
        assert "npm ci" in html
    else:
        for contract in ('<canvas id="digit-canvas"', 'id="digit-prediction"',
                         '<button type="button" id="digit-clear"'):
            assert contract in html
        # Everything embedded: no script or module loaded from elsewhere.
        assert "<script src" not in html and 'rel="stylesheet"' not in html
        assert (quick_build["out"] / "web" / "model.onnx").is_file()


def test_export_of_a_served_cnn_keeps_its_shifted_views(served_untrained_cnn, tmp_path):
    """The widget's ONNX file answers unsure images from nine views, as Keras does."""
    _, served, x, bare, _ = served_untrained_cnn
    served.save(tmp_path / "served.keras")
    export_model(tmp_path / "served.keras", tmp_path / "served.onnx")
    session = ort.InferenceSession(str(tmp_path / "served.onnx"),
                                   providers=["CPUExecutionProvider"])
    got = np.asarray(served(x))
    run = lambda batch: session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]  # noqa: E731
    assert np.abs(run(x) - got).max() < 1e-5
    for i in (int(np.argmin(bare.max(1))), int(np.argmax(bare.max(1)))):  # one unsure, one sure
        assert np.abs(run(x[i:i + 1]) - got[i:i + 1]).max() < 1e-5
    assert run(x[:0]).shape == (0, 10)

"""Tell which digit is written in a picture, and say when not sure.

``preprocess.prepare`` makes the picture MNIST-like (steps 1-9 of preprocess.py's docstring);
``Recognizer`` runs a saved model on it, with calibrated probabilities and an "unsure" flag.

10. Unsure (``unsure_reason``): contrast = ink / max(sigma, 1) under MIN_CONTRAST (10, in
    preprocess.py with the ink analysis it judges): "no clear ink"; other_marks > 0: "more
    than one mark"; crop width / height over MAX_ASPECT (1.7): "wider than a digit";
    calibrated confidence under MIN_CONFIDENCE (0.97, or ``--min-confidence``): "low
    confidence". MIN_CONFIDENCE and MAX_ASPECT are the pair that flags the most made-up
    non-digits while flagging at most 1.5% of the validation digits, with the cnn model
    (benchmarks/photo_benchmark.py prints the grid; chosen again whenever the cnn changes).

Calibration: ``probabilities`` = softmax(log(model output) / T), T from the calibration entry
of the results.json beside the model (fitted on the validation split; 1 when absent).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import MnistReportError, quiet_tensorflow
from .calibration import apply_temperature
from .preprocess import MIN_CONTRAST, ImageLike, Prepared, prepare
from .results import MODEL_FILE, RESULTS_FILE, best_model_folder

# The tutorial's worked example: a 3 rendered black on white at 160x200 pixels.
EXAMPLE_IMAGE = Path(__file__).resolve().parent / "examples" / "digit.png"
# "Unsure" (chosen on validation digits and made-up non-digits; see benchmarks/photo_benchmark.py)
MIN_CONFIDENCE = 0.97      # calibrated confidence under this: unsure
MAX_ASPECT = 1.7           # ink box wider than this times its height: not one digit


@dataclass(frozen=True)
class Prediction:
    digit: int
    confidence: float
    probabilities: list[float]
    unsure: bool = False

    @property
    def runner_up(self) -> int:
        return int(np.argsort(self.probabilities)[-2])


# --- The model -----------------------------------------------------------------------------

def find_best_model(out: str | os.PathLike = "results") -> Path:
    """The model file of the best experiment in a results folder (``results.best_experiment``)."""
    return best_model_folder(Path(out)) / MODEL_FILE


def _calibration(model_path: Path) -> dict:
    """The calibration entry of the results.json beside a model file ({} when there is none)."""
    try:
        results = json.loads((model_path.parent / RESULTS_FILE).read_text())
        calibration = results.get("calibration") or {}
        float(calibration.get("temperature", 1.0))
        return calibration
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


class Recognizer:
    """A loaded model plus a traced forward pass: fast for one image and for batches.

    Probabilities are calibrated: the model's log-probabilities divided by the temperature
    fitted on the validation split at evaluation time (``results.json`` beside the model,
    ``calibration.temperature``; 1.0 - the model as it is - when there is none).
    """

    def __init__(self, model_path: str | os.PathLike, temperature: float | None = None,
                 min_confidence: float | None = None):
        path = Path(model_path)
        if not path.is_file():
            raise MnistReportError(f"{path}: model file not found")
        quiet_tensorflow()
        from . import models  # noqa: F401  (registers the served cnn's wrapper for loading)
        import keras
        import tensorflow as tf

        try:
            # safe_mode: a .keras file cannot run arbitrary code (no lambda deserialisation).
            self.model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:
            raise MnistReportError(f"{path}: not a Keras model this tool can load "
                                   f"({type(exc).__name__})") from None
        shape = self.model.inputs[0].shape
        self.flat = len(shape) == 2
        self._forward = tf.function(lambda x: self.model(x, training=False),
                                    reduce_retracing=True)
        self.path = path
        calibration = _calibration(path)
        self.temperature = float(temperature if temperature is not None
                                 else calibration.get("temperature", 1.0))
        self.min_confidence = float(MIN_CONFIDENCE if min_confidence is None
                                    else min_confidence)

    def raw_probabilities(self, images: np.ndarray) -> np.ndarray:
        """The model's own output for a batch of 28x28 uint8 images (MNIST-like)."""
        x = images.astype(np.float32) / 255.0
        x = x.reshape(len(x), 784) if self.flat else x.reshape(len(x), 28, 28, 1)
        out = []
        for start in range(0, len(x), 1000):
            out.append(np.asarray(self._forward(x[start:start + 1000])))
        return np.concatenate(out).astype(np.float64)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for a batch of 28x28 uint8 images (MNIST-like)."""
        return apply_temperature(self.raw_probabilities(images), self.temperature)

    def recognize(self, image: ImageLike) -> Prediction:
        return self.recognize_batch([image])[0]

    def recognize_batch(self, images: list[ImageLike]) -> list[Prediction]:
        prepared = [prepare(image) for image in images]
        return self.predictions(prepared)

    def predictions(self, prepared: list[Prepared]) -> list[Prediction]:
        """Digit, calibrated confidence and the unsure flag for pictures already prepared."""
        probs = self.probabilities(np.stack([p.image for p in prepared]))
        return [_prediction(row, unsure_reason(p, float(row.max()), self.min_confidence))
                for p, row in zip(prepared, probs)]


def unsure_reason(prepared: Prepared, confidence: float, min_confidence: float) -> str | None:
    """Why the answer should not be trusted, or None.

    The picture's own analysis speaks first (no clear ink, a second digit-sized mark, a
    mark far wider than a digit), then the calibrated confidence.
    """
    if prepared.contrast < MIN_CONTRAST:
        return "no clear ink"
    if prepared.other_marks:
        return "more than one mark"
    if prepared.aspect > MAX_ASPECT:
        return "wider than a digit"
    if confidence < min_confidence:
        return "low confidence"
    return None


def unsure(prepared: Prepared, confidence: float, min_confidence: float | None = None) -> bool:
    """True when the answer for this picture should not be trusted (see ``unsure_reason``)."""
    threshold = MIN_CONFIDENCE if min_confidence is None else min_confidence
    return unsure_reason(prepared, confidence, threshold) is not None


def _prediction(probs: np.ndarray, reason: str | None = None) -> Prediction:
    probs = probs / probs.sum()
    digit = int(probs.argmax())
    return Prediction(digit, float(probs[digit]), probs.tolist(),
                      unsure=reason is not None)


def recognize(image: ImageLike, model: str | os.PathLike | None = None) -> Prediction:
    """Which digit is in ``image``? Uses the best model in ``results/`` unless told otherwise."""
    return Recognizer(model or find_best_model()).recognize(image)


def recognize_example(recognizer: Recognizer, image: ImageLike) -> dict:
    """The tutorial's worked example: every preprocessing step and the prediction, as data."""
    prepared = prepare(image, steps=True)
    prediction = recognizer.predictions([prepared])[0]
    steps = prepared.steps
    return {
        "steps": [{"name": name, "image": np.clip(np.rint(a), 0, 255).astype(int).tolist()}
                  for name, a in steps],
        "digit": prediction.digit,
        "confidence": prediction.confidence,
        "probabilities": prediction.probabilities,
        "unsure": prediction.unsure,
        "min_confidence": recognizer.min_confidence,
    }

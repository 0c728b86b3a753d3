"""Evaluate a trained model: accuracies, predictions, and what the documents show of them."""

from __future__ import annotations

import numpy as np

from .calibration import calibrate
from .robustness import CORRUPTIONS, corrupted

GRID = 9  # the classic tutorial shows 3x3 grids
# How many test digits each corruption is measured on in a build (the benchmark takes all).
ROBUSTNESS_IMAGES = 2000


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Rows: true digit; columns: predicted digit."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def _sample(indices: np.ndarray, images: np.ndarray, true: np.ndarray,
            predicted: np.ndarray, probs: np.ndarray) -> list[dict]:
    return [
        {
            "index": int(i),
            "true": int(true[i]),
            "predicted": int(predicted[i]),
            "confidence": float(probs[i, predicted[i]]),
            "image": images[i].tolist(),
        }
        for i in indices
    ]


def analyse_predictions(probs: np.ndarray, labels: np.ndarray, images: np.ndarray) -> dict:
    """Everything the documents say about test predictions, as plain JSON-ready data."""
    predicted = probs.argmax(axis=1)
    correct = np.flatnonzero(predicted == labels)
    wrong = np.flatnonzero(predicted != labels)
    matrix = confusion_matrix(labels, predicted)
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    confidence = probs[np.arange(len(probs)), predicted]
    confident_wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:GRID]
    return {
        "predicted": predicted.tolist(),
        "correct_indices": correct.tolist(),
        "wrong_indices": wrong.tolist(),
        "confusion_matrix": matrix.tolist(),
        "per_class_accuracy": per_class.tolist(),
        # The classic tutorial shows the first nine of each, in test-set order.
        "correct_samples": _sample(correct[:GRID], images, labels, predicted, probs),
        "wrong_samples": _sample(wrong[:GRID], images, labels, predicted, probs),
        "confident_mistakes": _sample(confident_wrong, images, labels, predicted, probs),
    }


def evaluate(model, splits, batch_size: int = 1000) -> dict:
    """Train/validation/test loss and accuracy (dropout off) plus the test-prediction analysis.

    The validation numbers are what every choice between models uses (see
    ``results.best_experiment``); the test numbers are reported, never chosen on. Each split
    is predicted once, and its loss and accuracy computed from those answers.
    """
    import keras

    loss_fn = keras.losses.get(model.loss)

    def scored(x, y) -> tuple[np.ndarray, float, float]:
        probs = model.predict(x, batch_size=batch_size, verbose=0)
        # The compiled loss (label smoothing included) and accuracy, as model.evaluate gives;
        # a loss named by string comes back per image, a Loss object as the mean.
        loss = float(np.mean(keras.ops.convert_to_numpy(loss_fn(y, probs))))
        return probs, loss, float(np.mean(probs.argmax(axis=1) == y.argmax(axis=1)))

    _, train_loss, train_acc = scored(splits.x_train, splits.y_train)
    val_probs, val_loss, val_acc = (scored(splits.x_val, splits.y_val) if len(splits.x_val)
                                    else (None, None, None))
    probs, test_loss, test_acc = scored(splits.x_test, splits.y_test)
    analysis = analyse_predictions(probs, splits.test_labels, splits.test_images)
    calibration = None
    if val_probs is not None:  # temperature fitted on validation, judged on test (ECE)
        calibration = calibrate(val_probs, splits.y_val.argmax(axis=1), probs,
                                splits.test_labels)
    robustness = robustness_scores(lambda x: model.predict(x, batch_size=batch_size, verbose=0),
                                   splits.test_images[:ROBUSTNESS_IMAGES],
                                   splits.test_labels[:ROBUSTNESS_IMAGES],
                                   flat=splits.x_test.ndim == 2)
    return {
        "robustness": robustness,
        "metrics": {
            "train": {"loss": train_loss, "accuracy": train_acc},
            "validation": {"loss": val_loss, "accuracy": val_acc,
                           "size": int(len(splits.x_val))},
            "test": {
                "loss": test_loss,
                "accuracy": test_acc,
                "errors": len(analysis["wrong_indices"]),
                "size": int(len(splits.x_test)),
            },
        },
        "analysis": analysis,
        "calibration": calibration,
    }


def robustness_scores(predict, images: np.ndarray, labels: np.ndarray, flat: bool) -> dict:
    """Accuracy on ``images`` under each corruption of ``robustness.CORRUPTIONS`` (fixed seed),
    and the first corrupted digit of each kind with the answer, for the documents' pictures.

    ``predict`` maps a batch in the model's input shape to probabilities; the corrupted
    28x28 digits go in directly, without ``predict``'s preprocessing, as the benchmark
    published with MNIST-C does."""
    shape = (-1, 784) if flat else (-1, 28, 28, 1)
    scores = {}
    for kind in CORRUPTIONS:
        bad = corrupted(images, kind)
        predicted = predict(bad.reshape(shape).astype("float32") / 255).argmax(axis=1)
        scores[kind] = {"accuracy": float(np.mean(predicted == labels)),
                        "example": {"image": bad[0].tolist(), "true": int(labels[0]),
                                    "predicted": int(predicted[0])}}
    return {"size": int(len(images)), "kinds": scores}

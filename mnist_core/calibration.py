"""Confidence that means something: temperature scaling and expected calibration error.

A network's softmax output is not a probability one can take at its word: ours is trained with
label smoothing, which caps a clear digit near 91%. Temperature scaling (Guo et al., 2017)
divides the log-probabilities by one number T, fitted on the validation split to minimise the
negative log-likelihood, and takes the softmax again: the predicted digit never changes, only
how sure the model says it is. Expected calibration error (ECE) measures the result: the
images are put in 15 equal-width bins by confidence, and ECE is the average gap between the
confidence and the accuracy in each bin, weighted by the bin's share of the images.
"""

from __future__ import annotations

import numpy as np

BINS = 15
_EPS = 1e-12


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(probs) / T), row by row."""
    logits = np.log(np.clip(np.asarray(probs, np.float64), _EPS, None)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=-1, keepdims=True)


def _nll(probs: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    scaled = apply_temperature(probs, temperature)
    return float(-np.log(np.clip(scaled[np.arange(len(labels)), labels], _EPS, None)).mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the negative log-likelihood of ``labels``.

    The likelihood is convex in 1/T, so it has one minimum along log T, which a bounded
    scalar search (Brent's method) finds.
    """
    # Imported here: `mnist-report predict` imports this module for apply_temperature only.
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels, np.int64)
    found = minimize_scalar(lambda log_t: _nll(probs, labels, np.exp(log_t)),
                            bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                            options={"xatol": 1e-10})
    return float(np.exp(found.x))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins."""
    probs = np.asarray(probs, np.float64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    # bin k holds confidences in (k/bins, (k+1)/bins]
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for k in range(bins):
        members = which == k
        if members.any():
            total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / len(confidence))


def calibrate(val_probs: np.ndarray, val_labels: np.ndarray, test_probs: np.ndarray,
              test_labels: np.ndarray) -> dict:
    """Fit T on the validation split; report ECE on the test split before and after."""
    temperature = fit_temperature(val_probs, val_labels)
    return {
        "method": "temperature scaling, fitted on the validation split",
        "temperature": temperature,
        "validation_size": int(len(val_labels)),
        "bins": BINS,
        "test_ece_before": expected_calibration_error(test_probs, test_labels),
        "test_ece_after": expected_calibration_error(
            apply_temperature(test_probs, temperature), test_labels),
    }

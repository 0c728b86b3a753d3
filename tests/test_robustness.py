"""The corruption suite: every kind changes real digits, the same way for the same seed, and the
build's robustness scores are what a model answers on them."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_core import view
from mnist_core.evaluate import robustness_scores
from mnist_core.robustness import CORRUPTIONS, corrupted


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_each_corruption_changes_the_digits_reproducibly(kind, mnist):
    digits = mnist.x_test[:50]
    bad = corrupted(digits, kind)
    assert bad.shape == digits.shape and bad.dtype == np.uint8
    assert np.array_equal(bad, corrupted(digits, kind))  # fixed seed
    assert not np.array_equal(bad, corrupted(digits, kind, seed=7)) or kind in (
        "brightness", "contrast", "edges")  # the ones that draw nothing at random
    changed = np.mean([not np.array_equal(a, b) for a, b in zip(bad, digits)])
    assert changed > 0.9, f"{kind} left {1 - changed:.0%} of the digits as they were"


def test_the_kinds_differ_from_each_other(mnist):
    digits = mnist.x_test[:20]
    outputs = {kind: corrupted(digits, kind) for kind in CORRUPTIONS}
    for a in CORRUPTIONS:
        for b in CORRUPTIONS:
            if a < b:
                assert not np.array_equal(outputs[a], outputs[b]), (a, b)


def test_scores_are_the_answers_on_the_corrupted_digits(mnist):
    """A stand-in model that knows the clean digits and answers 0 for anything else scores
    exactly the digits a corruption left as they were, and the zeros."""
    images, labels = mnist.x_test[:100], mnist.y_test[:100]
    flat_clean = images.reshape(-1, 784).astype("float32") / 255

    def predict(x):
        same = (x[:, None, :] == flat_clean[None, :, :]).all(axis=2)
        answers = np.where(same.any(axis=1), labels[same.argmax(axis=1)], 0)
        return np.eye(10)[answers]

    scores = robustness_scores(predict, images, labels, flat=True)
    assert scores["size"] == 100 and list(scores["kinds"]) == list(CORRUPTIONS)
    for kind, score in scores["kinds"].items():
        untouched = np.array([np.array_equal(a, b)
                              for a, b in zip(corrupted(images, kind), images)])
        assert score["accuracy"] == pytest.approx(np.mean(untouched | (labels == 0)))
        assert np.array_equal(score["example"]["image"], corrupted(images, kind)[0])


def test_the_table_lists_every_kind_and_the_mean(mnist):
    runs = []
    for name, accuracy in (("a", 0.9), ("b", 0.5)):
        kinds = {k: {"accuracy": accuracy, "example": {}} for k in CORRUPTIONS}
        runs.append({"experiment": name, "robustness": {"size": 10, "kinds": kinds},
                     "metrics": {"test": {"accuracy": 0.99}}})
    header, rows, _ = view.robustness_table(runs)
    assert header == ["Corruption", "a", "b"]
    assert [r[0] for r in rows[1:-1]] == list(CORRUPTIONS)
    assert rows[0][1:] == ["1.0", "1.0"] and rows[-1][1:] == ["**10.0**", "**50.0**"]
    said = " ".join(view.robustness_sentences(runs, runs[1]))
    assert "errs on 50.0%" in said and "most robust model here is a" in said

"""mnist_core: load MNIST, train and evaluate Keras models, save structured results.

The modules are small and flat on purpose; each name says what it holds:
``config`` (typed settings), ``data`` (loading and checking MNIST), ``models``
(the model registry), ``train``, ``evaluate``, ``results`` (the results folder),
``experiments`` (what is current; training the rest), ``view`` (what the documents say
about a run), ``figures``, ``markup`` and ``render`` (HTML and PDF), ``quarto`` (the
site), ``build`` (train -> render -> site), ``cli``. docs/ARCHITECTURE.md has the map.

Importing this package does not import TensorFlow: only ``models``, ``train``
and ``evaluate`` do, so rendering stays fast.
"""

import os

# TensorFlow's C++ logging (CPU feature notes, a spurious MapDataset attribute error)
# buries Keras' progress output; real failures still raise Python exceptions.
# Set before anything imports TensorFlow; a user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"


class MnistReportError(Exception):
    """An error with a message meant for the user: printed as one line, no traceback."""


class UsageError(MnistReportError):
    """A wrong option or combination of options: exit code 2, like argparse's own errors."""


def log(message: str) -> None:
    """One progress line of the tool, flushed so that it interleaves with Keras' output."""
    print(f"[mnist-report] {message}", flush=True)

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


def quiet_tensorflow() -> None:
    """Import TensorFlow now, discarding what its native code prints while it loads (absl's
    and oneDNN's notes, which the log level above does not reach): they are not errors, and
    they would land in the build's log and in the Quarto pages' cell outputs. Call it where
    TensorFlow is first needed, before importing keras."""
    import sys

    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class MnistReportError(Exception):
    """An error with a message meant for the user: printed as one line, no traceback."""


class UsageError(MnistReportError):
    """A wrong option or combination of options: exit code 2, like argparse's own errors."""


def log(message: str) -> None:
    """One progress line of the tool, flushed so that it interleaves with Keras' output."""
    print(f"[mnist-report] {message}", flush=True)

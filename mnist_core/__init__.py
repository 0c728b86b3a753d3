"""mnist_core: load MNIST, train and evaluate Keras models, save structured results.

The modules are small and flat on purpose; each name says what it holds:
``config`` (typed settings), ``data`` (loading and checking MNIST), ``models``
(the model registry), ``train``, ``evaluate``, ``results`` (the results folder),
``figures``, ``document`` and ``render`` (HTML and PDF), ``cli``.

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

"""Export a trained model for use outside Keras: ONNX, read by ONNX Runtime (Python, C++, C#,
Java, the browser through onnxruntime-web, ...).

Why ONNX: Keras 3 exports it itself (``model.export(format="onnx")``, through tf2onnx) with
the TensorFlow we train with, and ONNX Runtime Web runs it in the browser. The TensorFlow.js
converter (pip ``tensorflowjs`` 4.22) would downgrade TensorFlow to 2.19 and pull in JAX and
Flax, so it cannot live in this project's environment.

The exported graph takes what the Keras model takes - float32 pixels scaled to 0..1, light
digit on dark background, shape ``[N, 784]`` (dense models) or ``[N, 28, 28, 1]`` (CNNs) -
and returns the ten softmax probabilities ``[N, 10]``. The input is named ``pixels``;
``metadata_props`` of the file record the input scale and the source model.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from . import MnistReportError, quiet_tensorflow

FORMATS = ("onnx",)
INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"


def _load(model_path: Path):
    quiet_tensorflow()
    from . import models  # noqa: F401  (registers the served cnn's wrapper for loading)
    import keras

    if not model_path.is_file():
        raise MnistReportError(f"{model_path}: model file not found")
    try:
        return keras.saving.load_model(model_path, compile=False, safe_mode=True)
    except Exception as exc:
        raise MnistReportError(f"{model_path}: not a Keras model this tool can load "
                               f"({type(exc).__name__})") from None


def export_model(model_path: str | os.PathLike, out_file: str | os.PathLike,
                 fmt: str = "onnx") -> Path:
    """Write ``model_path`` (a .keras file) to ``out_file`` in format ``fmt``; returns the path.

    The file appears complete or not at all (written to a temporary name, then renamed).
    """
    if fmt not in FORMATS:
        raise MnistReportError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    model_path, out_file = Path(model_path), Path(out_file)
    if out_file.is_dir():
        raise MnistReportError(f"{out_file}: is a directory; give a file name such as model.onnx")
    if not out_file.parent.is_dir():
        raise MnistReportError(f"{out_file.parent}: no such directory")
    model = _load(model_path)

    import onnx
    import tensorflow as tf

    shape = (None, *model.inputs[0].shape[1:])
    signature = [tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)]
    fd, tmp = tempfile.mkstemp(prefix=f".{out_file.name}.", suffix=".onnx", dir=out_file.parent)
    os.close(fd)
    try:
        # verbose=False: no "Saved artifact" line; tf2onnx logs go through absl.
        with warnings.catch_warnings():  # tf2onnx's numpy-2 shim warns about np.object
            warnings.simplefilter("ignore", FutureWarning)
            model.export(tmp, format="onnx", input_signature=signature, verbose=False)
        proto = onnx.load(tmp)
        _rename_output(proto.graph, OUTPUT_NAME)
        onnx.helper.set_model_props(proto, {
            "mnist_report.input": "float32 pixels / 255, light digit on dark, MNIST-centred "
                                  "(see mnist_core.preprocess.preprocess)",
            "mnist_report.output": "softmax probabilities of the digits 0-9",
            "mnist_report.source": model_path.name,
        })
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_file)
    except MnistReportError:
        raise
    except Exception as exc:
        raise MnistReportError(f"ONNX export of {model_path} failed: {exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out_file


def _rename_output(graph, name: str) -> None:
    """tf2onnx names the output ``Identity:0`` and the batch axis ``unk__N``: give them names
    that tell a deployer what they are."""
    old = graph.output[0].name
    for node in graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
    graph.output[0].name = name
    for value in (graph.input[0], graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"

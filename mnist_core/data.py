"""Load MNIST as uint8 arrays and check it is the real thing.

Sources, first found wins: an explicit folder (or ``MNIST_DATA_DIR``) holding
the four IDX files (gzipped or not) or a Keras-style ``mnist.npz``; then Keras'
cache (``~/.keras/datasets/mnist.npz``); then Keras' download. Every source is
checked against the published checksums, so a truncated or altered file stops
the run instead of silently training on bad data.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import MnistReportError

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049

# SHA-256 of the uncompressed IDX files (header included), as published with
# the dataset copy in shared/mnist. Arrays loaded from an .npz are checked by
# rebuilding their IDX bytes, so one table serves every source.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FILES = {
    "x_train": ("train-images-idx3-ubyte", IMAGE_MAGIC, (60000, 28, 28)),
    "y_train": ("train-labels-idx1-ubyte", LABEL_MAGIC, (60000,)),
    "x_test": ("t10k-images-idx3-ubyte", IMAGE_MAGIC, (10000, 28, 28)),
    "y_test": ("t10k-labels-idx1-ubyte", LABEL_MAGIC, (10000,)),
}
# What every verified copy of MNIST hashes to (load_mnist checks each array against SHA256), so
# the result keys can be computed without the files: rendering and status need no data.
MNIST_SHA256 = hashlib.sha256("".join(SHA256[FILES[n][0]] for n in FILES).encode()).hexdigest()
NUM_CLASSES = 10
OFFLINE_HINT = (
    "point the tool at a local copy with --data-dir DIR or MNIST_DATA_DIR=DIR "
    "(a folder with the four IDX files, gzipped or not, or Keras' mnist.npz)"
)


@dataclass(frozen=True)
class Mnist:
    """The four arrays, where they came from, and one checksum for provenance."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    sha256: str

    def shapes(self) -> dict[str, list[int]]:
        return {name: list(getattr(self, name).shape) for name in FILES}


def parse_idx(raw: bytes, name: str = "IDX data", expected_magic: int | None = None) -> np.ndarray:
    """Parse the bytes of one uncompressed IDX file into a uint8 array.

    Checks the magic number (0x0000, type 0x08 = unsigned byte, rank), the
    dimensions and that the payload is exactly as long as they say.
    """
    if len(raw) < 4:
        raise MnistReportError(f"{name}: too short to be an IDX file ({len(raw)} bytes)")
    magic = struct.unpack(">i", raw[:4])[0]
    if expected_magic is not None and magic != expected_magic:
        raise MnistReportError(
            f"{name}: wrong magic number {magic} (expected {expected_magic}); "
            "not an MNIST IDX file of this kind"
        )
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise MnistReportError(f"{name}: bad IDX header (magic {magic}), not unsigned-byte IDX data")
    rank = raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise MnistReportError(f"{name}: truncated header ({len(raw)} bytes, need {header})")
    dims = struct.unpack(f">{rank}i", raw[4:header])
    if any(d < 0 for d in dims):
        raise MnistReportError(f"{name}: negative dimension in header {dims}")
    expected = int(np.prod(dims)) if dims else 0
    actual = len(raw) - header
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise MnistReportError(
            f"{name}: {what}: header says {'x'.join(map(str, dims))} = {expected} bytes "
            f"of data, file has {actual}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array (the inverse of ``parse_idx``)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}i", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _read_idx_file(folder: Path, stem: str) -> tuple[bytes, Path]:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            try:
                raw = candidate.read_bytes()
                if candidate.suffix == ".gz":
                    raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as exc:
                raise MnistReportError(
                    f"{candidate}: cannot decompress ({exc}); the file is truncated or corrupt"
                ) from None
            return raw, candidate
    raise MnistReportError(f"{folder}: missing {stem}.gz (or {stem}); {OFFLINE_HINT}")


def _check_array(name: str, array: np.ndarray, where: str, verify: bool) -> None:
    stem, _, shape = FILES[name]
    if array.dtype != np.uint8 or tuple(array.shape) != shape:
        raise MnistReportError(
            f"{where}: {name} has shape {tuple(array.shape)} and dtype {array.dtype}, "
            f"expected {shape} uint8"
        )
    if name.startswith("y") and array.max(initial=0) >= NUM_CLASSES:
        raise MnistReportError(f"{where}: {name} has label {array.max()}, labels must be 0-9")
    if verify:
        digest = hashlib.sha256(idx_bytes(array)).hexdigest()
        if digest != SHA256[stem]:
            raise MnistReportError(
                f"{where}: {name} content does not match the published MNIST checksum "
                f"(sha256 {digest[:12]}..., expected {SHA256[stem][:12]}...); "
                "the file is corrupt or not MNIST"
            )


def _from_idx_folder(folder: Path, verify: bool) -> dict[str, np.ndarray]:
    arrays = {}
    for name, (stem, magic, _) in FILES.items():
        raw, path = _read_idx_file(folder, stem)
        arrays[name] = parse_idx(raw, str(path), magic)
        _check_array(name, arrays[name], str(path), verify)
    return arrays


def _from_npz(path: Path, verify: bool) -> dict[str, np.ndarray]:
    try:
        # allow_pickle=False: an .npz from elsewhere must not run code on load.
        with np.load(path, allow_pickle=False) as npz:
            missing = [name for name in FILES if name not in npz.files]
            if missing:
                raise MnistReportError(f"{path}: not a Keras mnist.npz (missing {', '.join(missing)})")
            arrays = {name: npz[name] for name in FILES}
    except MnistReportError:
        raise
    except Exception as exc:  # zipfile/numpy raise many kinds for a damaged archive
        raise MnistReportError(f"{path}: cannot read as .npz ({exc})") from None
    for name, array in arrays.items():
        _check_array(name, array, str(path), verify)
    return arrays


def _from_folder(folder: Path, verify: bool) -> dict[str, np.ndarray]:
    if not folder.exists():
        raise MnistReportError(f"data folder {folder} does not exist; {OFFLINE_HINT}")
    if not folder.is_dir():
        if folder.suffix == ".npz":
            return _from_npz(folder, verify)
        raise MnistReportError(f"data path {folder} is not a folder or an .npz file")
    has_idx = any((folder / f"{stem}{ext}").is_file()
                  for stem, _, _ in FILES.values() for ext in (".gz", ""))
    if not has_idx and (folder / "mnist.npz").is_file():
        return _from_npz(folder / "mnist.npz", verify)
    return _from_idx_folder(folder, verify)


def _keras_cache() -> Path:
    base = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return base / "datasets" / "mnist.npz"


def _from_keras_download(verify: bool) -> dict[str, np.ndarray]:
    try:
        import keras  # heavy: only when no local copy exists
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:
        raise MnistReportError(f"MNIST is not available locally and the download failed ({exc}); "
                               f"{OFFLINE_HINT}") from None
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for name, array in arrays.items():
        _check_array(name, array, "Keras download", verify)
    return arrays


def load_mnist(data_dir: str | os.PathLike | None = None, *, verify: bool = True) -> Mnist:
    """Load MNIST: ``data_dir``, else ``$MNIST_DATA_DIR``, else Keras' cache or download."""
    if data_dir is None and os.environ.get("MNIST_DATA_DIR"):
        data_dir = os.environ["MNIST_DATA_DIR"]
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        arrays, source = _from_folder(folder, verify), str(folder)
    elif _keras_cache().is_file():
        arrays, source = _from_npz(_keras_cache(), verify), str(_keras_cache())
    else:
        arrays, source = _from_keras_download(verify), "keras.datasets.mnist (download)"
    combined = MNIST_SHA256
    if not verify:
        combined = hashlib.sha256(b"".join(idx_bytes(a) for a in arrays.values())).hexdigest()
    return Mnist(source=source, sha256=combined, **arrays)


def load_data():
    """MNIST as ``(x_train, y_train), (x_test, y_test)``, uint8 arrays: from the four
    IDX files in $MNIST_DATA_DIR when it is set, else through Keras (downloaded once)."""
    folder = os.environ.get("MNIST_DATA_DIR")
    if not folder:
        import keras
        return keras.datasets.mnist.load_data()

    def read(name, header_bytes):
        path = os.path.join(folder, name)
        opener = gzip.open if os.path.exists(path + ".gz") else open
        with opener(path + ".gz" if opener is gzip.open else path, "rb") as f:
            return np.frombuffer(f.read(), dtype=np.uint8, offset=header_bytes)

    x_train = read("train-images-idx3-ubyte", 16).reshape(-1, 28, 28)
    y_train = read("train-labels-idx1-ubyte", 8)
    x_test = read("t10k-images-idx3-ubyte", 16).reshape(-1, 28, 28)
    y_test = read("t10k-labels-idx1-ubyte", 8)
    return (x_train, y_train), (x_test, y_test)


def describe_shapes(data: Mnist) -> str:
    """The lines the classic tutorial prints after loading."""
    return (f"X_train original shape {data.x_train.shape}\n"
            f"y_train original shape {data.y_train.shape}\n"
            f"X_test original shape {data.x_test.shape}\n"
            f"y_test original shape {data.y_test.shape}")

"""MNIST loading: IDX parsing, checksums, and every way a data file can be bad."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest

from mnist_core import MnistReportError
from mnist_core.data import (LABEL_MAGIC, IMAGE_MAGIC, describe_shapes, idx_bytes, load_data,
                             load_mnist, parse_idx)

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_full_dataset_shapes_and_known_values(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.y_train.shape == (60000,)
    assert mnist.x_test.shape == (10000, 28, 28)
    assert mnist.y_test.shape == (10000,)
    # Published facts about MNIST (shared/mnist/README.md), not values computed by our code.
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028,
                                                   974, 1009]
    assert describe_shapes(mnist).splitlines()[0] == "X_train original shape (60000, 28, 28)"


# Small IDX data made here: the parser needs no dataset, and random bytes cover every value.
RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
LABELS = RNG.integers(0, 10, size=20, dtype=np.uint8)


def test_idx_bytes_follow_the_published_format():
    # The format as LeCun's page describes it, written out by hand: zero bytes, type 0x08
    # (unsigned byte), the rank, then each dimension as a big-endian int32, then the data.
    raw = idx_bytes(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8))
    assert raw == (b"\x00\x00\x08\x02" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x03"
                   + bytes([1, 2, 3, 4, 5, 6]))
    assert struct.unpack(">i", idx_bytes(IMAGES)[:4])[0] == IMAGE_MAGIC
    assert struct.unpack(">i", idx_bytes(LABELS)[:4])[0] == LABEL_MAGIC


def test_parse_idx_roundtrip():
    parsed = parse_idx(idx_bytes(IMAGES), "images", IMAGE_MAGIC)
    assert parsed.shape == (20, 28, 28) and parsed.dtype == np.uint8
    assert np.array_equal(parsed, IMAGES)
    assert np.array_equal(parse_idx(idx_bytes(LABELS), "labels", LABEL_MAGIC), LABELS)
    # Without an expected magic number any unsigned-byte IDX rank parses.
    assert np.array_equal(parse_idx(idx_bytes(IMAGES[:2, :3, :4])), IMAGES[:2, :3, :4])


@pytest.mark.parametrize("mutate, message", [
    (lambda raw: raw[:-1], "truncated: header says 20x28x28 = 15680 bytes of data, file has 15679"),
    (lambda raw: raw + b"\0", "trailing bytes"),
    (lambda raw: raw[:10], "truncated header"),
    (lambda raw: raw[:16], "truncated: .* file has 0"),
    (lambda raw: b"", "too short"),
    (lambda raw: struct.pack(">i", 2049) + raw[4:], "wrong magic number 2049"),
    (lambda raw: b"\x00\x00\x0d\x03" + raw[4:], "wrong magic number"),
])
def test_parse_idx_rejects_damage(mutate, message):
    raw = idx_bytes(IMAGES)
    with pytest.raises(MnistReportError, match=message):
        parse_idx(mutate(raw), "images.idx", IMAGE_MAGIC)


@pytest.mark.parametrize("raw, message", [
    (b"\x01\x02\x08\x01" + struct.pack(">i", 0), "bad IDX header"),
    (b"\x00\x00\x0d\x01" + struct.pack(">i", 0), "bad IDX header"),  # type 0x0d: float
    (b"\x00\x00\x08\x00", "bad IDX header"),  # rank 0
    (b"\x00\x00\x08\x01" + struct.pack(">i", -1), "negative dimension"),
])
def test_parse_idx_header_without_expected_magic(raw, message):
    with pytest.raises(MnistReportError, match=message):
        parse_idx(raw, "x")


def _copy_dataset(mnist_dir, tmp_path):
    for name in FILES:
        shutil.copy(mnist_dir / name, tmp_path / name)
    return tmp_path


def test_uncompressed_idx_files_load(mnist_dir, tmp_path):
    for name in FILES:
        (tmp_path / name[:-3]).write_bytes(gzip.decompress((mnist_dir / name).read_bytes()))
    data = load_mnist(tmp_path)
    assert data.x_train.shape == (60000, 28, 28)


def test_keras_cache_is_found_and_checked(mnist, tmp_path, monkeypatch):
    # As Keras' own loader writes it: ~/.keras/datasets/mnist.npz, here under $KERAS_HOME.
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    cache = tmp_path / "keras" / "datasets" / "mnist.npz"
    cache.parent.mkdir(parents=True)
    np.savez(cache, x_train=mnist.x_train, y_train=mnist.y_train, x_test=mnist.x_test,
             y_test=mnist.y_test)
    data = load_mnist()
    assert data.source == str(cache) and data.sha256 == mnist.sha256
    assert np.array_equal(data.x_test, mnist.x_test) and np.array_equal(data.y_train, mnist.y_train)
    # The same file as --data-dir, the folder or the file itself.
    assert load_mnist(cache.parent).source == str(cache.parent)
    assert np.array_equal(load_mnist(cache).y_test, mnist.y_test)
    altered = mnist.x_test.copy()
    altered[0, 0, 0] ^= 1
    np.savez(cache, x_train=mnist.x_train, y_train=mnist.y_train, x_test=altered,
             y_test=mnist.y_test)
    with pytest.raises(MnistReportError, match="mnist.npz: x_test content does not match"):
        load_mnist()
    np.savez(cache, x_train=mnist.x_train, y_train=mnist.y_train, x_test=mnist.x_test)
    with pytest.raises(MnistReportError, match="not a Keras mnist.npz \\(missing y_test\\)"):
        load_mnist()


def test_env_variable_is_used(mnist_dir, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(mnist_dir))
    assert load_mnist().source == str(mnist_dir)


def test_missing_folder_and_missing_file(mnist_dir, tmp_path):
    with pytest.raises(MnistReportError, match="does not exist.*--data-dir"):
        load_mnist(tmp_path / "nope")
    _copy_dataset(mnist_dir, tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MnistReportError, match="missing t10k-labels-idx1-ubyte.gz"):
        load_mnist(tmp_path)


def test_truncated_gzip_names_the_file(mnist_dir, tmp_path):
    _copy_dataset(mnist_dir, tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(MnistReportError, match="train-labels-idx1-ubyte.gz: cannot decompress"):
        load_mnist(tmp_path)


def test_not_gzip_at_all(mnist_dir, tmp_path):
    _copy_dataset(mnist_dir, tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_text("hello, I am not gzip")
    with pytest.raises(MnistReportError, match="t10k-images-idx3-ubyte.gz: cannot decompress"):
        load_mnist(tmp_path)


def test_one_flipped_pixel_fails_the_checksum(mnist_dir, tmp_path):
    _copy_dataset(mnist_dir, tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[5000] ^= 0x01
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(MnistReportError, match="t10k-images.*does not match the published"):
        load_mnist(tmp_path)
    # An explicit opt-out still parses it (for experiments on altered data).
    assert load_mnist(tmp_path, verify=False).x_test.shape == (10000, 28, 28)


def test_swapped_files_are_caught(mnist_dir, tmp_path):
    _copy_dataset(mnist_dir, tmp_path)
    shutil.copy(mnist_dir / "train-labels-idx1-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(MnistReportError, match="t10k-labels.*expected \\(10000,\\)"):
        load_mnist(tmp_path)


def test_formatting_for_the_networks(mnist):
    from mnist_core.train import prepare

    flat, labels = prepare(mnist.x_train[:100], mnist.y_train[:100], flat=True)
    assert flat.shape == (100, 784) and flat.dtype == np.float32
    assert 0.0 <= flat.min() and flat.max() == 1.0
    assert np.array_equal(flat[0].reshape(28, 28) * 255, mnist.x_train[0].astype(np.float32))
    assert prepare(mnist.x_train[:3], mnist.y_train[:3], flat=False)[0].shape == (3, 28, 28, 1)
    assert labels.shape == (100, 10) and labels.sum() == 100
    assert labels[:10].argmax(axis=1).tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_the_notebooks_loader_reads_the_same_digits(mnist, mnist_dir, monkeypatch):
    """``load_data``, the tutorial's plain loader, gives the arrays the checked loader gives."""
    monkeypatch.setenv("MNIST_DATA_DIR", str(mnist_dir))
    (x_train, y_train), (x_test, y_test) = load_data()
    for got, want in ((x_train, mnist.x_train), (y_train, mnist.y_train),
                      (x_test, mnist.x_test), (y_test, mnist.y_test)):
        assert got.dtype == np.uint8 and np.array_equal(got, want)

"""IDX files and MNIST: round trips, and clear refusals of damaged or foreign files.

Expected bytes are built here by hand with struct, independently of write_idx, so the reader
is checked against the format itself and not only against our own writer.
"""

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minitorch_edu.data import (
    MNIST_MEAN,
    MNIST_STD,
    IdxFormatError,
    find_mnist_files,
    load_mnist,
    read_idx,
    write_idx,
)

DTYPES = ["u1", "i1", "i2", "i4", "f4", "f8"]
TYPE_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array, type_code=None, dims=None, shape=None):
    """An IDX file built by hand: magic, sizes, big-endian data (each part overridable)."""
    array = np.asarray(array)
    type_code = TYPE_CODES[array.dtype.str[1:]] if type_code is None else type_code
    shape = array.shape if shape is None else shape
    dims = len(shape) if dims is None else dims
    header = bytes([0, 0, type_code, dims]) + struct.pack(f">{len(shape)}I", *shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


arrays = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(
        np.dtype(dtype),
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
        elements={"allow_nan": False} if dtype[0] == "f" else None,
    )
)


@given(array=arrays, gzipped=st.booleans())
def test_write_then_read_round_trips(tmp_path, array, gzipped):
    path = tmp_path / ("array.idx.gz" if gzipped else "array.idx")
    write_idx(path, array)
    content = path.read_bytes()
    assert (content[:2] == b"\x1f\x8b") == gzipped
    assert (gzip.decompress(content) if gzipped else content) == idx_bytes(array)
    loaded = read_idx(path)
    assert loaded.dtype == array.dtype.newbyteorder("=") and loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)
    assert loaded.flags.writeable


@given(array=arrays)
def test_reads_hand_built_files_gzipped_or_not_whatever_the_name(tmp_path, array):
    raw = idx_bytes(array)
    (tmp_path / "plain.gz").write_bytes(raw)  # a '.gz' name on plain content
    (tmp_path / "packed").write_bytes(gzip.compress(raw))  # gzip content, no '.gz' name
    for name in ("plain.gz", "packed"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)


def test_mnist_magic_numbers(tmp_path):
    write_idx(tmp_path / "labels", np.arange(4, dtype=np.uint8))
    write_idx(tmp_path / "images", np.zeros((2, 3, 3), dtype=np.uint8))
    assert (tmp_path / "labels").read_bytes()[:4] == bytes.fromhex("00000801")
    assert (tmp_path / "images").read_bytes()[:4] == bytes.fromhex("00000803")
    expected = r"expected magic 0x00000803 \(unsigned byte, 3 dims\), found magic 0x00000801 \("
    with pytest.raises(IdxFormatError, match=expected + r"unsigned byte, 1 dims\)"):
        read_idx(tmp_path / "labels", expected_magic=0x00000803)


# ---------------------------------------------------------------------- refusals
GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"too short to be an IDX file \(0 bytes"),
        (GOOD[:3], r"too short to be an IDX file \(3 bytes"),
        (GOOD[:10], r"declares 3 dims, which needs 16 header bytes, but the file has 10"),
        (GOOD[:-1], r"promises shape \(2, 3, 4\) of unsigned byte \(24 data bytes\) but only 23"),
        (GOOD[:16], r"truncated: .* but only 0 bytes follow the header"),
        (GOOD + b"\x00\x01", r"2 bytes after the data that the header .* does not account for"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), r"not an IDX file: magic number 0x89504E47 should"),
        (b"hello, world\n", r"not an IDX file: magic number 0x68656C6C"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]), r"unknown IDX data type code 0x07"),
        (bytes([0, 0, 0x08, 0]), r"IDX header declares 0 dimensions"),
        (gzip.compress(GOOD)[:-12], r"damaged gzip file"),
        (gzip.compress(GOOD[:-5]), r"truncated: the header promises"),
    ],
    ids=[
        "empty", "short-header", "truncated-sizes", "truncated-data", "no-data", "trailing-bytes",
        "png", "text", "unknown-type", "zero-dims", "damaged-gzip", "gzipped-truncated",
    ],
)  # fmt: skip
def test_damaged_and_foreign_files_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "file-under-test"
    path.write_bytes(content)
    with pytest.raises(IdxFormatError, match=message) as raised:
        read_idx(path)
    assert str(path) in str(raised.value)


def test_write_idx_refuses_what_idx_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="IDX cannot store dtype int64"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="1 to 255 dimensions, got 0"):
        write_idx(tmp_path / "x", np.uint8(3))


# ---------------------------------------------------------------------- MNIST
def write_mnist(directory, split, count, image_size=28, gzipped=False, labels_count=None):
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gzipped else ""
    rng = np.random.default_rng(count)
    images = rng.integers(0, 256, size=(count, image_size, image_size), dtype=np.uint8)
    labels = rng.integers(0, 10, size=labels_count or count, dtype=np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_mnist_pairs_scales_and_normalises(tmp_path, split, gzipped):
    images, labels = write_mnist(tmp_path, split, count=7, gzipped=gzipped)
    write_mnist(tmp_path, "test" if split == "train" else "train", count=3)  # the other split
    dataset = load_mnist(tmp_path, split)
    pixels, targets = dataset.tensors
    assert pixels.shape == (7, 1, 28, 28) and str(pixels.dtype) == "torch.float32"
    assert str(targets.dtype) == "torch.int64"
    expected = (images.astype(np.float64) / 255).astype(np.float32)[:, None]
    np.testing.assert_allclose(pixels.numpy(), expected, rtol=1e-7)
    np.testing.assert_array_equal(targets.numpy(), labels)
    normalized = load_mnist(tmp_path, split, normalize=True).tensors[0].numpy()
    np.testing.assert_allclose(
        normalized, (expected - MNIST_MEAN) / MNIST_STD, rtol=1e-5, atol=1e-5
    )


def test_mnist_files_are_found_where_torchvision_keeps_them(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", "test", count=2, gzipped=True)
    images, labels = find_mnist_files(tmp_path, "test")
    assert images.name == "t10k-images-idx3-ubyte.gz" and images.parent.name == "raw"
    assert labels.name == "t10k-labels-idx1-ubyte.gz"
    assert len(load_mnist(tmp_path, "test")) == 2


def test_mnist_count_mismatch_is_refused(tmp_path):
    write_mnist(tmp_path, "train", count=5, labels_count=4)
    with pytest.raises(
        IdxFormatError, match="holds 5 images but .*train-labels-idx1-ubyte holds 4 labels"
    ):
        load_mnist(tmp_path, "train")


def test_mnist_swapped_files_are_refused(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros(3, dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((3, 28, 28), dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="train-images-idx3-ubyte: expected magic 0x00000803"):
        load_mnist(tmp_path, "train")


def test_mnist_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="MNIST directory .*nowhere does not exist"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(
        FileNotFoundError,
        match=r"no MNIST train files in .*: looked for train-images-idx3-ubyte\[.gz\] and "
        r"train-labels-idx1-ubyte\[.gz\]",
    ):
        load_mnist(tmp_path, "train")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((1, 2, 2), dtype=np.uint8))
    with pytest.raises(
        FileNotFoundError, match="found .*t10k-images-idx3-ubyte but not its partner t10k-labels"
    ):
        load_mnist(tmp_path, "test")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        load_mnist(tmp_path / "file")
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        load_mnist(tmp_path, "val")


# ---------------------------------------------------------------------- what training refuses
def train_error(capsys, directory, *options):
    """`minitorch-edu train --data mnist:DIRECTORY OPTIONS`: exit 1 and its one-line error."""
    from minitorch_edu import cli

    arguments = ["train", "--data", f"mnist:{directory}", "--device", "cpu", *options]
    assert cli.main(arguments) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("minitorch-edu: error: ") and captured.err.count("\n") == 1
    return captured.err


def test_an_empty_split_is_refused_naming_its_file(tmp_path, capsys):
    write_mnist(tmp_path, "train", count=4)
    write_mnist(tmp_path, "test", count=0)
    error = train_error(capsys, tmp_path)
    assert (
        f"{tmp_path / 't10k-images-idx3-ubyte'} holds no images: the test split is empty" in error
    )


def test_test_images_of_another_size_are_refused_naming_both_files(tmp_path, capsys):
    write_mnist(tmp_path, "train", count=4, image_size=28)
    write_mnist(tmp_path, "test", count=2, image_size=20)
    error = train_error(capsys, tmp_path)
    assert (
        f"{tmp_path / 't10k-images-idx3-ubyte'}: test images are 20x20 but the training images "
        f"in {tmp_path / 'train-images-idx3-ubyte'} are 28x28" in error
    )


def test_labels_outside_0_to_9_are_refused_not_trained_as_more_classes(tmp_path, capsys):
    write_mnist(tmp_path, "test", count=2)
    labels = np.array([3, 199, 5, 12], dtype=np.uint8)
    write_mnist(tmp_path, "train", count=4)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    error = train_error(capsys, tmp_path)
    assert (
        f"{tmp_path / 'train-labels-idx1-ubyte'}: label 199 at position 1 is outside 0-9" in error
    )


def test_non_square_images_are_refused_for_the_cnn_naming_the_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 4), ("t10k", 2)):
        write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte",
            rng.integers(0, 255, (count, 12, 9), dtype=np.uint8),
        )
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(count, dtype=np.uint8))
    error = train_error(capsys, tmp_path, "--model", "cnn")
    assert (
        f"{tmp_path / 'train-images-idx3-ubyte'}: its images are 12x9, and the cnn (LeNet) takes "
        "square images" in error
    )


def gzip_bomb(path, header_array, inflated_mebibytes):
    """A gzip file holding a small IDX file followed by `inflated_mebibytes` MiB of zeros:
    a few hundred kilobytes on disk (gzip members one after another, as `gzip -d` reads them)."""
    zeros = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    with open(path, "wb") as file:
        file.write(gzip.compress(idx_bytes(header_array), mtime=0))
        for _ in range(inflated_mebibytes):
            file.write(zeros)


def test_a_gzip_bomb_is_refused_with_bounded_memory(tmp_path):
    import tracemalloc

    images = np.zeros((10, 28, 28), dtype=np.uint8)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    gzip_bomb(path, images, inflated_mebibytes=512)
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(IdxFormatError) as refused:
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"reading a 512 MiB gzip bomb took {peak / 2**20:.0f} MiB"
    assert str(refused.value) == (
        f"{path}: the gzip file inflates to more than the header's shape (10, 28, 28) of unsigned "
        "byte (7840 data bytes) (plus the 16-byte header); refused without inflating the rest"
    )


def test_a_header_promising_more_than_gzip_can_hold_is_refused_before_reading(tmp_path):
    path = tmp_path / "lies.gz"
    header = struct.pack(">BBBBIII", 0, 0, 0x08, 3, 60000, 1000, 1000)  # 60 GB promised
    path.write_bytes(gzip.compress(header + bytes(100)))
    with pytest.raises(IdxFormatError, match="more than a .*-byte gzip file can hold"):
        read_idx(path)

"""IDX files: the binary format MNIST is distributed in (plain or gzipped).

    bytes 0, 1   zero
    byte  2      data type code (below)
    byte  3      number of dimensions d
    4 * d bytes  the size of each dimension, big-endian 32-bit integers
    the rest     the values, big-endian, in C order (last dimension fastest)

The first four bytes read as one big-endian integer are the "magic number": MNIST label files
have 0x00000801 (unsigned bytes, 1 dim), image files 0x00000803 (unsigned bytes, 3 dims).

Reading checks everything the header promises: the magic number, the type code, the number of
dimensions, and that the file holds exactly the bytes the header describes, so a truncated
download or a foreign file gives a clear error rather than a wrongly shaped array.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

# type code -> (name, dtype as stored: big-endian)
IDX_TYPES: dict[int, tuple[str, np.dtype]] = {
    0x08: ("unsigned byte", np.dtype(">u1")),
    0x09: ("signed byte", np.dtype(">i1")),
    0x0B: ("int16", np.dtype(">i2")),
    0x0C: ("int32", np.dtype(">i4")),
    0x0D: ("float32", np.dtype(">f4")),
    0x0E: ("float64", np.dtype(">f8")),
}
MNIST_LABELS_MAGIC = 0x00000801
MNIST_IMAGES_MAGIC = 0x00000803
_GZIP_START = b"\x1f\x8b"
# Deflate shrinks data at most about 1032 to 1: a header promising more than this many bytes
# per byte of gzip file is a lie (or a truncated file), found out before anything is read.
MAX_INFLATION = 1100
CHUNK_BYTES = 1 << 20  # read (and inflate) a mebibyte at a time


class IdxFormatError(ValueError):
    """A file is not a well-formed IDX file (or not the kind of IDX file expected)."""


def describe_magic(magic: int) -> str:
    """0x00000803 -> 'magic 0x00000803 (unsigned byte, 3 dims)'."""
    type_code, dims = (magic >> 8) & 0xFF, magic & 0xFF
    type_name = IDX_TYPES[type_code][0] if type_code in IDX_TYPES else "unknown type"
    return f"magic 0x{magic:08X} ({type_name}, {dims} dims)"


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """The array stored in an IDX file (gzipped or not, recognised by content), in native byte
    order.

    expected_magic: if given (e.g. MNIST_IMAGES_MAGIC), any other magic number is an error.

    The header is read first, and then exactly the data it promises: a gzip file is inflated a
    chunk at a time and refused as soon as it goes on past that size, so a file that inflates
    to gigabytes costs no more memory than its header's array.
    """
    with open(path, "rb") as file:
        file_size = os.fstat(file.fileno()).st_size
        if file.read(2) != _GZIP_START:
            file.seek(0)
            return _read_array(file, path, expected_magic, file_size, compressed=False)
        file.seek(0)
        try:
            with gzip.GzipFile(fileobj=file, mode="rb") as stream:
                return _read_array(stream, path, expected_magic, file_size, compressed=True)
        except (OSError, EOFError, zlib.error) as error:
            raise IdxFormatError(f"{path}: damaged gzip file ({error})") from error


def _read_array(
    stream: Any, path: Any, expected_magic: int | None, file_size: int, compressed: bool
) -> np.ndarray:
    shape, stored_dtype, type_name, header_size = _read_header(stream.read, path, expected_magic)
    data_size = math.prod(shape) * stored_dtype.itemsize
    promise = f"shape {shape} of {type_name} ({data_size} data bytes)"
    if not compressed:
        _check_data_size(path, promise, data_size, file_size - header_size)
    elif data_size > MAX_INFLATION * file_size:
        raise IdxFormatError(
            f"{path}: truncated: the header promises {promise}, more than a {file_size}-byte "
            "gzip file can hold"
        )
    data = np.empty(data_size, dtype=np.uint8)  # filled as it is read: no other copy is made
    view, filled = memoryview(data), 0
    while filled < data_size:
        count = stream.readinto(view[filled : filled + CHUNK_BYTES])
        if not count:
            break
        filled += count
    if filled < data_size:
        _check_data_size(path, promise, data_size, filled)
    if compressed and stream.read(1):
        raise IdxFormatError(
            f"{path}: the gzip file inflates to more than the header's {promise} (plus the "
            f"{header_size}-byte header); refused without inflating the rest"
        )
    values = data.view(stored_dtype).reshape(shape)
    return values.astype(stored_dtype.newbyteorder("="), copy=False)


def parse_idx(
    content: bytes, path: Any = "<bytes>", expected_magic: int | None = None
) -> np.ndarray:
    """Decode IDX `content` (already decompressed); `path` only names it in errors."""
    stream = io.BytesIO(content)
    shape, stored_dtype, type_name, header_size = _read_header(stream.read, path, expected_magic)
    data_size = math.prod(shape) * stored_dtype.itemsize
    promise = f"shape {shape} of {type_name} ({data_size} data bytes)"
    _check_data_size(path, promise, data_size, len(content) - header_size)
    values = np.frombuffer(content, dtype=stored_dtype, count=math.prod(shape), offset=header_size)
    return values.reshape(shape).astype(stored_dtype.newbyteorder("="))


def _read_header(
    read: Callable[[int], bytes], path: Any, expected_magic: int | None
) -> tuple[tuple[int, ...], np.dtype, str, int]:
    """(shape, stored dtype, type name, header size) from the first bytes `read` gives."""
    start = read(4)
    if len(start) < 4:
        raise IdxFormatError(
            f"{path}: too short to be an IDX file ({len(start)} bytes; the header alone needs 4)"
        )
    (magic,) = struct.unpack(">I", start)
    if start[0] != 0 or start[1] != 0:
        raise IdxFormatError(
            f"{path}: not an IDX file: magic number 0x{magic:08X} should start with two zero "
            "bytes (IDX magic is 0x0000TTDD: TT the data type, DD the number of dims)"
        )
    type_code, dims = start[2], start[3]
    if type_code not in IDX_TYPES:
        known = ", ".join(f"0x{code:02X} {name}" for code, (name, _) in IDX_TYPES.items())
        raise IdxFormatError(
            f"{path}: unknown IDX data type code 0x{type_code:02X} in magic 0x{magic:08X} "
            f"(known: {known})"
        )
    if dims == 0:
        raise IdxFormatError(f"{path}: IDX header declares 0 dimensions (magic 0x{magic:08X})")
    if expected_magic is not None and magic != expected_magic:
        raise IdxFormatError(
            f"{path}: expected {describe_magic(expected_magic)}, found {describe_magic(magic)}"
        )
    header_size = 4 + 4 * dims
    sizes = read(4 * dims)
    if len(sizes) < 4 * dims:
        raise IdxFormatError(
            f"{path}: truncated: the header declares {dims} dims, which needs {header_size} "
            f"header bytes, but the file has {4 + len(sizes)}"
        )
    shape = struct.unpack(f">{dims}I", sizes)
    type_name, stored_dtype = IDX_TYPES[type_code]
    return shape, stored_dtype, type_name, header_size


def _check_data_size(path: Any, promise: str, data_size: int, found: int) -> None:
    if found < data_size:
        raise IdxFormatError(
            f"{path}: truncated: the header promises {promise} but only {found} bytes follow the "
            "header"
        )
    if found > data_size:
        raise IdxFormatError(
            f"{path}: {found - data_size} bytes after the data that the header ({promise}) does "
            "not account for"
        )


def write_idx(path: str | os.PathLike, array: Any) -> None:
    """Write `array` as an IDX file; gzipped when `path` ends in '.gz'."""
    array = np.asarray(array)
    codes = {stored_dtype: code for code, (_, stored_dtype) in IDX_TYPES.items()}
    type_code = codes.get(array.dtype.newbyteorder(">"))
    if type_code is None:
        supported = ", ".join(str(dtype.newbyteorder("=")) for _, dtype in IDX_TYPES.values())
        raise TypeError(f"write_idx: IDX cannot store dtype {array.dtype} (it stores {supported})")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: IDX stores 1 to 255 dimensions, got {array.ndim}")
    if any(size >= 2**32 for size in array.shape):
        raise ValueError(f"write_idx: every size must fit in 32 bits, got shape {array.shape}")
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    stored_dtype = IDX_TYPES[type_code][1]
    content = header + np.ascontiguousarray(array, dtype=stored_dtype).tobytes()
    if str(path).endswith(".gz"):
        content = gzip.compress(content, mtime=0)
    with open(path, "wb") as file:
        file.write(content)

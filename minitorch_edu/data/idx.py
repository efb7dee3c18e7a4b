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
import math
import os
import struct
import zlib
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


class IdxFormatError(ValueError):
    """A file is not a well-formed IDX file (or not the kind of IDX file expected)."""


def describe_magic(magic: int) -> str:
    """0x00000803 -> 'magic 0x00000803 (unsigned byte, 3 dims)'."""
    type_code, dims = (magic >> 8) & 0xFF, magic & 0xFF
    type_name = IDX_TYPES[type_code][0] if type_code in IDX_TYPES else "unknown type"
    return f"magic 0x{magic:08X} ({type_name}, {dims} dims)"


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, decompressed if it is gzipped (recognised by content, not name)."""
    with open(path, "rb") as file:
        content = file.read()
    if content[:2] != _GZIP_START:
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as error:
        raise IdxFormatError(f"{path}: damaged gzip file ({error})") from error


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """The array stored in an IDX file (gzipped or not), in native byte order.

    expected_magic: if given (e.g. MNIST_IMAGES_MAGIC), any other magic number is an error.
    """
    return parse_idx(read_idx_bytes(path), path, expected_magic)


def parse_idx(
    content: bytes, path: Any = "<bytes>", expected_magic: int | None = None
) -> np.ndarray:
    """Decode IDX `content` (already decompressed); `path` only names it in errors."""
    if len(content) < 4:
        raise IdxFormatError(
            f"{path}: too short to be an IDX file ({len(content)} bytes; the header alone needs 4)"
        )
    (magic,) = struct.unpack(">I", content[:4])
    if content[0] != 0 or content[1] != 0:
        raise IdxFormatError(
            f"{path}: not an IDX file: magic number 0x{magic:08X} should start with two zero "
            "bytes (IDX magic is 0x0000TTDD: TT the data type, DD the number of dims)"
        )
    type_code, dims = content[2], content[3]
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
    if len(content) < header_size:
        raise IdxFormatError(
            f"{path}: truncated: the header declares {dims} dims, which needs {header_size} "
            f"header bytes, but the file has {len(content)}"
        )
    shape = struct.unpack(f">{dims}I", content[4:header_size])
    type_name, stored_dtype = IDX_TYPES[type_code]
    data_size = math.prod(shape) * stored_dtype.itemsize
    found = len(content) - header_size
    if found < data_size:
        raise IdxFormatError(
            f"{path}: truncated: the header promises shape {shape} of {type_name} "
            f"({data_size} data bytes) but only {found} bytes follow the header"
        )
    if found > data_size:
        raise IdxFormatError(
            f"{path}: {found - data_size} bytes after the data that the header (shape {shape} "
            f"of {type_name}, {data_size} data bytes) does not account for"
        )
    values = np.frombuffer(content, dtype=stored_dtype, count=math.prod(shape), offset=header_size)
    return values.reshape(shape).astype(stored_dtype.newbyteorder("="))


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

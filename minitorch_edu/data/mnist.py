"""MNIST from IDX files the user already has (nothing is ever downloaded).

A directory holds four files (each may be gzipped, with '.gz' added to its name):

    train-images-idx3-ubyte   60,000 images, 28 x 28 unsigned bytes   (magic 0x00000803)
    train-labels-idx1-ubyte   60,000 labels 0..9                      (magic 0x00000801)
    t10k-images-idx3-ubyte    10,000 test images
    t10k-labels-idx1-ubyte    10,000 test labels

They are looked for in the directory itself, then in `MNIST/raw/` and `raw/` below it (where
torchvision keeps them). Other datasets in the same format (Fashion-MNIST, KMNIST) load too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from minitorch_edu.data.dataset import TensorDataset
from minitorch_edu.data.idx import MNIST_IMAGES_MAGIC, MNIST_LABELS_MAGIC, IdxFormatError, read_idx
from minitorch_edu.data.transforms import (
    MNIST_MEAN,
    MNIST_STD,
    Normalize,
    ToTensor,
    normalization_statistics,
)

SPLIT_PREFIXES = {"train": "train", "test": "t10k"}
CLASSES = 10  # labels 0-9: MNIST, Fashion-MNIST and KMNIST alike
SUBDIRECTORIES = (".", "MNIST/raw", "raw")


def _candidates(prefix: str, kind: str, dims: int) -> list[str]:
    """File names one MNIST file goes by: the official one, the '.idx' variant, gzipped or not."""
    names = [f"{prefix}-{kind}-idx{dims}-ubyte", f"{prefix}-{kind}.idx{dims}-ubyte"]
    return [name + suffix for name in names for suffix in ("", ".gz")]


def find_mnist_files(directory: str | os.PathLike, split: str = "train") -> tuple[Path, Path]:
    """(images path, labels path) of `split` under `directory`, or a FileNotFoundError naming
    what was looked for."""
    prefix = _split_prefix(split)
    root = Path(directory)
    if not root.exists():
        raise FileNotFoundError(f"MNIST directory {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"MNIST path {root} is not a directory")
    image_names = _candidates(prefix, "images", 3)
    label_names = _candidates(prefix, "labels", 1)
    partial = ""
    for subdirectory in SUBDIRECTORIES:
        folder = root / subdirectory
        images = next((folder / n for n in image_names if (folder / n).is_file()), None)
        labels = next((folder / n for n in label_names if (folder / n).is_file()), None)
        if images is not None and labels is not None:
            return images, labels
        if images is not None or labels is not None:
            found, missing = (images, label_names[0]) if images else (labels, image_names[0])
            partial = f"; found {found} but not its partner {missing}[.gz]"
    raise FileNotFoundError(
        f"no MNIST {split} files in {root}: looked for {image_names[0]}[.gz] and "
        f"{label_names[0]}[.gz] (also under {', '.join(SUBDIRECTORIES[1:])}){partial}"
    )


def load_mnist(
    directory: str | os.PathLike,
    split: str = "train",
    normalize: bool | tuple[float, float] = False,
) -> TensorDataset:
    """MNIST-format images and labels as a TensorDataset of (N, 1, 28, 28) float32, (N,) int64.

    Pixels are scaled to [0, 1] like torchvision's ToTensor (x / 255). normalize=True then
    applies Normalize(MNIST_MEAN, MNIST_STD) = (0.1307, 0.3081); a (mean, std) pair applies
    those instead.
    """
    images_path, labels_path = find_mnist_files(directory, split)
    images = read_idx(images_path, expected_magic=MNIST_IMAGES_MAGIC)
    labels = read_idx(labels_path, expected_magic=MNIST_LABELS_MAGIC)
    if len(images) != len(labels):
        raise IdxFormatError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels; they must pair one to one"
        )
    if len(images) == 0:
        raise IdxFormatError(f"{images_path} holds no images: the {split} split is empty")
    if 0 in images.shape[1:]:
        raise IdxFormatError(f"{images_path}: its images have no pixels (shape {images.shape})")
    outside = np.flatnonzero(labels >= CLASSES)
    if len(outside):
        raise IdxFormatError(
            f"{labels_path}: label {labels[outside[0]]} at position {outside[0]} is outside "
            f"0-{CLASSES - 1} ({len(outside)} such labels); MNIST-format data has {CLASSES} "
            "classes"
        )
    pixels = ToTensor(max_value=255)(images)
    statistics = normalization_statistics(normalize, (MNIST_MEAN, MNIST_STD))
    if statistics is not None:
        pixels = Normalize(*statistics)(pixels)
    return TensorDataset(pixels, torch.from_numpy(labels.astype(np.int64)))


def _split_prefix(split: str) -> str:
    if split not in SPLIT_PREFIXES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return SPLIT_PREFIXES[split]


def load_mnist_splits(
    directory: str | os.PathLike, normalize: bool | tuple[float, float] = False
) -> tuple[TensorDataset, TensorDataset]:
    """(train, test) from `directory`, as `load_mnist` loads each, checked to have images of one
    size (a model is built for one size)."""
    train, test = (
        load_mnist(directory, "train", normalize),
        load_mnist(directory, "test", normalize),
    )
    train_size, test_size = train.tensors[0].shape[-2:], test.tensors[0].shape[-2:]
    if train_size != test_size:
        train_images, test_images = (
            find_mnist_files(directory, "train")[0],
            find_mnist_files(directory, "test")[0],
        )
        raise IdxFormatError(
            f"{test_images}: test images are {'x'.join(map(str, test_size))} but the training "
            f"images in {train_images} are {'x'.join(map(str, train_size))}; both splits must "
            "have one size"
        )
    return train, test

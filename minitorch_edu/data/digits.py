"""The bundled default dataset: scikit-learn's handwritten digits (no download needed).

1,797 grayscale images of 8 x 8 pixels with values 0..16, ten classes (0-9), about 180 each.

The train/test split is stratified and fixed by `seed`: within each class, the samples are put
in the order `torch.randperm(class size, generator seeded with seed)` (classes taken 0 to 9, one
generator for all), the first round(test_fraction * class size) go to test and the rest to
train. Each split keeps the original order of the samples (sorted indices), so the same seed
always gives the same split, every sample lands in exactly one split, and both splits have
every class in the same proportion.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from minitorch_edu.data.dataset import TensorDataset
from minitorch_edu.data.transforms import Normalize, ToTensor, normalization_statistics

DIGITS_SAMPLES = 1797
DIGITS_MAX_VALUE = 16
# Mean and standard deviation of every pixel of all 1,797 images after ToTensor (x / 16).
DIGITS_MEAN = 0.3053
DIGITS_STD = 0.3760


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) float64 with values 0..16, labels (1797,) int64) from scikit-learn.

    scikit-learn's load_digits reads them from the file sklearn/datasets/data/digits.csv.gz
    (one row per image: 64 pixels, then the label). That file is read directly here, because
    importing scikit-learn takes most of a second; load_digits is the fallback.
    """
    csv = _sklearn_digits_file()
    if csv is not None:
        with gzip.open(csv) as rows:
            table = np.loadtxt(rows, delimiter=",")
        images, labels = table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    else:
        from sklearn.datasets import load_digits as sklearn_load_digits

        bunch = sklearn_load_digits()
        images, labels = bunch.images, bunch.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _sklearn_digits_file() -> Path | None:
    """Where scikit-learn keeps digits.csv.gz (found without importing scikit-learn)."""
    spec = importlib.util.find_spec("sklearn")
    for folder in (spec and spec.submodule_search_locations) or ():
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def digits_split_indices(
    seed: int = 0, test_fraction: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, test indices) into the 1,797 digits: the stratified split described above."""
    if not (isinstance(test_fraction, int | float) and 0 < test_fraction < 1):
        raise ValueError(
            f"test_fraction must be a number strictly between 0 and 1, got {test_fraction!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    labels = torch.from_numpy(_raw_digits()[1].copy())
    generator = torch.Generator().manual_seed(seed)
    train_parts, test_parts = [], []
    for label in range(10):
        members = torch.nonzero(labels == label).flatten()
        shuffled = members[torch.randperm(len(members), generator=generator)]
        test_count = round(test_fraction * len(members))
        test_parts.append(shuffled[:test_count])
        train_parts.append(shuffled[test_count:])
    train, test = torch.cat(train_parts).sort().values, torch.cat(test_parts).sort().values
    if len(train) == 0 or len(test) == 0:
        raise ValueError(
            f"test_fraction={test_fraction} leaves the {'train' if len(train) == 0 else 'test'} "
            "split empty"
        )
    return train, test


def load_digits(
    split: str = "train",
    seed: int = 0,
    test_fraction: float = 0.2,
    normalize: bool | tuple[float, float] = False,
) -> TensorDataset:
    """One split of the digits as a TensorDataset of (N, 1, 8, 8) float32 images, (N,) int64 labels.

    Pixels are scaled to [0, 1] like ToTensor (x / 16). normalize=True then applies
    Normalize(DIGITS_MEAN, DIGITS_STD); a (mean, std) pair applies those instead.
    With the defaults, train has 1,438 samples and test 359.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    train, test = digits_split_indices(seed, test_fraction)
    chosen = (train if split == "train" else test).numpy()
    images, labels = _raw_digits()
    pixels = ToTensor(max_value=DIGITS_MAX_VALUE)(images[chosen])
    statistics = normalization_statistics(normalize, (DIGITS_MEAN, DIGITS_STD))
    if statistics is not None:
        pixels = Normalize(*statistics)(pixels)
    return TensorDataset(pixels, torch.from_numpy(labels[chosen]))

"""Data: datasets, the DataLoader, the bundled digits and MNIST-format IDX files.

    from minitorch_edu.data import DataLoader, load_digits

    train = load_digits("train", seed=0)                  # (1438, 1, 8, 8) images, labels
    loader = DataLoader(train, batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    for images, labels in loader: ...                     # mt.Tensor batches

Nothing here downloads anything: MNIST is read from IDX files in a directory the user names.
"""

from minitorch_edu.data.dataset import Dataset, TensorDataset
from minitorch_edu.data.digits import (
    DIGITS_MEAN,
    DIGITS_STD,
    digits_split_indices,
    load_digits,
)
from minitorch_edu.data.distributed import DistributedSampler
from minitorch_edu.data.idx import (
    MNIST_IMAGES_MAGIC,
    MNIST_LABELS_MAGIC,
    IdxFormatError,
    read_idx,
    write_idx,
)
from minitorch_edu.data.loader import DataLoader, default_collate
from minitorch_edu.data.mnist import find_mnist_files, load_mnist, load_mnist_splits
from minitorch_edu.data.transforms import MNIST_MEAN, MNIST_STD, Compose, Normalize, ToTensor

__all__ = [
    "DIGITS_MEAN",
    "DIGITS_STD",
    "MNIST_IMAGES_MAGIC",
    "MNIST_LABELS_MAGIC",
    "MNIST_MEAN",
    "MNIST_STD",
    "Compose",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IdxFormatError",
    "Normalize",
    "TensorDataset",
    "ToTensor",
    "default_collate",
    "digits_split_indices",
    "find_mnist_files",
    "load_digits",
    "load_mnist",
    "load_mnist_splits",
    "read_idx",
    "write_idx",
]

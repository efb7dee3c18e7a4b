"""Datasets: anything with `__len__` and `__getitem__`, as in torch.utils.data.

A dataset answers two questions: how many samples are there (`len(dataset)`), and what is
sample i (`dataset[i]`). `TensorDataset` is the common case: sample i is row i of each of a few
tensors that share their first dimension, e.g. `(images[i], labels[i])`.

Samples are plain torch.Tensors, so torch.utils.data.DataLoader can read these datasets too;
our `DataLoader` hands out whole batches as `mt.Tensor` constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from minitorch_edu.autograd.tensor import Tensor


class Dataset:
    """Base class of map-style datasets: subclasses define `__getitem__` and `__len__`."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


def _as_storage(value: Any, position: int) -> torch.Tensor:
    """A dataset column as a plain torch.Tensor (no copy where torch.as_tensor avoids one)."""
    if isinstance(value, Tensor):
        return value.data.detach()
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.as_tensor(value)
    raise TypeError(
        f"TensorDataset: tensor {position} is a {type(value).__name__}; expected an mt.Tensor, "
        "a torch.Tensor or a NumPy array"
    )


class TensorDataset(Dataset):
    """Sample i is `(tensors[0][i], tensors[1][i], ...)`; all tensors share their first dim.

    Accepts mt.Tensors, torch.Tensors and NumPy arrays; keeps them as torch.Tensors in
    `.tensors` (the attribute name torch uses).
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        storage = tuple(_as_storage(value, i) for i, value in enumerate(tensors))
        for i, column in enumerate(storage):
            if column.dim() == 0:
                raise ValueError(
                    f"TensorDataset: tensor {i} is a 0-dim scalar; every tensor needs a first "
                    "dimension that indexes the samples"
                )
        sizes = [column.shape[0] for column in storage]
        if len(set(sizes)) > 1:
            shapes = ", ".join(
                f"tensor {i}: {tuple(column.shape)}" for i, column in enumerate(storage)
            )
            raise ValueError(
                f"Size mismatch between tensors: TensorDataset needs equal first dimensions "
                f"(the number of samples), got {shapes}"
            )
        self.tensors = storage

    def __getitem__(self, index: Any) -> tuple[torch.Tensor, ...]:
        return tuple(column[index] for column in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{tuple(column.shape)} {column.dtype}" for column in self.tensors)
        return f"TensorDataset({len(self)} samples: {shapes})"

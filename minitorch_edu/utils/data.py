"""`minitorch_edu.utils.data`, for code that imports `torch.utils.data`.

Ours, yielding minitorch_edu Tensors: `DataLoader`, `Dataset`, `TensorDataset`,
`default_collate`, `DistributedSampler` (minitorch_edu/data/). torch's own, which work with
any dataset that has `__len__` and `__getitem__` and teach nothing this library is about:
samplers, `Subset`, `random_split`, `ConcatDataset`, `IterableDataset`, `get_worker_info`.
"""

from torch.utils.data import (
    BatchSampler,
    ConcatDataset,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    WeightedRandomSampler,
    get_worker_info,
    random_split,
)

from minitorch_edu.data import DataLoader, Dataset, TensorDataset, default_collate
from minitorch_edu.data.distributed import DistributedSampler

__all__ = [
    "BatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "default_collate",
    "get_worker_info",
    "random_split",
]

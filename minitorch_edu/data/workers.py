"""What `DataLoader` leaves to torch's own DataLoader: worker processes and the rest.

minitorch_edu's DataLoader draws the sample order and cuts batches itself (data/loader.py),
which is all a training loop in one process needs. torch's DataLoader has more, none of it
about what this library teaches: worker processes that load batches in parallel (with their
seeds, timeouts, prefetching, persistence), batch samplers, `batch_size=None` (samples one by
one, not collated), pinned memory for faster copies to a GPU, and iterable-style datasets.
Given any of those, our DataLoader hands the work to torch's, with the same arguments (so
torch checks them, with its own errors), and turns each batch's torch tensors into our
Tensors as they come out:

    workers:       samples -> default_collate -> torch tensors  (picklable, pinnable)
    main process:  torch tensors -> minitorch_edu Tensors (constants)

A `collate_fn` of the user's is run as given and its result handed out unchanged, as in our
own loader. The random numbers are torch's: the same batches as torch's DataLoader given the
same arguments.
"""

from __future__ import annotations

import collections.abc
from collections.abc import Iterator
from typing import Any

import torch

from minitorch_edu.autograd.tensor import Tensor

# torch's DataLoader arguments that only its loader implements, with their defaults.
TORCH_ONLY_DEFAULTS: dict[str, Any] = {
    "batch_sampler": None,
    "num_workers": 0,
    "pin_memory": False,
    "timeout": 0,
    "worker_init_fn": None,
    "multiprocessing_context": None,
    "prefetch_factor": None,
    "persistent_workers": False,
    "pin_memory_device": "",
    "in_order": True,
}


def is_iterable_style(dataset: Any) -> bool:
    """A dataset read by iterating over it (torch's IterableDataset), not by index."""
    return isinstance(dataset, torch.utils.data.IterableDataset) or (
        hasattr(dataset, "__iter__") and not hasattr(dataset, "__getitem__")
    )


def needs_torch_loader(dataset: Any, batch_size: Any, options: dict[str, Any]) -> bool:
    """Whether these DataLoader arguments ask for something only torch's loader does."""
    changed = any(options[name] != default for name, default in TORCH_ONLY_DEFAULTS.items())
    return changed or batch_size is None or is_iterable_style(dataset)


def torch_loader(
    dataset: Any,
    batch_size: int | None,
    shuffle: bool | None,
    sampler: Any,
    drop_last: bool,
    generator: torch.Generator | None,
    collate_fn: Any,
    options: dict[str, Any],
) -> torch.utils.data.DataLoader:
    """torch's DataLoader over `dataset`, collating into plain torch tensors (see above)."""
    batching = batch_size is not None or options["batch_sampler"] is not None
    if collate_fn is None and batching:
        collate_fn = collate_to_torch
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        drop_last=drop_last,
        generator=generator,
        collate_fn=collate_fn,  # None with batch_size=None: torch's default_convert
        **options,
    )


def batches(loader: torch.utils.data.DataLoader, convert: bool) -> Iterator[Any]:
    """Each batch of `loader`, its torch tensors as our Tensors when `convert`."""
    for batch in loader:
        yield to_ours(batch) if convert else batch


def collate_to_torch(samples: list) -> Any:
    """Our `default_collate`, with torch tensors left in the batch: what a worker sends."""
    from minitorch_edu.data.loader import default_collate  # (loader.py imports this module)

    return to_torch(default_collate(samples))


def to_torch(value: Any) -> Any:
    """`value` with our Tensors replaced by their torch tensors (through lists, dicts...)."""
    return _map_tensors(value, lambda t: t.data if isinstance(t, Tensor) else t)


def to_ours(value: Any) -> Any:
    """`value` with torch tensors replaced by our Tensors (constants), through containers."""
    return _map_tensors(value, lambda t: Tensor._wrap(t) if isinstance(t, torch.Tensor) else t)


def _map_tensors(value: Any, change: Any) -> Any:
    if isinstance(value, Tensor | torch.Tensor):
        return change(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple keeps its type
        return type(value)(*(_map_tensors(item, change) for item in value))
    if isinstance(value, list | tuple):
        return type(value)(_map_tensors(item, change) for item in value)
    if isinstance(value, collections.abc.Mapping):
        return {key: _map_tensors(item, change) for key, item in value.items()}
    return value

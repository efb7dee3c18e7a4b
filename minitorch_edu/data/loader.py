"""`DataLoader`: cut a dataset into batches, in order or shuffled, as torch.utils.data does.

One epoch is one pass over the dataset:

    order   = 0, 1, ..., n-1                        (shuffle=False)
            = torch.randperm(n, generator)          (shuffle=True)
            = list(sampler)                         (a sampler, e.g. DistributedSampler)
    batch k = collate([dataset[i] for i in order[k*batch_size : (k+1)*batch_size]])

The random numbers are drawn exactly as torch's DataLoader draws them (see `__iter__`), so the
same generator seed gives the same batches as `torch.utils.data.DataLoader`, epoch after epoch,
and leaves the generator (or torch's global generator) in the same state.

`state_dict()` / `load_state_dict()` save and restore where iteration stands (generator state,
the order of an epoch in progress, how many of its batches were handed out), so a run resumed
from a checkpoint sees the same batches as one that never stopped.
"""

from __future__ import annotations

import collections.abc
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.data import workers
from minitorch_edu.data.dataset import TensorDataset

# Datasets whose sample i is `tuple(column[i] for column in dataset.tensors)`: a batch of them
# is `[column[indices] for column in dataset.tensors]`, one indexing op per column.
_TENSOR_DATASET_GETITEMS = (TensorDataset.__getitem__, torch.utils.data.TensorDataset.__getitem__)


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of samples into one batch, following torch's `default_collate`.

    tensors, NumPy arrays   ->  stacked along a new first dim, as an mt.Tensor
    floats / ints / bools   ->  a float64 / int64 / bool mt.Tensor of length len(samples)
    strings                 ->  the list of strings
    tuples and lists        ->  a list with one collated entry per position
    dicts                   ->  a dict with one collated entry per key
    """
    if len(samples) == 0:
        raise IndexError("default_collate: the batch holds no samples, nothing to stack")
    first = samples[0]
    if isinstance(first, Tensor | torch.Tensor):
        return Tensor(torch.stack([torch.as_tensor(_raw(sample)) for sample in samples]))
    if isinstance(first, np.ndarray):
        if first.dtype.kind in "OSUV":
            raise TypeError(f"default_collate: cannot stack NumPy arrays of dtype {first.dtype}")
        return Tensor(torch.stack([torch.as_tensor(sample) for sample in samples]))
    if isinstance(first, np.generic):
        return Tensor(torch.as_tensor(np.array(samples)))
    if isinstance(first, float):
        return Tensor(torch.tensor(samples, dtype=torch.float64))
    if isinstance(first, int):  # bool is an int: torch.tensor keeps it bool
        return Tensor(torch.tensor(samples))
    if isinstance(first, str | bytes):
        return samples
    if isinstance(first, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in samples]) for key in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # namedtuple keeps its type
        return type(first)(*(default_collate(column) for column in zip(*samples)))
    if isinstance(first, collections.abc.Sequence):
        if any(len(sample) != len(first) for sample in samples):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(column) for column in zip(*samples)]
    raise TypeError(
        "default_collate: batch must contain tensors, NumPy arrays, numbers, dicts or lists; "
        f"found {type(first).__name__}"
    )


def _raw(sample: Any) -> Any:
    return sample.data if isinstance(sample, Tensor) else sample


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size` samples.

    dataset     anything with `__len__` and `__getitem__`: ours, a torch.utils.data.Dataset...
    shuffle     a fresh random order each epoch, drawn from `generator`
    sampler     the indices of each epoch instead (anything iterable with `__len__`, such
                as mt.data.DistributedSampler); not together with shuffle
    drop_last   drop the last batch when it has fewer than batch_size samples
    generator   a CPU torch.Generator; None uses torch's global generator (mt.manual_seed)
    collate_fn  turns a list of samples into a batch (default: `default_collate`); its
                result is handed out unchanged

    Batches are mt.Tensor constants (no gradient). A TensorDataset is cut into batches by
    indexing each of its tensors once per batch, without a Python loop over samples.

    torch's other arguments (num_workers, batch_sampler, batch_size=None, pin_memory,
    timeout, worker_init_fn, multiprocessing_context, prefetch_factor, persistent_workers,
    pin_memory_device, in_order) and iterable-style datasets are handed to torch's own
    DataLoader, whose batches come out as our Tensors (data/workers.py); such a loader has no
    state_dict().
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool | None = None,
        sampler: Any = None,
        *,  # torch's next positional parameters are others (batch_sampler, ...): name these
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        collate_fn: Callable[[list], Any] | None = None,
        batch_sampler: Any = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ) -> None:
        options = {
            "batch_sampler": batch_sampler,
            "num_workers": num_workers,
            "pin_memory": pin_memory,
            "timeout": timeout,
            "worker_init_fn": worker_init_fn,
            "multiprocessing_context": multiprocessing_context,
            "prefetch_factor": prefetch_factor,
            "persistent_workers": persistent_workers,
            "pin_memory_device": pin_memory_device,
            "in_order": in_order,
        }
        self._torch_loader = None
        if workers.needs_torch_loader(dataset, batch_size, options):
            self._torch_loader = workers.torch_loader(  # torch checks these arguments itself
                dataset, batch_size, shuffle, sampler, drop_last, generator, collate_fn, options
            )
            self.dataset, self.batch_size, self.shuffle = dataset, batch_size, bool(shuffle)
            self.sampler, self.drop_last, self.generator = sampler, drop_last, generator
            self.collate_fn, self.num_workers = collate_fn, num_workers
            return
        shuffle = False if shuffle is None else shuffle
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                "DataLoader needs a map-style dataset (with __len__ and __getitem__); "
                f"got {type(dataset).__name__}"
            )
        if batch_size is None or isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size!r}"
            )
        if batch_size <= 0:
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} should be a boolean value, but got {name}={flag!r}")
        if generator is not None:
            if not isinstance(generator, torch.Generator):
                raise TypeError(
                    f"generator should be a torch.Generator, got {type(generator).__name__}"
                )
            if generator.device.type != "cpu":
                raise ValueError(
                    f"generator must be a CPU torch.Generator (it draws the sample order); "
                    f"got one on {generator.device}"
                )
        if sampler is not None:
            if shuffle:
                raise ValueError("sampler option is mutually exclusive with shuffle")
            if not (hasattr(sampler, "__iter__") and hasattr(sampler, "__len__")):
                raise TypeError(
                    "sampler should be iterable and have a length (like DistributedSampler), "
                    f"got {type(sampler).__name__}"
                )
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"collate_fn should be callable, got {type(collate_fn).__name__}")
        if shuffle and len(dataset) == 0:
            raise ValueError(
                "num_samples should be a positive integer value, but got num_samples=0"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.sampler = sampler
        self.drop_last = drop_last
        self.generator = generator
        self.collate_fn = collate_fn
        # Where iteration stands: the order of the epoch in progress (None when sequential or
        # when no epoch is in progress), how many of its batches were handed out, and a state
        # to resume from, set by load_state_dict.
        self._in_progress = False
        self._epoch_order: torch.Tensor | None = None
        self._batches_yielded = 0
        self._resume_from: dict | None = None

    def __len__(self) -> int:
        """Batches per epoch: n // batch_size with drop_last, else ceil(n / batch_size), where
        n counts the samples of an epoch (the sampler's length when there is one)."""
        if self._torch_loader is not None:
            return len(self._torch_loader)
        count = len(self.dataset) if self.sampler is None else len(self.sampler)
        if self.drop_last:
            return count // self.batch_size
        return (count + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Any]:
        if self._torch_loader is not None:
            return workers.batches(self._torch_loader, convert=self.collate_fn is None)
        if self._resume_from is not None:
            resume, self._resume_from = self._resume_from, None
            return self._epoch(resume["epoch_order"], resume["batches_yielded"])
        # torch's DataLoader draws a seed for its worker processes from the generator at the
        # start of every epoch, even with no workers; drawing it too keeps our random stream
        # in step with torch's.
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        return self._epoch(None, 0)

    def _epoch(self, order: torch.Tensor | None, first_batch: int) -> Iterator[Any]:
        count = len(self.dataset)
        if order is None and self.shuffle:  # a fresh epoch (a resumed one brings its order)
            order = torch.randperm(count, generator=self._order_generator())
        elif order is None and self.sampler is not None:
            order = torch.tensor(list(self.sampler), dtype=torch.int64)
        self._in_progress = True
        self._epoch_order = order
        self._batches_yielded = first_batch
        indices = order if order is not None else torch.arange(count)
        for batch_number in range(first_batch, len(self)):
            batch_indices = indices[
                batch_number * self.batch_size : (batch_number + 1) * self.batch_size
            ]
            batch = self._fetch(batch_indices)
            self._batches_yielded = batch_number + 1
            yield batch
        if self.shuffle and self.generator is not None:
            # torch's RandomSampler draws one more permutation (of which it uses no element)
            # when an epoch runs out; draw it too so the next epoch's order matches torch's.
            torch.randperm(count, generator=self.generator)
        self._in_progress = False
        self._epoch_order = None
        self._batches_yielded = 0

    def _order_generator(self) -> torch.Generator:
        if self.generator is not None:
            return self.generator
        # Like torch's RandomSampler without a generator: seed a fresh one from the global one.
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        generator = torch.Generator()
        generator.manual_seed(seed)
        return generator

    def _fetch(self, indices: torch.Tensor) -> Any:
        dataset = self.dataset
        getitem = getattr(type(dataset), "__getitem__", None)
        if self.collate_fn is None and getitem in _TENSOR_DATASET_GETITEMS:
            return [Tensor(column[indices.to(column.device)]) for column in dataset.tensors]
        samples = [dataset[index] for index in indices.tolist()]
        return (self.collate_fn or default_collate)(samples)

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Where iteration stands, as plain values and torch.Tensors (fit for a checkpoint).

        generator_state   the generator's state (None when using torch's global one,
                          whose state a checkpoint saves separately)
        in_progress       whether an epoch was started and has not run out
        epoch_order       that epoch's sample order (None when in dataset order)
        batches_yielded   how many of its batches were handed out

        An epoch is in progress from its first batch until its iterator runs out; the state
        follows the most recently started epoch.
        """
        self._refuse_on_torch_loader("state_dict")
        return {
            "generator_state": None if self.generator is None else self.generator.get_state(),
            "in_progress": self._in_progress,
            "epoch_order": (
                self._epoch_order.clone()
                if self._in_progress and self._epoch_order is not None
                else None
            ),
            "batches_yielded": self._batches_yielded if self._in_progress else 0,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore `state_dict()`: the next `iter(loader)` continues an epoch in progress."""
        self._refuse_on_torch_loader("load_state_dict")
        expected = {"generator_state", "in_progress", "epoch_order", "batches_yielded"}
        if not isinstance(state_dict, dict) or set(state_dict) != expected:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict)
            raise ValueError(
                f"DataLoader.load_state_dict: expected keys {sorted(expected)}, got {keys}"
            )
        saved_generator = state_dict["generator_state"]
        if (saved_generator is None) != (self.generator is None):
            have = "has no generator" if self.generator is None else "has a generator"
            saved = "none" if saved_generator is None else "a generator state"
            raise ValueError(
                f"DataLoader.load_state_dict: this loader {have} but the saved state holds "
                f"{saved}; build the loader the way the saved one was built"
            )
        order = state_dict["epoch_order"]
        batches_yielded = state_dict["batches_yielded"]
        if state_dict["in_progress"]:
            ordered = self.shuffle or self.sampler is not None
            if (order is not None) != ordered:
                raise ValueError(
                    f"DataLoader.load_state_dict: saved state is from a loader with "
                    f"shuffle={order is not None}, this one has shuffle={self.shuffle}"
                    + ("" if self.sampler is None else " and a sampler")
                )
            epoch_length = len(self.dataset) if self.sampler is None else len(self.sampler)
            if order is not None and tuple(order.shape) != (epoch_length,):
                raise ValueError(
                    f"DataLoader.load_state_dict: saved epoch order covers {order.numel()} "
                    f"samples but an epoch of this loader has {epoch_length}"
                )
            if not 0 <= batches_yielded <= len(self):
                raise ValueError(
                    f"DataLoader.load_state_dict: batches_yielded={batches_yielded} is outside "
                    f"0..{len(self)}"
                )
        if saved_generator is not None:
            self.generator.set_state(saved_generator)
        if state_dict["in_progress"]:
            order = None if order is None else order.to(dtype=torch.int64, device="cpu")
            self._resume_from = {"epoch_order": order, "batches_yielded": batches_yielded}
        else:
            self._resume_from = None

    def _refuse_on_torch_loader(self, method: str) -> None:
        if self._torch_loader is not None:
            raise NotImplementedError(
                f"DataLoader.{method}() is available when the loader draws its own batches; "
                "this one hands its work to torch's DataLoader (worker processes, a "
                "batch_sampler, batch_size=None, pin_memory or an iterable dataset), whose "
                "position cannot be saved"
            )

    def __repr__(self) -> str:
        size = f" of {len(self.dataset)} samples" if hasattr(self.dataset, "__len__") else ""
        workers_text = f", num_workers={self.num_workers}" if self._torch_loader else ""
        return (
            f"DataLoader({type(self.dataset).__name__}{size}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}{workers_text})"
        )

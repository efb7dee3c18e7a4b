"""Creating tensors: `tensor` and the factories, with torch's names and defaults."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from minitorch_edu.autograd.tensor import Tensor, as_torch


def tensor(
    data: Any,
    requires_grad: bool = False,
    dtype: torch.dtype | None = None,
    device: Any = None,
) -> Tensor:
    """A new leaf Tensor holding a copy of `data` (number, list, NumPy array, torch.Tensor).

    Like torch.tensor: Python floats become the default dtype (float32), NumPy arrays keep
    their dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, torch.Tensor):
        raw = data.detach().to(device=device, dtype=dtype, copy=True)
    elif isinstance(data, np.ndarray):
        raw = torch.tensor(data, dtype=dtype, device=device)  # a copy, never shared memory
    elif isinstance(data, list | tuple):  # may hold our Tensors, e.g. [mt.tensor(1.0), ...]
        raw = torch.tensor(_unwrap_nested(data), dtype=dtype, device=device)
    else:
        raw = as_torch(data, dtype=dtype, device=device)
    return Tensor(raw, requires_grad=requires_grad)


def _unwrap_nested(data: Any) -> Any:
    """Lists and tuples with our Tensors replaced by their torch data, at every depth."""
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, list | tuple):
        return [_unwrap_nested(item) for item in data]
    return data


def _factory(make: Any, size: tuple, requires_grad: bool, **kwargs: Any) -> Tensor:
    if len(size) == 1 and isinstance(size[0], list | tuple | torch.Size):
        size = tuple(size[0])
    return Tensor(make(size, **kwargs), requires_grad=requires_grad)  # () makes a 0-d tensor


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(torch.zeros, size, requires_grad, dtype=dtype, device=device)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(torch.ones, size, requires_grad, dtype=dtype, device=device)


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1), from torch's generator (so mt.manual_seed makes it repeatable)."""
    return _factory(torch.rand, size, requires_grad, dtype=dtype, device=device)


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal, from torch's generator."""
    return _factory(torch.randn, size, requires_grad, dtype=dtype, device=device)


def randint(*bounds_and_size: Any, **options: Any) -> Tensor:
    """Integers uniform on [low, high): `randint(high, size)` or `randint(low, high, size)`,
    torch's arguments and generator (int64 unless `dtype` says otherwise)."""
    return Tensor(torch.randint(*bounds_and_size, **options))


def randperm(n: int, **options: Any) -> Tensor:
    """0..n-1 in a random order, from torch's generator."""
    return Tensor(torch.randperm(n, **options))


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(torch.empty, size, requires_grad, dtype=dtype, device=device)


def full(
    size: Any, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    raw = torch.full(tuple(size), fill_value, dtype=dtype, device=device)
    return Tensor(raw, requires_grad=requires_grad)


def arange(
    start: Any,
    end: Any = None,
    step: Any = 1,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    if end is None:
        start, end = 0, start
    raw = torch.arange(start, end, step, dtype=dtype, device=device)
    return Tensor(raw, requires_grad=requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None) -> Tensor:
    return Tensor(torch.linspace(start, end, steps, dtype=dtype, device=device))


def eye(
    n: int, m: int | None = None, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    raw = torch.eye(n, n if m is None else m, dtype=dtype, device=device)
    return Tensor(raw, requires_grad=requires_grad)


def _like(
    make: Any, other: Any, dtype: Any, device: Any, requires_grad: bool, *args: Any
) -> Tensor:
    raw = other.data if isinstance(other, Tensor) else as_torch(other)
    return Tensor(make(raw, *args, dtype=dtype, device=device), requires_grad=requires_grad)


def zeros_like(input: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False):
    return _like(torch.zeros_like, input, dtype, device, requires_grad)


def ones_like(input: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False):
    return _like(torch.ones_like, input, dtype, device, requires_grad)


def rand_like(input: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False):
    return _like(torch.rand_like, input, dtype, device, requires_grad)


def randn_like(input: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False):
    return _like(torch.randn_like, input, dtype, device, requires_grad)


def full_like(
    input: Any, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    return _like(torch.full_like, input, dtype, device, requires_grad, fill_value)


def manual_seed(seed: int) -> torch.Generator:
    """Seed the random number generator shared with torch (CPU and every GPU)."""
    try:
        int(seed)  # what torch does with it; its own error would only quote int()
    except (TypeError, ValueError) as error:
        raise type(error)(f"manual_seed: seed must be an integer, got {seed!r}") from None
    return torch.manual_seed(seed)

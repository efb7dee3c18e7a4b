"""Argument handling shared by the layers: sizes given as an int or a tuple, reductions."""

from __future__ import annotations

import numbers
import operator
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from minitorch_edu.autograd.tensor import Tensor, as_torch


def as_tuple(value: int | Sequence[int], length: int, name: str) -> tuple[int, ...]:
    """`3` -> (3, 3) for length 2; a tuple must already have `length` entries.

    TypeError for anything but ints (a stride of 1.5, a string), as torch; ValueError for the
    wrong number of them.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * length
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(f"{name} must be an int or a tuple of {length} ints, got {value!r}")
    values = tuple(value)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{name} must be an int or a tuple of {length} ints, got {value!r}")
    if len(values) == 1 and length > 1:
        values = values * length
    if len(values) != length:
        raise ValueError(f"{name} must be an int or a tuple of {length} ints, got {value!r}")
    return values


def check_int(value: Any, name: str, op: str) -> int:
    """`value` as an int (anything with __index__), or torch's TypeError naming the argument:
    `softmax(): argument 'dim' must be int, not str`."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{op}(): argument '{name}' must be int, not {type(value).__name__}"
        ) from None


def check_number(value: Any, name: str, op: str) -> float:
    """`value` if it is a real number, else TypeError naming the argument (before any `<`
    comparison with it would fail with a Python-internal message)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return value
    if isinstance(value, torch.Tensor | Tensor) and value.numel() == 1:
        return value
    raise TypeError(f"{op}(): argument '{name}' must be a number, not {type(value).__name__}")


def raw(x: Any) -> torch.Tensor:
    """The torch.Tensor behind an argument (our Tensor, torch.Tensor, NumPy array, list)."""
    return x.data if isinstance(x, Tensor) else as_torch(x)


def shape_text(x: Any) -> str:
    """`[2, 3, 5, 5]`: how error messages write a shape."""
    return str(list(x.shape))


def check_dim(dim: int, ndim: int, op: str = "dim") -> int:
    """`dim` as a non-negative index, with torch's error for one out of range."""
    dim = check_int(dim, "dim", op)
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], "
            f"but got {dim})"
        )
    return dim % rank


REDUCTIONS = ("none", "mean", "sum")


def legacy_reduction(size_average: bool | None, reduce: bool | None) -> str:
    """The old (size_average, reduce) flags as a `reduction` string, as torch maps them."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    warnings.warn(
        "size_average and reduce args will be deprecated, please use reduction='"
        + ("mean" if size_average and reduce else "sum" if reduce else "none")
        + "' instead.",
        stacklevel=3,
    )
    if size_average and reduce:
        return "mean"
    return "sum" if reduce else "none"


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction

"""Shape ops: reshape, view, flatten, squeeze, unsqueeze, transpose, permute, expand, contiguous.

None of them changes a number, only where it sits, so each backward moves the gradient
back: reshape it back, transpose it back, permute it by the inverse permutation. expand
is the exception that makes broadcasting work: one element was used many times, so its
gradient is the sum over all the places it was copied to.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from minitorch_edu.autograd.engine import sum_to_shape
from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor


class Reshape(Function):
    derivatives = Formula(
        "a",
        forward="out = a with a new shape",
        backward={"a": "grad reshaped back to a's shape"},
        local={"a": "1"},
    )

    @staticmethod
    def forward(ctx, a, shape=(), view=False):
        ctx.input_shape = a.shape
        return a.view(shape) if view else a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape)


class Transpose(Function):
    derivatives = Formula(
        "a",
        forward="out = a with dims dim0 and dim1 swapped",
        backward={"a": "grad with dims dim0 and dim1 swapped back"},
        local={"a": "1"},
    )

    @staticmethod
    def forward(ctx, a, dim0=0, dim1=1):
        ctx.dim0, ctx.dim1 = dim0, dim1
        return a.transpose(dim0, dim1)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(ctx.dim0, ctx.dim1)


class Permute(Function):
    derivatives = Formula(
        "a",
        forward="out = a with its dims permuted",
        backward={"a": "grad permuted by the inverse permutation"},
        local={"a": "1"},
    )

    @staticmethod
    def forward(ctx, a, dims=()):
        ctx.inverse = [0] * len(dims)
        for position, d in enumerate(dims):
            ctx.inverse[d % len(dims)] = position
        return a.permute(dims)

    @staticmethod
    def backward(ctx, grad):
        return grad.permute(ctx.inverse)


class Expand(Function):
    derivatives = Formula(
        "a",
        forward="out = a broadcast to a bigger shape",
        backward={"a": "grad summed over the broadcast dims"},
        local={"a": "1"},
        notes={"a": "one term for every copy of a[i]"},
    )

    @staticmethod
    def forward(ctx, a, sizes=()):
        ctx.input_shape = a.shape
        return a.expand(sizes)

    @staticmethod
    def backward(ctx, grad):
        return sum_to_shape(grad, ctx.input_shape)


class Contiguous(Function):
    derivatives = Formula(
        "a",
        forward="out = a, laid out contiguously",
        backward={"a": "grad"},
        local={"a": "1"},
    )

    @staticmethod
    def forward(ctx, a):
        return a.contiguous()

    @staticmethod
    def backward(ctx, grad):
        return grad


def shape_arg(args: Sequence[Any]) -> tuple[int, ...]:
    """reshape(2, 3), reshape((2, 3)) and reshape([2, 3]) all mean the shape (2, 3)."""
    if len(args) == 1 and isinstance(args[0], Sequence):
        return tuple(args[0])
    return tuple(args)


def reshape(a: Any, shape: Sequence[int]) -> Tensor:
    """Same elements in row-major order, new shape (one entry may be -1)."""
    return Reshape.apply(a, shape=tuple(shape))


def view(a: Any, shape: Sequence[int]) -> Tensor:
    """Like reshape, but refuses (as torch does) when the result cannot share memory."""
    return Reshape.apply(a, shape=tuple(shape), view=True)


def flatten(a: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one."""
    shape = list(a.shape)
    if not shape:
        return reshape(a, (1,))
    start = _dim(start_dim, len(shape), "flatten", "start_dim")
    end = _dim(end_dim, len(shape), "flatten", "end_dim")
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    merged = 1
    for size in shape[start : end + 1]:
        merged *= size
    return reshape(a, shape[:start] + [merged] + shape[end + 1 :])


def squeeze(a: Any, dim: Any = None) -> Tensor:
    """Drop size-1 dims (all of them, or those in `dim` that have size 1)."""
    shape = list(a.shape)
    if dim is None:
        dims = {i for i, size in enumerate(shape) if size == 1}
    else:
        rank = max(len(shape), 1)  # a 0-d tensor accepts dim 0 and -1, as in torch
        dims = {_dim(d, rank, "squeeze") for d in (dim if isinstance(dim, Sequence) else (dim,))}
        dims = {d for d in dims if shape and shape[d] == 1}
    return reshape(a, [size for i, size in enumerate(shape) if i not in dims])


def unsqueeze(a: Any, dim: int) -> Tensor:
    """Insert a size-1 dim at position `dim`."""
    shape = list(a.shape)
    shape.insert(_dim(dim, len(shape) + 1, "unsqueeze"), 1)
    return reshape(a, shape)


def transpose(a: Any, dim0: int, dim1: int) -> Tensor:
    """Swap two dims."""
    return Transpose.apply(a, dim0=dim0, dim1=dim1)


def permute(a: Any, dims: Sequence[int]) -> Tensor:
    """Reorder dims: result dim i is input dim dims[i]."""
    ndim = a.dim()
    if not all(isinstance(d, int) for d in dims):
        raise TypeError(f"permute(): argument 'dims' must be tuple of ints, got {tuple(dims)}")
    if len(dims) != ndim or sorted(d % max(ndim, 1) for d in dims) != list(range(ndim)):
        raise RuntimeError(
            f"permute: dims {tuple(dims)} must be a permutation of the {ndim} dims of the input"
        )
    return Permute.apply(a, dims=tuple(dims))


def expand(a: Any, sizes: Sequence[int]) -> Tensor:
    """Broadcast to `sizes` without copying (-1 keeps a dim's size)."""
    return Expand.apply(a, sizes=tuple(sizes))


def contiguous(a: Any) -> Tensor:
    """The same values laid out contiguously in memory."""
    return Contiguous.apply(a)


def _dim(d: int, ndim: int, op: str, name: str = "dim") -> int:
    """`d` as an index in 0..ndim-1: torch's TypeError for a non-integer, IndexError when out of
    range."""
    try:
        d = operator.index(d)
    except TypeError:
        raise TypeError(f"{op}(): argument '{name}' must be int, not {type(d).__name__}") from None
    if not -ndim <= d < ndim:
        raise IndexError(
            f"{op}(): Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
            f"but got {d})"
        )
    return d % ndim

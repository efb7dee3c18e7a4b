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

import torch

from minitorch_edu.autograd.engine import sum_to_shape
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor


class Reshape(Function):
    formula = "da = grad reshaped back to a's shape"

    @staticmethod
    def forward(ctx, a, shape=(), view=False):
        ctx.input_shape = a.shape
        return a.view(shape) if view else a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape)


class Transpose(Function):
    formula = "da = grad with dims dim0 and dim1 swapped back"

    @staticmethod
    def forward(ctx, a, dim0=0, dim1=1):
        ctx.dim0, ctx.dim1 = dim0, dim1
        return a.transpose(dim0, dim1)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(ctx.dim0, ctx.dim1)


class Permute(Function):
    formula = "da = grad permuted by the inverse permutation"

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
    formula = "da = grad summed over the broadcast dims"

    @staticmethod
    def forward(ctx, a, sizes=()):
        ctx.input_shape = a.shape
        return a.expand(sizes)

    @staticmethod
    def backward(ctx, grad):
        return sum_to_shape(grad, ctx.input_shape)


class Contiguous(Function):
    formula = "da = grad"

    @staticmethod
    def forward(ctx, a, memory_format=None):
        return a.contiguous(memory_format=memory_format or torch.contiguous_format)

    @staticmethod
    def backward(ctx, grad):
        return grad


def shape_arg(args: Sequence[Any]) -> tuple[int, ...]:
    """reshape(2, 3), reshape((2, 3)) and reshape([2, 3]) all mean the shape (2, 3)."""
    if len(args) == 1 and isinstance(args[0], Sequence):
        return tuple(args[0])
    return tuple(args)


def sizes(shape: Any, op: str) -> tuple[int, ...]:
    """A shape argument as a tuple of ints, or torch's TypeError naming the op."""
    try:
        return tuple(operator.index(size) for size in shape)
    except TypeError:
        raise TypeError(f"{op}(): shape must be a tuple of ints, got {shape!r}") from None


def reshape(a: Any, shape: Sequence[int]) -> Tensor:
    """Same elements in row-major order, new shape (one entry may be -1)."""
    return Reshape.apply(a, shape=sizes(shape, "reshape"))


def view(a: Any, shape: Sequence[int]) -> Tensor:
    """Like reshape, but refuses (as torch does) when the result cannot share memory."""
    return Reshape.apply(a, shape=sizes(shape, "view"), view=True)


def flatten(a: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one."""
    shape = list(a.shape)
    rank = max(len(shape), 1)  # a 0-d tensor takes dims 0 and -1, as in torch
    start, end = normalize_dim(start_dim, rank, "flatten"), normalize_dim(end_dim, rank, "flatten")
    if not shape:
        return reshape(a, (1,))
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
        several = dim if isinstance(dim, tuple | list) else (dim,)
        dims = {normalize_dim(d, rank, "squeeze") for d in several}
        if len(dims) != len(several):
            raise RuntimeError(f"squeeze(): dim {tuple(several)} appears multiple times")
        dims = {d for d in dims if shape and shape[d] == 1}
    return reshape(a, [size for i, size in enumerate(shape) if i not in dims])


def unsqueeze(a: Any, dim: int) -> Tensor:
    """Insert a size-1 dim at position `dim`."""
    shape = list(a.shape)
    shape.insert(normalize_dim(dim, len(shape) + 1, "unsqueeze"), 1)
    return reshape(a, shape)


def transpose(a: Any, dim0: int, dim1: int) -> Tensor:
    """Swap two dims."""
    return Transpose.apply(a, dim0=dim0, dim1=dim1)


def permute(a: Any, dims: Sequence[int]) -> Tensor:
    """Reorder dims: result dim i is input dim dims[i]."""
    ndim = a.dim()
    if len(dims) != ndim or sorted(d % max(ndim, 1) for d in dims) != list(range(ndim)):
        raise RuntimeError(
            f"permute: dims {tuple(dims)} must be a permutation of the {ndim} dims of the input"
        )
    return Permute.apply(a, dims=tuple(dims))


def expand(a: Any, shape: Sequence[int]) -> Tensor:
    """Broadcast to `shape` without copying (-1 keeps a dim's size)."""
    return Expand.apply(a, sizes=sizes(shape, "expand"))


def contiguous(a: Any, memory_format: Any = None) -> Tensor:
    """The same values laid out contiguously in memory (row-major, or `memory_format`)."""
    return Contiguous.apply(a, memory_format=memory_format)


def normalize_dim(dim: Any, ndim: int, op: str) -> int:
    """`dim` as an index in [0, ndim), with torch's errors for a wrong type or range."""
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"{op}(): dim must be an int, got {dim!r}") from None
    if not -ndim <= dim < ndim:
        raise IndexError(
            f"{op}(): Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
            f"but got {dim})"
        )
    return dim % ndim

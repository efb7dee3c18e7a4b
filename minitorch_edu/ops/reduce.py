"""Reductions: sum, mean, amax/amin (and max/min), logsumexp, var.

A reduction over dims D maps shape (..., n, ...) to (..., 1, ...) (keepdim) or drops those
dims. Every backward first puts the dropped dims back as size 1 ("grad_kept"), after
which it broadcasts against the input.
"""

from __future__ import annotations

import builtins
from typing import Any, NamedTuple

import torch

from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor


def reduced_dims(ndim: int, dim: Any) -> tuple[int, ...]:
    """`dim` (None, an int, or a sequence) as a sorted tuple of non-negative dims."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    rank = builtins.max(ndim, 1)  # a 0-d tensor accepts dim 0 and -1, as in torch
    for d in dims:
        if not -rank <= d < rank:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], "
                f"but got {d})"
            )
    normalized = sorted({d % rank for d in dims} if ndim else set())
    if len(normalized) != len(dims) and ndim:
        raise RuntimeError(f"dim {tuple(dims)} appears multiple times in the list of dims")
    return tuple(normalized)


def kept_shape(shape: torch.Size, dims: tuple[int, ...]) -> tuple[int, ...]:
    """The input shape with every reduced dim set to 1 (the keepdim=True result shape)."""
    return tuple(1 if i in dims else size for i, size in enumerate(shape))


class Sum(Function):
    formula = "da = grad broadcast back over the summed dims"

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False):
        ctx.input_shape = a.shape
        ctx.grad_kept_shape = kept_shape(a.shape, dims)
        return a.sum(dim=dims, keepdim=keepdim) if dims else a.sum()

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.grad_kept_shape).expand(ctx.input_shape)


class Mean(Function):
    formula = "da = grad / n broadcast back over the averaged dims (n = elements averaged)"

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False):
        ctx.input_shape = a.shape
        ctx.grad_kept_shape = kept_shape(a.shape, dims)
        ctx.count = 1
        for d in dims:
            ctx.count *= a.shape[d]
        return a.mean(dim=dims, keepdim=keepdim) if dims else a.mean()

    @staticmethod
    def backward(ctx, grad):
        return (grad / ctx.count).reshape(ctx.grad_kept_shape).expand(ctx.input_shape)


class Amax(Function):
    """Largest value over dims. Ties share the gradient equally, as in torch."""

    formula = "da = grad * [a == out] / (number of elements equal to out)"

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False):
        return _extreme_forward(ctx, a, a.amax(dim=dims, keepdim=True), dims, keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _share_among_ties(ctx, grad)


class Amin(Function):
    """Smallest value over dims. Ties share the gradient equally, as in torch."""

    formula = "da = grad * [a == out] / (number of elements equal to out)"

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False):
        return _extreme_forward(ctx, a, a.amin(dim=dims, keepdim=True), dims, keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _share_among_ties(ctx, grad)


def _extreme_forward(ctx, a, out_kept, dims, keepdim):
    ctx.dims = dims
    ctx.grad_kept_shape = kept_shape(a.shape, dims)
    ctx.save_for_backward(a, out_kept)
    return out_kept if keepdim else out_kept.reshape(_dropped_shape(a.shape, dims))


def _share_among_ties(ctx, grad):
    a, out_kept = ctx.saved_tensors
    is_extreme = a == out_kept
    count = is_extreme.sum(dim=ctx.dims, keepdim=True)
    return grad.reshape(ctx.grad_kept_shape) * is_extreme / count


def _dropped_shape(shape: torch.Size, dims: tuple[int, ...]) -> list[int]:
    return [size for i, size in enumerate(shape) if i not in dims]


class Logsumexp(Function):
    """log(sum(exp(a))) over dims, without overflow.

    With m = max(a) over dims:  log sum exp(a) = m + log sum exp(a - m), and every
    exp(a - m) <= 1. An infinite m is replaced by 0 so that inf - inf never appears.
    """

    formula = "da = grad * exp(a - out)  (= grad * softmax(a))"

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False):
        m = a.amax(dim=dims, keepdim=True)
        m = torch.where(m.isinf(), 0.0, m)
        out = (a - m).exp().sum(dim=dims, keepdim=True).log() + m
        ctx.grad_kept_shape = kept_shape(a.shape, dims)
        ctx.save_for_backward(a, out)
        return out if keepdim else out.reshape(_dropped_shape(a.shape, dims))

    @staticmethod
    def backward(ctx, grad):
        a, out_kept = ctx.saved_tensors
        return grad.reshape(ctx.grad_kept_shape) * (a - out_kept).exp()


class Var(Function):
    """var(a) = sum((a - mean(a))^2) / (n - correction) over dims; correction=1 is unbiased."""

    formula = "da = grad * 2 * (a - mean(a)) / (n - correction)"

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False, correction=1):
        ctx.dims = dims
        ctx.grad_kept_shape = kept_shape(a.shape, dims)
        ctx.divisor = 1
        for d in dims:
            ctx.divisor *= a.shape[d]
        ctx.divisor = ctx.divisor - correction
        ctx.save_for_backward(a)
        centred = a - a.mean(dim=dims, keepdim=True)
        return (centred * centred).sum(dim=dims, keepdim=keepdim) / ctx.divisor

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        centred = a - a.mean(dim=ctx.dims, keepdim=True)
        return grad.reshape(ctx.grad_kept_shape) * centred * (2 / ctx.divisor)


class MinMax(NamedTuple):
    """`max(dim=...)` returns (values, indices), like torch.return_types.max."""

    values: Tensor
    indices: Tensor


def sum(a: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Sum over `dim` (an int, a tuple, or None for all)."""
    return Sum.apply(a, dims=reduced_dims(_ndim(a), dim), keepdim=keepdim)


def mean(a: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Average over `dim` (an int, a tuple, or None for all)."""
    return Mean.apply(a, dims=reduced_dims(_ndim(a), dim), keepdim=keepdim)


def amax(a: Any, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Largest value over `dim`; `dim=()` means every dim, as in torch."""
    dims = reduced_dims(_ndim(a), None if dim == () else dim)
    return Amax.apply(a, dims=dims, keepdim=keepdim)


def amin(a: Any, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Smallest value over `dim`; `dim=()` means every dim, as in torch."""
    dims = reduced_dims(_ndim(a), None if dim == () else dim)
    return Amin.apply(a, dims=dims, keepdim=keepdim)


def max(a: Any, dim: int | None = None, keepdim: bool = False) -> Any:
    """`max(a)`: the largest element. `max(a, dim)`: (values, indices) along `dim`.

    The gradient of `max(a, dim)` goes to the element at `indices` (it is a gather),
    that of `max(a)` is shared among ties (it is amax).
    """
    return _select_extreme(a, dim, keepdim, smallest=False)


def min(a: Any, dim: int | None = None, keepdim: bool = False) -> Any:
    """`min(a)`: the smallest element. `min(a, dim)`: (values, indices) along `dim`."""
    return _select_extreme(a, dim, keepdim, smallest=True)


def _select_extreme(a: Any, dim: int | None, keepdim: bool, smallest: bool) -> Any:
    if dim is None:
        return (Amin if smallest else Amax).apply(a, dims=reduced_dims(_ndim(a), None))
    from minitorch_edu.ops.indexing import gather

    raw = a.data if isinstance(a, Tensor) else a
    pick = torch.argmin if smallest else torch.argmax
    indices = pick(raw, dim=dim, keepdim=True)
    values = gather(a, dim, indices)
    if not keepdim:
        values, indices = values.squeeze(dim), indices.squeeze(dim)
    return MinMax(values, Tensor._wrap(indices))


def logsumexp(a: Any, dim: Any, keepdim: bool = False) -> Tensor:
    """log(sum(exp(a), dim)), computed stably."""
    return Logsumexp.apply(a, dims=reduced_dims(_ndim(a), dim), keepdim=keepdim)


def var(
    a: Any,
    dim: Any = None,
    *,
    correction: float = 1,
    keepdim: bool = False,
    unbiased: bool | None = None,
) -> Tensor:
    """Variance over `dim` with Bessel's correction by default (`correction=1`)."""
    if unbiased is not None:
        correction = 1 if unbiased else 0
    return Var.apply(a, dims=reduced_dims(_ndim(a), dim), keepdim=keepdim, correction=correction)


def _ndim(a: Any) -> int:
    return a.dim() if isinstance(a, Tensor | torch.Tensor) else 0

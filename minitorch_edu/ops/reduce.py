"""Reductions: sum, mean, amax/amin (and max/min), logsumexp, var.

A reduction over dims D maps shape (..., n, ...) to (..., 1, ...) (keepdim) or drops those
dims. Every backward first puts the dropped dims back as size 1 ("grad_kept"), after
which it broadcasts against the input.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor


def reduced_dims(ndim: int, dim: Any, op: str = "reduction") -> tuple[int, ...]:
    """`dim` (None, an int, or a sequence) as a sorted tuple of non-negative dims.

    None and an empty sequence both mean every dim, as in torch.
    """
    if dim is None:
        return tuple(range(ndim))
    try:
        dims = (operator.index(dim),) if not isinstance(dim, Sequence) else tuple(dim)
        dims = tuple(operator.index(d) for d in dims)
    except TypeError:
        raise TypeError(f"{op}(): dim must be an int or a tuple of ints, got {dim!r}") from None
    if not dims:
        return tuple(range(ndim))
    rank = builtins.max(ndim, 1)  # a 0-d tensor accepts dim 0 and -1, as in torch
    for d in dims:
        if not -rank <= d < rank:
            raise IndexError(
                f"{op}(): Dimension out of range (expected to be in range of "
                f"[{-rank}, {rank - 1}], but got {d})"
            )
    normalized = sorted({d % rank for d in dims} if ndim else set())
    if len(normalized) != len(dims) and ndim:
        raise RuntimeError(f"{op}(): dim {tuple(dims)} appears multiple times in the list of dims")
    return tuple(normalized)


def kept_shape(shape: torch.Size, dims: tuple[int, ...]) -> tuple[int, ...]:
    """The input shape with every reduced dim set to 1 (the keepdim=True result shape)."""
    return tuple(1 if i in dims else size for i, size in enumerate(shape))


class Sum(Function):
    derivatives = Formula(
        "a",
        forward="out = a summed over dims",
        backward={"a": "grad broadcast back over the summed dims"},
        local={"a": "1"},
    )

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False):
        ctx.input_shape = a.shape
        ctx.grad_kept_shape = kept_shape(a.shape, dims)
        return a.sum(dim=dims, keepdim=keepdim) if dims else a.sum()

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.grad_kept_shape).expand(ctx.input_shape)


class Mean(Function):
    derivatives = Formula(
        "a",
        forward="out = a summed over dims / n",
        backward={"a": "grad / n broadcast back over the averaged dims (n = elements averaged)"},
        local={"a": "1 / n"},
        options={"n": "count"},
    )

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

    derivatives = Formula(
        "a",
        forward="out = log(sum(exp(a))) over dims",
        backward={"a": "grad * exp(a - out)  (= grad * softmax(a))"},
        local={"a": "exp(a[i] - out[j])"},
        saved="a, out",
    )

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False):
        if a.numel() == 0:  # log of an empty sum: -inf, as torch (amax would refuse)
            m = a.new_zeros(kept_shape(a.shape, dims))
        else:
            m = a.amax(dim=dims, keepdim=True)
            m = torch.where(m.isinf(), 0.0, m)
        out = (a - m).exp().sum(dim=dims, keepdim=True).log() + m
        if not keepdim:
            out = out.reshape(_dropped_shape(a.shape, dims))
        ctx.grad_kept_shape = kept_shape(a.shape, dims)
        # Save the output itself: with create_graph it comes back connected to this node,
        # so the second derivative sees out's own dependence on a.
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        kept = ctx.grad_kept_shape
        return grad.reshape(kept) * (a - out.reshape(kept)).exp()


class Var(Function):
    """var(a) = sum((a - mean(a))^2) / (n - correction) over dims; correction=1 is unbiased."""

    formula = "da = grad * 2 * (a - mean(a)) / (n - correction)"

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False, correction=1):
        ctx.dims = dims
        ctx.grad_kept_shape = kept_shape(a.shape, dims)
        ctx.divisor = _variance_divisor(a.shape, dims, correction)
        ctx.save_for_backward(a)
        centred = a - a.mean(dim=dims, keepdim=True)
        return (centred * centred).sum(dim=dims, keepdim=keepdim) / ctx.divisor

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        centred = a - a.mean(dim=ctx.dims, keepdim=True)
        return grad.reshape(ctx.grad_kept_shape) * centred * _two_over(ctx.divisor)


class Std(Function):
    """std(a) = sqrt(var(a)). Where std = 0 (all values equal) the gradient is 0, as in torch.

    Written out rather than as sqrt(var(a)): sqrt's derivative 1 / (2 out) is infinite
    at 0, and inf * 0 would make the gradient nan.
    """

    formula = "da = grad * (a - mean(a)) / ((n - correction) * std(a))  (0 where std = 0)"

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False, correction=1):
        ctx.dims = dims
        ctx.grad_kept_shape = kept_shape(a.shape, dims)
        ctx.divisor = _variance_divisor(a.shape, dims, correction)
        centred = a - a.mean(dim=dims, keepdim=True)
        out = ((centred * centred).sum(dim=dims, keepdim=keepdim) / ctx.divisor).sqrt()
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        kept = ctx.grad_kept_shape
        out = out.reshape(kept)
        centred = a - a.mean(dim=ctx.dims, keepdim=True)
        scaled = (grad.reshape(kept) / (2 * out)).where(out != 0, 0.0)
        return scaled * centred * _two_over(ctx.divisor)


def _variance_divisor(shape: torch.Size, dims: tuple[int, ...], correction: float) -> float:
    """n - correction, never below 0 (as torch: too large a correction gives inf)."""
    count = 1
    for d in dims:
        count *= shape[d]
    return builtins.max(count - correction, 0)


def _two_over(divisor: float) -> float:
    return 2 / divisor if divisor else math.inf


class MinMax(NamedTuple):
    """`max(dim=...)` returns (values, indices), like torch.return_types.max."""

    values: Tensor
    indices: Tensor


def sum(a: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Sum over `dim` (an int, a tuple, or None for all)."""
    return Sum.apply(a, dims=reduced_dims(_ndim(a), dim, "sum"), keepdim=keepdim)


def mean(a: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Average over `dim` (an int, a tuple, or None for all)."""
    return Mean.apply(a, dims=reduced_dims(_ndim(a), dim, "mean"), keepdim=keepdim)


def amax(a: Any, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Largest value over `dim`; `dim=()` means every dim, as in torch."""
    return Amax.apply(a, dims=reduced_dims(_ndim(a), dim, "amax"), keepdim=keepdim)


def amin(a: Any, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Smallest value over `dim`; `dim=()` means every dim, as in torch."""
    return Amin.apply(a, dims=reduced_dims(_ndim(a), dim, "amin"), keepdim=keepdim)


def max(a: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """`max(a)`: the largest element. `max(a, dim)`: (values, indices) along `dim`.
    `max(a, b)` with a tensor b: the elementwise `maximum`, as in torch.

    The gradient of `max(a, dim)` goes to the element at `indices` (it is a gather),
    that of `max(a)` is shared among ties (it is amax).
    """
    if isinstance(dim, Tensor | torch.Tensor):
        from minitorch_edu.ops.selection import maximum

        return maximum(a, dim)
    return _select_extreme(a, dim, keepdim, smallest=False)


def min(a: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """`min(a)`: the smallest element. `min(a, dim)`: (values, indices) along `dim`.
    `min(a, b)` with a tensor b: the elementwise `minimum`, as in torch."""
    if isinstance(dim, Tensor | torch.Tensor):
        from minitorch_edu.ops.selection import minimum

        return minimum(a, dim)
    return _select_extreme(a, dim, keepdim, smallest=True)


def _select_extreme(a: Any, dim: int | None, keepdim: bool, smallest: bool) -> Any:
    name = "min" if smallest else "max"
    if dim is None:
        return (Amin if smallest else Amax).apply(a, dims=reduced_dims(_ndim(a), None))
    from minitorch_edu.ops.indexing import gather

    if isinstance(dim, Sequence):
        raise TypeError(f"{name}(): dim must be an int, got {dim!r}")
    reduced_dims(_ndim(a), dim, name)  # checks the type and the range
    dim = operator.index(dim)
    raw = a.data if isinstance(a, Tensor) else a
    pick = torch.argmin if smallest else torch.argmax
    indices = pick(raw, dim=dim, keepdim=True)
    values = gather(a, dim, indices)
    if not keepdim:
        values, indices = values.squeeze(dim), indices.squeeze(dim)
    return MinMax(values, Tensor._wrap(indices))


def logsumexp(a: Any, dim: Any, keepdim: bool = False) -> Tensor:
    """log(sum(exp(a), dim)), computed stably."""
    return Logsumexp.apply(a, dims=reduced_dims(_ndim(a), dim, "logsumexp"), keepdim=keepdim)


def var(
    a: Any,
    dim: Any = None,
    unbiased: bool | None = None,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> Tensor:
    """Variance over `dim` with Bessel's correction by default (`correction=1`).

    `unbiased=False` is the older spelling of `correction=0`, as in torch.
    """
    dims = reduced_dims(_ndim(a), dim, "var")
    correction = _correction(unbiased, correction, "var")
    return Var.apply(a, dims=dims, keepdim=keepdim, correction=correction)


def std(
    a: Any,
    dim: Any = None,
    unbiased: bool | None = None,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> Tensor:
    """Standard deviation sqrt(var(a)) over `dim`, with Bessel's correction by default."""
    dims = reduced_dims(_ndim(a), dim, "std")
    correction = _correction(unbiased, correction, "std")
    return Std.apply(a, dims=dims, keepdim=keepdim, correction=correction)


def _correction(unbiased: bool | None, correction: float | None, op: str) -> float:
    if unbiased is not None and correction is not None:
        raise RuntimeError(f"{op}(): cannot specify both unbiased and correction")
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1


def _ndim(a: Any) -> int:
    return getattr(a, "ndim", 0)  # our Tensor, torch.Tensor and NumPy arrays; 0 for numbers

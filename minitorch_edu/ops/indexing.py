"""Indexing: a[...], gather, scatter_add, index_select, index_add (and narrow, select).

Every one of these copies input elements to output positions. The backward sends each
output's gradient back to the input element it came from, *adding* where one input
element was copied to several outputs (a repeated index, overlapping windows).

They come in adjoint pairs, each the other's backward:

    gather(dim, index)        <->  scatter_add(dim, index, ...)
    index_select(dim, index)  <->  index_add(dim, index, ...)
    a[index]                  <->  scatter-add at `positions`, the flat input position of
                                   every output element: arange(numel).view(shape)[index]
"""

from __future__ import annotations

import operator
from typing import Any

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor, _raw_index
from minitorch_edu.ops.join import pad_any


def scatter_to_positions(grad: Any, input_shape: torch.Size, positions: torch.Tensor) -> Any:
    """d(input) for any op whose output element i is input.flatten()[positions[i]].

    Gradients of outputs that share a position add up (index_add).
    """
    numel = 1
    for size in input_shape:
        numel *= size
    flat = grad.new_zeros(numel).index_add(0, positions.reshape(-1), grad.reshape(-1))
    return flat.reshape(input_shape)


def flat_positions(shape: torch.Size, device: torch.device) -> torch.Tensor:
    """arange(numel) in `shape`: element i holds its own flat position."""
    numel = 1
    for size in shape:
        numel *= size
    return torch.arange(numel, device=device).view(shape)


class GetItem(Function):
    derivatives = Formula(
        "a",
        forward="out = a[index]",
        backward="da = zeros; da[index] += grad  (repeated positions add up)",
        local={"a": "1"},
    )

    @staticmethod
    def forward(ctx, a, index=None):
        ctx.input_shape, ctx.index = a.shape, index
        parts = index if isinstance(index, tuple) else (index,)
        index_tensors = [part for part in parts if isinstance(part, torch.Tensor)]
        if index_tensors:
            ctx.save_for_backward(*index_tensors)  # so that changing them in place is caught
        return a[index]

    @staticmethod
    def backward(ctx, grad):
        _ = ctx.saved_tensors  # raises if an index tensor was modified in place since forward
        positions = flat_positions(ctx.input_shape, grad.device)[ctx.index]
        return scatter_to_positions(grad, ctx.input_shape, positions)


class Gather(Function):
    derivatives = Formula(
        "a, index",
        forward="out = a.gather(dim, index)",
        backward={"a": "zeros.scatter_add(dim, index, grad)"},
        local={"a": "1"},
    )

    @staticmethod
    def forward(ctx, a, index, dim=0):
        ctx.input_shape, ctx.dim = a.shape, dim
        ctx.save_for_backward(index)
        return a.gather(dim, index)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        return grad.new_zeros(ctx.input_shape).scatter_add(ctx.dim, index, grad), None


class ScatterAdd(Function):
    """Only src's elements at positions inside index's shape are added; the rest of src (it
    may be larger) is unused, so its gradient there is 0."""

    derivatives = Formula(
        "a, index, src",
        forward="out = a, with src[k] added at index[k] along dim",
        backward={"a": "grad", "src": "grad.gather(dim, index)  (0 where src is not indexed)"},
        local={"a": "1", "src": "1"},
    )

    @staticmethod
    def forward(ctx, a, index, src, dim=0):
        ctx.dim = dim
        ctx.src_shape = src.shape
        ctx.save_for_backward(index)
        return a.scatter_add(dim, index, src)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        need_a, _, need_src = ctx.needs_input_grad
        grad_src = None
        if need_src:
            grad_src = grad.gather(ctx.dim, index)
            if grad_src.shape != ctx.src_shape:  # pad the unused end of each dim with 0
                extra = [src - used for src, used in zip(ctx.src_shape, grad_src.shape)]
                grad_src = pad_any(grad_src, [p for e in reversed(extra) for p in (0, e)])
        return grad if need_a else None, None, grad_src


class IndexSelect(Function):
    derivatives = Formula(
        "a, index",
        forward="out = a.index_select(dim, index)",
        backward={"a": "zeros.index_add(dim, index, grad)"},
        local={"a": "1"},
    )

    @staticmethod
    def forward(ctx, a, index, dim=0):
        ctx.input_shape, ctx.dim = a.shape, dim
        ctx.save_for_backward(index)
        return a.index_select(dim, index)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        return grad.new_zeros(ctx.input_shape).index_add(ctx.dim, index, grad), None


class IndexAdd(Function):
    derivatives = Formula(
        "a, index, source",
        forward="out = a.index_add(dim, index, source)",
        backward={"a": "grad", "source": "grad.index_select(dim, index)"},
        local={"a": "1", "source": "1"},
    )

    @staticmethod
    def forward(ctx, a, index, source, dim=0):
        ctx.dim = dim
        ctx.save_for_backward(index)
        return a.index_add(dim, index, source)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        need_a, _, need_source = ctx.needs_input_grad
        source_grad = grad.index_select(ctx.dim, index) if need_source else None
        return grad if need_a else None, None, source_grad


def getitem(a: Any, index: Any) -> Tensor:
    """a[index] with ints, slices, None, Ellipsis, integer tensors and boolean masks."""
    return GetItem.apply(a, index=_raw_index(index))


def gather(a: Any, dim: int, index: Any) -> Tensor:
    """out[i][j] = a[index[i][j]][j] (dim 0) or a[i][index[i][j]] (dim 1), and so on."""
    return Gather.apply(a, _long_index(index, "gather"), dim=dim)


def scatter_add(a: Any, dim: int, index: Any, src: Any) -> Tensor:
    """A copy of `a` with src added at `index` along `dim` (the adjoint of gather)."""
    return ScatterAdd.apply(a, _long_index(index, "scatter_add"), src, dim=dim)


def index_select(a: Any, dim: int, index: Any) -> Tensor:
    """The slices of `a` along `dim` at the positions in the 1-D `index`."""
    return IndexSelect.apply(a, _long_index(index, "index_select"), dim=dim)


def index_add(a: Any, dim: int, index: Any, source: Any) -> Tensor:
    """A copy of `a` with slices of `source` added at `index` along `dim`."""
    return IndexAdd.apply(a, _long_index(index, "index_add"), source, dim=dim)


def narrow(a: Any, dim: int, start: int, length: int) -> Tensor:
    """`length` elements along `dim` from `start` (a negative start counts from the end)."""
    dim = _dim(dim, a.dim(), "narrow")
    start, length = _integer(start, "start", "narrow"), _integer(length, "length", "narrow")
    size = a.shape[dim]
    if not -size <= start <= size:
        raise IndexError(
            f"narrow(): start {start} is out of range for dim {dim} of size {size} "
            f"(shape {tuple(a.shape)})"
        )
    start = start % size if start < 0 else start
    if length < 0 or start + length > size:
        raise RuntimeError(
            f"narrow(): start ({start}) + length ({length}) exceeds dimension size ({size}) "
            f"of dim {dim} (shape {tuple(a.shape)})"
        )
    return getitem(a, (slice(None),) * dim + (slice(start, start + length),))


def select(a: Any, dim: int, index: int) -> Tensor:
    """The slice at `index` along `dim`, with that dim removed."""
    dim = _dim(dim, a.dim(), "select")
    index = _integer(index, "index", "select")
    size = a.shape[dim]
    if not -size <= index < size:
        raise IndexError(
            f"select(): index {index} out of range for dim {dim} of size {size} "
            f"(shape {tuple(a.shape)})"
        )
    return getitem(a, (slice(None),) * dim + (index,))


def _dim(dim: int, ndim: int, op: str) -> int:
    dim = _integer(dim, "dim", op)
    if not -ndim <= dim < ndim:
        raise IndexError(
            f"{op}(): Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
            f"but got {dim})"
        )
    return dim % ndim


def _integer(value: Any, name: str, op: str) -> int:
    """`value` as an int, or torch's TypeError naming the argument."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{op}(): argument '{name}' must be int, not {type(value).__name__}"
        ) from None


def _long_index(index: Any, op: str) -> torch.Tensor:
    raw = index.data if isinstance(index, Tensor) else index
    if not isinstance(raw, torch.Tensor) or raw.dtype != torch.int64:
        kind = raw.dtype if isinstance(raw, torch.Tensor) else type(raw).__name__
        raise RuntimeError(f"{op}(): expected index to be an int64 tensor, got {kind}")
    return raw

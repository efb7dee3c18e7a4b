"""Strided windows: as_strided and unfold, the views that convolution and pooling stand on.

unfold(dim, size, step) adds a last dim holding windows of `size` consecutive elements,
one window every `step` elements. Windows may overlap (step < size), so an input element
can appear in many outputs; its gradient is the sum over all of them: a scatter-add back
to each output element's position in the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.ops.indexing import flat_positions, scatter_to_positions


class AsStrided(Function):
    """out[i0, i1, ...] = storage[offset + i0 * stride[0] + i1 * stride[1] + ...]

    where storage is the memory `a` is a view of, and offset counts from its start, as in
    torch (`a[5:]` starts at storage element 5). The backward follows the same addresses:
    each output's gradient is added at its storage element, and each input element takes
    the gradient of its own element (shared equally when `a` itself reads one element
    several times, as an expanded tensor does).
    """

    derivatives = Formula(
        "a",
        forward="out[i] = storage(a)[offset + sum_k i_k * stride_k]",
        backward=("dstorage[address(i)] += grad[i] for every output i;  da = dstorage[address(a)]"),
        local={"a": "1"},
        notes={"a": "1 for every output element that reads a[i]'s storage element"},
    )

    @staticmethod
    def forward(ctx, a, size=(), stride=(), storage_offset=0):
        ctx.geometry = (size, stride, storage_offset)
        ctx.input_geometry = (a.shape, a.stride(), a.storage_offset())
        ctx.storage_size = storage_elements(a)
        ctx.input_is_storage = (
            a.is_contiguous() and a.storage_offset() == 0 and (a.numel() == ctx.storage_size)
        )
        return a.as_strided(size, stride, storage_offset)

    @staticmethod
    def backward(ctx, grad):
        addresses = torch.arange(ctx.storage_size, device=grad.device)
        storage_grad = scatter_to_positions(
            grad, (ctx.storage_size,), addresses.as_strided(*ctx.geometry)
        )
        shape, strides, _ = ctx.input_geometry
        if ctx.input_is_storage:  # a contiguous tensor that is all of its storage
            return storage_grad.reshape(shape)
        input_addresses = addresses.as_strided(*ctx.input_geometry)
        if maybe_overlapping(shape, strides):  # a reads some element twice: share its gradient
            readers = torch.zeros_like(addresses)
            readers.index_add_(
                0,
                input_addresses.flatten(),
                torch.ones_like(addresses[:1]).expand(input_addresses.numel()),
            )
            storage_grad = storage_grad / readers.clamp(min=1)
        return storage_grad[input_addresses]


def maybe_overlapping(shape: Sequence[int], strides: Sequence[int]) -> bool:
    """Whether a tensor of this geometry may read one element twice (torch's test: with the
    dims sorted by stride, each stride must pass the reach of the smaller ones)."""
    reach = 0
    for stride, size in sorted((st, n) for n, st in zip(shape, strides) if n > 1):
        if stride <= reach:
            return True
        reach += stride * (size - 1)
    return False


def storage_elements(a: torch.Tensor) -> int:
    """How many elements the storage behind `a` holds (a view's base may be larger)."""
    return a.untyped_storage().nbytes() // a.element_size()


class Unfold(Function):
    derivatives = Formula(
        "a",
        forward="out = the windows of a along dim",
        backward="da = zeros; da[window positions] += grad  (overlapping windows add up)",
        local={"a": "1"},
    )

    @staticmethod
    def forward(ctx, a, dim=0, size=1, step=1):
        ctx.input_shape = a.shape
        ctx.dim, ctx.size, ctx.step = dim, size, step
        return a.unfold(dim, size, step)

    @staticmethod
    def backward(ctx, grad):
        positions = flat_positions(ctx.input_shape, grad.device)
        positions = positions.unfold(ctx.dim, ctx.size, ctx.step)
        return scatter_to_positions(grad, ctx.input_shape, positions)


def as_strided(
    a: Any, size: Sequence[int], stride: Sequence[int], storage_offset: int | None = None
) -> Tensor:
    """A strided view over the storage `a` is a view of, as torch's (bounds checked);
    the offset defaults to a's own."""
    for name, values in (("size", size), ("stride", stride)):
        if not isinstance(values, Sequence) or not all(isinstance(v, int) for v in values):
            raise TypeError(
                f"as_strided(): argument '{name}' must be tuple of ints, got {values!r}"
            )
    raw = a.data if isinstance(a, Tensor) else a
    if storage_offset is None:
        storage_offset = raw.storage_offset()
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise RuntimeError(f"as_strided: size {size} and stride {stride} differ in length")
    if any(s < 0 for s in size) or any(s < 0 for s in stride) or storage_offset < 0:
        raise RuntimeError("as_strided: sizes, strides and the offset must be non-negative")
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride) if n > 0)
    available = storage_elements(raw)
    if all(n > 0 for n in size) and last >= available:
        raise RuntimeError(
            f"as_strided: size {size} with stride {stride} and offset {storage_offset} reaches "
            f"storage element {last}, but the input's storage has only {available} elements"
        )
    return AsStrided.apply(a, size=size, stride=stride, storage_offset=storage_offset)


def unfold(a: Any, dimension: int, size: int, step: int) -> Tensor:
    """Windows of `size` along `dimension`, every `step` elements, in a new last dim."""
    if step <= 0:
        raise RuntimeError(f"unfold: step must be positive, got {step}")
    return Unfold.apply(a, dim=dimension, size=size, step=step)

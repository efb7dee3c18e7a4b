"""Strided windows: as_strided and unfold, the views that convolution and pooling stand on.

unfold(dim, size, step) adds a last dim holding windows of `size` consecutive elements,
one window every `step` elements. Windows may overlap (step < size), so an input element
can appear in many outputs; its gradient is the sum over all of them: a scatter-add back
to each output element's position in the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.ops.indexing import flat_positions, scatter_to_positions


class AsStrided(Function):
    """out[i0, i1, ...] = a.flatten()[offset + i0 * stride[0] + i1 * stride[1] + ...].

    Positions refer to `a` laid out contiguously (row-major), whatever its memory layout.
    """

    derivatives = Formula(
        "a",
        forward="out[i] = a.flatten()[offset + sum_k i_k * stride_k]",
        backward="da = zeros; da.flatten()[position(i)] += grad[i] for every output element i",
        local={"a": "1"},
    )

    @staticmethod
    def forward(ctx, a, size=(), stride=(), storage_offset=0):
        ctx.input_shape = a.shape
        ctx.size, ctx.stride, ctx.offset = size, stride, storage_offset
        a = a.contiguous()
        return a.as_strided(size, stride, a.storage_offset() + storage_offset)

    @staticmethod
    def backward(ctx, grad):
        positions = flat_positions(ctx.input_shape, grad.device).as_strided(
            ctx.size, ctx.stride, ctx.offset
        )
        return scatter_to_positions(grad, ctx.input_shape, positions)


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
    a: Any, size: Sequence[int], stride: Sequence[int], storage_offset: int = 0
) -> Tensor:
    """A strided view over the elements of `a` in row-major order (bounds checked)."""
    for name, values in (("size", size), ("stride", stride)):
        if not isinstance(values, Sequence) or not all(isinstance(v, int) for v in values):
            raise TypeError(
                f"as_strided(): argument '{name}' must be tuple of ints, got {values!r}"
            )
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise RuntimeError(f"as_strided: size {size} and stride {stride} differ in length")
    if any(s < 0 for s in size) or any(s < 0 for s in stride) or storage_offset < 0:
        raise RuntimeError("as_strided: sizes, strides and the offset must be non-negative")
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride) if n > 0)
    if all(n > 0 for n in size) and last >= a.numel():
        raise RuntimeError(
            f"as_strided: size {size} with stride {stride} and offset {storage_offset} reaches "
            f"element {last}, but the input has only {a.numel()} elements"
        )
    return AsStrided.apply(a, size=size, stride=stride, storage_offset=storage_offset)


def unfold(a: Any, dimension: int, size: int, step: int) -> Tensor:
    """Windows of `size` along `dimension`, every `step` elements, in a new last dim."""
    if step <= 0:
        raise RuntimeError(f"unfold: step must be positive, got {step}")
    return Unfold.apply(a, dim=dimension, size=size, step=step)

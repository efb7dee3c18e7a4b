"""Joining and splitting: cat, stack, pad (constant), split, chunk, unbind.

cat glues inputs end to end along a dim, so its backward cuts the gradient into the
same pieces (narrow). Padding by p is undone by padding by -p (cutting the border off),
so that is pad's backward; it also covers negative padding, which crops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.ops.shape import _dim, unsqueeze


class Cat(Function):
    derivatives = Formula(
        "*tensors",
        forward="out = the tensors joined along dim",
        backward="d(input i) = grad.narrow(dim, offset_i, size_i)",
        local={"tensors": "1"},
    )

    @staticmethod
    def forward(ctx, *tensors, dim=0):
        out = torch.cat(tensors, dim)
        ctx.dim = dim % out.dim()
        ctx.sizes = [t.shape[ctx.dim] if t.dim() else 0 for t in tensors]
        return out

    @staticmethod
    def backward(ctx, grad):
        grads, start = [], 0
        for size, needed in zip(ctx.sizes, ctx.needs_input_grad):
            grads.append(grad.narrow(ctx.dim, start, size) if needed else None)
            start += size
        return tuple(grads)


class Pad(Function):
    derivatives = Formula(
        "a",
        forward="out = a with a border of `value` added",
        backward={"a": "pad(grad, -pad)  (cut the added border off again)"},
        local={"a": "1"},
    )

    @staticmethod
    def forward(ctx, a, pad=(), value=0.0):
        ctx.pad = pad
        return pad_constant(a, pad, value)

    @staticmethod
    def backward(ctx, grad):
        return pad_any(grad, [-p for p in ctx.pad])


def pad_any(grad: Any, pad: Sequence[int]) -> Any:
    """Zero padding inside a backward: plain torch work for a plain torch gradient, our
    recorded op for our Tensor (create_graph), so a second derivative flows through it."""
    if isinstance(grad, torch.Tensor):
        return pad_constant(grad, pad, 0.0)
    return Pad.apply(grad, pad=tuple(pad))


def pad_constant(a: torch.Tensor, pad: Sequence[int], value: float) -> torch.Tensor:
    """torch.nn.functional.pad(a, pad, value=value) for mode='constant', on plain tensors.

    pad = (left, right) for the last dim, then (left, right) for the one before, ...
    """
    shape = list(a.shape)
    source = [slice(None)] * len(shape)
    target = [slice(None)] * len(shape)
    for i in range(len(pad) // 2):
        d = len(shape) - 1 - i
        before, after = pad[2 * i], pad[2 * i + 1]
        kept = shape[d] + min(before, 0) + min(after, 0)
        if kept < 0 or shape[d] + before + after <= 0:
            raise RuntimeError(
                f"pad: padding ({before}, {after}) of dim {d} (size {shape[d]}) leaves no elements"
            )
        source[d] = slice(max(-before, 0), max(-before, 0) + kept)
        target[d] = slice(max(before, 0), max(before, 0) + kept)
        shape[d] += before + after
    out = a.new_full(shape, value)
    out[tuple(target)] = a[tuple(source)]
    return out


def cat(tensors: Sequence[Any], dim: int = 0) -> Tensor:
    """Join tensors along an existing dim."""
    _check_tensor_list(tensors, "cat")
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    return Cat.apply(*tensors, dim=dim)


def stack(tensors: Sequence[Any], dim: int = 0) -> Tensor:
    """Join equally shaped tensors along a new dim (cat of unsqueezed tensors)."""
    _check_tensor_list(tensors, "stack")
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise RuntimeError(f"stack expects each tensor to be equal size, got shapes {shapes}")
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def _check_tensor_list(tensors: Any, op: str) -> None:
    if not isinstance(tensors, list | tuple):  # a tensor would be iterated row by row
        raise TypeError(
            f"{op}(): argument 'tensors' must be a tuple or list of Tensors, not "
            f"{type(tensors).__module__.split('.')[0]}.{type(tensors).__name__}"
        )


def pad(a: Any, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad (or, with negative amounts, crop) the last len(pad)//2 dims with `value`."""
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not implemented, only 'constant'")
    if len(pad) % 2 or len(pad) // 2 > a.dim():
        raise RuntimeError(
            f"pad: padding length {len(pad)} must be even and at most 2 * {a.dim()} (input dims)"
        )
    if not all(isinstance(p, int) and not isinstance(p, bool) for p in pad):
        kinds = ", ".join(type(p).__name__ for p in pad)
        raise TypeError(f"pad(): argument 'pad' must be tuple of ints, got ({kinds})")
    return Pad.apply(a, pad=tuple(pad), value=0.0 if value is None else value)


def split(a: Any, split_size: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of `split_size` along dim (the last may be smaller), or of the listed sizes."""
    dim = _dim(dim, a.dim(), "split")
    length = a.shape[dim]
    if not isinstance(split_size, int | Sequence) or isinstance(split_size, bool | str):
        raise TypeError(
            f"split(): argument 'split_size' must be int or a list of ints, not "
            f"{type(split_size).__name__}"
        )
    if isinstance(split_size, int):
        if split_size <= 0:
            raise RuntimeError(f"split: split_size must be positive, got {split_size}")
        sizes = [min(split_size, length - start) for start in range(0, length, split_size)]
        sizes = sizes or [0]  # an empty dim still gives one (empty) piece, as in torch
    else:
        sizes = list(split_size)
        if sum(sizes) != length:
            raise RuntimeError(
                f"split: sizes {sizes} sum to {sum(sizes)}, but dim {dim} has length {length}"
            )
    pieces, start = [], 0
    for size in sizes:
        pieces.append(a.narrow(dim, start, size))
        start += size
    return tuple(pieces)


def chunk(a: Any, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """At most `chunks` pieces of equal size ceil(n / chunks), as torch.chunk."""
    if isinstance(chunks, bool) or not isinstance(chunks, int):
        raise TypeError(f"chunk(): argument 'chunks' must be int, not {type(chunks).__name__}")
    dim = _dim(dim, a.dim(), "chunk")
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    length = a.shape[dim]
    if length == 0:  # torch gives `chunks` empty pieces
        return split(a, [0] * chunks, dim)
    return split(a, -(-length // chunks), dim)


def unbind(a: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Every slice along `dim`, with that dim removed."""
    dim = _dim(dim, a.dim(), "unbind")
    return tuple(a.select(dim, i) for i in range(a.shape[dim]))

"""Copies: to (dtype and device changes) and clone."""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor


class To(Function):
    derivatives = Formula(
        "a",
        forward="out = a in another dtype or on another device",
        backward={"a": "grad converted back to a's dtype and device"},
        local={"a": "1"},
    )

    @staticmethod
    def forward(ctx, a, **options):
        ctx.input_dtype, ctx.input_device = a.dtype, a.device
        return _converted(a, **options)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(dtype=ctx.input_dtype, device=ctx.input_device)


class Clone(Function):
    derivatives = Formula("a", forward="out = a, copied", backward={"a": "grad"}, local={"a": "1"})

    @staticmethod
    def forward(ctx, a, memory_format=None):
        return a.clone(memory_format=memory_format or torch.preserve_format)

    @staticmethod
    def backward(ctx, grad):
        return grad


def to(
    a: Tensor,
    dtype: torch.dtype | None = None,
    device: Any = None,
    non_blocking: bool = False,
    copy: bool = False,
    memory_format: torch.memory_format | None = None,
) -> Tensor:
    """`a` in another dtype, on another device or in another memory format; `a` itself
    when nothing changes and no copy is asked for, as in torch."""
    device = None if device is None else torch.device(device)
    same_dtype = dtype is None or dtype == a.dtype
    same_device = device is None or _same_device(device, a.device)
    same_layout = memory_format in (None, torch.preserve_format) or a.data.is_contiguous(
        memory_format=memory_format
    )
    if same_dtype and same_device and same_layout and not copy:
        return a
    options = dict(
        dtype=dtype,
        device=device,
        non_blocking=non_blocking,
        copy=copy,
        memory_format=memory_format,
    )
    if dtype is not None and not (dtype.is_floating_point or dtype.is_complex):
        # An integer or bool result carries no gradient.
        return Tensor._wrap(_converted(a.data, **options))
    return To.apply(a, **options)


def _converted(a: torch.Tensor, dtype, device, non_blocking, copy, memory_format) -> torch.Tensor:
    return a.to(
        device=device,
        dtype=dtype,
        non_blocking=non_blocking,
        copy=copy,
        memory_format=memory_format or torch.preserve_format,
    )


def to_arguments(args: tuple, kwargs: dict) -> dict[str, Any]:
    """Tensor.to's arguments by name, from any of torch's forms:

    to(dtype, non_blocking=False, copy=False, *, memory_format=...)
    to(device=None, dtype=None, non_blocking=False, copy=False, *, memory_format=...)
    to(other, non_blocking=False, copy=False)
    """
    options: dict[str, Any] = {"dtype": None, "device": None, "non_blocking": False, "copy": False}
    rest = list(args)
    if rest and isinstance(rest[0], Tensor | torch.Tensor):
        other = rest.pop(0)
        options["dtype"], options["device"] = other.dtype, other.device
    elif rest and isinstance(rest[0], torch.dtype):
        options["dtype"] = rest.pop(0)
    elif rest and not isinstance(rest[0], bool) and isinstance(rest[0], str | int | torch.device):
        options["device"] = rest.pop(0)
        if rest and (rest[0] is None or isinstance(rest[0], torch.dtype)):
            options["dtype"] = rest.pop(0)
    if len(rest) > 2 or not all(isinstance(flag, bool) for flag in rest):
        raise TypeError(
            f"to() received an invalid combination of arguments: {args!r}; expected "
            "to(dtype), to(device, dtype) or to(other tensor), then non_blocking and copy"
        )
    options.update(zip(("non_blocking", "copy"), rest))
    unknown = sorted(set(kwargs) - {*options, "memory_format"})
    if unknown:
        raise TypeError(f"to() got unexpected keyword arguments {unknown}")
    options.update(kwargs)
    return options


def clone(a: Any, *, memory_format: torch.memory_format | None = None) -> Tensor:
    """A copy with its own memory; gradients flow through it unchanged."""
    return Clone.apply(a, memory_format=memory_format)


def _same_device(wanted: torch.device, actual: torch.device) -> bool:
    return wanted.type == actual.type and (wanted.index is None or wanted.index == actual.index)

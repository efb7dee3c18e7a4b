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
    def forward(ctx, a, dtype=None, device=None):
        ctx.input_dtype, ctx.input_device = a.dtype, a.device
        return a.to(dtype=dtype, device=device)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(dtype=ctx.input_dtype, device=ctx.input_device)


class Clone(Function):
    derivatives = Formula("a", forward="out = a, copied", backward={"a": "grad"}, local={"a": "1"})

    @staticmethod
    def forward(ctx, a):
        return a.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad


def to(a: Tensor, dtype: torch.dtype | None = None, device: Any = None) -> Tensor:
    """`a` in another dtype or on another device; `a` itself when nothing changes, as in torch."""
    device = None if device is None else torch.device(device)
    same_dtype = dtype is None or dtype == a.dtype
    same_device = device is None or _same_device(device, a.device)
    if same_dtype and same_device:
        return a
    if dtype is not None and not (dtype.is_floating_point or dtype.is_complex):
        # An integer or bool result carries no gradient.
        return Tensor._wrap(a.data.to(dtype=dtype, device=device))
    return To.apply(a, dtype=dtype, device=device)


def clone(a: Any) -> Tensor:
    """A copy with its own memory; gradients flow through it unchanged."""
    return Clone.apply(a)


def _same_device(wanted: torch.device, actual: torch.device) -> bool:
    return wanted.type == actual.type and (wanted.index is None or wanted.index == actual.index)

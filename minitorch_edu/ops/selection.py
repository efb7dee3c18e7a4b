"""Ops that pick between values: maximum, minimum, where.

The gradient goes to whichever input was picked. Where maximum/minimum meet a tie
(a == b) each input gets half, as in torch: the subgradient in the middle. Where a
comparison fails both ways (a nan), both inputs get the gradient, again as in torch.
"""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor


class Maximum(Function):
    derivatives = Formula(
        "a, b",
        forward="out = max(a, b)",
        backward={"a": "grad * ([a > b] + [a == b] / 2)", "b": "grad * ([b > a] + [a == b] / 2)"},
        local={"a": "[a > b] + [a == b] / 2", "b": "[b > a] + [a == b] / 2"},
        saved="a, b",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return torch.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        halved_at_ties = grad * (1 - (a == b) * 0.5)
        return halved_at_ties.masked_fill(a < b, 0.0), halved_at_ties.masked_fill(a > b, 0.0)


class Minimum(Function):
    derivatives = Formula(
        "a, b",
        forward="out = min(a, b)",
        backward={"a": "grad * ([a < b] + [a == b] / 2)", "b": "grad * ([b < a] + [a == b] / 2)"},
        local={"a": "[a < b] + [a == b] / 2", "b": "[b < a] + [a == b] / 2"},
        saved="a, b",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return torch.minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        halved_at_ties = grad * (1 - (a == b) * 0.5)
        return halved_at_ties.masked_fill(a > b, 0.0), halved_at_ties.masked_fill(a < b, 0.0)


class Where(Function):
    derivatives = Formula(
        "condition, a, b",
        forward="out = a where condition, else b",
        backward={"a": "grad where condition, else 0", "b": "grad where not condition, else 0"},
        local={"a": "[condition]", "b": "1 - [condition]"},
        saved="condition",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, condition, a, b):
        ctx.save_for_backward(condition)
        return torch.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        _, need_a, need_b = ctx.needs_input_grad
        grad_a = grad.where(condition, 0.0) if need_a else None
        grad_b = grad.where(~condition, 0.0) if need_b else None
        return None, grad_a, grad_b


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise larger of a and b, broadcasting."""
    return Maximum.apply(_tensor_like(a, b), _tensor_like(b, a))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise smaller of a and b, broadcasting."""
    return Minimum.apply(_tensor_like(a, b), _tensor_like(b, a))


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """a where condition is true, else b (numbers allowed for a and b), broadcasting."""
    return Where.apply(_condition(condition), a, b)


def _condition(condition: Any) -> Any:
    raw = condition.data if isinstance(condition, Tensor) else condition
    if not isinstance(raw, torch.Tensor) or raw.dtype != torch.bool:
        raise TypeError(f"where: condition must be a bool tensor, got {_kind(raw)}")
    return raw


def _kind(x: Any) -> str:
    return str(x.dtype) if isinstance(x, torch.Tensor) else type(x).__name__


def _tensor_like(x: Any, other: Any) -> Any:
    """torch.maximum takes tensors only: a number becomes a 0-d tensor like `other`."""
    if isinstance(x, int | float):
        like = other.data if isinstance(other, Tensor) else other
        return torch.tensor(x, dtype=like.dtype, device=like.device)
    return x

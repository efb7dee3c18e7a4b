"""Arithmetic: add, sub, mul, div, neg, pow.

Binary ops broadcast like torch. Each backward returns gradients of the broadcast shape;
the engine sums them back to each input's own shape (`engine.sum_to_shape`).

Forward calls torch's function of the same name (`torch.add(a, b)` rather than `a + b`),
so that two Python numbers give a 0-d tensor and the dtypes torch refuses (`-` on bools,
a float `alpha` with integers) are refused with torch's message.
"""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor


class Add(Function):
    """out = a + alpha * b (alpha = 1 unless given)."""

    derivatives = Formula(
        "a, b",
        forward="out = a + alpha * b",
        backward={"a": "grad", "b": "alpha * grad"},
        local={"a": "1", "b": "alpha"},
        options={"alpha": "alpha"},
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, b, alpha=1):
        ctx.alpha = alpha
        return torch.add(a, b, alpha=alpha)

    @staticmethod
    def backward(ctx, grad):
        if ctx.alpha == 1 or not ctx.needs_input_grad[1]:
            return grad, grad
        return grad, grad * ctx.alpha


class Sub(Function):
    """out = a - alpha * b (alpha = 1 unless given)."""

    derivatives = Formula(
        "a, b",
        forward="out = a - alpha * b",
        backward={"a": "grad", "b": "-alpha * grad"},
        local={"a": "1", "b": "-alpha"},
        options={"alpha": "alpha"},
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, b, alpha=1):
        ctx.alpha = alpha
        return torch.sub(a, b, alpha=alpha)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.needs_input_grad[1]:
            return grad, None
        return grad, -grad if ctx.alpha == 1 else grad * -ctx.alpha


class Mul(Function):
    derivatives = Formula(
        "a, b",
        forward="out = a * b",
        backward={"a": "grad * b", "b": "grad * a"},
        local={"a": "b", "b": "a"},
        saved="a, b",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return torch.mul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return grad * b if need_a else None, grad * a if need_b else None


class Div(Function):
    """out = a / b. db is computed as -grad * (a / b) / b, never through b * b, which
    underflows to 0 for |b| below 1e-154 in float64 and would make the gradient infinite.

    With rounding_mode "trunc" or "floor" the result is piecewise constant: its gradient
    is 0 for both inputs, as in torch.
    """

    derivatives = Formula(
        "a, b",
        forward="out = a / b",
        backward={"a": "grad / b", "b": "-grad * ((a / b) / b)  (both 0 with a rounding_mode)"},
        local={"a": "1 / b", "b": "-a / b^2"},
        saved="a, b",
        options={"rounding_mode": "rounding_mode"},
        when="rounding_mode == None",  # rounded quotients: both derivatives are 0
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, b, rounding_mode=None):
        ctx.rounding_mode = rounding_mode
        ctx.save_for_backward(a, b)
        return torch.div(a, b, rounding_mode=rounding_mode)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        if ctx.rounding_mode is not None:
            zeros = grad.new_zeros(grad.shape)
            return zeros if need_a else None, zeros if need_b else None
        return grad / b if need_a else None, -grad * ((a / b) / b) if need_b else None


class Neg(Function):
    derivatives = Formula(
        "a", forward="out = -a", backward={"a": "-grad"}, local={"a": "-1"}, elementwise=True
    )

    @staticmethod
    def forward(ctx, a):
        return torch.neg(a)

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """out = a ** b, for a tensor or number base and a tensor or number exponent.

    Where b = 0 the gradient for a is 0 (not 0 * a**-1, which is nan at a = 0), and where
    a = 0 and b >= 0 the gradient for b is 0 (the limit of a**b * log a), as in torch.
    """

    derivatives = Formula(
        "a, b",
        forward="out = a^b",
        backward={"a": "grad * (b * a^(b-1))", "b": "grad * (a^b * log(a))"},
        local={"a": "b * a^(b - 1)", "b": "out * log(a)"},
        saved="a, b, out",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, b):
        out = torch.pow(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad_b = None
        if need_a:  # grad * (b * a^(b-1)), in torch's order: b * inf is inf, not 0 * inf
            if _is_number(b):
                grad_a = grad * 0.0 if b == 0 else grad * (b * a ** (b - 1))
            else:
                grad_a = (grad * (b * a ** (b - 1))).where(b != 0, 0.0)
        if need_b:  # 0 where a = 0 and b >= 0 (0 ** b is flat there), not 0 * log(0) = nan
            if _is_number(a):
                grad_b = grad * (out * _log_number(a))
                if a == 0:
                    grad_b = grad_b.where(~(b >= 0), 0.0)
            else:  # log(a) in the result's dtype (a bfloat16 base, a float32 exponent)
                log_a = a.to(out.dtype).log()
                grad_b = (grad * (out * log_a)).where(~((a == 0) & (b >= 0)), 0.0)
        return grad_a, grad_b


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float)


def _log_number(x: float) -> float:
    import math

    return math.log(x) if x > 0 else (float("-inf") if x == 0 else float("nan"))


def add(a: Any, b: Any, *, alpha: Any = 1) -> Tensor:
    """a + alpha * b, broadcasting."""
    return Add.apply(a, b, alpha=alpha)


def sub(a: Any, b: Any, *, alpha: Any = 1) -> Tensor:
    """a - alpha * b, broadcasting."""
    return Sub.apply(a, b, alpha=alpha)


def mul(a: Any, b: Any) -> Tensor:
    """a * b elementwise, broadcasting."""
    return Mul.apply(a, b)


def div(a: Any, b: Any, *, rounding_mode: str | None = None) -> Tensor:
    """a / b elementwise, broadcasting: true division, or rounded towards zero
    (rounding_mode="trunc") or down (rounding_mode="floor")."""
    return Div.apply(a, b, rounding_mode=rounding_mode)


def neg(a: Any) -> Tensor:
    """-a."""
    return Neg.apply(a)


def pow(a: Any, exponent: Any) -> Tensor:
    """a ** exponent; either may be a tensor or a number."""
    return Pow.apply(a, exponent)

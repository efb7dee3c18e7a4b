"""Arithmetic: add, sub, mul, div, neg, pow.

Binary ops broadcast like torch. Each backward returns gradients of the broadcast shape;
the engine sums them back to each input's own shape (`engine.sum_to_shape`).
"""

from __future__ import annotations

from typing import Any

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor


class Add(Function):
    derivatives = Formula(
        "a, b",
        forward="out = a + b",
        backward={"a": "grad", "b": "grad"},
        local={"a": "1", "b": "1"},
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    derivatives = Formula(
        "a, b",
        forward="out = a - b",
        backward={"a": "grad", "b": "-grad"},
        local={"a": "1", "b": "-1"},
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad if ctx.needs_input_grad[1] else None


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
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return grad * b if need_a else None, grad * a if need_b else None


class Div(Function):
    derivatives = Formula(
        "a, b",
        forward="out = a / b",
        backward={"a": "grad / b", "b": "-grad * a / b^2"},
        local={"a": "1 / b", "b": "-a / b^2"},
        saved="a, b",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return grad / b if need_a else None, -grad * a / (b * b) if need_b else None


class Neg(Function):
    derivatives = Formula(
        "a", forward="out = -a", backward={"a": "-grad"}, local={"a": "-1"}, elementwise=True
    )

    @staticmethod
    def forward(ctx, a):
        return -a

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
        backward={"a": "grad * b * a^(b-1)", "b": "grad * a^b * log(a)"},
        local={"a": "b * a^(b - 1)", "b": "out * log(a)"},
        saved="a, b, out",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, b):
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad_b = None
        if need_a:
            if _is_number(b):
                grad_a = grad * 0.0 if b == 0 else grad * b * a ** (b - 1)
            else:
                grad_a = (grad * b * a ** (b - 1)).where(b != 0, 0.0)
        if need_b:
            if _is_number(a):
                grad_b = grad * out * _log_number(a)
                if a == 0:  # 0 ** b is 0 for every b > 0: flat, not -inf * 0
                    grad_b = grad_b.where(b < 0, 0.0)
            else:
                grad_b = (grad * out * a.log()).where((a != 0) | (b < 0), 0.0)
        return grad_a, grad_b


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float)


def _log_number(x: float) -> float:
    import math

    return math.log(x) if x > 0 else (float("-inf") if x == 0 else float("nan"))


def add(a: Any, b: Any) -> Tensor:
    """a + b, broadcasting."""
    return Add.apply(a, b)


def sub(a: Any, b: Any) -> Tensor:
    """a - b, broadcasting."""
    return Sub.apply(a, b)


def mul(a: Any, b: Any) -> Tensor:
    """a * b elementwise, broadcasting."""
    return Mul.apply(a, b)


def div(a: Any, b: Any) -> Tensor:
    """a / b elementwise (true division), broadcasting."""
    return Div.apply(a, b)


def neg(a: Any) -> Tensor:
    """-a."""
    return Neg.apply(a)


def pow(a: Any, exponent: Any) -> Tensor:
    """a ** exponent; either may be a tensor or a number."""
    return Pow.apply(a, exponent)

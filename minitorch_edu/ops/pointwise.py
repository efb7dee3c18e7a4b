"""Pointwise maths on one tensor: exp, log, sqrt, abs, tanh, sigmoid, relu, clamp.

Where the derivative is a function of the result (exp, sqrt, tanh, sigmoid, relu), the
result is what gets saved: backward then needs no second pass over the input.
"""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor


class Exp(Function):
    derivatives = Formula(
        "a",
        forward="out = exp(a)",
        backward={"a": "grad * exp(a)  (= grad * out)"},
        local={"a": "out"},
        saved="out",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a):
        out = a.exp()
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    derivatives = Formula(
        "a",
        forward="out = log(a)",
        backward={"a": "grad / a"},
        local={"a": "1 / a"},
        saved="a",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a.log()

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / a


class Sqrt(Function):
    derivatives = Formula(
        "a",
        forward="out = sqrt(a)",
        backward={"a": "grad / (2 * sqrt(a))  (= grad / (2 * out))"},
        local={"a": "1 / (2 * out)"},
        saved="out",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a):
        out = a.sqrt()
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


class Abs(Function):
    derivatives = Formula(
        "a",
        forward="out = |a|",
        backward={"a": "grad * sign(a)  (0 at a = 0)"},
        local={"a": "sign(a)"},
        saved="a",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a.abs()

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * a.sign()


class Tanh(Function):
    derivatives = Formula(
        "a",
        forward="out = tanh(a)",
        backward={"a": "grad * (1 - tanh(a)^2)  (= grad * (1 - out^2))"},
        local={"a": "1 - out^2"},
        saved="out",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a):
        out = a.tanh()
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


class Sigmoid(Function):
    """sigmoid(a) = 1 / (1 + exp(-a)), computed without overflow.

    exp(-a) overflows for large negative a, so with z = exp(-|a|) (always in (0, 1]):
        a >= 0:  1 / (1 + z)
        a <  0:  z / (1 + z)      (the same value, multiplied through by exp(a))
    """

    derivatives = Formula(
        "a",
        forward="out = sigmoid(a)",
        backward={"a": "grad * sigmoid(a) * (1 - sigmoid(a))  (= grad * out * (1 - out))"},
        local={"a": "out * (1 - out)"},
        saved="out",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a):
        z = (-a.abs()).exp()
        out = torch.where(a >= 0, 1.0, z) / (1 + z)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class Relu(Function):
    """relu(a) = max(a, 0). Its derivative at exactly 0 is taken to be 0, as torch does.

    The gradient passes where a > 0 and, as in torch, where a is nan: exactly where out is
    nonzero (out > 0, or nan). Forward keeps that as a mask of ones and zeros (bytes: they
    take a quarter of the memory of floats, and multiply a float gradient faster than bools
    do), so that backward is one multiplication. The masked forms, `grad.masked_fill(out <=
    0, 0)` or `where`, take ten times longer on a CPU.

    As a product, an infinite or nan gradient arriving where a <= 0 gives nan (inf * 0),
    where torch gives 0: the two differ only once a gradient is no longer finite.
    """

    derivatives = Formula(
        "a",
        forward="out = max(a, 0)",
        backward={"a": "grad * (a > 0)  (passes where a is nan; 0 at a = 0)"},
        local={"a": "mask"},
        saved="mask",
        define={"mask": "[a > 0]"},
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a):
        out = a.clamp_min(0)
        ctx.save_for_backward(out.bool().view(torch.uint8))  # 1 where out != 0
        return out

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask


class Clamp(Function):
    """out = min(max(a, low), high). The gradient passes where low <= a <= high (ends included)."""

    derivatives = Formula(
        "a",
        forward="out = min(max(a, low), high)",
        backward={"a": "grad * (low <= a <= high)"},
        local={"a": "1"},
        elementwise=True,
        notes={"a": "1 where low <= a <= high, else 0"},
    )

    @staticmethod
    def forward(ctx, a, low=None, high=None):
        ctx.save_for_backward(a)
        ctx.low, ctx.high = low, high
        return a.clamp(low, high)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        if ctx.low is not None:
            grad = grad * (a >= ctx.low)
        if ctx.high is not None:
            grad = grad * (a <= ctx.high)
        return grad


def exp(a: Any) -> Tensor:
    """e ** a."""
    return Exp.apply(a)


def log(a: Any) -> Tensor:
    """Natural logarithm."""
    return Log.apply(a)


def sqrt(a: Any) -> Tensor:
    """Square root."""
    return Sqrt.apply(a)


def abs(a: Any) -> Tensor:
    """|a|."""
    return Abs.apply(a)


def tanh(a: Any) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(a)


def sigmoid(a: Any) -> Tensor:
    """1 / (1 + exp(-a)), stable for large |a|."""
    return Sigmoid.apply(a)


def relu(a: Any) -> Tensor:
    """max(a, 0)."""
    return Relu.apply(a)


def clamp(a: Any, min: float | None = None, max: float | None = None) -> Tensor:
    """Limit every element to [min, max]; either bound may be None."""
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    if not all(bound is None or isinstance(bound, int | float) for bound in (min, max)):
        kinds = f"{type(min).__name__} and {type(max).__name__}"
        raise TypeError(
            f"clamp: min and max must be numbers, got {kinds}; for tensor bounds use "
            "mt.maximum(a, low) and mt.minimum(a, high)"
        )
    return Clamp.apply(a, low=min, high=max)

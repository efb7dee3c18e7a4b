"""Pointwise maths on one tensor: exp, log, sqrt, abs, sign, tanh, sigmoid, relu, clamp.

Where the derivative is a function of the result (exp, sqrt, tanh, sigmoid, relu), the
result is what gets saved: backward then needs no second pass over the input.

A formula of several steps (sigmoid, the derivative of tanh) works on 16-bit floats in
float32 and rounds once at the end, as torch's kernels do: each 16-bit step would round
again, and 1 - out loses most of its digits when out is near 1.
"""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor

HALF_PRECISION = (torch.float16, torch.bfloat16)


def in_float32(x: Any) -> Any:
    """16-bit floats (a torch.Tensor or our Tensor) as float32; anything else as it is."""
    return x.float() if x.dtype in HALF_PRECISION else x


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


class Sign(Function):
    """-1, 0 or 1. Flat wherever it has a derivative, so the gradient is 0; the result
    still requires grad (as in torch), so a graph through it stays connected."""

    derivatives = Formula(
        "a", forward="out = sign(a)", backward={"a": "0"}, local={"a": "0"}, elementwise=True
    )

    @staticmethod
    def forward(ctx, a):
        return torch.sign(a)

    @staticmethod
    def backward(ctx, grad):
        return grad.new_zeros(grad.shape)


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
        out = in_float32(out)
        return in_float32(grad) * (1 - out * out)


class Sigmoid(Function):
    """sigmoid(a) = 1 / (1 + exp(-a)), computed without overflow.

    exp(-a) overflows for large negative a, so with z = exp(-|a|) (always in (0, 1]):
        a >= 0:  1 / (1 + z)
        a <  0:  z / (1 + z)      (the same value, multiplied through by exp(a))

    Integer and bool inputs are first made floating point (the default dtype), as torch
    does, before -|a| could wrap around in their own dtype.
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
        if not (a.is_floating_point() or a.is_complex()):
            a = a.to(torch.get_default_dtype())
        work = in_float32(a)
        z = (-work.abs()).exp()
        out = (torch.where(work >= 0, 1.0, z) / (1 + z)).to(a.dtype)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        out = in_float32(out)
        return in_float32(grad) * out * (1 - out)


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
        if a.dtype == torch.bool:
            raise RuntimeError("Boolean inputs not supported for relu")  # as torch
        out = a.clamp_min(0)
        ctx.save_for_backward(out.bool().view(torch.uint8))  # 1 where out != 0
        return out

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask


class Clamp(Function):
    """out = min(max(a, low), high). low and high are numbers, tensors (broadcasting) or None.

    The gradient goes to whichever of a, low, high the output is, as in torch:
        a      where low <= a <= high  (ends included; not where a is nan)
        low    where a < low and low < high
        high   where a > high, or everywhere high < low (clamp then returns high)
    """

    derivatives = Formula(
        "a, low, high",
        forward="out = min(max(a, low), high)",
        backward={
            "a": "grad * [low <= a <= high]",
            "low": "grad * [a < low < high]",
            "high": "grad * [a > high or high < low]",
        },
        local={"a": "1", "low": "1", "high": "1"},
        saved="a, low, high",
        elementwise=True,
        notes={
            "a": "1 where low <= a <= high, else 0",
            "low": "1 where a < low < high, else 0",
            "high": "1 where a > high or high < low, else 0",
        },
    )

    @staticmethod
    def forward(ctx, a, low=None, high=None):
        ctx.save_for_backward(a, low, high)
        return torch.clamp(a, low, high)

    @staticmethod
    def backward(ctx, grad):
        a, low, high = ctx.saved_tensors
        need_a, need_low, need_high = ctx.needs_input_grad
        if high is None:
            to_a, to_low, to_high = a >= low, a < low, None
        elif low is None:
            to_a, to_low, to_high = a <= high, None, a > high
        else:
            to_a = (a >= low) & (a <= high)
            to_low = (a < low) & (low < high)
            to_high = (a > high) | (high < low)
        return (
            grad.where(to_a, 0.0) if need_a else None,
            grad.where(to_low, 0.0) if need_low else None,
            grad.where(to_high, 0.0) if need_high else None,
        )


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


def sign(a: Any) -> Tensor:
    """-1, 0 or 1 by the sign of each element (0 for 0; nan for nan)."""
    return Sign.apply(a)


def tanh(a: Any) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(a)


def sigmoid(a: Any) -> Tensor:
    """1 / (1 + exp(-a)), stable for large |a|."""
    return Sigmoid.apply(a)


def relu(a: Any) -> Tensor:
    """max(a, 0)."""
    return Relu.apply(a)


def clamp(a: Any, min: Any = None, max: Any = None) -> Tensor:
    """Limit every element to [min, max]; either bound may be None, a number or a tensor."""
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    return Clamp.apply(a, min, max)

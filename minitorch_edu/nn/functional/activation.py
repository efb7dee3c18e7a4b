"""Pointwise activations: relu, leaky_relu, sigmoid, tanh.

relu, sigmoid and tanh are ops of their own (minitorch_edu/ops/pointwise.py, formulas
there); leaky_relu is written here:

    leaky_relu(a) = a             if a > 0
                    slope * a     otherwise
    da = grad * (1 if a > 0 else slope)
"""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.ops import pointwise


class LeakyRelu(Function):
    derivatives = Formula(
        "a",
        forward="out = a where a > 0, else a * negative_slope",
        backward={"a": "grad where a > 0, else grad * negative_slope"},
        local={"a": "[a > 0] + [a <= 0] * negative_slope"},
        saved="a",
        options={"negative_slope": "negative_slope"},
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, negative_slope=0.01):
        ctx.negative_slope = negative_slope
        ctx.save_for_backward(a)
        return torch.where(a > 0, a, a * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad.where(a > 0, grad * ctx.negative_slope)


def relu(input: Any, inplace: bool = False) -> Tensor:
    """max(input, 0). `inplace` is accepted for torch compatibility; the result is a new tensor."""
    return pointwise.relu(input)


def leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """input where positive, negative_slope * input elsewhere."""
    return LeakyRelu.apply(input, negative_slope=negative_slope)


def sigmoid(input: Any) -> Tensor:
    """1 / (1 + exp(-input)), stable for large |input|."""
    return pointwise.sigmoid(input)


def tanh(input: Any) -> Tensor:
    return pointwise.tanh(input)

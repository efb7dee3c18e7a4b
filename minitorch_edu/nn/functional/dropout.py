"""dropout: zero each element with probability p while training, scale the rest by 1/(1-p).

    mask = bernoulli(1 - p) / (1 - p)       (drawn once per call)
    out  = input * mask
    da   = grad * mask                      (the same mask)

Scaling by 1/(1-p) keeps the expected value of every element unchanged, so at evaluation
time dropout is simply the identity. The mask is drawn with the same generator calls as
torch's CPU dropout, so after the same manual_seed both drop the same elements.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.functional.arguments import raw


class Dropout(Function):
    derivatives = Formula(
        "a",
        forward="out = a * mask",
        backward={"a": "grad * mask  (mask = bernoulli(1 - p) / (1 - p), kept from forward)"},
        local={"a": "mask"},
        saved="mask",
        elementwise=True,
    )

    @staticmethod
    def forward(ctx, a, p=0.5):
        if p == 1:
            mask = torch.zeros_like(a)
        else:
            mask = torch.empty_like(a).bernoulli_(1 - p) / (1 - p)
        ctx.save_for_backward(mask)
        return a * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask


def check_dropout_probability(p: Any) -> None:
    """torch's ValueError for p outside [0, 1]; a TypeError, saying so, for p not a number."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(
            f"dropout probability has to be a number between 0 and 1, but got {p!r} "
            f"({type(p).__name__})"
        )
    if p < 0 or p > 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def dropout(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Randomly zero elements with probability p (training only); `inplace` is accepted but
    the result is always a new tensor."""
    check_dropout_probability(p)
    if not training or p == 0 or raw(input).numel() == 0:
        return input if isinstance(input, Tensor) else Tensor(raw(input))
    return Dropout.apply(input, p=p)

"""softmax and log_softmax along one dim, stable for logits of any size.

Subtracting the row's maximum m changes nothing mathematically and keeps exp() <= 1:

    softmax(a)     = exp(a - m) / sum(exp(a - m))
    log_softmax(a) = (a - m) - log(sum(exp(a - m)))

With s = softmax(a) and the sums taken along `dim`, the backward passes are

    softmax:      da = s * (grad - sum(grad * s))
    log_softmax:  da = grad - s * sum(grad)          (s = exp(out))

one line each, against a graph of max, sub, exp, sum, div nodes if composed.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.functional.arguments import check_dim, raw


class Softmax(Function):
    derivatives = Formula(
        "a",
        forward="out = exp(a) / sum(exp(a), dim)",
        backward={"a": "out * (grad - sum(grad * out, dim))"},
        local={"a": "out[j] * ([i == j] - out[i])"},
        saved="out",
    )

    @staticmethod
    def forward(ctx, a, dim=-1):
        ctx.dim = dim
        if a.numel() == 0:
            out = a.clone()
        else:
            exp = (a - a.amax(dim, keepdim=True)).exp()
            out = exp / exp.sum(dim, keepdim=True)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return out * (grad - (grad * out).sum(ctx.dim, keepdim=True))


class LogSoftmax(Function):
    derivatives = Formula(
        "a",
        forward="out = a - log(sum(exp(a), dim))",
        backward={"a": "grad - exp(out) * sum(grad, dim)"},
        local={"a": "[i == j] - exp(out[i])"},
        saved="out",
    )

    @staticmethod
    def forward(ctx, a, dim=-1):
        ctx.dim = dim
        if a.numel() == 0:
            out = a.clone()
        else:
            shifted = a - a.amax(dim, keepdim=True)
            out = shifted - shifted.exp().sum(dim, keepdim=True).log()
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad - out.exp() * grad.sum(ctx.dim, keepdim=True)


def _softmax_dim(name: str, ndim: int, dim: int | None) -> int:
    if dim is None:
        warnings.warn(
            f"Implicit dimension choice for {name} has been deprecated. "
            "Change the call to include dim=X as an argument.",
            stacklevel=4,
        )
        dim = 0 if ndim in (0, 1, 3) else 1
    return check_dim(dim, ndim, name)


def _cast(input: Any, dtype: torch.dtype | None) -> Any:
    return input if dtype is None else input.to(dtype)


def softmax(
    input: Any, dim: int | None = None, _stacklevel: int = 3, dtype: torch.dtype | None = None
) -> Tensor:
    """exp(input) / sum(exp(input)) along `dim`; each slice sums to 1."""
    dim = _softmax_dim("softmax", raw(input).dim(), dim)
    return Softmax.apply(_cast(input, dtype), dim=dim)


def log_softmax(
    input: Any, dim: int | None = None, _stacklevel: int = 3, dtype: torch.dtype | None = None
) -> Tensor:
    """input - logsumexp(input) along `dim`: the log of softmax, without its rounding."""
    dim = _softmax_dim("log_softmax", raw(input).dim(), dim)
    return LogSoftmax.apply(_cast(input, dtype), dim=dim)

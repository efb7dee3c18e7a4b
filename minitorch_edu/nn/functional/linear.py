"""linear: y = x W^T + b, one node in the graph.

For x of shape (..., in), W of shape (out, in), b of shape (out,):

    y  = x @ W^T + b                           (..., out)
    dx = grad @ W                              (..., out) @ (out, in) -> (..., in)
    dW = grad^T @ x, over all batch rows       (out, B) @ (B, in) -> (out, in)
    db = grad summed over all batch rows       (out,)

where B is the number of rows once the batch dims are flattened. Gradients that nobody
needs (the input's, for the first layer) are not computed.
"""

from __future__ import annotations

from typing import Any

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.functional.arguments import raw, shape_text


class Linear(Function):
    derivatives = Formula(
        "x, W, b",
        forward="out[..., o] = sum_k x[..., k] * W[o, k] + b[o]",
        backward={"x": "grad @ W", "W": "grad^T @ x", "b": "grad.sum(batch dims)"},
        local={"x": "W[o, k]", "W": "x[..., k]", "b": "1"},
        saved="x, W",
        indices={"out": "..., o", "x": "..., k", "W": "o, k", "b": "o"},
    )

    @staticmethod
    def forward(ctx, input, weight, bias=None):
        ctx.save_for_backward(input, weight)
        out = input @ weight.T
        if bias is not None:
            out += bias  # `out` is new memory, so adding in place is safe
        return out

    @staticmethod
    def backward(ctx, grad):
        input, weight = ctx.saved_tensors
        need_input, need_weight, need_bias = ctx.needs_input_grad
        out_features, in_features = weight.shape
        grad_input = grad @ weight if need_input else None  # (..., out) @ (out, in)
        if grad.dim() != 2:  # batch dims flattened into rows (2-D already is: no calls spent)
            grad, input = grad.reshape(-1, out_features), input.reshape(-1, in_features)
        grad_weight = grad.T @ input if need_weight else None
        grad_bias = grad.sum(0) if need_bias else None
        return grad_input, grad_weight, grad_bias


def linear(input: Any, weight: Any, bias: Any = None) -> Tensor:
    """x W^T + b for x of shape (..., in_features), W of shape (out_features, in_features)."""
    x, w = raw(input), raw(weight)
    if w.dim() != 2:
        raise RuntimeError(
            f"linear: weight must be 2-D (out_features, in_features), got {shape_text(w)}"
        )
    if x.dim() == 0 or x.shape[-1] != w.shape[1]:
        raise RuntimeError(
            f"linear: input of shape {shape_text(x)} must have {w.shape[1]} features in its last "
            f"dim to match weight of shape {shape_text(w)} (out_features={w.shape[0]}, "
            f"in_features={w.shape[1]})"
        )
    if x.dtype != w.dtype:
        raise RuntimeError(
            f"linear: input is {x.dtype} but weight is {w.dtype}; convert one, e.g. "
            "model.to(input.dtype) or input.to(weight.dtype)"
        )
    if bias is not None:
        b = raw(bias)
        if b.shape != (w.shape[0],):
            raise RuntimeError(
                f"linear: bias must have shape [{w.shape[0]}] (out_features), got {shape_text(b)}"
            )
    return Linear.apply(input, weight, bias)

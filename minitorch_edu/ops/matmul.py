"""Matrix product with torch.matmul's rules: 1-D, 2-D, batched and broadcast.

For out = A @ B with A of shape (..., n, k) and B of shape (..., k, m):

    dA = grad @ B^T      (..., n, m) @ (..., m, k) -> (..., n, k)
    dB = A^T @ grad      (..., k, n) @ (..., n, m) -> (..., k, m)

A 1-D A is treated as a row (1, k) and a 1-D B as a column (k, 1); the added dim is
removed from the gradient again. Broadcast batch dims are summed away by the engine.
"""

from __future__ import annotations

from typing import Any

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor


class MatMul(Function):
    derivatives = Formula(
        "A, B",
        forward="out[..., n, m] = sum_k A[..., n, k] * B[..., k, m]",
        backward={"A": "grad @ B^T", "B": "A^T @ grad"},
        local={"A": "B[..., k, m]", "B": "A[..., n, k]"},
        saved="A, B",
        indices={"out": "..., n, m", "A": "..., n, k", "B": "..., k, m"},
    )

    @staticmethod
    def forward(ctx, a, b):
        if a.dim() == 0 or b.dim() == 0:
            raise RuntimeError("both arguments to matmul need to be at least 1D")
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        a_is_vector, b_is_vector = a.dim() == 1, b.dim() == 1
        if a_is_vector and b_is_vector:  # dot product: grad is a scalar
            return grad * b if need_a else None, grad * a if need_b else None
        if a_is_vector:
            a, grad = a.unsqueeze(0), grad.unsqueeze(-2)
        if b_is_vector:
            b, grad = b.unsqueeze(-1), grad.unsqueeze(-1)
        grad_a = grad_b = None
        if need_a:
            grad_a = grad @ b.transpose(-1, -2)
            if a_is_vector:
                grad_a = grad_a.squeeze(-2)
        if need_b:
            grad_b = a.transpose(-1, -2) @ grad
            if b_is_vector:
                grad_b = grad_b.squeeze(-1)
        return grad_a, grad_b


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product a @ b following torch.matmul's broadcasting rules."""
    for x in (a, b):
        if isinstance(x, int | float):
            raise TypeError(f"matmul: expected tensors, got the number {x!r}")
    return MatMul.apply(a, b)

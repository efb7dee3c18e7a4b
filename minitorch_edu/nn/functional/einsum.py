"""einsum of two operands, for contractions such as a convolution's.

    out = einsum("ncyxij,ocij->noyx", windows, weight)

sums the product over every index that is missing from the output (c, i, j here). Its
gradient is again such a contraction, with the output's subscripts in the operand's place:

    d a = einsum("O,B->A", grad, b)        d b = einsum("A,O->B", a, grad)

This holds when no index repeats inside one operand (no diagonals) and every index of an
operand appears in the output or in the other operand (nothing is summed within one
operand alone); `einsum` checks both.
"""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor


class Einsum(Function):
    formula = "da = einsum(O,B->A)(grad, b);  db = einsum(A,O->B)(a, grad)"

    @staticmethod
    def forward(ctx, a, b, equation=""):
        ctx.equation = equation
        ctx.save_for_backward(a, b)
        return torch.einsum(equation, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        operands, output = ctx.equation.split("->")
        left, right = operands.split(",")
        grad_a = einsum(f"{output},{right}->{left}", grad, b) if need_a else None
        grad_b = einsum(f"{left},{output}->{right}", a, grad) if need_b else None
        return grad_a, grad_b


def einsum(equation: str, a: Any, b: Any) -> Tensor:
    """Contract two tensors as `equation` says ("ij,jk->ik" is a matrix product)."""
    equation = equation.replace(" ", "")
    operands, arrow, output = equation.partition("->")
    left, comma, right = operands.partition(",")
    if not arrow or not comma or "," in right or "." in equation:
        raise ValueError(f"einsum: expected 'A,B->O' with letters only, got {equation!r}")
    for name, subscripts in (("first", left), ("second", right)):
        if len(set(subscripts)) != len(subscripts):
            raise ValueError(f"einsum: the {name} operand repeats an index in {equation!r}")
    if set(output) - set(left + right) or len(set(output)) != len(output):
        raise ValueError(f"einsum: output subscripts {output!r} do not fit {equation!r}")
    for own, other in ((left, right), (right, left)):
        if set(own) - set(output) - set(other):
            raise ValueError(
                f"einsum: an index of {own!r} appears nowhere else in {equation!r}; "
                "sum it out first"
            )
    return Einsum.apply(a, b, equation=equation)

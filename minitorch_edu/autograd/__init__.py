"""Reverse-mode automatic differentiation: Tensor, Function, the engine and grad modes."""

# Order matters: Tensor first, since Function and the ops build on it.
from minitorch_edu.autograd.tensor import Tensor  # noqa: I001
from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.engine import backward, grad
from minitorch_edu.autograd.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)

__all__ = [
    "Formula",
    "Function",
    "Tensor",
    "backward",
    "enable_grad",
    "grad",
    "inference_mode",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
]

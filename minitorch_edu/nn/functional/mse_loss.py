"""mse_loss: the mean squared error.

    loss_i = (input_i - target_i)^2        (times weight_i when given)
    mean   = sum_i loss_i / n              (sum_i loss_i / sum_i weight_i when weighted)

Composed from ops (sub, mul, sum), whose backward passes give
d input = 2 (input - target) / n * grad and d target = -d input.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.functional.arguments import (
    check_reduction,
    legacy_reduction,
    raw,
    tensor_input,
)
from minitorch_edu.ops.arithmetic import sub
from minitorch_edu.ops.shape import expand


def mse_loss(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Any = None,
) -> Tensor:
    """Squared differences, averaged (default), summed or kept per element."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    check_reduction(reduction)
    x = tensor_input(input, "mse_loss")
    number = isinstance(target, bool | int | float | complex)
    if not (number or isinstance(target, Tensor | torch.Tensor | np.ndarray)):
        raise TypeError(f"mse_loss(): target must be a tensor, not {type(target).__name__}")
    t = raw(target)
    # torch broadcasts both tensors first (so a 0-d target promotes like any other tensor,
    # and an expanded input's gradient is summed after it is cast back), then computes
    dtype = torch.result_type(x, target) if number else torch.promote_types(x.dtype, t.dtype)
    if not dtype.is_floating_point:
        raise RuntimeError(
            f"mse_loss: expected floating-point input and target, got {x.dtype} and "
            f"{type(target).__name__ if number else t.dtype}"
        )
    if not number:
        shape = torch.broadcast_shapes(x.shape, t.shape)
        input, target = (
            v if raw(v).shape == shape else expand(v if isinstance(v, Tensor) else Tensor(v), shape)
            for v in (input, target)
        )
        input, target = (v if raw(v).dtype == dtype else v.to(dtype) for v in (input, target))
    if t.shape != x.shape:
        warnings.warn(
            f"Using a target size ({t.shape}) that is different to the input size ({x.shape}). "
            "This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=2,
        )
    difference = sub(input, target)
    squared = difference * difference
    if weight is not None:
        if raw(weight).shape != x.shape:
            raise ValueError("Weights and input must have the same size.")
        squared = squared * weight
        if reduction == "mean":
            return squared.sum() / raw(weight).sum()
    if reduction == "none":
        return squared
    return squared.sum() if reduction == "sum" else squared.mean()

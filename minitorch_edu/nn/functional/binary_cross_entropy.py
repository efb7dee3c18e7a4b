"""binary_cross_entropy_with_logits: sigmoid and binary cross-entropy in one stable formula.

For a logit x, a target y in [0, 1] and pos_weight p (the weight of positive examples):

    loss = -(p y log sigmoid(x) + (1 - y) log(1 - sigmoid(x)))
         = (1 - y) x + (1 + (p - 1) y) softplus(-x)

using log sigmoid(x) = -softplus(-x) and log(1 - sigmoid(x)) = -x - softplus(-x). The
softplus is computed as softplus(-x) = log(1 + exp(-|x|)) + max(-x, 0): exp never
overflows, so there is no inf for any finite logit. Then

    d x = (1 - y) - (1 + (p - 1) y) sigmoid(-x)
    d y = -x + (p - 1) softplus(-x)

each times the element weight and the incoming gradient.
"""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.functional.arguments import check_reduction, legacy_reduction, raw
from minitorch_edu.ops.pointwise import sigmoid


def _softplus_of_negative(x: Any) -> Any:
    """log(1 + exp(-x)) without overflow, written with methods our Tensor shares."""
    return ((-x.abs()).exp() + 1).log() + (-x).clamp_min(0)


class BinaryCrossEntropyWithLogits(Function):
    formula = (
        "dx = w * ((1 - y) - (1 + (p - 1) y) * sigmoid(-x)) * grad;  "
        "dy = w * (-x + (p - 1) * softplus(-x)) * grad"
    )

    @staticmethod
    def forward(ctx, x, y, weight=None, pos_weight=None):
        ctx.weight, ctx.pos_weight = weight, pos_weight
        ctx.save_for_backward(x, y)
        softplus = (-x.abs()).exp().log1p() + (-x).clamp_min(0)
        if pos_weight is None:
            loss = (1 - y) * x + softplus
        else:
            loss = (1 - y) * x + (1 + (pos_weight - 1) * y) * softplus
        loss = loss if weight is None else loss * weight
        return loss.to(y.dtype)  # torch's result takes the target's dtype

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad
        pos_weight, weight = ctx.pos_weight, ctx.weight
        if weight is not None:
            grad = grad * weight
        grad_x = grad_y = None
        if need_x:
            positive_factor = 1 if pos_weight is None else (y * (pos_weight - 1) + 1)
            grad_x = grad * ((1 - y) - sigmoid(-x) * positive_factor)
        if need_y:
            grad_y = -x
            if pos_weight is not None:
                grad_y = grad_y + _softplus_of_negative(x) * (pos_weight - 1)
            grad_y = grad * grad_y
        return grad_x, grad_y


def binary_cross_entropy_with_logits(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """Binary cross-entropy of sigmoid(input) against `target`, computed from the logits."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    check_reduction(reduction)
    x, y = raw(input), raw(target)
    if y.shape != x.shape:
        raise ValueError(f"Target size ({y.shape}) must be the same as input size ({x.shape})")
    if not x.is_floating_point():
        raise RuntimeError(
            f"binary_cross_entropy_with_logits: expected floating-point logits, got {x.dtype}"
        )
    if not y.is_floating_point():
        raise RuntimeError(
            "binary_cross_entropy_with_logits: target must be floating point (probabilities "
            f"in [0, 1]), got {y.dtype}"
        )
    constants = {}
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is None:
            continue
        value = raw(value).to(device=x.device)
        try:
            torch.broadcast_shapes(value.shape, x.shape)
        except RuntimeError:
            raise RuntimeError(
                f"binary_cross_entropy_with_logits: {name} of shape {list(value.shape)} does "
                f"not broadcast to the input's shape {list(x.shape)}"
            ) from None
        constants[name] = value
    losses = BinaryCrossEntropyWithLogits.apply(input, target, **constants)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()

"""nll_loss and cross_entropy: the loss of a classifier.

With log-probabilities lp (N, C) and class indices t (N,), optional class weights w (C,):

    nll_loss:       loss_n = -w[t_n] * lp[n, t_n]          (0 where t_n == ignore_index)
                    mean   = sum_n loss_n / sum_n w[t_n]   (a weighted mean, as torch's)
                    d lp[n, c] = -w[t_n] / denominator * grad   at c = t_n, 0 elsewhere

    cross_entropy = nll_loss(log_softmax(input, dim=1), ...)
                    d input = (softmax(input) - onehot(t)) * w[t] / denominator * grad

Label smoothing e mixes in the loss against a uniform target:

    (1 - e) * nll + e / C * smooth,    smooth_n = -sum_c w[c] * lp[n, c]

Probability targets p (the input's shape) give -sum_c w[c] p[n, c] lp[n, c] per sample, and
their mean divides by the number of samples. Extra dims (N, C, d1, d2, ...) are treated as
more samples. Targets are checked before anything runs: a bad class index is reported with
its value and C, never turned into a device-side assert.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.functional.arguments import (
    check_int,
    check_number,
    check_reduction,
    legacy_reduction,
    raw,
    shape_text,
)
from minitorch_edu.nn.functional.softmax import log_softmax
from minitorch_edu.ops.selection import where


class NllLoss(Function):
    derivatives = Formula(
        "lp",
        forward="out = -sum_n scale[n] * lp[n, t_n]",
        backward="d lp[n, t_n] = -w[t_n] / denominator * grad  (0 for other classes, ignored n)",
        local={"lp": "-scale[n]"},
        saved="index, scale",
        indices={"lp": "n, c"},
        notes={
            "lp": "at the target class c = t_n of each sample n, 0 elsewhere; scale[n] = "
            "w[t_n] / sum_n w[t_n] (1/N for a mean without class weights)"
        },
    )

    @staticmethod
    def forward(ctx, log_probs, target=None, weight=None, ignore_index=-100, reduction="mean"):
        # ignore_index=None: the caller has checked that no target is ignored.
        class_dim = 0 if log_probs.dim() == 1 else 1
        # sample_weight[n] = w[t_n], 0 for an ignored sample; None while every sample weighs 1
        sample_weight = None
        if ignore_index is not None:
            kept = target != ignore_index
            target = target.where(kept, 0)  # any valid index; its weight is zeroed below
            sample_weight = kept.to(log_probs.dtype)
        if weight is not None:
            class_weight = weight[target]
            sample_weight = class_weight if sample_weight is None else sample_weight * class_weight
        index = target.unsqueeze(class_dim)
        picked = log_probs.gather(class_dim, index).squeeze(class_dim)
        if sample_weight is None:  # the usual case: every sample weighs 1, nothing to weigh
            count = picked.numel()  # (> 0: an empty batch comes with ignore_index)
            scale = 1 / count if reduction == "mean" else 1.0  # a sample's weight in out
            if reduction == "none":
                out = -picked
            elif reduction == "sum":
                out = -picked.sum()
            else:
                out = picked.sum() / -count
        else:
            losses = -sample_weight * picked
            total = sample_weight.sum()
            scale = sample_weight / total if reduction == "mean" else sample_weight
            if ignore_index is not None and reduction == "mean":
                # All ignored: the mean is 0/0 = nan (as in torch), the gradient is 0.
                scale = torch.where(kept, scale, 0.0)
            if reduction == "none":
                out = losses
            elif reduction == "sum":
                out = losses.sum()
            else:
                out = losses.sum() / total
        ctx.class_dim, ctx.input_shape, ctx.samples_shape = class_dim, log_probs.shape, picked.shape
        ctx.save_for_backward(index, scale)
        return out

    @staticmethod
    def backward(ctx, grad):
        index, scale = ctx.saved_tensors
        # -scale_n * grad (grad_n for reduction="none") at each sample's target class
        source = (grad * -scale).expand(ctx.samples_shape).unsqueeze(ctx.class_dim)
        return grad.new_zeros(ctx.input_shape).scatter_add(ctx.class_dim, index, source)


def check_class_targets(
    input: torch.Tensor, target: Any, ignore_index: int, name: str
) -> tuple[torch.Tensor, int | None]:
    """Class-index targets as an int64 torch.Tensor, after checking shape, dtype and range
    (in torch's order, so that the same mistakes raise the same types of error).

    Also returns the ignore_index that NllLoss must honour: None when no target can equal
    it, which spares the loss the work of weighing samples (known on the CPU only: targets
    on a device are not read back, see below).
    """
    target = _as_torch_target(target, input.device)
    if input.dim() >= 2:
        target_batch = target.shape[0] if target.dim() else 0
        if input.shape[0] != target_batch:
            raise ValueError(
                f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                f"({target_batch})."
            )
    if input.dim() <= 2 and target.dim() > 1:
        raise RuntimeError(
            f"{name}: 0D or 1D target tensor expected, multi-target not supported "
            f"(input {shape_text(input)}, target {shape_text(target)})"
        )
    if input.dim() >= 3 and list(target.shape) != [input.shape[0], *input.shape[2:]]:
        raise RuntimeError(
            f"{name}: Expected target size {[input.shape[0], *input.shape[2:]]}, got "
            f"{shape_text(target)} (input of shape {shape_text(input)} without its class dim 1)"
        )
    # torch takes uint8 class indices for (N, C) inputs only, int64 always.
    if target.dtype != torch.int64 and not (target.dtype == torch.uint8 and input.dim() <= 2):
        probability_hint = (
            f"; probability targets must have the input's shape {shape_text(input)}, got "
            f"{shape_text(target)}"
            if target.is_floating_point() and name == "cross_entropy"
            else ""
        )
        raise RuntimeError(
            f"{name}: expected target dtype to be Long (int64) or Byte (uint8) class indices, "
            f"but got {target.dtype}{probability_hint}"
        )
    target = target.long()
    if input.dim() == 1 and target.dim() == 1:
        if target.numel() != 1:
            raise ValueError(
                f"{name}: For 1D input, 1D target must have size 1, but got target size: "
                f"{target.numel()}"
            )
        target = target.reshape(())
    classes = input.shape[0 if input.dim() == 1 else 1]
    if target.numel() == 0:
        return target, ignore_index
    if target.device.type != "cpu":
        # Reading a value back from a GPU waits for everything queued before it (a host-device
        # synchronisation on every call), and a meta tensor has no values at all. So the
        # check is queued on the device instead: a bad index stops the run when it gets there.
        valid = (target == ignore_index) | ((target >= 0) & (target < classes))
        torch._assert_async(
            valid.all(),
            f"{name}: a target is out of bounds: class indices must be in [0, {classes}) for "
            f"C={classes} classes (or ignore_index={ignore_index})",
        )
        return target, ignore_index
    # One pass finds the smallest and the largest index; only when one of them lies outside
    # [0, classes) (an ignored sample, or a mistake) is every target looked at.
    low, high = (bound.item() for bound in target.aminmax())
    if 0 <= low and high < classes:
        return target, ignore_index if low <= ignore_index <= high else None
    bad = (target != ignore_index) & ((target < 0) | (target >= classes))
    if bad.any():
        value = target[bad].flatten()[0].item()
        raise IndexError(
            f"Target {value} is out of bounds: {name} expects class indices in [0, {classes}) "
            f"for C={classes} classes (or ignore_index={ignore_index})"
        )
    return target, ignore_index


def _as_torch_target(target: Any, device: torch.device) -> torch.Tensor:
    if isinstance(target, Tensor):
        return target.data
    if isinstance(target, torch.Tensor):
        return target
    if isinstance(target, np.ndarray | int | list):
        return torch.as_tensor(target, device=device)
    raise TypeError(
        f"target must be a Tensor, torch.Tensor or NumPy array, got {type(target).__name__}"
    )


def _check_weight(input: torch.Tensor, weight: Any, name: str) -> torch.Tensor | None:
    if weight is None:
        return None
    weight = raw(weight)
    classes = input.shape[0 if input.dim() == 1 else 1]
    if weight.shape != (classes,):
        raise RuntimeError(
            f"{name}: weight tensor should be defined either for all {classes} classes or no "
            f"classes but got weight tensor of shape: {shape_text(weight)}"
        )
    if weight.dtype != input.dtype:
        raise RuntimeError(
            f"{name}: weight is {weight.dtype} but input is {input.dtype}; they must match"
        )
    return weight.to(input.device)


def check_ignore_index(ignore_index: Any, name: str) -> int:
    """An int (or a 0-d integer tensor), as torch requires: not a float, not a bool."""
    if isinstance(ignore_index, bool):
        raise TypeError(f"{name}(): argument 'ignore_index' must be int, not bool")
    return check_int(ignore_index, "ignore_index", name)


def _check_input(input: Any, name: str) -> torch.Tensor:
    x = raw(input)
    if not x.is_floating_point():
        raise RuntimeError(f"{name}: expected a floating-point input, got {x.dtype}")
    if x.dim() == 0:
        raise RuntimeError(f"{name}: input must have a class dim, got a 0-d tensor")
    return x


def nll_loss(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of class indices `target` under log-probabilities `input`."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    check_reduction(reduction)
    ignore_index = check_ignore_index(ignore_index, "nll_loss")
    x = _check_input(input, "nll_loss")
    target, ignored = check_class_targets(x, target, ignore_index, "nll_loss")
    weight = _check_weight(x, weight, "nll_loss")
    return NllLoss.apply(
        input, target=target, weight=weight, ignore_index=ignored, reduction=reduction
    )


def cross_entropy(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy between the softmax of `input` (logits, class dim 1) and `target`.

    `target` holds class indices (shape of input without dim 1) or class probabilities
    (the input's shape, floating point).
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    check_reduction(reduction)
    check_number(label_smoothing, "label_smoothing", "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    ignore_index = check_ignore_index(ignore_index, "cross_entropy")
    x = _check_input(input, "cross_entropy")
    weight = _check_weight(x, weight, "cross_entropy")
    class_dim = 0 if x.dim() == 1 else 1
    classes = x.shape[class_dim]
    target_raw = _as_torch_target(target, x.device)
    if target_raw.shape == x.shape:  # torch reads a target of the input's shape as probabilities
        if not target_raw.is_floating_point():
            raise RuntimeError(
                "cross_entropy: expected floating point type for target with class "
                f"probabilities (the input's shape {shape_text(x)}), got {target_raw.dtype}"
            )
        if ignore_index >= 0:  # (a negative one can name no class: torch lets it pass)
            raise RuntimeError(
                "cross_entropy: ignore_index is not supported for floating point (probability) "
                "targets"
            )
        if not isinstance(target, Tensor):
            target = target_raw
        return _probability_cross_entropy(
            input, target, weight, reduction, label_smoothing, class_dim, classes
        )

    target, ignored = check_class_targets(x, target_raw, ignore_index, "cross_entropy")
    log_probs = log_softmax(input, class_dim)
    nll = NllLoss.apply(
        log_probs, target=target, weight=weight, ignore_index=ignored, reduction=reduction
    )
    if label_smoothing == 0:
        return nll
    # Uniform part: -sum_c w[c] lp[n, c] per sample, zero for ignored samples.
    if weight is not None:
        log_probs = log_probs * _along_class_dim(weight, x.dim(), class_dim)
    smooth = -log_probs.sum(class_dim)
    ignored = target == ignore_index
    smooth = where(ignored, 0.0, smooth)
    if reduction == "sum":
        smooth = smooth.sum()
    elif reduction == "mean":
        if weight is not None:  # (a mask, not target[~ignored]: no size read back)
            total = (weight[target.where(~ignored, 0)] * ~ignored).sum()
        else:
            total = (~ignored).sum().to(x.dtype)
        smooth = smooth.sum() / total
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / classes)


def _along_class_dim(weight: torch.Tensor, ndim: int, class_dim: int) -> torch.Tensor:
    """weight (C,) shaped to broadcast along the class dim: (1, C, 1, ...)."""
    shape = [1] * ndim
    shape[class_dim] = weight.shape[0]
    return weight.view(shape)


def _probability_cross_entropy(
    input: Any,
    target: Any,
    weight: torch.Tensor | None,
    reduction: str,
    label_smoothing: float,
    class_dim: int,
    classes: int,
) -> Tensor:
    """-sum_c w[c] p[n, c] log_softmax(input)[n, c], per sample, then reduced."""
    log_probs = log_softmax(input, class_dim)
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    terms = log_probs * target
    if weight is not None:
        terms = terms * _along_class_dim(weight, log_probs.dim(), class_dim)
    if reduction == "none":
        return -terms.sum(class_dim)
    total = -terms.sum()
    if reduction == "sum":
        return total
    samples = log_probs.numel() // classes if classes else 0
    return total / samples if samples else total * float("nan")

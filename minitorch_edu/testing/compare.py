"""Hold a minitorch_edu computation against its torch counterpart: forward and every gradient.

    from minitorch_edu.testing import assert_matches_torch

    assert_matches_torch(lambda a, b: a * b, torch.mul, torch.randn(3, 1), torch.randn(4))

Both functions get the same inputs (floating inputs become leaves that require grad, on
each side), the outputs are compared, the same random `grad_output` is sent back through
both, and the gradients of every input are compared. `double_backward=True` also
differentiates the gradients once more (create_graph) and compares those.

On a mismatch the AssertionError says what differs ("forward output", "gradient of input
1", "second-order gradient of input 0") and its worst element, with both values:

    gradient of input 0 differs from torch, worst at [1, 2]: ours 0.75, torch's 0.5:
    Mismatched elements: 1 / 6 (16.7%) ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

import minitorch_edu as mt


@dataclass
class Comparison:
    """What `assert_matches_torch` compared, for printing or further checks."""

    output: Any  # an mt.Tensor, or a tuple of them
    torch_output: Any
    grads: list[mt.Tensor | None]
    torch_grads: list[torch.Tensor | None]


def assert_close(actual: Any, expected: Any, what: str, rtol: float, atol: float) -> None:
    """torch.testing.assert_close on raw tensors, with a message naming what differs and
    its worst element: the one furthest outside |actual - expected| <= atol + rtol |expected|.
    """
    if isinstance(actual, mt.Tensor):
        actual = actual.data
    try:
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    except AssertionError as error:
        worst = _worst_element(actual, expected, rtol, atol)
        raise AssertionError(f"{what} differs from torch{worst}:\n{error}") from None


def _worst_element(actual: Any, expected: Any, rtol: float, atol: float) -> str:
    """', worst at [1, 2]: ours 0.5, torch's 0.25', or '' when there is no such element."""
    if not (
        isinstance(actual, torch.Tensor)
        and isinstance(expected, torch.Tensor)
        and actual.shape == expected.shape
        and actual.numel() > 0
        and actual.is_floating_point()
        and expected.is_floating_point()
    ):
        return ""
    ours, theirs = actual.detach().double().cpu(), expected.detach().double().cpu()
    score = (ours - theirs).abs() / (atol + rtol * theirs.abs())
    both_nan = ours.isnan() & theirs.isnan()
    score = torch.where(both_nan, 0.0, score.nan_to_num(nan=float("inf")))
    flat = int(score.flatten().argmax())
    index = [int(i) for i in torch.unravel_index(torch.tensor(flat), ours.shape)]
    return f", worst at {index}: ours {ours.flatten()[flat].item():.10g}, torch's " + (
        f"{theirs.flatten()[flat].item():.10g}"
    )


def _leaves(inputs: Sequence[Any], requires_grad: Sequence[bool]) -> tuple[list, list]:
    ours, theirs = [], []
    for x, wants_grad in zip(inputs, requires_grad):
        if isinstance(x, torch.Tensor):
            ours.append(mt.Tensor(x.detach().clone(), requires_grad=wants_grad))
            theirs.append(x.detach().clone().requires_grad_(wants_grad))
        else:
            ours.append(x)
            theirs.append(x)
    return ours, theirs


def assert_matches_torch(
    mt_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    *inputs: Any,
    requires_grad: Sequence[bool] | None = None,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    double_backward: bool = False,
    seed: int = 0,
) -> Comparison:
    """Assert that mt_fn and torch_fn agree in value and in every input gradient.

    `requires_grad` says which inputs are leaves to differentiate (default: every
    floating-point tensor). Integer tensors and numbers are passed through as constants.
    A function may return one tensor or a tuple of them (like `max(dim=...)` or `split`):
    every output is compared, and a random gradient is sent back through each one that
    requires grad.
    """
    if requires_grad is None:
        requires_grad = [isinstance(x, torch.Tensor) and x.is_floating_point() for x in inputs]
    ours, theirs = _leaves(inputs, requires_grad)
    out, torch_out = mt_fn(*ours), torch_fn(*theirs)
    outs, torch_outs = _as_list(out), _as_list(torch_out)
    assert len(outs) == len(torch_outs), f"{len(outs)} outputs, torch has {len(torch_outs)}"
    for j, (o, t) in enumerate(zip(outs, torch_outs)):
        what = "forward output" if len(outs) == 1 else f"forward output {j}"
        assert isinstance(o, mt.Tensor), f"{what} is a {type(o).__name__}, not an mt.Tensor"
        assert_close(o, t, what, rtol, atol)
        assert o.requires_grad == t.requires_grad, (
            f"{what}: requires_grad is {o.requires_grad}, torch's is {t.requires_grad}"
        )

    grads: list = [None] * len(inputs)
    torch_grads: list = [None] * len(inputs)
    differentiable = [i for i, wants in enumerate(requires_grad) if wants]
    used = [j for j, t in enumerate(torch_outs) if t.requires_grad]
    if differentiable and used:
        generator = torch.Generator().manual_seed(seed)
        grad_outputs = [
            torch.randn(torch_outs[j].shape, generator=generator, dtype=torch_outs[j].dtype).to(
                torch_outs[j].device
            )
            for j in used
        ]
        wanted = [ours[i] for i in differentiable]
        torch_wanted = [theirs[i] for i in differentiable]
        found = mt.autograd.grad(
            [outs[j] for j in used],
            wanted,
            grad_outputs,
            create_graph=double_backward,
            allow_unused=True,
        )
        torch_found = torch.autograd.grad(
            [torch_outs[j] for j in used],
            torch_wanted,
            grad_outputs,
            create_graph=double_backward,
            allow_unused=True,
        )
        for i, grad, torch_grad in zip(differentiable, found, torch_found):
            grads[i], torch_grads[i] = grad, torch_grad
            _compare_grads(grad, torch_grad, f"gradient of input {i}", rtol, atol)
        if double_backward:
            _compare_second_order(found, torch_found, wanted, torch_wanted, generator, rtol, atol)
    return Comparison(out, torch_out, grads, torch_grads)


def _as_list(out: Any) -> list:
    return list(out) if isinstance(out, tuple | list) else [out]


def _compare_grads(grad: Any, torch_grad: Any, what: str, rtol: float, atol: float) -> None:
    """Equal values; None (no gradient) counts as equal to an all-zero gradient."""
    if torch_grad is None or grad is None:
        other = grad.data if grad is not None else torch_grad
        assert other is None or not other.any(), f"{what}: one side has none, the other is nonzero"
        return
    assert_close(grad, torch_grad, what, rtol, atol)


def _compare_second_order(found, torch_found, wanted, torch_wanted, generator, rtol, atol):
    """Differentiate sum_i <grad_i, v_i> (random v) again and compare: a Hessian-vector product."""
    projection, torch_projection = None, None
    for grad, torch_grad in zip(found, torch_found):
        if torch_grad is None:
            continue
        v = torch.randn(torch_grad.shape, generator=generator, dtype=torch_grad.dtype)
        v = v.to(torch_grad.device)
        term, torch_term = (grad * v).sum(), (torch_grad * v).sum()
        projection = term if projection is None else projection + term
        torch_projection = torch_term if torch_projection is None else torch_projection + torch_term
    second = [None] * len(wanted)
    torch_second = [None] * len(wanted)
    if projection is not None and projection.requires_grad:
        second = mt.autograd.grad(projection, wanted, allow_unused=True)
    if torch_projection is not None and torch_projection.requires_grad:
        torch_second = torch.autograd.grad(torch_projection, torch_wanted, allow_unused=True)
    for i, (grad, torch_grad) in enumerate(zip(second, torch_second)):
        _compare_grads(grad, torch_grad, f"second-order gradient of input {i}", rtol, atol)

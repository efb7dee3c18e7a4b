"""Run one of torch's samples through torch and through minitorch_edu, and classify the result.

Both sides get the same numbers: every torch tensor of the sample is cloned into a fresh
leaf for torch and into an `mt.Tensor` for us (requiring grad where the sample's does).
Then, stage by stage, the first difference decides the outcome:

    forward        every output: type, shape, dtype, values (nan equals nan), requires_grad
    method         the same through the Tensor method (`x.add(y)`), when both have one
    gradient       the same random grad_output sent back through both; every input's gradient
    second order   the first-order gradients differentiated again (create_graph), with random
                   cotangents, with respect to the inputs and the grad_outputs, as torch's
                   gradgradcheck does

Outcomes:

    pass           the same numbers at every stage, or both refused the input
    differs        both ran and the results differ: a silent wrong answer
    we-refuse      torch ran it, we raised
    we-accept      torch raised, we ran it
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import minitorch_edu as mt
from minitorch_edu.testing.compare import assert_close

PASS, DIFFERS, WE_REFUSE, WE_ACCEPT = "pass", "differs", "we-refuse", "we-accept"
OUTCOMES = (PASS, DIFFERS, WE_REFUSE, WE_ACCEPT)

RTOL, ATOL = 1e-7, 1e-7  # torch.testing's own tolerances for float64


@dataclass(frozen=True)
class Result:
    outcome: str
    stage: str = ""
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.outcome} at {self.stage}: {self.detail}" if self.stage else self.outcome


PASSED = Result(PASS)


class Stop(Exception):
    """Raised inside a comparison to end it with a result."""

    def __init__(self, result: Result) -> None:
        super().__init__(str(result))
        self.result = result


# ---------------------------------------------------------------------------- inputs
def torch_copy(value: Any) -> Any:
    """A deep copy in which every tensor is a fresh leaf (requiring grad as the original)."""
    return _map_tensors(value, lambda t: t.detach().clone().requires_grad_(t.requires_grad), {})


def our_copy(value: Any) -> Any:
    """The same structure with every torch tensor made an `mt.Tensor` with the same numbers."""
    return _map_tensors(value, lambda t: mt.Tensor(t.detach().clone(), t.requires_grad), {})


def _map_tensors(value: Any, convert: Callable[[torch.Tensor], Any], done: dict) -> Any:
    # `done` keeps one copy per tensor, so a tensor passed twice stays one tensor.
    if isinstance(value, torch.Tensor):
        if id(value) not in done:
            done[id(value)] = convert(value)
        return done[id(value)]
    if isinstance(value, list | tuple):
        items = [_map_tensors(item, convert, done) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {key: _map_tensors(item, convert, done) for key, item in value.items()}
    return value


def leaves(value: Any) -> list:
    """The tensors that require grad, in a fixed order (depth first)."""
    found: list = []
    if isinstance(value, torch.Tensor | mt.Tensor):
        if value.requires_grad:
            found.append(value)
    elif isinstance(value, list | tuple):
        for item in value:
            found += leaves(item)
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            found += leaves(value[key])
    return found


def flatten(output: Any) -> list:
    """Every leaf of a (possibly nested) tuple or list of outputs, in order."""
    if isinstance(output, list | tuple):
        return [item for part in output for item in flatten(part)]
    return [output]


def cotangents(tensors: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """Random gradients shaped like `tensors`, the same for a given seed."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(t.shape, generator=generator, dtype=t.dtype) for t in tensors]


# ---------------------------------------------------------------------------- comparison
def compare_values(ours: list, theirs: list, what: str, exact: bool = False) -> None:
    """Raise Stop(differs) at the first output that differs in kind, shape, dtype or value
    (beyond torch.testing's float64 tolerances, or at all when `exact`)."""
    if len(ours) != len(theirs):
        raise Stop(Result(DIFFERS, what, f"{len(ours)} outputs, torch has {len(theirs)}"))
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        name = what if len(ours) == 1 else f"{what} {index}"
        if isinstance(reference, torch.Tensor):
            if not isinstance(mine, mt.Tensor) or not isinstance(mine.data, torch.Tensor):
                kind = type(mine.data if isinstance(mine, mt.Tensor) else mine).__name__
                raise Stop(Result(DIFFERS, name, f"holds a {kind}, torch's a tensor"))
            _compare_tensor(mine.data, reference, name, exact)
        elif isinstance(mine, mt.Tensor) or mine != reference:
            raise Stop(Result(DIFFERS, name, f"ours {mine!r}, torch's {reference!r}"))


def _compare_tensor(
    mine: torch.Tensor, reference: torch.Tensor, name: str, exact: bool = False
) -> None:
    if mine.shape != reference.shape:
        raise Stop(
            Result(DIFFERS, name, f"shape {list(mine.shape)}, torch's {list(reference.shape)}")
        )
    if mine.dtype != reference.dtype:
        raise Stop(Result(DIFFERS, name, f"dtype {mine.dtype}, torch's {reference.dtype}"))
    try:
        assert_close(mine, reference.detach(), name, 0 if exact else RTOL, 0 if exact else ATOL)
    except AssertionError as error:
        raise Stop(Result(DIFFERS, name, str(error).splitlines()[0])) from None


def compare_grads(ours: list, theirs: list, what: str) -> None:
    """Gradients, where None (no gradient reached the input) equals all zeros."""
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        name = f"{what} of input {index}"
        if mine is None or reference is None:
            other = reference if mine is None else mine.data
            if other is not None and other.detach().any():
                side = "ours" if mine is None else "torch's"
                raise Stop(Result(DIFFERS, name, f"{side} is missing, the other is nonzero"))
            continue
        _compare_tensor(mine.data, reference, name)


def refused(stage: str, error: Exception) -> Stop:
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return Stop(Result(WE_REFUSE, stage, f"{type(error).__name__}: {message[:300]}"))


# ---------------------------------------------------------------------------- one call
@dataclass
class Call:
    """How to call one op on one sample: torch's callable and ours, same argument layout."""

    theirs: Callable[..., Any]
    ours: Callable[..., Any]
    method_theirs: Callable[..., Any] | None = None
    method_ours: Callable[..., Any] | None = None


def run_sample(call: Call, sample: Any, gradients: bool, second_order: bool) -> Result:
    """Compare one SampleInput (input, args, kwargs) through both libraries."""
    theirs_in, ours_in = torch_copy(_split(sample)), our_copy(_split(sample))
    try:
        compare_calls(
            lambda: _invoke(call.theirs, theirs_in),
            lambda: _invoke(call.ours, ours_in),
            leaves(theirs_in),
            leaves(ours_in),
            gradients,
            second_order,
        )
        if call.method_theirs is not None and call.method_ours is not None:
            _compare_method(call, sample)
    except Stop as stop:
        return stop.result
    return PASSED


def _split(sample: Any) -> tuple[Any, tuple, dict]:
    return sample.input, tuple(sample.args), dict(sample.kwargs)


def _invoke(fn: Callable[..., Any], arguments: tuple) -> Any:
    input, args, kwargs = arguments
    output = fn(input, *args, **kwargs)
    if output is NotImplemented:  # a reflected operator called on a number, not a tensor
        raise TypeError("NotImplemented")
    return output


def compare_calls(
    theirs: Callable[[], Any],
    ours: Callable[[], Any],
    torch_wrt: list,
    our_wrt: list,
    gradients: bool,
    second_order: bool,
) -> None:
    """Call both; compare the outputs, then the gradients with respect to `*_wrt` (the
    tensors that require grad, in the same order on both sides). Raises Stop on the first
    difference."""
    try:
        torch_out = theirs()
    except Exception:
        # torch refuses this input (on this device or build): we must refuse it too.
        try:
            ours()
        except Exception:
            return
        raise Stop(Result(WE_ACCEPT, "forward", "torch refuses this sample")) from None
    try:
        our_out = ours()
    except Exception as error:
        raise refused("forward", error) from None
    torch_outputs, our_outputs = flatten(torch_out), flatten(our_out)
    compare_values(our_outputs, torch_outputs, "forward output")
    for index, (mine, reference) in enumerate(zip(our_outputs, torch_outputs)):
        if isinstance(reference, torch.Tensor) and mine.requires_grad != reference.requires_grad:
            raise Stop(
                Result(
                    DIFFERS,
                    f"forward output {index}",
                    f"requires_grad {mine.requires_grad}, torch's {reference.requires_grad}",
                )
            )
    if not gradients:
        return
    used = [i for i, t in enumerate(torch_outputs) if isinstance(t, torch.Tensor) and t.grad_fn]
    if not torch_wrt or not used:
        return
    grad_outputs = cotangents([torch_outputs[i] for i in used], seed=1)
    torch_cotangents = [g.requires_grad_(second_order) for g in grad_outputs]
    our_cotangents = [mt.Tensor(g.detach().clone(), second_order) for g in grad_outputs]
    torch_grads = torch.autograd.grad(
        [torch_outputs[i] for i in used],
        torch_wrt,
        torch_cotangents,
        allow_unused=True,
        create_graph=second_order,
    )
    try:
        our_grads = mt.autograd.grad(
            [our_outputs[i] for i in used],
            our_wrt,
            our_cotangents,
            allow_unused=True,
            create_graph=second_order,
        )
    except Exception as error:
        raise refused("gradient", error) from None
    compare_grads(list(our_grads), list(torch_grads), "gradient")
    if second_order:
        _compare_second_order(
            torch_grads, our_grads, torch_wrt + torch_cotangents, our_wrt + our_cotangents
        )


def _compare_method(call: Call, sample: Any) -> None:
    theirs_in, ours_in = torch_copy(_split(sample)), our_copy(_split(sample))
    try:
        torch_out = _invoke(call.method_theirs, theirs_in)
    except Exception:
        return  # the method form does not take these arguments in torch either
    try:
        our_out = _invoke(call.method_ours, ours_in)
    except Exception as error:
        raise refused("method", error) from None
    compare_values(flatten(our_out), flatten(torch_out), "method output")


def _compare_second_order(torch_grads, our_grads, torch_wrt, our_wrt) -> None:
    pairs = [
        (mine, reference)
        for mine, reference in zip(our_grads, torch_grads)
        if reference is not None and reference.requires_grad
    ]
    if not pairs:
        return
    vectors = cotangents([reference for _, reference in pairs], seed=2)
    torch_second = torch.autograd.grad(
        [reference for _, reference in pairs], torch_wrt, vectors, allow_unused=True
    )
    # Where our first-order gradient is absent or constant, its own derivative is zero.
    kept = [(mine, v) for (mine, _), v in zip(pairs, vectors) if _has_graph(mine)]
    our_second: list = [None] * len(our_wrt)
    if kept:
        try:
            our_second = list(
                mt.autograd.grad(
                    [mine for mine, _ in kept],
                    our_wrt,
                    [v for _, v in kept],
                    allow_unused=True,
                )
            )
        except Exception as error:
            raise refused("second order", error) from None
    compare_grads(our_second, list(torch_second), "second-order gradient")


def _has_graph(tensor: Any) -> bool:
    return isinstance(tensor, mt.Tensor) and tensor.requires_grad


def run_error_input(call: Call, error_input: Any) -> Result | None:
    """A sample torch refuses: we must refuse it too. None when torch accepts it here."""
    sample = error_input.sample_input
    return both_refuse(
        lambda: _invoke(call.theirs, torch_copy(_split(sample))),
        lambda: _invoke(call.ours, our_copy(_split(sample))),
        f"torch: {error_input.error_regex}",
    )


def both_refuse(theirs: Callable[[], Any], ours: Callable[[], Any], what: str) -> Result | None:
    """PASS when both raise, WE_ACCEPT when only torch raises, None when torch accepts."""
    try:
        theirs()
    except Exception:
        pass
    else:
        return None  # refused on other devices or builds only
    try:
        ours()
    except Exception:
        return PASSED
    return Result(WE_ACCEPT, "error input", what)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"

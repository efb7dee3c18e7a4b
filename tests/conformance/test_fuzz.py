"""Differential fuzzing: bad and edge inputs through torch and through minitorch_edu.

For every op of fuzz_catalogue.OPS, hypothesis draws calls (dtypes from bool to complex,
empty dims, non-finite values, wrong Python types, dims out of range), makes the same call
on both libraries, and classifies it:

    agree             both returned the same: values (nan equals nan), dtypes, shapes,
                      requires_grad, and the gradients of every input (the same random
                      gradient sent back)
    both-refuse       both raised
    disagree          both returned, something differs: a silent wrong answer
    we-accept         torch raised, we returned something
    we-refuse         we raised, torch returned (reported, not a failure)

The test fails on `disagree` and `we-accept` unless divergences.FUZZ_EXCEPTIONS lists the
call with a reason, and on any error of ours that is a Python-internal message (an
AttributeError, "'NoneType' object ...", "tuple index out of range") where torch's is not.
Hypothesis then shrinks the call to a minimal one and shows it.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from typing import Any

import pytest
import torch
from hypothesis import given, settings

import minitorch_edu as mt

from .divergences import fuzz_exception
from .fuzz_catalogue import OPS
from .harness import cotangents, flatten, our_copy, torch_copy
from .report import THOROUGH

EXAMPLES = 300 if THOROUGH else 35

AGREE, BOTH_REFUSE, DISAGREE, WE_ACCEPT, WE_REFUSE = (
    "agree",
    "both-refuse",
    "disagree",
    "we-accept",
    "we-refuse",
)
CLASSES = (AGREE, BOTH_REFUSE, DISAGREE, WE_ACCEPT, WE_REFUSE)

# Messages that come from Python's internals rather than from a check that says what was
# wrong with the call.
INTERNAL_TYPES = (AttributeError, KeyError, NameError, AssertionError, ZeroDivisionError)
INTERNAL_MESSAGES = re.compile(
    r"object has no attribute|'NoneType' object|object is not (iterable|subscriptable|callable)|"
    r"not supported between instances|(tuple|list) index out of range|"
    r"can't multiply sequence|unhashable type|invalid literal for"
)


def outputs_differ(ours: Any, theirs: Any) -> str:
    """'' when equal, else what differs."""
    ours, theirs = flatten(ours), flatten(theirs)
    if len(ours) != len(theirs):
        return f"{len(ours)} outputs, torch {len(theirs)}"
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        if not isinstance(reference, torch.Tensor):
            if isinstance(mine, mt.Tensor) or mine != reference:
                return f"output {index}: ours {mine!r}, torch's {reference!r}"
            continue
        if not isinstance(mine, mt.Tensor) or not isinstance(mine.data, torch.Tensor):
            return f"output {index}: ours is a {type(mine).__name__}, torch's a tensor"
        if mine.requires_grad != reference.requires_grad:
            return (
                f"output {index}: requires_grad {mine.requires_grad}, torch's "
                f"{reference.requires_grad}"
            )
        problem = tensors_differ(mine.data, reference.detach())
        if problem:
            return f"output {index}: {problem}"
    return ""


def tensors_differ(mine: torch.Tensor, reference: torch.Tensor, gradient: bool = False) -> str:
    """'' when equal within torch.testing's tolerance for the dtype (exact for integers);
    16-bit gradients, formulas of several products that each side rounds in other places,
    get bfloat16's tolerance."""
    if mine.dtype != reference.dtype:
        return f"dtype {mine.dtype}, torch's {reference.dtype}"
    if mine.shape != reference.shape:
        return f"shape {list(mine.shape)}, torch's {list(reference.shape)}"
    if mine.numel() == 0:  # (torch makes shapes such as [-1, 0] that it cannot compare)
        return ""
    tolerance = {}
    if gradient and mine.dtype in (torch.float16, torch.bfloat16):
        tolerance = {"rtol": 1.6e-2, "atol": 1e-3}
    try:
        torch.testing.assert_close(mine, reference, equal_nan=True, **tolerance)
    except AssertionError as error:
        detail = " ".join(str(error).split())
        return f"values differ: {detail[:300]}"
    return ""


def gradients_differ(our_out, torch_out, our_inputs, torch_inputs) -> str:
    """Send the same random gradient back through every floating output that requires grad;
    compare the gradients of every input that requires grad. Complex numbers are left out."""
    torch_outputs = [
        t for t in flatten(torch_out) if isinstance(t, torch.Tensor) and t.grad_fn is not None
    ]
    our_outputs = [
        o
        for o, t in zip(flatten(our_out), flatten(torch_out))
        if any(t is x for x in torch_outputs)
    ]
    torch_leaves = [
        t for t in flatten(torch_inputs) if isinstance(t, torch.Tensor) and t.requires_grad
    ]
    our_leaves = [t for t in flatten(our_inputs) if isinstance(t, mt.Tensor) and t.requires_grad]
    if not torch_outputs or not torch_leaves:
        return ""
    if any(t.is_complex() for t in torch_outputs + torch_leaves):
        return ""
    if any(size < 0 for t in torch_outputs for size in t.shape):
        return ""  # torch's shapes such as [-1, 0]: nothing to send back
    sent = cotangents(torch_outputs, seed=1)
    try:
        expected = torch.autograd.grad(torch_outputs, torch_leaves, sent, allow_unused=True)
    except RuntimeError:
        return ""  # torch cannot differentiate it either
    try:
        found = mt.autograd.grad(our_outputs, our_leaves, sent, allow_unused=True)
    except Exception as error:
        return f"our backward raised {type(error).__name__}: {error}"
    for index, (mine, reference) in enumerate(zip(found, expected)):
        if mine is None or reference is None:
            other = reference if mine is None else mine.data
            if other is not None and other.detach().any():
                return f"gradient of input {index}: one side has none"
            continue
        problem = tensors_differ(mine.data, reference, gradient=True)
        if problem:
            return f"gradient of input {index}: {problem}"
    return ""


def unclear(error: BaseException, torch_error: BaseException | None) -> bool:
    """Our error is a Python-internal message (and torch's, for the same call, is not)."""
    ours_internal = isinstance(error, INTERNAL_TYPES) or bool(INTERNAL_MESSAGES.search(str(error)))
    if not ours_internal:
        return False
    if torch_error is None:
        return True
    return not (
        isinstance(torch_error, INTERNAL_TYPES) or INTERNAL_MESSAGES.search(str(torch_error))
    )


def classify(name: str, args: tuple, kwargs: dict) -> tuple[str, str]:
    """(class, detail) of one call."""
    op = OPS[name]
    theirs_args, theirs_kwargs = torch_copy(args), torch_copy(kwargs)
    torch_error = our_error = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.manual_seed(0)
            theirs = op.theirs(*theirs_args, **theirs_kwargs)
        except Exception as error:
            torch_error = error
        try:  # making our tensors may refuse too (a complex tensor that requires grad)
            ours_args, ours_kwargs = our_copy(args), our_copy(kwargs)
            torch.manual_seed(0)
            ours = op.ours(*ours_args, **ours_kwargs)
        except Exception as error:
            our_error = error
    if our_error is not None and unclear(our_error, torch_error):
        return "unclear", f"{type(our_error).__name__}: {our_error}"
    if torch_error is not None:
        if our_error is not None:
            return BOTH_REFUSE, ""
        return WE_ACCEPT, f"torch: {type(torch_error).__name__}: {torch_error}"
    if our_error is not None:
        return WE_REFUSE, f"{type(our_error).__name__}: {our_error}"
    problem = outputs_differ(ours, theirs) or gradients_differ(
        ours, theirs, (ours_args, ours_kwargs), (theirs_args, theirs_kwargs)
    )
    return (DISAGREE, problem) if problem else (AGREE, "")


COUNTS: dict[str, Counter] = {name: Counter() for name in OPS}


@pytest.mark.parametrize("name", sorted(OPS))
def test_fuzz_against_torch(name, record_property):
    @settings(max_examples=EXAMPLES)
    @given(call=OPS[name].arguments)
    def run(call):
        args, kwargs = call
        outcome, detail = classify(name, args, kwargs)
        if outcome in (DISAGREE, WE_ACCEPT, "unclear"):
            reason = fuzz_exception(name, outcome, args, kwargs)
            if reason is None:
                COUNTS[name][outcome] += 1
                raise AssertionError(f"{name}: {outcome}: {detail}")
            outcome = f"listed {outcome}"
        COUNTS[name][outcome] += 1

    run()
    record_property("fuzz", dict(COUNTS[name]))

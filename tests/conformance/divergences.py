"""Every known, deliberate difference from torch, with its reason: on torch's own samples
(DIVERGENCES, for the conformance tests) and on the differential fuzz test's calls
(FUZZ_EXCEPTIONS, for test_fuzz.py).

The conformance tests fail on any difference not listed here, and on a listed one that no
longer happens (a `when` that matches a sample which now passes, or matches no sample at
all), so that this list stays true. The fuzz test fails on a silent disagreement, on a call
we accept where torch refuses, and on an unclear error of ours, unless listed below.

    target    the OpInfo / ModuleInfo / OptimizerInfo name (as in mapping.py)
    outcome   what happens instead of agreement: we-refuse, we-accept or differs
    when      which samples: a function of the SampleInput (ops), the ModuleInput
              (layers), or the OptimizerConfig (optimizers) that returns True for them
    reason    why we keep the difference
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .harness import DIFFERS, WE_ACCEPT, WE_REFUSE


@dataclass(frozen=True)
class Divergence:
    target: str
    outcome: str
    when: Callable[[Any], bool]
    reason: str

    def matches(self, sample: Any) -> bool:
        try:
            return bool(self.when(sample))
        except Exception:  # a predicate written for another kind of sample
            return False


NOT_FUSED = (
    "fused=True asks for torch's fused kernel; minitorch_edu writes every update out in "
    "elementary operations (foreach=True groups them) and refuses the flag rather than "
    "ignore it"
)


def _flag(name: str) -> Callable[[Any], bool]:
    return lambda config: config.kwargs.get(name) is True


def _every_target_ignored(module_input: Any) -> bool:
    ignored = module_input.constructor_input.kwargs.get("ignore_index", -100)
    target = module_input.forward_input.args[1]
    reduction = module_input.constructor_input.kwargs.get("reduction", "mean")
    return reduction == "mean" and bool((target == ignored).all())


def _number_input(sample: Any) -> bool:
    return isinstance(sample.input, int | float)


def _number_and_tensor(sample: Any) -> bool:
    """One operand of a binary op is a Python number, the other a tensor."""
    kinds = {isinstance(x, torch.Tensor) for x in (sample.input, sample.args[0])}
    return kinds == {True, False}


def _number_then_tensor(sample: Any) -> bool:
    """max(number, tensor): (max(tensor, number) reads the number as a dim, as torch does)."""
    return _number_input(sample) and isinstance(sample.args[0], torch.Tensor)


def _zero_base(sample: Any) -> bool:
    """Some base of a ** b is 0 while its exponent is >= 0 (and the exponent requires grad)."""
    base, exponent = sample.input, sample.args[0]
    return bool(((base == 0) & (exponent >= 0)).any())


def _zero_base_reflected(sample: Any) -> bool:
    """For other ** input (`__rpow__`): some base `other` is 0 with input >= 0."""
    return bool(((sample.args[0] == 0) & (sample.input >= 0)).any())


def _empty_uint8_index(sample: Any) -> bool:
    index = sample.args[1]
    return index.dtype == torch.uint8 and index.numel() == 0


UNBOUND_REFLECTED = (
    "torch's OpInfo calls the unbound reflected operator (Tensor.__radd__ and its siblings) "
    "with a Python number as self, which torch's C descriptor refuses; Python itself only "
    "calls it on a tensor, and ours, a plain Python method, computes the result"
)
NUMBERS_AS_TENSORS = (
    "the public API accepts a Python number wherever a tensor is expected, as a constant "
    "(DESIGN.md: 'a Python number is accepted as a constant'); torch's maximum/minimum "
    "want two tensors"
)
ZERO_BASE = (
    "second derivative of a ** b with respect to b where a = 0 and b >= 0: torch's chain rule "
    "multiplies a zero by log(0)^2 = inf and gives nan; ours masks that term and gives 0, "
    "the value of the (flat) function 0 ** b for b > 0"
)


DIVERGENCES: list[Divergence] = [
    *(
        Divergence(op, WE_ACCEPT, _number_input, UNBOUND_REFLECTED)
        for op in ("__radd__", "__rsub__", "__rmul__", "__rdiv__")
    ),
    *(
        Divergence(op, WE_ACCEPT, _number_and_tensor, NUMBERS_AS_TENSORS)
        for op in ("maximum", "minimum")
    ),
    *(
        Divergence(op, WE_ACCEPT, _number_then_tensor, NUMBERS_AS_TENSORS)
        for op in ("max.binary", "min.binary")
    ),
    Divergence("pow", DIFFERS, _zero_base, ZERO_BASE),
    Divergence("__rpow__", DIFFERS, _zero_base_reflected, ZERO_BASE),
    Divergence(
        "gather",
        WE_REFUSE,
        _empty_uint8_index,
        "torch skips its index dtype check when the index is empty and then accepts uint8; "
        "ours checks the dtype (int64 or int32) whatever the index's size",
    ),
    *(
        Divergence(optimizer, WE_REFUSE, _flag("fused"), NOT_FUSED)
        for optimizer in ("SGD", "Adagrad", "Adam", "AdamW")
    ),
    Divergence(
        "nn.CrossEntropyLoss",
        DIFFERS,
        _every_target_ignored,
        "every target is ignore_index, so the mean divides by a total weight of 0: torch "
        "gives 0 as the first derivative but nan as the derivative of that 0 with respect to "
        "grad_output; ours is 0 at both orders",
    ),
]


def for_target(target: str) -> list[Divergence]:
    return [divergence for divergence in DIVERGENCES if divergence.target == target]


# ---------------------------------------------------------------------------- the fuzz test
@dataclass(frozen=True)
class FuzzException:
    """A kind of call of the differential fuzz test (test_fuzz.py) that may disagree with
    torch, or that we accept where torch refuses: `when(args, kwargs)` says which."""

    op: str
    outcome: str  # disagree, we-accept or unclear
    when: Callable[[tuple, dict], bool]
    reason: str


def _tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor)


def _number(value: Any) -> bool:
    return isinstance(value, bool | int | float) and not _tensor(value)


def _half(value: Any) -> bool:
    return _tensor(value) and value.dtype in (torch.float16, torch.bfloat16)


def _explicit_none(position: int) -> Callable[[tuple, dict], bool]:
    return lambda args, kwargs: len(args) > position and args[position] is None


def _empty_dim_tuple(args: tuple, kwargs: dict) -> bool:
    return len(args) > 1 and args[1] == ()


def _number_and_tensor_operands(args: tuple, kwargs: dict) -> bool:
    kinds = {_tensor(x) for x in args[:2]}
    return kinds == {True, False} and any(_number(x) for x in args[:2])


def _bool_exponent(args: tuple, kwargs: dict) -> bool:
    return isinstance(args[1], bool)


def _tensor_bound_requiring_grad_and_number(args: tuple, kwargs: dict) -> bool:
    _, low, high = args
    return any(_tensor(x) and x.requires_grad and _number(y) for x, y in ((low, high), (high, low)))


def _complex_not_finite(args: tuple, kwargs: dict) -> bool:
    tensors = [x for x in args if _tensor(x)]
    return any(x.is_complex() for x in tensors) and not all(x.isfinite().all() for x in tensors)


def _no_input_channels(args: tuple, kwargs: dict) -> bool:
    return args[1].dim() >= 2 and args[1].shape[1] == 0


def _padding_and_infinite_weight(args: tuple, kwargs: dict) -> bool:
    return bool(kwargs.get("padding")) and not bool(args[1].isfinite().all())


def _minus_infinity_and_padding(args: tuple, kwargs: dict) -> bool:
    return bool(kwargs.get("padding")) and bool((args[0] == -math.inf).any())


def _half_near_its_largest(args: tuple, kwargs: dict) -> bool:
    tensors = [x for x in args if _tensor(x) and x.dtype == torch.float16]
    return any(bool((x.abs() > 16384).any()) for x in tensors)


EXPLICIT_NONE = (
    "an explicit dim=None means every dim, as it does for torch.sum, mean and amax; torch's "
    "max, min, squeeze and logsumexp take no None there"
)
NUMBER_TARGET = (
    "the public API accepts a Python number wherever a tensor is expected, as a constant "
    "(DESIGN.md); torch's losses want a tensor target"
)

FUZZ_EXCEPTIONS: list[FuzzException] = [
    # what the public API accepts on purpose
    *(
        FuzzException(op, "we-accept", _explicit_none(1), EXPLICIT_NONE)
        for op in ("max", "min_dim", "squeeze", "logsumexp")
    ),
    *(
        FuzzException(op, "we-accept", _number_and_tensor_operands, NUMBERS_AS_TENSORS)
        for op in ("maximum", "minimum")
    ),
    *(
        FuzzException(loss, "we-accept", lambda args, kwargs: _number(args[1]), NUMBER_TARGET)
        for loss in ("mse_loss", "binary_cross_entropy_with_logits")
    ),
    *(
        FuzzException(
            loss,
            "we-accept",
            lambda args, kwargs: _number(args[1]) or isinstance(args[1], list),
            NUMBER_TARGET + "; a list of class indices is taken as their tensor (a tested "
            "convenience)",
        )
        for loss in ("cross_entropy", "nll_loss")
    ),
    FuzzException(
        "clamp",
        "we-accept",
        _tensor_bound_requiring_grad_and_number,
        "clamp(x, tensor, number): torch accepts it, unless the tensor bound requires grad "
        "(then its argument parser refuses the mix); ours accepts it either way",
    ),
    # where torch's own answer is an artefact of its kernels or its autograd formulas
    *(
        FuzzException(
            op,
            "disagree",
            _empty_dim_tuple,
            "dim=() means every dim; torch's backward of var and std mistakes the empty list "
            "and gives inf or a wrong factor (its forward agrees); ours is the derivative",
        )
        for op in ("var", "std")
    ),
    FuzzException(
        "logsumexp",
        "we-accept",
        _empty_dim_tuple,
        "logsumexp(x, dim=()): torch's forward fails on the empty dim list (an output of "
        "shape [] against [1]); ours reduces every dim, as dim=() means for amax and amin",
    ),
    *(
        FuzzException(
            op,
            "disagree",
            _bool_exponent,
            "x ** False: torch's backward tests `exponent == 0` for numbers but not for bools, "
            "and gives 0 * x^-1 = nan at x = 0; ours treats False as 0 and gives 0, as for "
            "x ** 0",
        )
        for op in ("**", "pow")
    ),
    *(
        FuzzException(
            op,
            "disagree",
            _complex_not_finite,
            "complex products with inf: inf or nan depends on the order the kernel takes; "
            "torch's own `a @ b` gives -inf+infj without grad and nan+nanj with requires_grad",
        )
        for op in ("@", "matmul", "linear", "conv1d", "conv2d")
    ),
    *(
        FuzzException(
            op,
            "disagree",
            _no_input_channels,
            "no input channels: torch's shortcut for empty inputs returns 0 output channels; "
            "ours returns out_channels channels of zeros (each an empty sum)",
        )
        for op in ("conv1d", "conv2d")
    ),
    *(
        FuzzException(
            op,
            "disagree",
            _padding_and_infinite_weight,
            "zero padding against an infinite weight: torch's kernel skips the padded taps "
            "(0 * inf is never formed), ours multiplies the padded zeros (0 * inf = nan)",
        )
        for op in ("conv1d", "conv2d")
    ),
    FuzzException(
        "max_pool2d",
        "disagree",
        _minus_infinity_and_padding,
        "a window whose every element is -inf, its padding included: torch's kernel sends "
        "the gradient to the first element inside the input, ours to the first position of "
        "the window, a padding one, where it is dropped",
    ),
    # 16-bit floats, where torch rounds in other places
    FuzzException(
        "log_softmax",
        "disagree",
        lambda args, kwargs: _half(args[0]),
        "16-bit log_softmax: torch rounds the sum of exponentials to 16 bits before its log "
        "(log_softmax([3, 1e-4]) in bfloat16 is -0.0459, the exact value -0.0486); ours works "
        "in float32 and rounds once",
    ),
    FuzzException(
        "pad",
        "disagree",
        lambda args, kwargs: args[2] == "circular" and _half(args[0]),
        "16-bit circular padding: torch's is made of copies whose gradients add in 16 bits, in "
        "the order of its copies; ours adds them in float32 and rounds once, as torch's own "
        "reflect and replicate kernels do",
    ),
    FuzzException(
        "mse_loss",
        "disagree",
        _half_near_its_largest,
        "float16 near its largest value (65504): torch's backward forms 2 * (x - t) first and "
        "overflows to inf; ours multiplies grad by (x - t) on each side of the square (the "
        "product rule) and stays finite",
    ),
]


def fuzz_exception(op: str, outcome: str, args: tuple, kwargs: dict) -> str | None:
    """The reason a listed exception gives for this call, or None."""
    for exception in FUZZ_EXCEPTIONS:
        if exception.op == op and exception.outcome == outcome:
            try:
                if exception.when(args, kwargs):
                    return exception.reason
            except Exception:
                continue
    return None

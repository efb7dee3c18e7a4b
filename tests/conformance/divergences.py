"""Every known, deliberate difference from torch on torch's own samples, with its reason.

The conformance tests fail on any difference not listed here, and on a listed one that no
longer happens (a `when` that matches a sample which now passes, or matches no sample at
all), so that this list stays true.

    target    the OpInfo / ModuleInfo / OptimizerInfo name (as in mapping.py)
    outcome   what happens instead of agreement: we-refuse, we-accept or differs
    when      which samples: a function of the SampleInput (ops), the ModuleInput
              (layers), or the OptimizerConfig (optimizers) that returns True for them
    reason    why we keep the difference
"""

from __future__ import annotations

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
NOT_DIFFERENTIABLE = (
    "differentiable=True records the update itself for autograd; minitorch_edu's steps "
    "update .data in place, unrecorded, and refuse the flag rather than ignore it"
)


def _flag(name: str) -> Callable[[Any], bool]:
    return lambda config: config.kwargs.get(name) is True


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
    *(
        Divergence(optimizer, WE_REFUSE, _flag("differentiable"), NOT_DIFFERENTIABLE)
        for optimizer in ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW")
    ),
    Divergence(
        "nn.CrossEntropyLoss",
        DIFFERS,
        lambda module_input: module_input.desc == "2d_ignore_index_mean",
        "every target is ignore_index, so the mean divides by a total weight of 0: torch "
        "gives 0 as the first derivative but nan as the derivative of that 0 with respect to "
        "grad_output; ours is 0 at both orders",
    ),
]


def for_target(target: str) -> list[Divergence]:
    return [divergence for divergence in DIVERGENCES if divergence.target == target]

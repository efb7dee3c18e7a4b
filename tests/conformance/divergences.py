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

from .harness import DIFFERS, WE_REFUSE


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


DIVERGENCES: list[Divergence] = [
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

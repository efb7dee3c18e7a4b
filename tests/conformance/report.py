"""Choosing which samples run, and judging the results against the list of divergences.

Profiles: `HYPOTHESIS_PROFILE=thorough` runs every sample torch generates. Any other
profile runs a bounded selection of each target: its samples of at most `LARGE` elements
(torch's reference inputs include tensors of a million, which cost seconds each at second
order), all of them when there are at most `LIMIT`, else an even spread of `LIMIT`; in every
profile, every sample that a listed divergence names runs too, so that the list is checked
whole each time.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from .divergences import Divergence, for_target
from .harness import OUTCOMES, PASS, Result

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
LIMIT = 40
LARGE = 20_000


def select(samples: Iterable[Any], target: str, limit: int = LIMIT) -> list[Any]:
    """The samples of `target` to run in this profile (see the module docstring)."""
    samples = list(samples)
    if THOROUGH:
        return samples
    divergences = for_target(target)
    small = [sample for sample in samples if elements(sample) <= LARGE]
    stride = max(1, math.ceil(len(small) / limit))
    chosen = {id(sample) for sample in small[::stride]}
    return [
        sample
        for sample in samples
        if id(sample) in chosen or any(d.matches(sample) for d in divergences)
    ]


def elements(value: Any) -> int:
    """How many tensor elements a sample holds (its input, args and kwargs)."""
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, list | tuple):
        return sum(elements(item) for item in value)
    if isinstance(value, dict):
        return sum(elements(item) for item in value.values())
    if hasattr(value, "input") and hasattr(value, "args"):  # a SampleInput
        return elements((value.input, value.args, value.kwargs))
    return 0


@dataclass
class Report:
    """What one target's samples did, and what the list of divergences makes of it."""

    target: str
    counts: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    listed: int = 0

    def add(self, sample: Any, result: Result | None, description: str) -> None:
        """Count one sample's result (None: skipped, torch accepts an error input here)."""
        if result is None:
            return
        self.counts[result.outcome] += 1
        matched = [d for d in for_target(self.target) if d.matches(sample)]
        if result.outcome == PASS:
            for divergence in matched:
                self.failures.append(
                    f"listed divergence no longer diverges ({divergence.reason[:80]}...): "
                    f"{description} now passes"
                )
            return
        if any(d.outcome == result.outcome for d in matched):
            self.listed += 1
            return
        self.failures.append(f"{result}\n    sample: {description}")

    def check_list_used(self, samples: Iterable[Any]) -> None:
        """A divergence that matches none of the target's samples is out of date."""
        samples = list(samples)
        for divergence in for_target(self.target):
            if not any(divergence.matches(sample) for sample in samples):
                self.failures.append(
                    f"listed divergence matches no sample any more: {divergence.reason[:100]}"
                )

    def summary(self) -> dict[str, int]:
        run = sum(self.counts.values())
        return {"run": run, "passed": self.counts[PASS], "listed": self.listed}

    def message(self) -> str:
        counts = ", ".join(f"{self.counts[o]} {o}" for o in OUTCOMES if self.counts[o])
        lines = [f"{self.target}: {counts}; {len(self.failures)} not listed in divergences.py:"]
        lines += [f"  - {failure}" for failure in self.failures[:25]]
        if len(self.failures) > 25:
            lines.append(f"  ... and {len(self.failures) - 25} more")
        return "\n".join(lines)


def describe(sample: Any) -> str:
    summary = getattr(sample, "summary", None)
    text = summary() if callable(summary) else repr(sample)
    return text if len(text) < 400 else text[:400] + "..."


__all__ = ["Divergence", "Report", "THOROUGH", "describe", "select"]

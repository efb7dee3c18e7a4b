"""`Case`: one drawn example of an op, ready for every property (torch, finite differences).

A strategy that draws a Case decides the inputs *and* the op's options (dims, shapes,
indices) together, so one catalogue entry can feed three properties:

    case = data.draw(sum_cases())
    assert_matches_torch(case.ours, case.theirs, *case.inputs)
    if case.smooth:
        gradcheck(case.ours, case.inputs)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Case:
    """Our function, torch's, the inputs, and whether finite differences make sense there.

    `smooth=False` marks inputs on a kink (ties in max, a value exactly at relu's 0): the
    torch comparison still applies, finite differences do not.
    """

    label: str
    ours: Callable[..., Any]
    theirs: Callable[..., Any]
    inputs: tuple
    smooth: bool = True

    def to(self, device: Any) -> Case:
        """The same case with every tensor input moved to `device`."""
        moved = tuple(x.to(device) if isinstance(x, torch.Tensor) else x for x in self.inputs)
        return Case(self.label, self.ours, self.theirs, moved, self.smooth)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"tensor{list(x.shape)}={x.tolist()}" if isinstance(x, torch.Tensor) else repr(x)
            for x in self.inputs
        )
        return f"Case({self.label}; {shown})"

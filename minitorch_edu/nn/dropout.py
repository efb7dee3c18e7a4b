"""Dropout layer: drops elements with probability p in training mode, identity in eval mode."""

from __future__ import annotations

from typing import Any

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.functional.dropout import check_dropout_probability, dropout
from minitorch_edu.nn.module import Module


class Dropout(Module):
    """Zero each element with probability p while `self.training`, scaling the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        check_dropout_probability(p)
        self.p = p
        self.inplace = inplace

    def forward(self, input: Any) -> Tensor:
        return dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

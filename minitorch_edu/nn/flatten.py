"""Flatten layer: merge dims start_dim..end_dim (by default every dim but the batch dim)."""

from __future__ import annotations

from typing import Any

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.module import Module
from minitorch_edu.ops.shape import flatten


class Flatten(Module):
    """(N, C, H, W) -> (N, C * H * W) with the defaults start_dim=1, end_dim=-1."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Any) -> Tensor:
        return flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

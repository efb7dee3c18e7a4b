"""Linear (y = x W^T + b) and Identity.

Linear's weight has shape (out_features, in_features); its default initialisation draws
W from U(-1/sqrt(in_features), 1/sqrt(in_features)) (kaiming_uniform_ with a = sqrt(5))
and b from the same range, with the same generator calls as torch.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn import init
from minitorch_edu.nn.functional.linear import linear
from minitorch_edu.nn.module import Module
from minitorch_edu.nn.parameter import Parameter


class Identity(Module):
    """Returns its input; any constructor arguments are ignored (a placeholder layer)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Linear(Module):
    """y = x W^T + b, for x of shape (..., in_features)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(
            torch.empty((out_features, in_features), device=device, dtype=dtype)
        )
        if bias:
            self.bias = Parameter(torch.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = init.default_bias_bound(self.weight)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Any) -> Tensor:
        return linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )

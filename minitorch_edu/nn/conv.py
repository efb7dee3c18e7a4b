"""Conv1d and Conv2d layers: a weight (out_channels, in_channels / groups, *kernel_size),
an optional bias (out_channels,), and the settings of functional/convolution.py.

Initialisation as torch: kaiming_uniform_(weight, a=sqrt(5)), which is
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels / groups * prod(kernel_size),
and the bias from the same range.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn import init
from minitorch_edu.nn.functional.arguments import as_tuple
from minitorch_edu.nn.functional.convolution import conv1d, conv2d, same_padding
from minitorch_edu.nn.functional.padding import pad
from minitorch_edu.nn.module import Module
from minitorch_edu.nn.parameter import Parameter

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """What Conv1d and Conv2d share; `spatial_dims` is 1 or 2."""

    spatial_dims = 0

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        d = self.spatial_dims
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
        if isinstance(groups, bool) or not isinstance(groups, int):
            raise ValueError(f"groups must be a positive integer, got {groups!r}")
        kernel_size = as_tuple(kernel_size, d, "kernel_size")
        stride = as_tuple(stride, d, "stride")
        dilation = as_tuple(dilation, d, "dilation")
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError(
                f"in_channels must be divisible by groups (in_channels={in_channels}, "
                f"groups={groups})"
            )
        if out_channels % groups != 0:
            raise ValueError(
                f"out_channels must be divisible by groups (out_channels={out_channels}, "
                f"groups={groups})"
            )
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"Invalid padding string {padding!r}, should be one of {{'same', 'valid'}}"
                )
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            padding = as_tuple(padding, d, "padding")
        if padding_mode not in PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {set(PADDING_MODES)}, but got "
                f"padding_mode='{padding_mode}'"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.padding_mode = padding_mode
        self.weight = Parameter(
            torch.empty(
                (out_channels, in_channels // groups, *kernel_size), device=device, dtype=dtype
            )
        )
        if bias:
            self.bias = Parameter(torch.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = init.default_bias_bound(self.weight)
            init.uniform_(self.bias, -bound, bound)

    def _pad_amounts(self) -> list[int]:
        """Padding for F.pad when padding_mode is not 'zeros': (left, right) per dim, last first."""
        if self.padding == "valid":
            pairs = [(0, 0)] * self.spatial_dims
        elif self.padding == "same":
            pairs = same_padding(self.kernel_size, self.dilation)
        else:
            pairs = [(p, p) for p in self.padding]
        return [amount for pair in reversed(pairs) for amount in pair]

    def _convolve(self, input: Any, padding: Any) -> Tensor:
        raise NotImplementedError

    def forward(self, input: Any) -> Tensor:
        if self.padding_mode == "zeros":
            return self._convolve(input, self.padding)
        padded = pad(input, self._pad_amounts(), mode=self.padding_mode)
        return self._convolve(padded, 0)

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * len(self.padding):
            text += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) or (C_in, L)."""

    spatial_dims = 1

    def _convolve(self, input: Any, padding: Any) -> Tensor:
        return conv1d(
            input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups
        )


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) or (C_in, H, W)."""

    spatial_dims = 2

    def _convolve(self, input: Any, padding: Any) -> Tensor:
        return conv2d(
            input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups
        )

"""max_pool2d and avg_pool2d: sliding windows, then a max or a mean over each window.

    max_pool2d:  out[n, c, y, x] = max over (i, j) of padded[n, c, y*sh + i*dh, x*sw + j*dw]
    avg_pool2d:  out[n, c, y, x] = sum over (i, j) of padded[n, c, y*sh + i, x*sw + j] / divisor

Max pooling pads with -inf (padding never wins) and picks, in each window, the first
largest element in scan order (row by row), as torch does. Its backward sends each
window's gradient to the element it picked and nowhere else; where overlapping windows
picked the same element, their gradients add up:

    dx = zeros;  dx[winner of window w] += grad[w]   for every window w

Average pooling is composed of ops (pad, windows, sum, divide), so its backward is theirs:
each window's gradient, divided by the divisor, is added to every element of the window.

Output size per dim, for input size n, kernel k, stride s, padding p, dilation d:

    out = floor((n + 2p - d(k - 1) - 1) / s) + 1          (ceil instead of floor with
                                                           ceil_mode, but the last window
                                                           must start inside the input
                                                           or its left padding)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import torch

from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.functional.arguments import as_tuple, raw, shape_text
from minitorch_edu.nn.functional.windows import sliding_windows, window_view
from minitorch_edu.ops.join import pad, pad_constant
from minitorch_edu.ops.reduce import sum as sum_over
from minitorch_edu.ops.shape import reshape


def pooled_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """Number of windows along one dim (torch's pooling_output_shape)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        count = -(-span // stride) + 1
        if (count - 1) * stride >= size + padding:  # the last window would start in the padding
            count -= 1
        return count
    return span // stride + 1


class _PoolPlan:
    """Validated arguments of a 2-D pooling call and the sizes derived from them."""

    def __init__(
        self,
        name: str,
        input: Any,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        ceil_mode: bool,
    ) -> None:
        x = raw(input)
        if x.dim() not in (3, 4) or any(size == 0 for size in x.shape[-3:]):
            raise RuntimeError(
                f"{name}: non-empty 3D (C, H, W) or 4D (N, C, H, W) tensor expected for input, "
                f"got input of size {shape_text(x)}"
            )
        self.kernel_size = as_tuple(kernel_size, 2, "kernel_size")
        self.stride = (
            self.kernel_size if stride is None or stride == [] else as_tuple(stride, 2, "stride")
        )
        self.padding = as_tuple(padding, 2, "padding")
        self.dilation = as_tuple(dilation, 2, "dilation")
        self.ceil_mode = ceil_mode
        if any(k <= 0 for k in self.kernel_size):
            raise RuntimeError(f"{name}: kernel_size must be greater than zero, got {kernel_size}")
        if any(s <= 0 for s in self.stride):
            raise RuntimeError(f"{name}: stride should be greater than zero, got {self.stride}")
        if any(d <= 0 for d in self.dilation):
            raise RuntimeError(f"{name}: dilation should be greater than zero, got {dilation}")
        if any(p < 0 for p in self.padding):
            raise RuntimeError(f"{name}: pad must be non-negative, got {self.padding}")
        for p, k in zip(self.padding, self.kernel_size):
            if p > k // 2:
                raise RuntimeError(
                    f"{name}: pad should be at most half of kernel size, but got pad={p}, "
                    f"kernel_size={k}"
                    + (f" and dilation={self.dilation}" if name == "max_pool2d" else "")
                )
        self.unbatched = x.dim() == 3
        self.batch_shape = (1, *x.shape) if self.unbatched else tuple(x.shape)
        self.input_size = self.batch_shape[2:]
        self.output_size = [
            pooled_size(n, k, s, p, d, ceil_mode)
            for n, k, s, p, d in zip(
                self.input_size, self.kernel_size, self.stride, self.padding, self.dilation
            )
        ]
        if any(o < 1 for o in self.output_size):
            channels = self.batch_shape[1]
            raise RuntimeError(
                f"{name}: Given input size: ({channels}x{self.input_size[0]}x"
                f"{self.input_size[1]}). Calculated output size: ({channels}x"
                f"{self.output_size[0]}x{self.output_size[1]}). Output size is too small"
            )

    def __repr__(self) -> str:  # how the trace and the graph show a pooling call's options
        return (
            f"PoolPlan(kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode})"
        )

    def pad_amounts(self) -> list[int]:
        """mt.pad's (left, right, top, bottom): the padding, plus on the right/bottom what
        ceil_mode's last window reaches beyond it."""
        amounts = []
        for n, o, k, s, p, d in reversed(
            list(
                zip(
                    self.input_size,
                    self.output_size,
                    self.kernel_size,
                    self.stride,
                    self.padding,
                    self.dilation,
                )
            )
        ):
            reach = (o - 1) * s + d * (k - 1) + 1
            amounts += [p, max(reach - n - p, p)]
        return amounts

    def windows(self, input: Any, fill: float) -> Tensor:
        """(N, C, OH, OW, kh, kw) windows over the input padded with `fill`."""
        input = self.batched(input)
        amounts = self.pad_amounts()
        if any(amounts):
            input = pad(input, amounts, value=fill)
        return sliding_windows(
            input, self.kernel_size, self.stride, self.dilation, self.output_size
        )

    def batched(self, input: Any) -> Any:
        """(C, H, W) as (1, C, H, W); a batched input as it is (no node in the graph)."""
        return reshape(input, self.batch_shape) if self.unbatched else input

    def finish(self, out: Tensor) -> Tensor:
        return reshape(out, out.shape[1:]) if self.unbatched else out


def _winners(input: torch.Tensor, plan: _PoolPlan) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """Each window's largest value, where it sits (a flat position in the padded input),
    and the padded input's shape.

    The windows are copied with their kernel offsets first, (kh * kw, N, C, OH, OW), so
    that the max compares whole planes, one offset after another. torch.max along a dim
    returns the first largest element, and offsets are numbered row by row, so ties go to
    the first one in scan order, as in torch's kernel.
    """
    amounts = plan.pad_amounts()
    padded = pad_constant(input, amounts, -math.inf) if any(amounts) else input
    windows = window_view(padded, plan.kernel_size, plan.stride, plan.dilation, plan.output_size)
    offsets_first = windows.permute(4, 5, 0, 1, 2, 3).reshape(-1, *windows.shape[:4])
    values, picked = offsets_first.max(dim=0)
    del offsets_first  # a copy of the input: free it before the positions are made
    # flat position = start of the (n, c) plane + start of the window + the picked offset
    batch, channels, height, width = padded.shape
    (stride_rows, stride_cols), (dilation_rows, dilation_cols) = plan.stride, plan.dilation
    kernel_rows, kernel_cols = plan.kernel_size
    out_rows, out_cols = plan.output_size
    arange = functools.partial(torch.arange, device=input.device)
    plane_start = arange(batch * channels).view(batch, channels, 1, 1) * (height * width)
    window_start = (
        arange(out_rows)[:, None] * (stride_rows * width) + arange(out_cols) * stride_cols
    )
    offset_position = (
        arange(kernel_rows)[:, None] * (dilation_rows * width) + arange(kernel_cols) * dilation_cols
    ).flatten()
    positions = offset_position[picked]
    positions += window_start
    positions += plane_start
    return values, positions, padded.shape


class MaxPool2d(Function):
    derivatives = Formula(
        "x",
        forward="out[n, c, y, x] = max over the window (y, x) of x[n, c, ...]",
        backward="dx = zeros;  dx[winner of window w] += grad[w]  (ties: first in scan order)",
        local={"x": "1"},
        notes={"x": "1 from the window whose largest element it is, 0 from the others"},
    )

    @staticmethod
    def forward(ctx, input, plan=None):
        values, positions, padded_shape = _winners(input, plan)
        ctx.save_for_backward(positions)
        ctx.padded_shape = padded_shape
        top, left = plan.padding
        ctx.crop = (
            slice(None),
            slice(None),
            slice(top, top + input.shape[2]),
            slice(left, left + input.shape[3]),
        )
        return values

    @staticmethod
    def backward(ctx, grad):
        (positions,) = ctx.saved_tensors
        flat = grad.new_zeros(math.prod(ctx.padded_shape))
        flat = flat.scatter_add(0, positions.reshape(-1), grad.reshape(-1))
        return flat.reshape(ctx.padded_shape)[ctx.crop]


def max_pool2d(
    input: Any,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Largest value in each window; with return_indices also where it was (h * W + w)."""
    plan = _PoolPlan("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    x = raw(input)
    if not x.is_floating_point():
        raise RuntimeError(f"max_pool2d: expected a floating-point input, got {x.dtype}")
    out = plan.finish(MaxPool2d.apply(plan.batched(input), plan=plan))
    if not return_indices:
        return out
    _, positions, (_, _, height, width) = _winners(x.reshape(plan.batch_shape), plan)
    top, left = plan.padding
    in_plane = positions % (height * width)
    indices = (in_plane // width - top) * plan.input_size[1] + (in_plane % width - left)
    return out, plan.finish(Tensor._wrap(indices))


def avg_pool2d(
    input: Any,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean of each window.

    The divisor is divisor_override if given; else the window's size counting padding
    (count_include_pad=True) or only the input elements it covers (False). Either way,
    the part of a ceil_mode window that hangs past the padding is not counted.
    """
    plan = _PoolPlan("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("avg_pool2d: divisor must be not zero")
    sums = sum_over(plan.windows(input, 0.0), dim=(-2, -1))
    x = raw(input)
    if divisor_override is not None:
        divisor = torch.tensor(float(divisor_override), dtype=x.dtype, device=x.device)
    else:
        counts = [
            _counts(n, o, k, s, p, count_include_pad, x.device)
            for n, o, k, s, p in zip(
                plan.input_size, plan.output_size, plan.kernel_size, plan.stride, plan.padding
            )
        ]
        divisor = (counts[0][:, None] * counts[1][None, :]).to(x.dtype)
    return plan.finish(sums / divisor)


def _counts(
    size: int, outputs: int, kernel: int, stride: int, padding: int, include_pad: bool, device: Any
) -> torch.Tensor:
    """How many elements each window along one dim averages over."""
    starts = torch.arange(outputs, device=device) * stride - padding
    if include_pad:
        return (starts + kernel).clamp(max=size + padding) - starts
    return (starts + kernel).clamp(max=size) - starts.clamp(min=0)

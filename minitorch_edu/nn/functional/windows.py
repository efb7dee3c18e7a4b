"""Sliding windows: the strided view that convolution and pooling are built on.

For an input of shape (N, C, H, W), kernel (kh, kw), stride (sh, sw) and dilation (dh, dw),
the windows are a view of shape (N, C, OH, OW, kh, kw) with

    windows[n, c, y, x, i, j] = input[n, c, y * sh + i * dh, x * sw + j * dw]
    OH = (H - dh * (kh - 1) - 1) // sh + 1          (and OW likewise)

No number is copied: the view only has other strides. Output position y steps sh rows;
kernel offset i steps dh rows. Overlapping windows (stride < kernel) read the same input
element several times, so its gradient is the sum over every window that read it, and
elements no window reads (stride > kernel) get none; as_strided's backward does both.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.ops.shape import contiguous
from minitorch_edu.ops.windows import as_strided


def row_major_strides(shape: Sequence[int]) -> list[int]:
    """Element strides of a contiguous tensor: (C*H*W, H*W, W, 1) for (N, C, H, W)."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return strides[::-1]


def window_count(size: int, kernel: int, stride: int, dilation: int) -> int:
    """How many windows of `kernel` taps, `dilation` apart, fit in `size`, one every `stride`."""
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def window_layout(
    shape: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    output_size: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Size and strides of the windows view over a tensor of `shape` (N, C, ...) laid out
    with `strides` (default: contiguous, row-major).

    `output_size` may be given when the caller has decided it (pooling's ceil_mode); the
    tensor must be large enough to hold every window.
    """
    spatial = shape[2:]
    if output_size is None:
        output_size = [
            window_count(n, k, s, d) for n, k, s, d in zip(spatial, kernel_size, stride, dilation)
        ]
    strides = row_major_strides(shape) if strides is None else strides
    size = (*shape[:2], *output_size, *kernel_size)
    window_strides = (
        *strides[:2],
        *(step * s for step, s in zip(strides[2:], stride)),
        *(step * d for step, d in zip(strides[2:], dilation)),
    )
    return size, window_strides


def window_view(
    input: torch.Tensor,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    output_size: Sequence[int] | None = None,
) -> torch.Tensor:
    """The windows of a plain torch.Tensor (inside a Function's forward), over its own strides:
    whatever its layout (channels last, say), nothing is copied."""
    size, strides = window_layout(
        input.shape, kernel_size, stride, dilation, output_size, input.stride()
    )
    return input.as_strided(size, strides, input.storage_offset())


def sliding_windows(
    input: Tensor,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """The windows of our Tensor, differentiably: (N, C, *positions, *kernel offsets)."""
    if not input.is_contiguous():  # the strides below are those of a row-major layout
        input = contiguous(input)
    size, strides = window_layout(input.shape, kernel_size, stride, dilation, output_size)
    return as_strided(input, size, strides)  # from the input's own storage offset

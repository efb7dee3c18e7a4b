"""Sliding windows: the strided view that convolution and pooling are built on.

For an input of shape (N, C, H, W), kernel (kh, kw), stride (sh, sw) and dilation (dh, dw),
the windows are a view of shape (N, C, OH, OW, kh, kw) with

    windows[n, c, y, x, i, j] = input[n, c, y * sh + i * dh, x * sw + j * dw]
    OH = (H - dh * (kh - 1) - 1) // sh + 1          (and OW likewise)

No number is copied: the view only has different strides. Output position y steps
sh rows; kernel offset i steps dh rows. Overlapping windows (stride < kernel) read the
same input element several times, so its gradient is the sum over every window that
read it; as_strided's backward does exactly that (a scatter-add).
"""

from __future__ import annotations

from collections.abc import Sequence

from minitorch_edu.autograd.tensor import Tensor
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


def sliding_windows(
    input: Tensor,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """View (N, C, *spatial) as (N, C, *output positions, *kernel offsets).

    `output_size` may be given when the caller has decided it (pooling's ceil_mode); the
    input must be large enough to hold every window.
    """
    leading = input.shape[:2]
    spatial = input.shape[2:]
    if output_size is None:
        output_size = [
            window_count(n, k, s, d) for n, k, s, d in zip(spatial, kernel_size, stride, dilation)
        ]
    strides = row_major_strides(input.shape)
    spatial_strides = strides[2:]
    size = (*leading, *output_size, *kernel_size)
    window_strides = (
        *strides[:2],
        *(step * s for step, s in zip(spatial_strides, stride)),
        *(step * d for step, d in zip(spatial_strides, dilation)),
    )
    return as_strided(input, size, window_strides)

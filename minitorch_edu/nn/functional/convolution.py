"""conv1d and conv2d: sliding windows, then one contraction with the weight.

For input (N, C, H, W), weight (O, C/groups, kh, kw) and bias (O,):

    out[n, o, y, x] = bias[o] + sum over c, i, j of
                      weight[o, c, i, j] * padded[n, c, y * sh + i * dh, x * sw + j * dw]

Written as code: pad, take the windows view (N, C, OH, OW, kh, kw) (nothing copied), then
contract it with the weight:

    out = einsum("ncyxij,ocij->noyx", windows, weight) + bias

With groups g the channels split into g independent blocks, each with its own slice of
the weight: a "g" index on both operands. Every step is an op with its own backward
(pad, as_strided, einsum, add), so the gradients need no code here: the weight gets
einsum(grad, windows), the windows get einsum(grad, weight), and as_strided's backward
adds each window's gradient back where the window was read (overlaps add up, skipped
pixels get zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.functional.arguments import as_tuple, raw, shape_text
from minitorch_edu.nn.functional.einsum import einsum
from minitorch_edu.nn.functional.windows import sliding_windows
from minitorch_edu.ops.join import pad
from minitorch_edu.ops.shape import reshape

# Index letters for the spatial dims of the output positions and of the kernel offsets.
_POSITIONS = {1: "x", 2: "yx"}
_OFFSETS = {1: "j", 2: "ij"}


def same_padding(kernel_size: Sequence[int], dilation: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) per dim so that stride-1 output has the input's size.

    The total d * (k - 1) is split with the extra element after, as torch does.
    """
    amounts = []
    for k, d in zip(kernel_size, dilation):
        total = d * (k - 1)
        amounts.append((total // 2, total - total // 2))
    return amounts


def convolution(
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    spatial_dims: int,
    name: str,
) -> Tensor:
    """The convolution behind conv1d and conv2d (see the module docstring)."""
    x, w = raw(input), raw(weight)
    d = spatial_dims
    if x.dim() not in (d + 1, d + 2):
        raise RuntimeError(
            f"Expected {d + 1}D (unbatched) or {d + 2}D (batched) input to {name}, but got "
            f"input of size: {shape_text(x)}"
        )
    if w.dim() != d + 2:
        raise RuntimeError(
            f"{name}: weight must be {d + 2}-D (out_channels, in_channels / groups, "
            f"*kernel_size), got weight of size {shape_text(w)}"
        )
    stride = as_tuple(stride, d, "stride")
    dilation = as_tuple(dilation, d, "dilation")
    kernel_size = tuple(w.shape[2:])
    amounts = _padding_amounts(padding, stride, kernel_size, dilation, d)
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"non-positive stride is not supported (stride={stride})")
    if any(v <= 0 for v in dilation):
        raise RuntimeError(f"non-positive dilation is not supported (dilation={dilation})")
    if any(k <= 0 for k in kernel_size):
        raise RuntimeError(
            f"{name}: kernel size must be positive, got weight of size {shape_text(w)}"
        )
    if not isinstance(groups, int) or groups <= 0:
        raise RuntimeError(f"non-positive groups is not supported (groups={groups})")

    unbatched = x.dim() == d + 1
    batch_shape = (1, *x.shape) if unbatched else tuple(x.shape)
    out_channels, channels_per_group = w.shape[:2]
    if out_channels % groups:
        raise RuntimeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
            f"but got weight of size {shape_text(w)} instead"
        )
    if batch_shape[1] != channels_per_group * groups:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {shape_text(w)}, expected input"
            f"{list(batch_shape)} to have {channels_per_group * groups} channels, but got "
            f"{batch_shape[1]} channels instead"
        )
    if bias is not None and raw(bias).shape != (out_channels,):
        raise RuntimeError(
            f"Given weight of size {shape_text(w)}, expected bias to be 1-dimensional with "
            f"{out_channels} elements, but got bias of size {shape_text(raw(bias))} instead"
        )
    padded_size = [n + a + b for n, (a, b) in zip(batch_shape[2:], amounts)]
    reach = [v * (k - 1) + 1 for k, v in zip(kernel_size, dilation)]
    if any(p < r for p, r in zip(padded_size, reach)):
        raise RuntimeError(
            f"Calculated padded input size per channel: ({' x '.join(map(str, padded_size))}). "
            f"Kernel size: ({' x '.join(map(str, reach))}). Kernel size can't be greater than "
            "actual input size"
        )
    if x.dtype != w.dtype or (bias is not None and raw(bias).dtype != w.dtype):
        raise RuntimeError(
            f"{name}: input ({x.dtype}), weight ({w.dtype})"
            + (f" and bias ({raw(bias).dtype})" if bias is not None else "")
            + " must have the same dtype"
        )

    if unbatched:
        input = reshape(input, batch_shape)
    if any(a or b for a, b in amounts):
        flat_amounts = [amount for pair in reversed(amounts) for amount in pair]
        input = pad(input, flat_amounts)
    windows = sliding_windows(input, kernel_size, stride, dilation)
    batch, channels = batch_shape[:2]
    output_size = windows.shape[2 : 2 + d]
    # Split channels into groups (a view): windows (N, g, C/g, ...), weight (g, O/g, C/g, ...).
    windows = reshape(windows, (batch, groups, channels // groups, *windows.shape[2:]))
    weight = reshape(weight, (groups, out_channels // groups, *w.shape[1:]))
    positions, offsets = _POSITIONS[d], _OFFSETS[d]
    equation = f"ngc{positions}{offsets},goc{offsets}->ngo{positions}"
    out = reshape(einsum(equation, windows, weight), (batch, out_channels, *output_size))
    if bias is not None:
        out = out + reshape(bias, (out_channels,) + (1,) * d)
    if unbatched:
        out = reshape(out, out.shape[1:])
    return out


def _padding_amounts(
    padding: Any, stride: tuple, kernel_size: tuple, dilation: tuple, d: int
) -> list[tuple[int, int]]:
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * d
        if padding == "same":
            if any(s != 1 for s in stride):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            return same_padding(kernel_size, dilation)
        raise RuntimeError(f"Invalid padding string: {padding!r}")
    amounts = as_tuple(padding, d, "padding")
    if any(p < 0 for p in amounts):
        raise RuntimeError(f"negative padding is not supported (padding={amounts})")
    return [(p, p) for p in amounts]


def conv1d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """1-D convolution (cross-correlation) of (N, C, L) or (C, L) with weight (O, C/groups, k)."""
    return convolution(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation) of (N, C, H, W) or (C, H, W) with weight
    (O, C/groups, kh, kw)."""
    return convolution(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")

"""conv1d and conv2d: sliding windows, then one matrix product with the weight.

For input (N, C, H, W), weight (O, C/groups, kh, kw) and bias (O,):

    out[n, o, y, x] = bias[o] + sum over c, i, j of
                      weight[o, c, i, j] * padded[n, c, y * sh + i * dh, x * sw + j * dw]

By definition that is three steps: pad, take the windows view (N, C, OH, OW, kh, kw)
(nothing copied), contract it with the weight:

    out = einsum("ncyxij,ocij->noyx", windows, weight) + bias        (`convolution_by_ops`)

With groups g the channels split into g independent blocks, each with its own slice of
the weight: a "g" index on both operands. Every step there is an op with a backward of its
own, so those three lines are differentiable to any order.

`Convolution` below computes the same numbers as one node, with memory laid out for
speed (im2col): the windows of each sample become the columns of a matrix

    cols_n[(c, i, j), (y, x)] = padded[n, c, y * sh + i * dh, x * sw + j * dw]
                                (C * kh * kw rows, OH * OW columns)

so the layer is one batched matrix product, which lands in the output's own layout:

    out_n = W @ cols_n                    W: (O, C * kh * kw),  out_n: (O, OH * OW)

and the backward pass is two more, plus "col2im" for the input:

    dW      = sum over n of grad_n @ cols_n^T
    dcols_n = W^T @ grad_n
    dx      = every entry of dcols added back to the input pixel its window read
              (col2im), so overlapping windows add up and pixels that no window read
              (stride > kernel) get zero
    db      = grad summed over n and positions

cols is kh * kw times the size of the input. It is not kept for backward (backward takes
it again from the saved input when the weight needs a gradient), and a large batch is
lowered a slice of samples at a time, so that the columns never take much memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from minitorch_edu.autograd import engine
from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.functional.arguments import as_tuple, raw, shape_text
from minitorch_edu.nn.functional.einsum import einsum
from minitorch_edu.nn.functional.windows import sliding_windows, window_count, window_view
from minitorch_edu.ops.join import pad, pad_constant
from minitorch_edu.ops.shape import reshape

# Index letters for the spatial dims of the output positions and of the kernel offsets.
_POSITIONS = {1: "x", 2: "yx"}
_OFFSETS = {1: "j", 2: "ij"}


def _flat_amounts(padding: Sequence[tuple[int, int]]) -> list[int]:
    """[(top, bottom), (left, right)] -> (left, right, top, bottom), the order pad() takes."""
    return [amount for pair in reversed(padding) for amount in pair]


# The columns hold kh * kw numbers for each input number they come from, so the batch is
# lowered a slice of samples at a time: at most this many numbers are held as columns.
COLUMNS_BUDGET = 2**19


def sample_slices(batch: int, numbers_per_sample: int) -> list[slice]:
    """Consecutive slices of the batch whose columns fit in COLUMNS_BUDGET (one sample at least)."""
    step = max(1, COLUMNS_BUDGET // max(numbers_per_sample, 1))
    return [slice(start, min(start + step, batch)) for start in range(0, batch, step)]


def conv_output_size(
    spatial: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
) -> tuple[int, ...]:
    """Output positions per spatial dim: windows in the padded size (see windows.py)."""
    return tuple(
        window_count(n + before + after, k, s, dl)
        for n, k, s, (before, after), dl in zip(spatial, kernel_size, stride, padding, dilation)
    )


def im2col(
    input: torch.Tensor,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    groups: int,
) -> torch.Tensor:
    """The windows of `input` (n, C, *spatial) as columns, per sample and group:

    cols[n, g, (c, *offset), position]: one row per (channel of the group, kernel offset),
    one column per output position.
    """
    d = len(kernel_size)
    padded = pad_constant(input, _flat_amounts(padding), 0.0) if any(map(any, padding)) else input
    windows = window_view(padded, kernel_size, stride, dilation)  # (n, C, *positions, *offsets)
    offsets_before_positions = (0, 1, *range(2 + d, 2 + 2 * d), *range(2, 2 + d))
    cols = windows.permute(offsets_before_positions)  # (n, C, *offsets, *positions)
    batch, positions = input.shape[0], math.prod(windows.shape[2 : 2 + d])
    return cols.reshape(batch, groups, -1, positions)  # the one copy


def col2im(
    grad_cols: torch.Tensor,
    grad_padded: torch.Tensor,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> None:
    """The adjoint of im2col: add each entry of grad_cols (n, C * offsets, positions) to
    grad_padded (n, C, *padded spatial) at the input element it came from.

    One spatial dim at a time, the last first: along the width, each kernel column offset j
    adds its columns (x = 0 .. OW-1) into full rows at x * sw + j * dw; then along the
    height, each kernel row offset i adds those rows at y * sh + i * dh. That is kw + kh
    strided additions instead of kw * kh (one per kernel offset).
    """
    batch, channels, *spatial = grad_padded.shape
    d = len(spatial)
    size = conv_output_size(spatial, kernel_size, stride, [(0, 0)] * d, dilation)
    current = grad_cols.reshape(batch, channels, *kernel_size, *size)
    for axis in reversed(range(d)):
        # current: (n, C, kernel dims up to this axis, positions up to this axis, full dims)
        kernel_dim, position_dim = 2 + axis, 3 + 2 * axis
        if axis == 0:
            target = grad_padded
        else:
            shape = list(current.shape)
            shape[position_dim] = spatial[axis]
            del shape[kernel_dim]
            target = current.new_zeros(shape)
        for offset in range(kernel_size[axis]):
            start = offset * dilation[axis]
            read = slice(start, start + stride[axis] * (size[axis] - 1) + 1, stride[axis])
            target[(slice(None),) * (position_dim - 1) + (read,)] += current.select(
                kernel_dim, offset
            )
        current = target


class Convolution(Function):
    derivatives = Formula(
        "input, W, b",
        forward="out[n, o, y, x] = b[o] + sum over c, u, v of "
        "W[o, c, u, v] * input[n, c, y*sh + u*dh - ph, x*sw + v*dw - pw]",
        backward="dW = sum_n grad_n @ cols_n^T;  dcols_n = W^T @ grad_n, added back into the "
        "input pixels the windows read (col2im);  db = grad summed over n and positions",
        local={
            "input": "W[o, c, (h + ph - y*sh) // dh, (w + pw - x*sw) // dw]",
            "W": "input[n, c, y*sh + u*dh - ph, x*sw + v*dw - pw]",
            "b": "1",
        },
        saved="input, W, b",
        indices={"out": "n, o, y, x", "input": "n, c, h, w", "W": "o, c, u, v", "b": "o"},
        options={
            "sh": "stride[0]",
            "sw": "stride[1]",
            "ph": "padding[0][0]",
            "pw": "padding[1][0]",
            "dh": "dilation[0]",
            "dw": "dilation[1]",
            "groups": "groups",
            "dims": "len(stride)",
        },
        when="groups == 1 and dims == 2",  # conv1d and grouped convolutions: numbers only
    )

    @staticmethod
    def forward(ctx, input, weight, bias=None, stride=(), padding=(), dilation=(), groups=1):
        # input (N, C, *spatial) is batched; padding is [(before, after)] per spatial dim.
        d = weight.dim() - 2
        batch, out_channels = input.shape[0], weight.shape[0]
        kernel_size = weight.shape[2:]
        size = conv_output_size(input.shape[2:], kernel_size, stride, padding, dilation)
        grouped_weight = weight.reshape(groups, out_channels // groups, -1)
        out = input.new_empty(batch, out_channels, *size)
        for samples in sample_slices(batch, input.shape[1] * math.prod(kernel_size + size)):
            # (g, O/g, C/g * offsets) @ (n, g, C/g * offsets, positions): one product per
            # sample and group, (n, g, O/g, positions), which is the output's layout.
            cols = im2col(input[samples], kernel_size, stride, padding, dilation, groups)
            out[samples] = (grouped_weight @ cols).reshape(-1, out_channels, *size)
            del cols  # before the next slice's columns are made
        if bias is not None:
            out += bias.reshape(out_channels, *(1,) * d)
        ctx.geometry = (stride, padding, dilation, groups)
        ctx.save_for_backward(input, weight, bias)
        return out

    @staticmethod
    def backward(ctx, grad):
        input, weight, bias = ctx.saved_tensors
        if isinstance(grad, Tensor):  # create_graph: differentiate the composed definition
            return _gradients_by_ops(ctx, input, weight, bias, grad)
        need_input, need_weight, need_bias = ctx.needs_input_grad
        stride, padding, dilation, groups = ctx.geometry
        d = weight.dim() - 2
        batch, out_channels = grad.shape[:2]
        kernel_size = weight.shape[2:]
        grouped_weight = weight.reshape(groups, out_channels // groups, -1)
        grad_input = grad_weight = grad_bias = grad_padded = None
        if need_bias:
            grad_bias = grad.sum((0, *range(2, 2 + d)))
        if need_input:
            padded_size = (n + a + b for n, (a, b) in zip(input.shape[2:], padding))
            grad_padded = grad.new_zeros(*input.shape[:2], *padded_size)
        per_sample = input.shape[1] * math.prod(kernel_size + grad.shape[2:])
        for samples in sample_slices(batch, per_sample) if need_input or need_weight else ():
            # The gradient laid out like the forward's product: (n, g, O/g, positions).
            rows = grad[samples].reshape(
                -1, groups, out_channels // groups, math.prod(grad.shape[2:])
            )
            if need_weight:
                # The columns again (cheaper than keeping them): this slice's share of dW.
                cols = im2col(input[samples], kernel_size, stride, padding, dilation, groups)
                share = (rows @ cols.transpose(-1, -2)).sum(0)
                del cols  # before the next buffer is made: one slice's worth at a time
                grad_weight = share if grad_weight is None else grad_weight.add_(share)
            if need_input:
                grad_cols = grouped_weight.transpose(-1, -2) @ rows  # (n, g, C/g * offsets, ...)
                col2im(grad_cols, grad_padded[samples], kernel_size, stride, dilation)
                del grad_cols
        if need_weight:  # (an empty batch has no slices: its dW is zero)
            grad_weight = (
                weight.new_zeros(weight.shape)
                if grad_weight is None
                else grad_weight.reshape(weight.shape)
            )
        if need_input:
            crop = tuple(slice(a, a + n) for (a, _), n in zip(padding, input.shape[2:]))
            grad_input = grad_padded[(slice(None), slice(None), *crop)]
        return grad_input, grad_weight, grad_bias


def convolution_by_ops(
    input: Any,
    weight: Any,
    bias: Any,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    groups: int,
) -> Tensor:
    """The definition, composed of differentiable ops: pad, windows, einsum, add.

    `input` is batched (N, C, *spatial); `padding` is [(before, after)] per spatial dim.
    """
    if any(map(any, padding)):
        input = pad(input, _flat_amounts(padding))
    w = raw(weight)
    d = w.dim() - 2
    windows = sliding_windows(input, w.shape[2:], stride, dilation)
    batch, channels = windows.shape[:2]
    output_size = windows.shape[2 : 2 + d]
    # Split the channels into groups (views): windows (N, g, C/g, ...), weight (g, O/g, C/g, ...).
    windows = reshape(windows, (batch, groups, channels // groups, *windows.shape[2:]))
    weight = reshape(weight, (groups, w.shape[0] // groups, *w.shape[1:]))
    positions, offsets = _POSITIONS[d], _OFFSETS[d]
    equation = f"ngc{positions}{offsets},goc{offsets}->ngo{positions}"
    out = reshape(einsum(equation, windows, weight), (batch, w.shape[0], *output_size))
    if bias is not None:
        out = out + reshape(bias, (w.shape[0],) + (1,) * d)
    return out


def _gradients_by_ops(ctx, input, weight, bias, grad) -> tuple:
    """Gradients that can be differentiated again, taken through the composed definition.

    The convolution is linear in its input and linear in its weight, so the gradient with
    respect to one of them does not depend on that one's value: each is taken at a stand-in
    leaf of zeros, while the other argument and `grad` stay connected to the graph.
    """
    need_input, need_weight, need_bias = ctx.needs_input_grad
    grad_input = grad_weight = grad_bias = None
    if need_input:
        stand_in = Tensor(torch.zeros_like(raw(input)), requires_grad=True)
        out = convolution_by_ops(stand_in, weight, None, *ctx.geometry)
        (grad_input,) = engine.grad(out, [stand_in], grad, create_graph=True)
    if need_weight:
        stand_in = Tensor(torch.zeros_like(raw(weight)), requires_grad=True)
        out = convolution_by_ops(input, stand_in, None, *ctx.geometry)
        (grad_weight,) = engine.grad(out, [stand_in], grad, create_graph=True)
    if need_bias:
        grad_bias = grad.sum((0, *range(2, grad.dim())))
    return grad_input, grad_weight, grad_bias


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
    if 0 in batch_shape[2:] and 0 not in batch_shape[:2]:
        raise RuntimeError(
            "Only zero batch or zero channel inputs are supported, but got input shape: "
            f"{list(batch_shape)}"
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
    out = Convolution.apply(
        input,
        weight,
        bias,
        stride=stride,
        padding=amounts,
        dilation=dilation,
        groups=groups,
    )
    return reshape(out, out.shape[1:]) if unbatched else out


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

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

`Convolution` below computes the same numbers as one node, with memory laid out for speed.
A matrix product needs its operands laid out as matrices, and the windows view is not one
(windows overlap), so the forward copies its numbers once into a matrix of columns (im2col)
and the layer becomes one product. How fast that copy runs depends on how long the runs of
consecutive numbers it copies are, so there are two layouts (`choose_lowering` picks):

NCHW columns (stride 1, short window rows): a row of the columns is one kernel offset's
view of a channel, OH * OW numbers, and each sample is one product:

    cols[n, (c, i, j), (y, x)] = padded[n, c, y + i * dh, x + j * dw]
    out[n] = W @ cols[n]                    W: (O, C * kh * kw)

channels last (any stride): with the channels as the last dim, a window's row of kw * C
numbers is one run, and every output position of the batch is a row of one product:

    cols[(n, y, x), (i, j, c)] = padded_cl[n, y * sh + i * dh, x * sw + j * dw, c]
    out_cl = cols @ W_cl                    W_cl[(i, j, c), o] = W[o, c, i, j]
    dW_cl = cols^T @ G_cl,   dcols = G_cl @ W_cl^T
    dx_cl[n, i * dh : ... : sh, j * dw : ... : sw, c] += dcols[(n, y, x), (i, j, c)]

and out_cl (N, OH, OW, O) is copied back to the (N, O, OH, OW) layout.

The gradients by row copies (stride 1): flatten each sample's padded input, p = y * Wp + x.
The window at p reads p + i * dh * Wp + j * dw, so a kernel column j only shifts where a run
of flat positions starts, and a matrix product can read the shifted run where it lies; only
the kernel rows are copied (kh copies of the input, not kh * kw):

    R[(i, c), (n, p)] = flat[n, c, p + i * dh * Wp]        p < P = OH * Wp
    G[o, (n, p)] = grad[n, o, y, x] at p = y * Wp + x, 0 at x >= OW
    dW[o, c, i, j] = sum over (n, p) of G[o, (n, p)] * R[(i, c), (n, p) + j * dw]

one product per j, all in one batched matmul. The Wp - OW positions past the end of each
output row are windows that wrap into the next input row: their gradient is zero. The input
gradient is the transposed convolution: the output gradient framed by zeros in planes of the
padded size (Gz), correlated with the kernel turned around (i' = kh - 1 - i, j' = kw - 1 - j)
the same way:

    Gh[(i', o), q] = Gz[o, q + i' * dh * Wp]
    E = Wf @ Gh                             Wf[(j', c), (i', o)] = W[o, c, kh - 1 - i', kw - 1 - j']
    dx[c, q] = sum over j' of E[(j', c), q + j' * dw]

Those products also multiply real numbers by the zeros of wrapped windows and of the
framing, products the definition does not have: harmless for finite numbers, but 0 * inf =
nan. So an input (for dW) or weight (for dx) holding an inf or nan takes the columns
(`rows_are_exact`), as does every tensor off the CPU, where looking would make the host wait.

All of them take their copies again in backward (from the saved input) rather than keeping
them, and lower a large batch a slice of samples at a time, so the copies never take much
memory.
"""

from __future__ import annotations

import itertools
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
from minitorch_edu.nn.functional.windows import row_major_strides, sliding_windows, window_count
from minitorch_edu.ops.join import pad, pad_constant
from minitorch_edu.ops.shape import reshape

# Index letters for the spatial dims of the output positions and of the kernel offsets.
_POSITIONS = {1: "x", 2: "yx"}
_OFFSETS = {1: "j", 2: "ij"}

NCHW = "NCHW columns"
CHANNELS_LAST = "channels last"
ROWS = "row copies"
# The gradients by row copies compute every flat position of the padded input; past this
# many times the output's positions, col2im over channels-last columns is cheaper.
WRAP_LIMIT = 4
# A window row of at least this many numbers (one 64-byte cache line of float32) makes the
# channels-last columns fast to copy.
LONG_ROW = 16


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


def choose_lowering(
    channels_per_group: int,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    output_size: Sequence[int],
    padded_size: Sequence[int],
    groups: int,
) -> tuple[str, str, str]:
    """(layout of the forward's columns, way to dW, way to dx), from the shapes alone.

    Columns: CHANNELS_LAST when a window's row of channels, kw * C/groups numbers, is at
    least LONG_ROW long or a stride is above 1; NCHW otherwise (rows of OH * OW numbers).
    Gradients by ROWS need every stride 1, one group, and a padded input with at most
    WRAP_LIMIT times as many positions as the output (the flat positions computed and thrown
    away stay few); dW takes them only when window rows are short as well (long rows make
    the channels-last columns cheaper to copy than the products over flat rows are to run).
    Otherwise CHANNELS_LAST columns (dW) and col2im (dx).
    """
    long_rows = kernel_size[-1] * channels_per_group >= LONG_ROW
    unit_stride = all(s == 1 for s in stride)
    columns = NCHW if unit_stride and not long_rows else CHANNELS_LAST
    few_wrapped = math.prod(padded_size) <= WRAP_LIMIT * math.prod(output_size)
    rows = unit_stride and groups == 1 and few_wrapped
    weight_way = ROWS if rows and not long_rows else CHANNELS_LAST
    return columns, weight_way, (ROWS if rows else CHANNELS_LAST)


def rows_are_exact(tensor: torch.Tensor) -> bool:
    """Whether the gradients by row copies may read `tensor` (the input for dW, the weight
    for dx): only when its numbers are all finite, and known to be on the host.

    The flat-row products multiply real numbers by the zeros that stand for wrapped windows
    and framing, products the definition does not have. With finite numbers they add 0; an
    inf or nan would make 0 * inf = nan where torch has none. Looking at the numbers of a
    tensor on a GPU would make the host wait for it, so there the columns are used.

    One sum tells: an inf or nan anywhere makes the sum inf or nan (inf - inf = nan), so a
    finite sum means finite numbers; a sum that overflows only sends finite numbers to the
    columns. (torch.isfinite(tensor).all() reads the same, several times slower.)
    """
    return tensor.device.type == "cpu" and bool(tensor.sum().isfinite())


# ---------------------------------------------------------------------- NCHW columns
def nchw_columns(
    padded: torch.Tensor,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    output_size: Sequence[int],
    groups: int,
) -> torch.Tensor:
    """cols[n, g, (c, *offset), position] = padded[n, group g's channel c, position * stride +
    offset * dilation], from a contiguous (n, C, *padded size) slice of samples."""
    batch, channels = padded.shape[:2]
    steps = row_major_strides(padded.shape)
    size = (batch, channels, *kernel_size, *output_size)
    strides = (
        *steps[:2],
        *(dl * step for dl, step in zip(dilation, steps[2:])),
        *(s * step for s, step in zip(stride, steps[2:])),
    )
    windows = padded.as_strided(size, strides, padded.storage_offset())
    return windows.reshape(batch, groups, -1, math.prod(output_size))  # the one copy


def _nchw_forward(padded, weight, output_size, stride, dilation, groups):
    batch, channels = padded.shape[:2]
    out_channels, kernel_size = weight.shape[0], weight.shape[2:]
    positions = math.prod(output_size)
    grouped_weight = weight.reshape(groups, out_channels // groups, -1)
    out = padded.new_empty(batch, groups, out_channels // groups, positions)
    for samples in sample_slices(batch, channels * math.prod(kernel_size) * positions):
        cols = nchw_columns(padded[samples], kernel_size, stride, dilation, output_size, groups)
        # (g, O/g, C/g * offsets) @ (n, g, C/g * offsets, positions): per sample and group
        torch.matmul(grouped_weight, cols, out=out[samples])
        del cols  # before the next slice's columns are made
    return out.view(batch, out_channels, *output_size)


# ---------------------------------------------------------------------- row copies
def flat_positions(output_size: Sequence[int], padded_size: Sequence[int]) -> int:
    """P: the flat positions of one sample that hold its outputs (stride 1): the output's
    rows at the padded width, P = OH * Wp (conv1d: the padded length)."""
    return math.prod(output_size[:-1]) * padded_size[-1]


def row_copies(
    padded: torch.Tensor,
    kernel_size: Sequence[int],
    dilation: Sequence[int],
    output_size: Sequence[int],
    samples: slice,
) -> torch.Tensor:
    """R[(i, c), n * P + p] = padded[n, c, flat p + i * dh * Wp] for p < P, from a contiguous
    (N, C, *padded size) input and the slice `samples` of its batch; then dw * (kw - 1)
    zeros, so that every column shift of the last position still reads inside R."""
    batch, channels, *padded_size = padded.shape
    steps = row_major_strides(padded_size)
    plane, positions = math.prod(padded_size), flat_positions(output_size, padded_size)
    count = samples.stop - samples.start
    shift = dilation[-1] * (kernel_size[-1] - 1)
    rows = padded.new_empty(math.prod(kernel_size[:-1]) * channels, count * positions + shift)
    rows[:, count * positions :].zero_()
    source = padded.as_strided(
        (*kernel_size[:-1], channels, count, positions),
        (*(dl * step for dl, step in zip(dilation[:-1], steps[:-1])), plane, channels * plane, 1),
        padded.storage_offset() + samples.start * channels * plane,
    )
    rows[:, : count * positions].view(source.shape).copy_(source)  # the one copy
    return rows


def shifted_runs(rows: torch.Tensor, taps: int, step: int, length: int) -> torch.Tensor:
    """(taps, rows, length) view: the j-th is rows[:, j * step : j * step + length]."""
    return rows.as_strided((taps, rows.shape[0], length), (step, rows.stride(0), 1))


def _grad_at_flat_positions(grad: torch.Tensor, padded_size: Sequence[int]) -> torch.Tensor:
    """The output gradient at the flat positions, (O, N * P), zero where a window wraps."""
    batch, out_channels, *output_size = grad.shape
    flat = grad.new_zeros(out_channels, batch, *output_size[:-1], padded_size[-1])
    flat[..., : output_size[-1]] = grad.transpose(0, 1)
    return flat.view(out_channels, batch * flat_positions(output_size, padded_size))


def _rows_weight_grad(grad, padded, weight, dilation):
    """dW for stride 1: dW[o, c, i, j] = sum over q of G[o, q] * R[(i, c), q + j * dw], one
    product per column offset j, all of them in one batched matmul per slice of samples."""
    batch, channels, *padded_size = padded.shape
    out_channels, _, *kernel_size = weight.shape
    d, taps = len(kernel_size), kernel_size[-1]
    output_size = grad.shape[2:]
    positions = flat_positions(output_size, padded_size)
    row_taps = math.prod(kernel_size[:-1]) * channels
    grad_weight = weight.new_zeros(taps, out_channels, row_taps)  # [j, o, (i, c)]
    for samples in sample_slices(batch, (row_taps + out_channels) * positions):
        rows = row_copies(padded, kernel_size, dilation, output_size, samples)
        columns = _grad_at_flat_positions(grad[samples], padded_size)
        shifted = shifted_runs(rows, taps, dilation[-1], columns.shape[1]).transpose(1, 2)
        grad_weight += torch.bmm(columns.expand(taps, -1, -1), shifted)
        del rows, columns  # before the next slice's copies are made
    grad_weight = grad_weight.view(taps, out_channels, *kernel_size[:-1], channels)
    return grad_weight.permute(1, d + 1, *range(2, d + 1), 0).contiguous()


def _rows_input_grad(grad, weight, padded_size, dilation):
    """dx of the padded input, (N, C, *padded size), for stride 1: the transposed convolution,
    lowered as the weight gradient is (see the module docstring)."""
    batch, out_channels, *output_size = grad.shape
    channels, kernel_size = weight.shape[1], weight.shape[2:]
    d, taps = len(kernel_size), kernel_size[-1]
    steps = row_major_strides(padded_size)
    plane = math.prod(padded_size)
    # G framed by zeros: each sample's outputs at the top left of a padded-size plane, after
    # `lead` zeros, so that a window reaching before a plane reads zeros.
    lead = sum(dl * (k - 1) * step for k, dl, step in zip(kernel_size, dilation, steps))
    inside = tuple(slice(0, n) for n in output_size)
    # The kernel turned around: Wf[(j', c), (i', o)] = W[o, c, kh - 1 - i', kw - 1 - j'].
    turned = weight.flip(list(range(2, 2 + d))).permute(d + 1, 1, *range(2, d + 1), 0)
    turned = turned.reshape(taps * channels, -1)
    shift = dilation[-1] * (taps - 1)
    row_taps = math.prod(kernel_size[:-1]) * out_channels
    grad_flat = grad.new_empty(channels, batch * plane)
    # Beside the copy a slice holds its framed gradient and the product's runs: half the budget.
    for samples in sample_slices(batch, 2 * row_taps * plane):
        count = samples.stop - samples.start
        length = count * plane
        framed = grad.new_zeros(out_channels, lead + length)
        framed[:, lead:].view(out_channels, count, *padded_size)[
            (slice(None), slice(None), *inside)
        ] = grad[samples].transpose(0, 1)
        rows = framed.as_strided(
            (*kernel_size[:-1], out_channels, length + shift),
            (*(dl * step for dl, step in zip(dilation[:-1], steps[:-1])), framed.stride(0), 1),
        ).reshape(row_taps, length + shift)  # Gh[(i', o), q]: the one copy
        del framed
        runs = turned @ rows  # E[(j', c), q], rows of length + shift
        del rows
        # dx[c, q] = sum over j' of E[(j', c), q + j' * dw]: one sum over shifted runs
        width = length + shift
        strides = (channels * width + dilation[-1], width, 1)
        shifted = runs.as_strided((taps, channels, length), strides)
        torch.sum(shifted, 0, out=grad_flat[:, samples.start * plane : samples.stop * plane])
    return grad_flat.view(channels, batch, *padded_size).transpose(0, 1)


# ---------------------------------------------------------------------- channels last
def pad_channels_last(input: torch.Tensor, padding: Sequence[tuple[int, int]]) -> torch.Tensor:
    """(N, C, *spatial) -> the zero-padded (N, *padded spatial, C), contiguous."""
    d = input.dim() - 2
    moved = input.permute(0, *range(2, 2 + d), 1)  # a view; no copy if already channels last
    if not any(map(any, padding)):
        return moved.contiguous()
    padded_size = [n + a + b for n, (a, b) in zip(input.shape[2:], padding)]
    padded = input.new_zeros(input.shape[0], *padded_size, input.shape[1])
    inside = tuple(slice(a, a + n) for n, (a, _) in zip(input.shape[2:], padding))
    padded[(slice(None), *inside)] = moved
    return padded


def channels_last_columns(
    padded: torch.Tensor,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    output_size: Sequence[int],
    groups: int,
) -> torch.Tensor:
    """cols[g, (n, *position), (*offset, c)] = padded[n, position * stride + offset * dilation,
    group g's channel c], from a contiguous (n, *padded size, C) slice of samples."""
    batch, *padded_size, channels = padded.shape
    d = len(padded_size)
    steps = row_major_strides(padded.shape)  # (.., C, 1): a spatial step is C numbers
    size = (batch, *output_size, *kernel_size, groups, channels // groups)
    strides = (
        steps[0],
        *(s * step for s, step in zip(stride, steps[1:-1])),
        *(dl * step for dl, step in zip(dilation, steps[1:-1])),
        channels // groups,
        1,
    )
    windows = padded.as_strided(size, strides, padded.storage_offset())
    groups_first = windows.permute(1 + 2 * d, *range(1 + 2 * d), 2 + 2 * d)
    taps = math.prod(kernel_size) * (channels // groups)  # (not -1: ambiguous for batch 0)
    return groups_first.reshape(groups, batch * math.prod(output_size), taps)  # the one copy


def channels_last_col2im(
    grad_cols: torch.Tensor,
    grad_padded: torch.Tensor,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    output_size: Sequence[int],
) -> None:
    """The adjoint of channels_last_columns: per kernel offset, one strided addition of its
    columns into the input positions its windows read (grad_padded: (n, *padded size, C))."""
    batch, *padded_size, channels = grad_padded.shape
    groups = grad_cols.shape[0]
    d = len(padded_size)
    per_offset = grad_cols.reshape(groups, batch, *output_size, *kernel_size, channels // groups)
    target = grad_padded.view(batch, *padded_size, groups, channels // groups)
    for offset in itertools.product(*(range(k) for k in kernel_size)):
        read = tuple(
            slice(o * dl, o * dl + s * (n - 1) + 1, s)
            for o, dl, s, n in zip(offset, dilation, stride, output_size)
        )
        columns = per_offset[(slice(None),) * (2 + d) + offset]  # (g, n, *positions, C/g)
        target[(slice(None), *read)].add_(columns.permute(*range(1, 2 + d), 0, 2 + d))


def channels_last_weight(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """W_cl[g, (*offset, c), o]: the weight (O, C/g, *kernel) as channels-last columns."""
    out_channels, channels, *kernel_size = weight.shape
    d = len(kernel_size)
    grouped = weight.reshape(groups, out_channels // groups, channels, *kernel_size)
    return grouped.permute(0, *range(3, 3 + d), 2, 1).reshape(groups, -1, out_channels // groups)


def _channels_last_rows(grad, groups):
    """The output gradient as rows of the channels-last product: (N * positions, g, O/g)."""
    d = grad.dim() - 2
    rows = grad.permute(0, *range(2, 2 + d), 1)  # a view if grad is channels last already
    return rows.reshape(-1, groups, grad.shape[1] // groups)


def _channels_last_forward(padded, weight, output_size, stride, dilation, groups):
    batch, *padded_size, channels = padded.shape
    d = len(padded_size)
    out_channels, kernel_size = weight.shape[0], weight.shape[2:]
    positions = math.prod(output_size)
    weight_cl = channels_last_weight(weight, groups)
    out = padded.new_empty(groups, batch * positions, out_channels // groups)
    for samples in sample_slices(batch, channels * math.prod(kernel_size) * positions):
        cols = channels_last_columns(
            padded[samples], kernel_size, stride, dilation, output_size, groups
        )
        rows = slice(samples.start * positions, samples.stop * positions)
        torch.matmul(cols, weight_cl, out=out[:, rows])  # (g, n * positions, O/g)
        del cols
    out = out.transpose(0, 1).reshape(batch, *output_size, out_channels)  # a view if g = 1
    # Back to (N, O, *positions) in memory too: the elementwise ops after the layer (ReLU and
    # its gradient) run fastest when their operands share one layout.
    return out.permute(0, 1 + d, *range(1, 1 + d)).contiguous()


def _channels_last_weight_grad(grad, padded, weight, stride, dilation, groups):
    batch, *padded_size, channels = padded.shape
    d = len(padded_size)
    kernel_size, output_size = weight.shape[2:], grad.shape[2:]
    positions = math.prod(output_size)
    grad_rows = _channels_last_rows(grad, groups)
    grad_weight = None
    for samples in sample_slices(batch, channels * math.prod(kernel_size) * positions):
        rows = grad_rows[samples.start * positions : samples.stop * positions].transpose(0, 1)
        cols = channels_last_columns(
            padded[samples], kernel_size, stride, dilation, output_size, groups
        )
        share = cols.transpose(-1, -2) @ rows  # (g, offsets * C/g, O/g)
        del cols
        grad_weight = share if grad_weight is None else grad_weight.add_(share)
    if grad_weight is None:  # an empty batch has no slices: its dW is zero
        return weight.new_zeros(weight.shape)
    grouped = grad_weight.reshape(groups, *kernel_size, channels // groups, -1)
    return grouped.permute(0, 2 + d, 1 + d, *range(1, 1 + d)).reshape(weight.shape)


def _channels_last_input_grad(grad, weight, padded_size, stride, dilation, groups):
    """dx of the padded input, (N, C, *padded size) with channels last in memory."""
    batch = grad.shape[0]
    d = len(padded_size)
    channels, kernel_size = weight.shape[1] * groups, weight.shape[2:]
    output_size = grad.shape[2:]
    positions = math.prod(output_size)
    grad_rows = _channels_last_rows(grad, groups)
    weight_cl = channels_last_weight(weight, groups)
    grad_padded = grad.new_zeros(batch, *padded_size, channels)
    for samples in sample_slices(batch, channels * math.prod(kernel_size) * positions):
        rows = grad_rows[samples.start * positions : samples.stop * positions].transpose(0, 1)
        grad_cols = rows @ weight_cl.transpose(-1, -2)  # (g, n * positions, offsets * C/g)
        channels_last_col2im(
            grad_cols, grad_padded[samples], kernel_size, stride, dilation, output_size
        )
        del grad_cols
    return grad_padded.permute(0, 1 + d, *range(1, 1 + d))


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
        out_channels, channels_per_group, *kernel_size = weight.shape
        size = conv_output_size(input.shape[2:], kernel_size, stride, padding, dilation)
        padded_size = [n + a + b for n, (a, b) in zip(input.shape[2:], padding)]
        lowering = choose_lowering(
            channels_per_group, kernel_size, stride, size, padded_size, groups
        )
        columns = lowering[0]
        if columns == NCHW:
            out = _nchw_forward(_pad(input, padding), weight, size, stride, dilation, groups)
        else:
            padded = pad_channels_last(input, padding)
            out = _channels_last_forward(padded, weight, size, stride, dilation, groups)
        if bias is not None:
            out += bias.reshape(out_channels, *(1,) * d)
        ctx.geometry = (stride, padding, dilation, groups)
        ctx.lowering = lowering
        ctx.save_for_backward(input, weight, bias)
        return out

    @staticmethod
    def backward(ctx, grad):
        input, weight, bias = ctx.saved_tensors
        if isinstance(grad, Tensor):  # create_graph: differentiate the composed definition
            return _gradients_by_ops(ctx, input, weight, bias, grad)
        need_input, need_weight, need_bias = ctx.needs_input_grad
        stride, padding, dilation, groups = ctx.geometry
        _, weight_way, input_way = ctx.lowering
        padded_size = [n + a + b for n, (a, b) in zip(input.shape[2:], padding)]
        grad_input = grad_weight = grad_bias = None
        if need_bias:
            grad_bias = grad.sum((0, *range(2, grad.dim())))
        if need_weight and weight_way == ROWS and rows_are_exact(input):
            grad_weight = _rows_weight_grad(grad, _pad(input, padding), weight, dilation)
        elif need_weight:
            padded = pad_channels_last(input, padding)
            grad_weight = _channels_last_weight_grad(grad, padded, weight, stride, dilation, groups)
        if need_input:
            if input_way == ROWS and rows_are_exact(weight):
                grad_padded = _rows_input_grad(grad, weight, padded_size, dilation)
            else:
                grad_padded = _channels_last_input_grad(
                    grad, weight, padded_size, stride, dilation, groups
                )
            crop = tuple(slice(a, a + n) for (a, _), n in zip(padding, input.shape[2:]))
            # back to (N, C, *spatial) in memory too
            grad_input = grad_padded[(slice(None), slice(None), *crop)].contiguous()
        return grad_input, grad_weight, grad_bias


def _pad(input: torch.Tensor, padding: Sequence[tuple[int, int]]) -> torch.Tensor:
    """The zero-padded input, contiguous (N, C, *padded size)."""
    if any(map(any, padding)):
        return pad_constant(input, _flat_amounts(padding), 0.0)
    return input.contiguous()


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

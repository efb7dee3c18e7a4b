"""Convolution lowered a slice of the batch at a time, in each layout, gives torch's numbers.

`Convolution` holds at most COLUMNS_BUDGET numbers as columns, so large batches are lowered
in slices of samples. The budget is shrunk here so that every drawn batch is cut into several
slices (down to one sample each), each of the layouts `choose_lowering` picks from is forced
in turn (NCHW or channels-last columns forward; the gradients by row copies or by
channels-last columns and col2im), and the forward value and the gradients of input, weight
and bias are compared with torch's in float64.
"""

import math
from contextlib import contextmanager

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_edu as mt
import minitorch_edu.nn.functional as F
from minitorch_edu.nn.functional import convolution
from minitorch_edu.testing import assert_matches_torch
from minitorch_edu.testing import strategies as mts

NCHW, CHANNELS_LAST, ROWS = convolution.NCHW, convolution.CHANNELS_LAST, convolution.ROWS
# (forward's columns, way to dW, way to dx)
LOWERINGS = [
    (NCHW, ROWS, ROWS),
    (NCHW, CHANNELS_LAST, CHANNELS_LAST),
    (NCHW, CHANNELS_LAST, ROWS),
    (CHANNELS_LAST, ROWS, ROWS),
    (CHANNELS_LAST, CHANNELS_LAST, ROWS),
    (CHANNELS_LAST, CHANNELS_LAST, CHANNELS_LAST),
]


@contextmanager
def columns_budget(numbers: int, lowering=None):
    """Lower at most `numbers` numbers as columns or row copies at a time (in the layouts
    `lowering` names, or those choose_lowering picks); yields each slicing of the batch made."""
    saved = {name: getattr(convolution, name) for name in ("COLUMNS_BUDGET", "choose_lowering")}
    saved["sample_slices"] = slicer = convolution.sample_slices
    slicings = []

    def recording(batch, numbers_per_sample):
        slicings.append(slicer(batch, numbers_per_sample))
        return slicings[-1]

    convolution.COLUMNS_BUDGET = numbers
    convolution.sample_slices = recording
    if lowering is not None:
        convolution.choose_lowering = lambda *arguments: lowering
    try:
        yield slicings
    finally:
        for name, value in saved.items():
            setattr(convolution, name, value)


@st.composite
def sliced_convolutions(draw, spatial_dims: int):
    d = spatial_dims
    lowering = draw(st.sampled_from(LOWERINGS))
    by_rows = ROWS in lowering  # stride 1 and one group only
    groups = 1 if by_rows else draw(st.sampled_from([1, 1, 2]))
    in_channels = groups * draw(st.integers(1, 2))
    out_channels = groups * draw(st.integers(1, 2))
    kernel_size = tuple(draw(st.integers(1, 3)) for _ in range(d))
    max_stride = 1 if by_rows else 2
    stride = tuple(draw(st.integers(1, max_stride)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(d))
    sizes = [
        draw(st.integers(max(1, dl * (k - 1) + 1 - 2 * p), 6))
        for k, dl, p in zip(kernel_size, dilation, padding)
    ]
    batch = draw(st.integers(2, 5))
    x = draw(mts.tensors(shape=(batch, in_channels, *sizes)))
    weight = draw(mts.tensors(shape=(out_channels, in_channels // groups, *kernel_size)))
    bias = draw(st.none() | mts.tensors(shape=(out_channels,)))
    options = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    padded = [n + 2 * p for n, p in zip(sizes, padding)]
    outputs = [
        (n - dl * (k - 1) - 1) // s + 1
        for n, k, s, dl in zip(padded, kernel_size, stride, dilation)
    ]
    # numbers per sample: columns; row copies of the input and the gradient at flat positions
    # (dW); row copies of the framed gradient (dx)
    per_sample = [in_channels * math.prod(kernel_size) * math.prod(outputs)]
    row_taps = math.prod(kernel_size[:-1])
    if lowering[1] == ROWS:
        flat_positions = math.prod(outputs[:-1]) * padded[-1]
        per_sample.append((row_taps * in_channels + out_channels) * flat_positions)
    if lowering[2] == ROWS:
        per_sample.append(2 * row_taps * out_channels * math.prod(padded))  # half the budget
    samples_per_slice = draw(st.integers(1, batch - 1))
    budget = min(per_sample) * samples_per_slice  # every copy is cut into two slices at least
    return x, weight, bias, options, budget, lowering


@settings(max_examples=40)
@pytest.mark.parametrize("spatial_dims", [1, 2])
@given(case=st.data())
def test_convolution_in_slices_matches_torch(spatial_dims, case):
    x, weight, bias, options, budget, lowering = case.draw(sliced_convolutions(spatial_dims))
    ours = F.conv1d if spatial_dims == 1 else F.conv2d
    theirs = torch.nn.functional.conv1d if spatial_dims == 1 else torch.nn.functional.conv2d
    inputs = (x, weight) if bias is None else (x, weight, bias)
    with columns_budget(budget, lowering) as slicings:
        assert_matches_torch(
            lambda *a: ours(*a, **options), lambda *a: theirs(*a, **options), *inputs
        )
    # forward, dW and dx each lowered the batch in two slices or more, covering it once
    batch = x.shape[0]
    assert len(slicings) == 3, slicings
    for slices in slicings:
        starts = [s.start for s in slices]
        stops = [s.stop for s in slices]
        assert len(slices) >= 2 and starts == [0, *stops[:-1]] and stops[-1] == batch, slices


def test_sample_slices_cover_the_batch_once_within_the_budget():
    with columns_budget(10):
        slices = convolution.sample_slices(7, 3)  # 3 samples (9 numbers) per slice
        assert slices == [slice(0, 3), slice(3, 6), slice(6, 7)]
        assert convolution.sample_slices(2, 25) == [slice(0, 1), slice(1, 2)]  # one at least
    assert convolution.sample_slices(64, 1) == [slice(0, 64)]


def test_the_lowering_rule_picks_what_it_states():
    choose = convolution.choose_lowering
    # LeNet's first layer: one channel, so a window row is 5 numbers: NCHW columns, rows.
    assert choose(1, (5, 5), (1, 1), (28, 28), (32, 32), 1) == (NCHW, ROWS, ROWS)
    # Its second: 6 channels, a window row of 30 numbers: channels-last columns, also for dW.
    assert choose(6, (5, 5), (1, 1), (10, 10), (14, 14), 1) == (CHANNELS_LAST, CHANNELS_LAST, ROWS)
    # Stride 2, or two groups: channels last every way (row copies need stride 1, one group).
    assert choose(32, (3, 3), (2, 2), (7, 7), (16, 16), 1) == (CHANNELS_LAST,) * 3
    assert choose(8, (3, 3), (1, 1), (7, 7), (9, 9), 2) == (CHANNELS_LAST,) * 3
    # A 5x5 kernel on an 8x8 input: 64 flat positions for 16 outputs, just few enough.
    assert choose(1, (5, 5), (1, 1), (4, 4), (8, 8), 1) == (NCHW, ROWS, ROWS)
    # A 6x6 kernel on a 9x9 input: 81 flat positions for 16 outputs, too many.
    assert choose(1, (6, 6), (1, 1), (4, 4), (9, 9), 1) == (NCHW, CHANNELS_LAST, CHANNELS_LAST)
    # conv1d: the padded length against the output length.
    assert choose(4, (3,), (1,), (10,), (12,), 1) == (NCHW, ROWS, ROWS)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("where", ["input", "weight"])
def test_non_finite_numbers_take_the_columns_and_match_torch(value, where):
    """Row copies multiply wrapped windows' zeros by real numbers (0 * inf = nan): an input
    (for dW) or a weight (for dx) with an inf or nan takes the columns, as exact as torch."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 7, 7, dtype=torch.float64, generator=generator)
    weight = torch.randn(3, 1, 3, 3, dtype=torch.float64, generator=generator)
    # a number that wrapped windows read (first column) and one that the framing meets
    (x if where == "input" else weight)[0, 0, 2, 0] = value
    assert convolution.choose_lowering(1, (3, 3), (1, 1), (5, 5), (7, 7), 1) == (NCHW, ROWS, ROWS)
    ours_x, ours_w = (mt.tensor(t, requires_grad=True) for t in (x, weight))
    theirs_x, theirs_w = (t.clone().requires_grad_() for t in (x, weight))
    F.conv2d(ours_x, ours_w).sum().backward()
    torch.nn.functional.conv2d(theirs_x, theirs_w).sum().backward()
    for ours, theirs in ((ours_x, theirs_x), (ours_w, theirs_w)):
        torch.testing.assert_close(ours.grad.data, theirs.grad, equal_nan=True)


@pytest.mark.parametrize("lowering", LOWERINGS, ids=lambda pair: "+".join(pair))
def test_every_layout_takes_inputs_in_any_memory_layout(lowering):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 3, 3, 2, dtype=torch.float64, generator=generator)
    bias = torch.randn(4, dtype=torch.float64, generator=generator)
    x = torch.randn(2, 3, 9, 16, dtype=torch.float64, generator=generator)
    layouts = [
        x.contiguous(memory_format=torch.channels_last),
        x[..., ::2],  # every other column
        x.transpose(2, 3),
    ]
    for layout in layouts:
        with columns_budget(convolution.COLUMNS_BUDGET, lowering):
            assert_matches_torch(
                lambda *a: F.conv2d(*a, padding=1),
                lambda *a: torch.nn.functional.conv2d(*a, padding=1),
                layout,
                weight,
                bias,
            )

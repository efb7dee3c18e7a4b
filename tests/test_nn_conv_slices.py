"""Convolution lowered a slice of the batch at a time gives torch's numbers.

`Convolution` holds at most COLUMNS_BUDGET numbers as im2col columns, so large batches are
lowered in slices of samples. The budget is shrunk here so that every drawn batch is cut
into several slices (down to one sample each), and the forward value and the gradients of
input, weight and bias are compared with torch's in float64.
"""

from contextlib import contextmanager

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_edu.nn.functional as F
from minitorch_edu.nn.functional import convolution
from minitorch_edu.testing import assert_matches_torch
from minitorch_edu.testing import strategies as mts


@contextmanager
def columns_budget(numbers: int):
    """Lower at most `numbers` numbers as columns at a time; yields the slices lowered."""
    saved_budget, saved_im2col = convolution.COLUMNS_BUDGET, convolution.im2col
    lowered = []

    def counting_im2col(input, *args):
        lowered.append(input.shape[0])
        return saved_im2col(input, *args)

    convolution.COLUMNS_BUDGET, convolution.im2col = numbers, counting_im2col
    try:
        yield lowered
    finally:
        convolution.COLUMNS_BUDGET, convolution.im2col = saved_budget, saved_im2col


@st.composite
def sliced_convolutions(draw, spatial_dims: int):
    d = spatial_dims
    groups = draw(st.sampled_from([1, 1, 2]))
    in_channels = groups * draw(st.integers(1, 2))
    out_channels = groups * draw(st.integers(1, 2))
    kernel_size = tuple(draw(st.integers(1, 3)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(d))
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
    numbers_per_sample = in_channels * torch.Size(kernel_size).numel()
    for n, k, s, p, dl in zip(sizes, kernel_size, stride, padding, dilation):
        numbers_per_sample *= (n + 2 * p - dl * (k - 1) - 1) // s + 1
    samples_per_slice = draw(st.integers(1, batch - 1))
    return x, weight, bias, options, numbers_per_sample * samples_per_slice


@settings(max_examples=40)
@pytest.mark.parametrize("spatial_dims", [1, 2])
@given(case=st.data())
def test_convolution_in_slices_matches_torch(spatial_dims, case):
    x, weight, bias, options, budget = case.draw(sliced_convolutions(spatial_dims))
    ours = F.conv1d if spatial_dims == 1 else F.conv2d
    theirs = torch.nn.functional.conv1d if spatial_dims == 1 else torch.nn.functional.conv2d
    inputs = (x, weight) if bias is None else (x, weight, bias)
    with columns_budget(budget) as lowered:
        assert_matches_torch(
            lambda *a: ours(*a, **options), lambda *a: theirs(*a, **options), *inputs
        )
    batch = x.shape[0]
    forward_slices = lowered[: len(lowered) // 2]  # then backward takes them again for dW
    assert len(forward_slices) >= 2 and sum(forward_slices) == batch, lowered


def test_sample_slices_cover_the_batch_once_within_the_budget():
    with columns_budget(10):
        slices = convolution.sample_slices(7, 3)  # 3 samples (9 numbers) per slice
        assert slices == [slice(0, 3), slice(3, 6), slice(6, 7)]
        assert convolution.sample_slices(2, 25) == [slice(0, 1), slice(1, 2)]  # one at least
    assert convolution.sample_slices(64, 1) == [slice(0, 64)]

"""MaxPool2d and AvgPool2d against torch.nn: drawn configurations, forward and input gradient.

Integer-valued inputs make ties common: max pooling must send each window's gradient to
the same element torch picks (the first largest in scan order), so those gradients are
compared exactly. ceil_mode, padding, dilation, overlapping windows (stride < kernel) and
skipped pixels (stride > kernel) are all drawn.
"""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minitorch_edu as mt
import minitorch_edu.nn.functional as F
from minitorch_edu.nn.functional.pooling import pooled_size
from minitorch_edu.study import gradcheck
from minitorch_edu.testing import assert_matches_torch
from minitorch_edu.testing import strategies as mts
from reference.nn import assert_matches_twin


@st.composite
def pool_settings(draw, average=False):
    """A valid pooling configuration and an input shape it accepts."""
    kernel_size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.integers(1, 4), st.tuples(*[st.integers(1, 4)] * 2)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel_size)
    dilation = (1, 1) if average else tuple(draw(st.integers(1, 2)) for _ in range(2))
    config = dict(
        kernel_size=draw(st.sampled_from([kernel_size, kernel_size[0]]))
        if kernel_size[0] == kernel_size[1]
        else kernel_size,
        stride=stride,
        padding=padding,
        ceil_mode=draw(st.booleans()),
    )
    if average:
        config["count_include_pad"] = draw(st.booleans())
        config["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
    else:
        config["dilation"] = dilation
    sizes = [
        draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), max(1, d * (k - 1) + 1 - 2 * p) + 5))
        for k, p, d in zip(kernel_size, padding, dilation)
    ]
    stride_pair = (
        kernel_size if stride is None else (stride,) * 2 if isinstance(stride, int) else stride
    )
    for n, k, s, p, d in zip(sizes, kernel_size, stride_pair, padding, dilation):
        # With dilation a window can fall entirely into the padding; torch then records an
        # index outside the input and its backward writes out of bounds. Leave those out.
        assume(every_window_reads_the_input(n, k, s, p, d, config["ceil_mode"]))
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    return config, (*batch, draw(st.integers(1, 3)), *sizes)


def every_window_reads_the_input(size, kernel, stride, padding, dilation, ceil_mode):
    windows = pooled_size(size, kernel, stride, padding, dilation, ceil_mode)
    for w in range(windows):
        taps = [w * stride - padding + i * dilation for i in range(kernel)]
        if not any(0 <= t < size for t in taps):
            return False
    return True


def integer_valued(shape, device):
    """Values in {-2, ..., 2}: many ties inside each window."""
    return mts.tensors(shape=shape, min_value=-2, max_value=2, device=device).map(torch.round)


@given(data=st.data(), ties=st.booleans())
def test_max_pool_matches_torch(data, ties, device):
    config, shape = data.draw(pool_settings())
    values = integer_valued(shape, device) if ties else mts.tensors(shape=shape, device=device)
    x = data.draw(values)
    run = assert_matches_twin(mt.nn.MaxPool2d(**config), x)
    if ties:  # gradients are sums of whole grad_output entries: exact, not just close
        assert torch.equal(run.input_grads[0], run.torch_input_grads[0])


@given(data=st.data())
def test_max_pool_indices_match_torch(data, device):
    config, shape = data.draw(pool_settings())
    x = data.draw(integer_valued(shape, device))
    out, indices = F.max_pool2d(mt.tensor(x), return_indices=True, **config)
    torch_out, torch_indices = torch.nn.functional.max_pool2d(x, return_indices=True, **config)
    assert torch.equal(out.data, torch_out)
    assert torch.equal(indices.data, torch_indices)


@given(data=st.data())
def test_avg_pool_matches_torch(data, device):
    config, shape = data.draw(pool_settings(average=True))
    x = data.draw(mts.tensors(shape=shape, device=device))
    assert_matches_twin(mt.nn.AvgPool2d(**config), x)


@settings(max_examples=15)
@given(data=st.data(), average=st.booleans())
def test_pooling_second_order_matches_torch(data, average):
    config, shape = data.draw(pool_settings(average))
    x = data.draw(mts.tensors(shape=shape))
    ours, theirs = (F.avg_pool2d, torch.nn.functional.avg_pool2d)
    if not average:
        ours, theirs = (F.max_pool2d, torch.nn.functional.max_pool2d)
    assert_matches_torch(
        lambda x: ours(x, **config), lambda x: theirs(x, **config), x, double_backward=True
    )


@settings(max_examples=10)
@given(data=st.data(), average=st.booleans())
def test_pooling_matches_finite_differences(data, average):
    config, shape = data.draw(pool_settings(average))
    shape = (1, *shape[-2:])  # one channel: finite differences cost a forward per element
    # Distinct values far apart: no window has a near-tie that a finite difference could flip.
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    x = torch.randperm(torch.Size(shape).numel(), generator=generator).reshape(shape).double()
    pool = F.avg_pool2d if average else F.max_pool2d
    gradcheck(lambda x: pool(x, **config), [x])


@st.composite
def any_pool_call(draw):
    """Pooling calls drawn without regard to validity."""
    average = draw(st.booleans())
    config = dict(
        kernel_size=draw(st.one_of(st.integers(0, 4), st.tuples(*[st.integers(1, 4)] * 2))),
        stride=draw(st.one_of(st.none(), st.integers(0, 3))),
        padding=draw(st.one_of(st.integers(-1, 3), st.tuples(*[st.integers(0, 3)] * 2))),
        ceil_mode=draw(st.booleans()),
    )
    if average:
        config["divisor_override"] = draw(st.one_of(st.none(), st.integers(0, 2)))
    else:
        config["dilation"] = draw(st.integers(0, 3))
    rank = draw(st.sampled_from([2, 3, 4, 4, 5]))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    return average, config, shape


def outcome(build):
    try:
        build()
    except Exception as error:  # noqa: BLE001 - any error counts as a rejection here
        return error
    return None


@settings(max_examples=150)
@given(call=any_pool_call())
def test_pooling_rejects_what_torch_rejects(call):
    average, config, shape = call
    x = torch.randn(shape, dtype=torch.float64)
    ours, theirs = (
        (mt.nn.AvgPool2d, torch.nn.AvgPool2d) if average else (mt.nn.MaxPool2d, torch.nn.MaxPool2d)
    )
    torch_error = outcome(lambda: theirs(**config)(x))
    our_error = outcome(lambda: ours(**config)(mt.tensor(x)))
    if torch_error is None:
        assert our_error is None, f"torch accepts {config} on {shape}, ours raised {our_error!r}"
    else:
        assert our_error is not None, f"torch rejects {config} on {shape}: {torch_error}"
        # torch fails some rank checks with a bare dim-wrapping IndexError; ours names the ranks.
        assert type(our_error) is type(torch_error) or isinstance(torch_error, IndexError), (
            our_error,
            torch_error,
        )
        assert str(our_error)


def test_pooling_errors_name_the_problem():
    x = mt.randn(1, 3, 5, 5)
    with pytest.raises(RuntimeError, match="pad should be at most half of kernel size.*pad=2"):
        mt.nn.MaxPool2d(3, padding=2)(x)
    with pytest.raises(RuntimeError, match=r"Given input size: \(3x5x5\).*\(3x0x0\)"):
        mt.nn.MaxPool2d(6)(x)
    with pytest.raises(RuntimeError, match=r"3D \(C, H, W\) or 4D.*\[5, 5\]"):
        mt.nn.MaxPool2d(2)(mt.randn(5, 5))
    with pytest.raises(RuntimeError, match="stride should be greater than zero"):
        mt.nn.AvgPool2d(2, stride=0)(x)
    with pytest.raises(RuntimeError, match="divisor must be not zero"):
        mt.nn.AvgPool2d(2, divisor_override=0)(x)


def test_pooling_repr_matches_torch():
    pairs = [
        (mt.nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (
            mt.nn.MaxPool2d((3, 2), stride=1, padding=1, ceil_mode=True),
            torch.nn.MaxPool2d((3, 2), stride=1, padding=1, ceil_mode=True),
        ),
        (mt.nn.AvgPool2d(3, stride=2, padding=1), torch.nn.AvgPool2d(3, stride=2, padding=1)),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)

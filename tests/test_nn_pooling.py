"""MaxPool2d and AvgPool2d against torch.nn: drawn configurations, forward and input gradient.

Integer-valued inputs make ties common: max pooling must send each window's gradient to
the same element torch picks (the first largest in scan order), so those gradients are
compared exactly. ceil_mode, padding, dilation, overlapping windows (stride < kernel) and
skipped pixels (stride > kernel) are all drawn.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_edu as mt
import minitorch_edu.nn.functional as F
from minitorch_edu.study import gradcheck
from minitorch_edu.testing import assert_matches_torch
from minitorch_edu.testing import strategies as mts
from reference.nn import assert_matches_twin


def integer_valued(shape, device):
    """Values in {-2, ..., 2}: many ties inside each window."""
    return mts.tensors(shape=shape, min_value=-2, max_value=2, device=device).map(torch.round)


@given(data=st.data(), ties=st.booleans())
def test_max_pool_matches_torch(data, ties, device):
    config, shape = data.draw(mts.pool_configs())
    values = integer_valued(shape, device) if ties else mts.tensors(shape=shape, device=device)
    x = data.draw(values)
    run = assert_matches_twin(mt.nn.MaxPool2d(**config), x)
    if ties:  # gradients are sums of whole grad_output entries: exact, not just close
        assert torch.equal(run.input_grads[0], run.torch_input_grads[0])


@given(data=st.data())
def test_max_pool_indices_match_torch(data, device):
    config, shape = data.draw(mts.pool_configs())
    x = data.draw(integer_valued(shape, device))
    out, indices = F.max_pool2d(mt.tensor(x), return_indices=True, **config)
    torch_out, torch_indices = torch.nn.functional.max_pool2d(x, return_indices=True, **config)
    assert torch.equal(out.data, torch_out)
    assert torch.equal(indices.data, torch_indices)


@given(data=st.data())
def test_avg_pool_matches_torch(data, device):
    config, shape = data.draw(mts.pool_configs(average=True))
    x = data.draw(mts.tensors(shape=shape, device=device))
    assert_matches_twin(mt.nn.AvgPool2d(**config), x)


@settings(max_examples=15)
@given(data=st.data(), average=st.booleans())
def test_pooling_second_order_matches_torch(data, average):
    config, shape = data.draw(mts.pool_configs(average))
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
    config, shape = data.draw(mts.pool_configs(average))
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


@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
def test_pooling_of_an_empty_batch_matches_torch(pool):
    x = torch.randn(0, 2, 6, 6, dtype=torch.float64)
    assert_matches_torch(
        lambda a: getattr(F, pool)(a, 2, 2),
        lambda a: getattr(torch.nn.functional, pool)(a, 2, 2),
        x,
    )


def test_an_empty_stride_means_the_kernel_size_like_torch():
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    for pool in ("max_pool2d", "avg_pool2d"):
        assert_matches_torch(
            lambda a, p=pool: getattr(F, p)(a, (2, 2), ()),
            lambda a, p=pool: getattr(torch.nn.functional, p)(a, (2, 2), ()),
            x,
        )


def test_avg_pool_of_int64_rounds_towards_zero_like_torch():
    """torch averages int64 windows in integers (truncating); other integers it refuses."""
    x = torch.tensor([[[[-3, 0, 5, 4], [7, -8, 1, 2]]]])
    for kwargs in ({"kernel_size": (1, 2)}, {"kernel_size": 2, "padding": 1}):
        expected = torch.nn.functional.avg_pool2d(x, **kwargs)
        result = F.avg_pool2d(mt.tensor(x), **kwargs)
        assert result.dtype == expected.dtype == torch.int64
        assert result.tolist() == expected.tolist()


def test_max_pool_reads_inputs_in_any_memory_layout():
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for layout in (x.contiguous(memory_format=torch.channels_last), x[..., ::2], x.mT):
        for options in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)):
            assert_matches_torch(
                lambda t, options=options: F.max_pool2d(t, **options),
                lambda t, options=options: torch.nn.functional.max_pool2d(t, **options),
                layout,
            )

"""Elementwise ops (arithmetic, pointwise maths, selection) against torch and finite differences.

One catalogue entry per op: our function, torch's, and a strategy for inputs inside the
op's domain. Every entry runs through the same three properties.
"""

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.study import gradcheck
from minitorch_edu.testing import assert_matches_torch
from minitorch_edu.testing import strategies as mts


def pair(first=mts.tensors, second=mts.tensors, **kwargs):
    """Two tensors of broadcastable shapes."""
    return mts.broadcastable_shapes(2).flatmap(
        lambda shapes: st.tuples(first(shape=shapes[0], **kwargs), second(shape=shapes[1]))
    )


def one(strategy=mts.tensors, **kwargs):
    return strategy(**kwargs).map(lambda t: (t,))


UNARY = {
    "neg": (lambda a: -a, torch.neg, one()),
    "exp": (mt.exp, torch.exp, one()),
    "log": (mt.log, torch.log, one(mts.positive_tensors)),
    "sqrt": (mt.sqrt, torch.sqrt, one(mts.positive_tensors)),
    "abs": (mt.abs, torch.abs, one(mts.nonzero_tensors)),
    "tanh": (mt.tanh, torch.tanh, one()),
    "sigmoid": (mt.sigmoid, torch.sigmoid, one(min_value=-30, max_value=30)),
    "relu": (mt.relu, torch.relu, one(mts.nonzero_tensors)),
    "clamp": (lambda a: a.clamp(-1.0, 0.5), lambda a: a.clamp(-1.0, 0.5), one()),
    "clamp_min": (lambda a: a.clamp(min=0.2), lambda a: a.clamp(min=0.2), one()),
    "clamp_max": (lambda a: mt.clamp(a, max=0.3), lambda a: a.clamp(max=0.3), one()),
    "maximum_number": (
        lambda a: mt.maximum(a, 0.5),
        lambda a: torch.maximum(a, torch.tensor(0.5, dtype=a.dtype)),
        one(),
    ),
    "where_number": (
        lambda a: mt.where(a > 0, a, -1.0),
        lambda a: torch.where(a > 0, a, -1.0),
        one(),
    ),
    "square": (lambda a: a.square(), torch.square, one()),
    "pow_scalar": (lambda a: a**3, lambda a: a**3, one()),
    "pow_fraction": (lambda a: a**1.5, lambda a: a**1.5, one(mts.positive_tensors)),
    "pow_zero": (lambda a: a**0, lambda a: a**0, one()),
    "rpow": (lambda a: 2.0**a, lambda a: 2.0**a, one()),
    "add_scalar": (lambda a: a + 2.5, lambda a: a + 2.5, one()),
    "rsub_scalar": (lambda a: 1 - a, lambda a: 1 - a, one()),
    "rdiv_scalar": (lambda a: 3 / a, lambda a: 3 / a, one(mts.nonzero_tensors)),
}

BINARY = {
    "add": (mt.add, torch.add, pair()),
    "sub": (mt.sub, torch.sub, pair()),
    "mul": (mt.mul, torch.mul, pair()),
    "div": (mt.div, torch.div, pair(second=mts.nonzero_tensors)),
    "pow": (mt.pow, torch.pow, pair(first=mts.positive_tensors)),
    "maximum": (mt.maximum, torch.maximum, pair()),
    "minimum": (mt.minimum, torch.minimum, pair()),
}

CATALOGUE = {**UNARY, **BINARY}


@pytest.mark.parametrize("name", CATALOGUE)
@given(data=st.data())
def test_matches_torch(name, data, device):
    ours, theirs, inputs = CATALOGUE[name]
    tensors = [t.to(device) for t in data.draw(inputs)]
    assert_matches_torch(ours, theirs, *tensors)


# Points where an op has a kink: finite differences straddling one measure an average slope.
KINKS = {
    "abs": (0.0,),
    "relu": (0.0,),
    "clamp": (-1.0, 0.5),
    "clamp_min": (0.2,),
    "clamp_max": (0.3,),
    "maximum_number": (0.5,),
    "where_number": (0.0,),
}


@pytest.mark.parametrize("name", CATALOGUE)
@given(data=st.data())
def test_matches_finite_differences(name, data):
    ours, _, inputs = CATALOGUE[name]
    tensors = data.draw(inputs)
    if name in ("maximum", "minimum"):  # a tie is a kink too
        assume(((tensors[0] - tensors[1]).abs() > 1e-3).all())
    for kink in KINKS.get(name, ()):
        assume(all(((t - kink).abs() > 1e-3).all() for t in tensors))
    gradcheck(ours, tensors)


@pytest.mark.parametrize("name", CATALOGUE)
@given(data=st.data())
def test_double_backward_matches_torch(name, data):
    ours, theirs, inputs = CATALOGUE[name]
    assert_matches_torch(ours, theirs, *data.draw(inputs), double_backward=True)


@given(data=st.data())
def test_where_matches_torch(data, device):
    a, b = (t.to(device) for t in data.draw(pair()))
    condition = (a.detach() > 0) if a.dim() >= b.dim() else (b.detach() > 0)
    assert_matches_torch(
        lambda x, y: mt.where(condition, x, y),
        lambda x, y: torch.where(condition, x, y),
        a,
        b,
        double_backward=True,
    )


def test_ties_share_the_gradient_like_torch():
    a = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    b = torch.tensor([1.0, 5.0, 3.0], dtype=torch.float64)
    assert_matches_torch(mt.maximum, torch.maximum, a, b)
    assert_matches_torch(mt.minimum, torch.minimum, a, b)
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    assert_matches_torch(mt.relu, torch.relu, x)
    assert_matches_torch(lambda t: t.clamp(0.0, 2.0), lambda t: t.clamp(0.0, 2.0), x)
    assert_matches_torch(lambda t: t**0, lambda t: t**0, x)
    assert_matches_torch(lambda t: t**2.0, lambda t: t**2.0, x, double_backward=True)
    # 0 ** b: flat in b for b > 0, so its gradient is 0 there (not 0 * log 0 = nan)
    exponent = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    assert_matches_torch(lambda b: mt.pow(0.0, b), lambda b: torch.pow(0.0, b), exponent)
    zeros = torch.zeros(3, dtype=torch.float64)
    assert_matches_torch(mt.pow, torch.pow, zeros, exponent)


def test_sigmoid_has_no_overflow_in_float32():
    x = mt.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], requires_grad=True)
    y = x.sigmoid()
    y.sum().backward()
    assert torch.isfinite(y.data).all() and torch.isfinite(x.grad.data).all()
    torch.testing.assert_close(y.data, torch.sigmoid(x.data))


def test_nan_inputs_route_gradients_like_torch():
    nan = float("nan")
    a = torch.tensor([nan, 1.0, 2.0, nan], dtype=torch.float64)
    b = torch.tensor([1.0, nan, 2.0, nan], dtype=torch.float64)
    assert_matches_torch(mt.maximum, torch.maximum, a, b)
    assert_matches_torch(mt.minimum, torch.minimum, a, b)
    assert_matches_torch(mt.relu, torch.relu, a)
    assert_matches_torch(lambda t: t.clamp(0.0, 1.5), lambda t: t.clamp(0.0, 1.5), a)
    assert_matches_torch(mt.abs, torch.abs, a)


# ---------------------------------------------------------------------------- torch's options
@pytest.mark.parametrize("alpha", [2, -0.5, 0])
def test_add_and_sub_take_alpha_like_torch(alpha):
    a, b = torch.randn(3, 1, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    for ours, theirs in ((mt.add, torch.add), (mt.sub, torch.sub)):
        assert_matches_torch(
            lambda x, y, o=ours: o(x, y, alpha=alpha),
            lambda x, y, t=theirs: t(x, y, alpha=alpha),
            a,
            b,
            double_backward=True,
        )
    assert_matches_torch(
        lambda x, y: x.add(y, alpha=alpha), lambda x, y: x.add(y, alpha=alpha), a, b
    )


def test_a_float_alpha_with_integers_is_refused_like_torch():
    with pytest.raises(RuntimeError):
        torch.add(torch.tensor([1, 2]), torch.tensor([3, 4]), alpha=0.5)
    with pytest.raises(RuntimeError, match="Add.*alpha"):
        mt.add(mt.tensor([1, 2]), mt.tensor([3, 4]), alpha=0.5)


@pytest.mark.parametrize("rounding_mode", [None, "trunc", "floor"])
def test_div_rounding_modes_like_torch(rounding_mode):
    """Rounded quotients are step functions: both gradients are 0, as torch gives."""
    a = torch.tensor([[-7.5, 7.5, 3.0]], dtype=torch.float64)
    b = torch.tensor([[2.0], [-4.0]], dtype=torch.float64)
    assert_matches_torch(
        lambda x, y: mt.div(x, y, rounding_mode=rounding_mode),
        lambda x, y: torch.div(x, y, rounding_mode=rounding_mode),
        a,
        b,
        double_backward=True,
    )
    integers = torch.tensor([-7, 7]), torch.tensor([2, 2])
    expected = torch.div(*integers, rounding_mode=rounding_mode)
    ours = mt.tensor(integers[0]).div(mt.tensor(integers[1]), rounding_mode=rounding_mode)
    assert ours.dtype == expected.dtype and ours.tolist() == expected.tolist()


def test_div_gradient_does_not_underflow():
    """-a / b² underflows to -inf for b = 1e-200; -(a / b) / b, torch's order, does not."""
    tiny = torch.tensor([1e-200, 3e-170], dtype=torch.float64)
    assert_matches_torch(mt.div, torch.div, tiny, tiny.flip(0), double_backward=True)


def test_two_python_numbers_give_a_tensor_like_torch():
    for ours, theirs in ((mt.add, torch.add), (mt.sub, torch.sub), (mt.mul, torch.mul)):
        for a, b in ((2.5, 1.5), (2, 3), (True, 2)):
            if theirs is torch.sub and a is True:
                continue  # torch refuses `-` on bools
            result, expected = ours(a, b), theirs(a, b)
            assert isinstance(result.data, torch.Tensor)
            assert result.dtype == expected.dtype and result.item() == expected.item()
    assert mt.div(1, 2).item() == torch.div(1, 2).item() == 0.5
    for refused in (lambda: torch.pow(2, 3), lambda: torch.neg(2.0)):
        with pytest.raises(TypeError):
            refused()
    for refused in (lambda: mt.pow(2, 3), lambda: mt.neg(2.0)):
        with pytest.raises(TypeError):
            refused()


def test_sign_requires_grad_with_a_zero_gradient_like_torch():
    x = torch.tensor([-2.0, 0.0, 3.0, float("nan")], dtype=torch.float64)
    comparison = assert_matches_torch(mt.sign, torch.sign, x, double_backward=True)
    assert comparison.output.requires_grad and comparison.grads[0].tolist() == [0.0] * 4


@given(data=st.data())
def test_clamp_with_tensor_bounds_matches_torch(data):
    """Ties, bounds in either order (low > high: clamp is high everywhere) and broadcasting.

    The input has the broadcast shape: torch's own backward fails when a bound broadcasts
    it to a larger one (an in-place logical_and_ on a smaller mask).
    """
    low_shape, high_shape = data.draw(mts.broadcastable_shapes(2))
    shape = torch.broadcast_shapes(low_shape, high_shape)
    a, low, high = (data.draw(mts.tied_tensors(shape=s)) for s in (shape, low_shape, high_shape))
    assert_matches_torch(mt.clamp, torch.clamp, a, low, high, double_backward=True)
    assert_matches_torch(lambda x, y: x.clamp_min(y), torch.clamp_min, a, low)
    assert_matches_torch(lambda x, y: x.clamp(max=y), lambda x, y: x.clamp(max=y), a, high)


def test_integer_and_bool_inputs_promote_like_torch():
    """sigmoid of integers works in floating point (not in uint8, where -|a| wraps around);
    a bool squared is an int64, as torch's square is pow(a, 2)."""
    u8 = torch.tensor([0, 1, 2, 255], dtype=torch.uint8)
    for ours, theirs in ((mt.sigmoid, torch.sigmoid), (mt.exp, torch.exp), (mt.tanh, torch.tanh)):
        result, expected = ours(mt.tensor(u8)), theirs(u8)
        assert result.dtype == expected.dtype
        torch.testing.assert_close(result.data, expected)
    flags = torch.tensor([True, False])
    result = mt.tensor(flags).square()
    assert result.dtype == torch.square(flags).dtype == torch.int64


@pytest.mark.parametrize("op", ["__and__", "__or__", "__xor__"])
def test_bitwise_operators_like_torch(op):
    """& | ^ ~ are bitwise, as torch's (not logical: 1 & 2 is 0)."""
    a, b = torch.tensor([1, 2, 6]), torch.tensor([2, 3, 3])
    assert getattr(mt.tensor(a), op)(mt.tensor(b)).tolist() == getattr(a, op)(b).tolist()
    assert getattr(mt.tensor(a > 1), op)(True).tolist() == getattr(a > 1, op)(True).tolist()
    assert (~mt.tensor(a)).tolist() == (~a).tolist()
    with pytest.raises(RuntimeError):
        getattr(torch.ones(2), op)(torch.ones(2))
    with pytest.raises(RuntimeError):
        getattr(mt.ones(2), op)(mt.ones(2))


def test_masked_fill_keeps_the_dtype_and_takes_0d_values_like_torch():
    x = torch.randn(2, 3, dtype=torch.float64)
    mask = torch.tensor([[True], [False]])
    value = torch.tensor(2.5, dtype=torch.float64)
    assert_matches_torch(
        lambda a, v: a.masked_fill(mask, v), lambda a, v: a.masked_fill(mask, v), x, value
    )
    integers = torch.tensor([1, 2])
    flags = torch.tensor([True, False])
    result, expected = mt.tensor(integers).masked_fill(flags, 2.7), integers.masked_fill(flags, 2.7)
    assert result.dtype == expected.dtype and result.tolist() == expected.tolist()
    refused = [
        lambda t: t.masked_fill(flags, torch.tensor([1.0])),  # a 1-D value
        lambda t: t.float().masked_fill(flags, 1j),  # a complex value into a real tensor
        lambda t: t.masked_fill(flags.to(torch.uint8), 1),  # a uint8 mask
    ]
    for make in refused:
        with pytest.raises(RuntimeError):
            make(integers)
        with pytest.raises(RuntimeError, match="masked_fill"):
            make(mt.tensor(integers))

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


# ---------------------------------------------------------------------------- found by fuzzing
def test_pow_gradients_form_their_products_as_torch_does():
    """b * a^(b-1) before grad (1e-8 * inf is inf, 0 * inf would be nan); db is 0 where
    a = 0 and b >= 0 but nan where b is nan; log(a) in the result's dtype."""
    half = torch.tensor([0.0, -0.0, 7.5, -4.0], dtype=torch.float16)
    assert_matches_torch(lambda a: a**1e-8, lambda a: a**1e-8, half, rtol=1e-3, atol=1e-5)
    base = torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64)
    exponent = torch.tensor([float("nan"), 1.0, float("nan")], dtype=torch.float64)
    assert_matches_torch(mt.pow, torch.pow, base, exponent)
    bf16_base = torch.tensor([6.3125, 1.5], dtype=torch.bfloat16)
    exponent = torch.tensor(3.0)
    assert_matches_torch(mt.pow, torch.pow, bf16_base, exponent, rtol=1e-5, atol=1e-5)


def test_a_number_divided_by_a_tensor_is_a_reciprocal_times_the_number_like_torch():
    """torch computes `2.5 / x` as x.reciprocal() * 2.5, which rounds twice in 16 bits."""
    x = torch.tensor([-4.1562, 8.1875, 3.0], dtype=torch.bfloat16)
    for number in (2.5, 1.5j, 3):
        result, expected = number / mt.tensor(x), number / x
        assert result.dtype == expected.dtype
        assert torch.equal(result.data, expected)
    integers = torch.tensor([7, 2**62], dtype=torch.int64)
    y = torch.tensor([3.0], dtype=torch.float64)
    assert_matches_torch(lambda a: integers / a, lambda a: integers / a, y)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softmax", "log_softmax"])
def test_16_bit_formulas_round_once_like_torch(name, dtype):
    """Several steps in float32, one rounding at the end: as torch's kernels (1 - out loses
    most of its 16-bit digits when out is near 1)."""
    values = torch.tensor([3.0, -2.5, 0.5, 9.0, -0.0], dtype=dtype)
    if name in ("softmax", "log_softmax"):
        ours = theirs = lambda a: getattr(a, name)(0)
    else:
        ours, theirs = getattr(mt, name), getattr(torch, name)
    if name == "log_softmax":
        # torch's own 16-bit log_softmax rounds its sum to 16 bits before the log (listed in
        # tests/conformance/divergences.py); ours is torch's float32 result, rounded once.
        theirs = lambda a: a.float().log_softmax(0).to(a.dtype)  # noqa: E731
    assert_matches_torch(ours, theirs, values, rtol=1e-3, atol=1e-5)


def test_broadcast_gradients_are_summed_in_torchs_order():
    """Values that cancel (±1e300 beside ordinary numbers): the sum depends on its order,
    and ours is torch's, one reduction over every broadcast dim at once."""
    huge = torch.tensor(
        [
            [[1e300, -1e300], [3.0, -1e-300], [4.3885, 65504.0]],
            [[1e-106, 0.0], [1.0, 3.0], [-2.5, 4.9755]],
        ],
        dtype=torch.float64,
    )
    small = torch.tensor([-1.1755e-38], dtype=torch.bfloat16)
    comparison = assert_matches_torch(lambda a, b: a * b, lambda a, b: a * b, small, huge)
    assert comparison.grads[0] is not None


def test_maximum_gradient_stays_in_the_outputs_dtype_like_torch():
    a = torch.tensor(0.0)
    b = torch.tensor(
        [[2.127, float("inf"), -9.0625], [0.9429, float("inf"), -6.6562]], dtype=torch.float16
    )
    for ours, theirs in ((mt.maximum, torch.maximum), (mt.minimum, torch.minimum)):
        assert_matches_torch(ours, theirs, a, b, rtol=1e-3, atol=1e-5)


def test_div_gradient_groups_its_product_like_torch():
    a = torch.tensor(-2.5, dtype=torch.float16)
    b = torch.tensor([0.2012, 6.6875], dtype=torch.bfloat16)
    assert_matches_torch(lambda x, y: y / x, lambda x, y: y / x, a, b, rtol=1e-3, atol=1e-5)

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

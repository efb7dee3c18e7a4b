"""Activations, softmax, dropout, Flatten and Identity against torch.nn.

Softmax, log-softmax and cross-entropy must stay finite and correct for logits as large as
1e4 in float32 and float64 (exp(1e4) overflows either type, so this only holds when the
largest logit is subtracted first).
"""

import math

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

POINTWISE = {
    "ReLU": lambda draw: mt.nn.ReLU(),
    "LeakyReLU": lambda draw: mt.nn.LeakyReLU(draw(st.floats(-2, 2))),
    "Sigmoid": lambda draw: mt.nn.Sigmoid(),
    "Tanh": lambda draw: mt.nn.Tanh(),
    "Identity": lambda draw: mt.nn.Identity(),
}


@pytest.mark.parametrize("name", POINTWISE)
@given(data=st.data())
def test_pointwise_activation_matches_torch(name, data, device):
    layer = POINTWISE[name](data.draw)
    # Away from the kink at 0, where relu's derivative is a convention.
    x = data.draw(mts.nonzero_tensors(shape=mts.shapes(max_dims=4), device=device))
    assert_matches_twin(layer, x)


@pytest.mark.parametrize("log", [False, True])
@given(data=st.data())
def test_softmax_matches_torch(log, data, device):
    x = data.draw(mts.tensors(shape=mts.shapes(min_dims=1, max_dims=4), device=device))
    dim = data.draw(st.integers(-x.dim(), x.dim() - 1))
    layer = mt.nn.LogSoftmax(dim) if log else mt.nn.Softmax(dim)
    assert_matches_twin(layer, x)


@settings(max_examples=20)
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda x: F.softmax(x, -1), lambda x: torch.softmax(x, -1)),
        (lambda x: F.log_softmax(x, 0), lambda x: torch.log_softmax(x, 0)),
        (lambda x: F.leaky_relu(x, 0.3), lambda x: torch.nn.functional.leaky_relu(x, 0.3)),
    ],
    ids=["softmax", "log_softmax", "leaky_relu"],
)
@given(data=st.data())
def test_second_order_matches_torch(ours, theirs, data):
    x = data.draw(mts.nonzero_tensors(shape=mts.shapes(min_dims=1, max_dims=3)))
    assert_matches_torch(ours, theirs, x, double_backward=True)


@settings(max_examples=10)
@given(data=st.data(), log=st.booleans())
def test_softmax_matches_finite_differences(data, log):
    x = data.draw(mts.tensors(shape=mts.shapes(min_dims=1, max_dims=2)))
    gradcheck(lambda x: (F.log_softmax if log else F.softmax)(x, -1), [x])


def test_softmax_without_dim_warns_and_picks_torchs_dim():
    for shape in [(4,), (2, 3), (2, 3, 4), (2, 3, 4, 5)]:
        x = torch.randn(shape)
        with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
            ours = F.softmax(mt.tensor(x))
        with pytest.warns(UserWarning):
            theirs = torch.nn.functional.softmax(x)
        torch.testing.assert_close(ours.data, theirs)


def test_softmax_rejects_a_dim_out_of_range():
    with pytest.raises(IndexError, match=r"range of \[-2, 1\], but got 2"):
        F.softmax(mt.randn(2, 3), dim=2)


# ---------------------------------------------------------------------------- extreme logits
def extreme_logits(dtype):
    """Rows mixing +-1e4 with ordinary values, ties at the top, and a constant row."""
    return torch.tensor(
        [
            [1e4, -1e4, 0.0, 3.0],
            [-1e4, -1e4, -1e4, -9999.0],
            [1e4, 1e4, -1e4, 1.0],
            [5e3, 1e4, 9999.5, -5e3],
            [-1e4, -1e4, -1e4, -1e4],
        ],
        dtype=dtype,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "name, ours, theirs",
    [
        ("softmax", lambda x: F.softmax(x, 1), lambda x: torch.softmax(x, 1)),
        ("log_softmax", lambda x: F.log_softmax(x, 1), lambda x: torch.log_softmax(x, 1)),
        (
            "cross_entropy",
            lambda x: F.cross_entropy(
                x, torch.tensor([1, 3, 2, 0, 1], device=x.device), reduction="none"
            ),
            lambda x: torch.nn.functional.cross_entropy(
                x, torch.tensor([1, 3, 2, 0, 1], device=x.device), reduction="none"
            ),
        ),
        (
            "cross_entropy_smoothed",
            lambda x: F.cross_entropy(
                x, torch.tensor([1, 3, 2, 0, 1], device=x.device), label_smoothing=0.1
            ),
            lambda x: torch.nn.functional.cross_entropy(
                x, torch.tensor([1, 3, 2, 0, 1], device=x.device), label_smoothing=0.1
            ),
        ),
    ],
)
def test_extreme_logits_stay_finite_and_correct(name, ours, theirs, dtype, device):
    logits = extreme_logits(dtype).to(device)
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    comparison = assert_matches_torch(ours, theirs, logits, **tolerance)
    assert torch.isfinite(comparison.output.data).all()
    assert torch.isfinite(comparison.grads[0].data).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_of_huge_logits_is_exact_where_it_is_known(dtype):
    x = mt.tensor([[1e4, 0.0], [1e4, 1e4], [-1e4, 1e4]], dtype=dtype)
    probabilities = F.softmax(x, 1)
    torch.testing.assert_close(
        probabilities.data, torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], dtype=dtype)
    )
    log_probabilities = F.log_softmax(x, 1)
    expected = torch.tensor([[0.0, -1e4], [-math.log(2)] * 2, [-2e4, 0.0]], dtype=dtype)
    torch.testing.assert_close(log_probabilities.data, expected)


# ---------------------------------------------------------------------------- dropout
@given(p=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), seed=st.integers(0, 2**16))
def test_dropout_draws_torchs_mask_after_the_same_seed(p, seed):
    """On the CPU, torch's dropout draws bernoulli(1 - p) once, as ours does."""
    x = torch.randn(4, 7, dtype=torch.float64)
    mt.manual_seed(seed)
    ours = mt.tensor(x, requires_grad=True)
    out = F.dropout(ours, p)
    torch.manual_seed(seed)
    theirs = x.clone().requires_grad_()
    expected = torch.nn.functional.dropout(theirs, p)
    torch.testing.assert_close(out.data, expected)
    grad_output = torch.randn(4, 7, dtype=torch.float64)
    out.backward(grad_output)
    expected.backward(grad_output)
    torch.testing.assert_close(ours.grad.data, theirs.grad)


def test_dropout_module_is_identity_in_eval_mode():
    layer = mt.nn.Dropout(0.5)
    x = mt.randn(100)
    assert not torch.equal(layer(x).data, x.data)
    layer.eval()
    assert torch.equal(layer(x).data, x.data)
    layer.train()
    assert layer.training


def test_dropout_keeps_the_expected_value():
    mt.manual_seed(0)
    p = 0.3
    out = F.dropout(mt.ones(200_000), p)
    kept = (out.data != 0).double().mean().item()
    assert abs(kept - (1 - p)) < 0.005  # binomial sd is 0.001
    assert torch.allclose(out.data[out.data != 0], torch.tensor(1 / (1 - p)))
    assert abs(out.data.mean().item() - 1.0) < 0.01


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_a_probability_outside_0_1(p):
    with pytest.raises(ValueError, match=f"between 0 and 1, but got {p}"):
        mt.nn.Dropout(p)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(mt.randn(3), p)


# ---------------------------------------------------------------------------- Flatten
@given(data=st.data())
def test_flatten_matches_torch(data, device):
    x = data.draw(mts.tensors(shape=mts.shapes(min_dims=2, max_dims=4), device=device))
    start = data.draw(st.integers(-x.dim(), x.dim() - 1))
    end = data.draw(st.integers(start % x.dim(), x.dim() - 1))
    assert_matches_twin(mt.nn.Flatten(start, end), x)


def test_activation_reprs_match_torch():
    pairs = [
        (mt.nn.ReLU(), torch.nn.ReLU()),
        (mt.nn.ReLU(inplace=True), torch.nn.ReLU(inplace=True)),
        (mt.nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (mt.nn.Sigmoid(), torch.nn.Sigmoid()),
        (mt.nn.Tanh(), torch.nn.Tanh()),
        (mt.nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
        (mt.nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)),
        (mt.nn.Dropout(0.25), torch.nn.Dropout(0.25)),
        (mt.nn.Flatten(), torch.nn.Flatten()),
        (mt.nn.Identity(), torch.nn.Identity()),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)


def test_softmax_dtype_argument_casts_first():
    x = torch.randn(3, 4)
    ours = mt.tensor(x, requires_grad=True)
    out = F.log_softmax(ours, 1, dtype=torch.float64)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.data, torch.log_softmax(x, 1, dtype=torch.float64))
    out.sum().backward()
    assert ours.grad.dtype == torch.float32

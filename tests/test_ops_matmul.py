"""Matrix products against torch and finite differences: 1-D, 2-D, batched and broadcast."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.study import gradcheck
from minitorch_edu.testing import Case, assert_matches_torch
from minitorch_edu.testing import strategies as mts


@st.composite
def matmul_cases(draw):
    """a @ b for every form torch.matmul accepts: each side 1-D, 2-D or batched; batch
    dims broadcast against each other (some missing, some of size 1)."""
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    a_kind, b_kind = (
        draw(st.sampled_from(["vector", "matrix", "batched"])),
        draw(st.sampled_from(["vector", "matrix", "batched"])),
    )
    batch_a, batch_b = draw(mts.broadcastable_shapes(2, min_dims=1, max_dims=2, max_side=3))
    a_shape = {"vector": (k,), "matrix": (n, k), "batched": (*batch_a, n, k)}[a_kind]
    b_shape = {"vector": (k,), "matrix": (k, m), "batched": (*batch_b, k, m)}[b_kind]
    a, b = draw(mts.tensors(shape=a_shape)), draw(mts.tensors(shape=b_shape))
    form = draw(st.sampled_from(["function", "operator", "method"]))
    ours = {
        "function": mt.matmul,
        "operator": lambda x, y: x @ y,
        "method": lambda x, y: x.matmul(y),
    }[form]
    return Case(f"{a_kind} @ {b_kind} ({form})", ours, torch.matmul, (a, b))


@given(case=matmul_cases())
def test_matmul_matches_torch(case, device):
    case = case.to(device)
    assert_matches_torch(case.ours, case.theirs, *case.inputs)


@given(case=matmul_cases())
def test_matmul_matches_finite_differences(case):
    gradcheck(case.ours, case.inputs)


@given(case=matmul_cases())
def test_matmul_double_backward_matches_torch(case):
    assert_matches_torch(case.ours, case.theirs, *case.inputs, double_backward=True)


@pytest.mark.parametrize("constant_side", [0, 1])
def test_matmul_with_a_constant_side(constant_side):
    a = torch.randn(3, 4, dtype=torch.float64)
    b = torch.randn(4, 2, dtype=torch.float64)
    wants = [True, True]
    wants[constant_side] = False
    assert_matches_torch(mt.matmul, torch.matmul, a, b, requires_grad=wants)


def test_mm_and_rmatmul_with_torch_and_numpy_constants():
    a = torch.randn(3, 4, dtype=torch.float64)
    b = torch.randn(4, 2, dtype=torch.float64)
    x = mt.tensor(b, requires_grad=True)
    assert_matches_torch(lambda y: a @ y, lambda y: a @ y, b)
    assert_matches_torch(lambda y: a.numpy() @ y, lambda y: a @ y, b)
    out = mt.tensor(a).mm(x)
    torch.testing.assert_close(out.data, a @ b)

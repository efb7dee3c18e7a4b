"""Joining, padding and strided windows against torch and finite differences: cat, stack,
pad (constant, negative padding crops), as_strided and unfold.

as_strided and unfold are the views that convolution and pooling stand on. Windows may
overlap (step < size: an element sits in several windows, its gradients add up) or skip
(step > size: some elements are in no window, their gradient is 0).
"""

import pytest
import torch
import torch.nn.functional as torch_functional
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.study import gradcheck
from minitorch_edu.testing import Case, assert_matches_torch
from minitorch_edu.testing import strategies as mts


@st.composite
def cat_cases(draw, stacked=False):
    """Two to four tensors equal in shape except along `dim` (for stack: equal shapes)."""
    shape = list(draw(mts.shapes(min_dims=0 if stacked else 1)))
    rank = len(shape) + 1 if stacked else len(shape)
    dim = draw(st.integers(-rank, rank - 1))
    tensors = []
    for _ in range(draw(st.integers(1, 4))):
        if not stacked:
            shape[dim] = draw(st.integers(0, 3))
        tensors.append(draw(mts.tensors(shape=tuple(shape))))
    count = len(tensors)
    if stacked:
        return Case(
            f"stack({count}, dim={dim})",
            lambda *ts: mt.stack(ts, dim),
            lambda *ts: torch.stack(ts, dim),
            tuple(tensors),
        )
    return Case(
        f"cat({count}, dim={dim})",
        lambda *ts: mt.cat(list(ts), dim=dim),
        lambda *ts: torch.cat(ts, dim=dim),
        tuple(tensors),
    )


@st.composite
def pad_cases(draw):
    """Constant padding of the last 1 to ndim dims; negative amounts crop (never below 1)."""
    x = draw(mts.tensors(shape=mts.shapes(min_dims=1)))
    pad = []
    for d in range(draw(st.integers(1, x.dim()))):
        size = x.shape[x.dim() - 1 - d]
        before = draw(st.integers(-(size - 1), 2))
        after = draw(st.integers(-(size - 1 + min(before, 0)), 2))
        pad += [before, after]
    value = draw(st.sampled_from([0.0, -1.5, 2.0]))
    return Case(
        f"pad({pad}, value={value})",
        lambda a: mt.pad(a, pad, value=value),
        lambda a: torch_functional.pad(a, pad, value=value),
        (x,),
    )


@st.composite
def as_strided_cases(draw):
    """Any in-bounds size/stride/offset: strides of 0 and overlaps come up often.

    Both read the storage behind the input, whatever its layout (the inputs drawn are often
    permuted), from the given storage offset.
    """
    x = draw(mts.tensors(shape=mts.shapes(min_dims=1)))
    size = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    stride = draw(st.lists(st.integers(0, 3), min_size=len(size), max_size=len(size)))
    reach = sum((n - 1) * s for n, s in zip(size, stride))
    offset = draw(st.integers(0, max(x.numel() - 1 - reach, 0)))
    if offset + reach >= x.numel():  # too far even from 0: shrink every stride to 0
        stride = [0] * len(size)
    return Case(
        f"as_strided({size}, {stride}, {offset})",
        lambda a: a.as_strided(size, stride, offset),
        lambda a: a.as_strided(size, stride, offset),
        (x,),
    )


@st.composite
def unfold_cases(draw):
    x = draw(mts.tensors(shape=mts.shapes(min_dims=1, max_side=6)))
    dim = draw(st.integers(-x.dim(), x.dim() - 1))
    size = draw(st.integers(1, x.shape[dim]))
    step = draw(st.integers(1, 4))  # below, at and above `size`
    return Case(
        f"unfold({dim}, size={size}, step={step})",
        lambda a: mt.unfold(a, dim, size, step),
        lambda a: a.unfold(dim, size, step),
        (x,),
    )


CASES = {
    "cat": cat_cases(),
    "stack": cat_cases(stacked=True),
    "pad": pad_cases(),
    "as_strided": as_strided_cases(),
    "unfold": unfold_cases(),
}


@pytest.mark.parametrize("name", CASES)
@given(data=st.data())
def test_matches_torch(name, data, device):
    case = data.draw(CASES[name]).to(device)
    assert_matches_torch(case.ours, case.theirs, *case.inputs)


@pytest.mark.parametrize("name", CASES)
@given(data=st.data())
def test_matches_finite_differences(name, data):
    case = data.draw(CASES[name])
    gradcheck(case.ours, case.inputs)


@pytest.mark.parametrize("name", CASES)
@given(data=st.data())
def test_double_backward_matches_torch(name, data):
    """Through a square of every input, so the second derivative is not zero."""
    case = data.draw(CASES[name])
    assert_matches_torch(
        lambda *ts: case.ours(*(t * t for t in ts)),
        lambda *ts: case.theirs(*(t * t for t in ts)),
        *case.inputs,
        double_backward=True,
    )


def test_overlapping_and_skipping_windows_worked_example():
    """unfold(0, 3, 1) of 5 elements: the middle one is in all three windows; with step 3
    and size 1 the elements between windows get no gradient."""
    x = mt.arange(5.0, requires_grad=True)
    x.unfold(0, 3, 1).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 3.0, 2.0, 1.0]
    x.grad = None
    x.unfold(0, 1, 3).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]


def test_as_strided_reads_the_storage_of_a_view_like_torch():
    """Offsets count from the start of the storage (not of the view), strides step through
    the storage whatever the view's layout, and an input that reads one element several
    times (an expanded tensor) shares that element's gradient, as in torch."""
    base = torch.arange(20.0, dtype=torch.float64)
    for offset in (None, 0, 7):
        assert_matches_torch(
            lambda a, o=offset: a[5:15].as_strided((3, 2), (2, 1), o),
            lambda a, o=offset: a[5:15].as_strided((3, 2), (2, 1), o),
            base,
            double_backward=True,
        )
    transposed = torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    assert_matches_torch(
        lambda a: a.t().as_strided((2, 2), (1, 2)),
        lambda a: a.t().as_strided((2, 2), (1, 2)),
        transposed,
        double_backward=True,
    )
    column = torch.randn(3, dtype=torch.float64)
    assert_matches_torch(
        lambda a: a[:, None].expand(3, 4).as_strided((2, 2), (1, 1)),
        lambda a: a[:, None].expand(3, 4).as_strided((2, 2), (1, 1)),
        column,
        double_backward=True,
    )


def test_cat_promotes_dtypes_and_returns_each_input_its_own_dtype():
    a = torch.randn(2, dtype=torch.float32)
    b = torch.randn(3, dtype=torch.float64)
    comparison = assert_matches_torch(
        lambda x, y: mt.cat([x, y]), lambda x, y: torch.cat([x, y]), a, b
    )
    assert comparison.grads[0].dtype == torch.float32


def test_cat_skips_an_empty_1d_input_like_torch():
    """torch's legacy rule: a (0,)-shaped tensor may stand among inputs of any rank."""
    empty = torch.randn(0, dtype=torch.float64)
    block = torch.randn(3, 2, 2, dtype=torch.float64)
    assert_matches_torch(
        lambda a, b, c: mt.cat([a, b, c], 1),
        lambda a, b, c: torch.cat([a, b, c], 1),
        empty,
        block,
        empty,
        double_backward=True,
    )


@pytest.mark.parametrize("name", ["cat", "stack"])
def test_cat_and_stack_of_one_tensor_instead_of_a_list_are_refused_like_torch(name):
    with pytest.raises(TypeError):
        getattr(torch, name)(torch.ones(2, 3))
    with pytest.raises(TypeError, match=f"{name}.*must be a tuple or list of Tensors"):
        getattr(mt, name)(mt.ones(2, 3))


def test_constant_pad_may_empty_a_dim_like_torch():
    x = torch.randn(5, 3, dtype=torch.float64)
    for amounts in [(-1, -2, 1, 1), (-3, 0), (0, 0, 1, -5)]:
        assert_matches_torch(
            lambda a, p=amounts: mt.pad(a, p, value=1.0),
            lambda a, p=amounts: torch_functional.pad(a, p, value=1.0),
            x,
            double_backward=True,
        )

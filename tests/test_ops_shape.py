"""Shape ops against torch and finite differences: reshape, view, flatten, squeeze, unsqueeze,
transpose, permute, expand, contiguous, T and mT.

They move numbers without changing them, so every gradient is the incoming one moved back;
expand is the one that sums (an element used in many places). Inputs come in permuted
memory layouts, so reshape of a non-contiguous tensor (a copy) is exercised too.
"""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.study import gradcheck
from minitorch_edu.testing import Case, assert_matches_torch
from minitorch_edu.testing import strategies as mts


def factorizations(numel):
    """Shapes with `numel` elements (up to 3 dims), one side maybe written as -1."""

    @st.composite
    def draw_shape(draw):
        sides, rest = [], numel
        for _ in range(draw(st.integers(0, 2))):
            divisor = draw(st.sampled_from([d for d in range(1, rest + 1) if rest % d == 0]))
            sides.append(divisor)
            rest //= divisor
        sides.append(rest)
        sides = draw(st.permutations(sides))
        if draw(st.booleans()):
            sides[draw(st.integers(0, len(sides) - 1))] = -1
        return tuple(sides)

    return draw_shape()


@st.composite
def reshape_cases(draw):
    x = draw(mts.tensors())
    shape = draw(factorizations(x.numel()))
    style = draw(st.sampled_from(["tuple", "unpacked", "function"]))
    ours = {
        "tuple": lambda a: a.reshape(shape),
        "unpacked": lambda a: a.reshape(*shape),
        "function": lambda a: mt.reshape(a, shape),
    }[style]
    return Case(f"reshape{shape} ({style})", ours, lambda a: a.reshape(shape), (x,))


@st.composite
def view_cases(draw):
    """view only where torch can view (contiguous input); the error otherwise is tested below."""
    x = draw(mts.tensors(non_contiguous=False))
    shape = draw(factorizations(x.numel()))
    return Case(f"view{shape}", lambda a: a.view(*shape), lambda a: a.view(shape), (x,))


@st.composite
def flatten_cases(draw):
    x = draw(mts.tensors())
    if x.dim() == 0:
        return Case("flatten()", lambda a: a.flatten(), lambda a: a.flatten(), (x,))
    start = draw(st.integers(-x.dim(), x.dim() - 1))
    end = draw(st.integers(start % x.dim(), x.dim() - 1))
    if draw(st.booleans()):
        end -= x.dim()
    return Case(
        f"flatten({start}, {end})",
        lambda a: mt.flatten(a, start, end),
        lambda a: a.flatten(start, end),
        (x,),
    )


@st.composite
def squeeze_cases(draw):
    x = draw(mts.tensors(shape=mts.shapes(max_side=2, max_dims=4)))
    dim = draw(st.none() | mts.dims(x.dim()))
    if dim is None:
        return Case("squeeze()", lambda a: a.squeeze(), lambda a: a.squeeze(), (x,))
    return Case(f"squeeze({dim})", lambda a: a.squeeze(dim), lambda a: a.squeeze(dim), (x,))


@st.composite
def unsqueeze_cases(draw):
    x = draw(mts.tensors())
    dim = draw(st.integers(-x.dim() - 1, x.dim()))
    return Case(f"unsqueeze({dim})", lambda a: a.unsqueeze(dim), lambda a: a.unsqueeze(dim), (x,))


@st.composite
def transpose_cases(draw):
    x = draw(mts.tensors(shape=mts.shapes(min_dims=1)))
    d0, d1 = draw(st.integers(-x.dim(), x.dim() - 1)), draw(st.integers(-x.dim(), x.dim() - 1))
    return Case(
        f"transpose({d0}, {d1})",
        lambda a: a.transpose(d0, d1),
        lambda a: a.transpose(d0, d1),
        (x,),
    )


@st.composite
def permute_cases(draw):
    x = draw(mts.tensors())
    dims = draw(st.permutations(range(x.dim())))
    dims = [d - x.dim() if draw(st.booleans()) else d for d in dims]
    unpacked = draw(st.booleans()) and dims
    ours = (lambda a: a.permute(*dims)) if unpacked else (lambda a: a.permute(dims))
    return Case(f"permute({dims})", ours, lambda a: a.permute(dims), (x,))


@st.composite
def expand_cases(draw):
    """Expand size-1 dims and add leading dims (-1 keeps a size)."""
    x = draw(mts.tensors(shape=mts.shapes(max_side=3)))
    sizes = [draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2)))]
    for side in x.shape:
        sizes.append(draw(st.sampled_from([-1, side] + ([2, 3] if side == 1 else []))))
    return Case(f"expand{sizes}", lambda a: a.expand(*sizes), lambda a: a.expand(sizes), (x,))


@st.composite
def expand_as_cases(draw):
    shape, target = draw(mts.broadcastable_shapes(2))
    target = torch.broadcast_shapes(shape, target)
    x = draw(mts.tensors(shape=shape))
    other = torch.empty(target)
    return Case(
        f"expand_as{list(target)}",
        lambda a: a.expand_as(other),
        lambda a: a.expand_as(other),
        (x,),
    )


def single(label, ours, theirs, **tensor_options):
    return mts.tensors(**tensor_options).map(lambda x: Case(label, ours, theirs, (x,)))


CASES = {
    "reshape": reshape_cases(),
    "view": view_cases(),
    "view_as": single(
        "view_as",
        lambda a: a.view_as(torch.empty(a.numel())),
        lambda a: a.view_as(torch.empty(a.numel())),
        non_contiguous=False,
    ),
    "flatten": flatten_cases(),
    "squeeze": squeeze_cases(),
    "unsqueeze": unsqueeze_cases(),
    "transpose": transpose_cases(),
    "permute": permute_cases(),
    "expand": expand_cases(),
    "expand_as": expand_as_cases(),
    "contiguous": single("contiguous", mt.contiguous, lambda a: a.contiguous()),
    "T": single("T", lambda a: a.T, lambda a: a.T, shape=mts.shapes(min_dims=2, max_dims=2)),
    "t": single("t", lambda a: a.t(), lambda a: a.t(), shape=mts.shapes(max_dims=2)),
    "mT": single("mT", lambda a: a.mT, lambda a: a.mT, shape=mts.shapes(min_dims=2, max_dims=4)),
}


@pytest.mark.parametrize("name", CASES)
@given(data=st.data())
def test_matches_torch(name, data, device):
    case = data.draw(CASES[name]).to(device)
    assert_matches_torch(case.ours, case.theirs, *case.inputs)


@pytest.mark.parametrize("name", ["reshape", "flatten", "permute", "expand", "transpose"])
@given(data=st.data())
def test_matches_finite_differences(name, data):
    case = data.draw(CASES[name])
    gradcheck(lambda a: case.ours(a) * 1.5, case.inputs)


@pytest.mark.parametrize("name", ["reshape", "permute", "expand"])
@given(data=st.data())
def test_double_backward_matches_torch(name, data):
    """Through a square, so the second derivative is not trivially zero."""
    case = data.draw(CASES[name])
    assert_matches_torch(
        lambda a: case.ours(a * a), lambda a: case.theirs(a * a), *case.inputs, double_backward=True
    )


def test_view_of_a_non_contiguous_tensor_raises_like_torch():
    with pytest.raises(RuntimeError, match="view"):
        torch.arange(6.0).reshape(2, 3).t().view(6)
    with pytest.raises(RuntimeError, match=r"Reshape: view size is not compatible .*\[3, 2\]"):
        mt.arange(6.0).reshape(2, 3).t().view(6)


def test_reshape_of_a_non_contiguous_tensor_copies_like_torch():
    base = torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    assert_matches_torch(lambda a: a.t().reshape(6), lambda a: a.t().reshape(6), base)
    assert math.prod(mt.tensor(base).t().reshape(-1).shape) == 6

"""Indexing against torch and finite differences: a[...] with every kind of index, gather,
scatter_add, index_select, index_add, narrow, select, split, chunk, unbind.

Each copies input elements to output positions, so each backward sends gradients back to
where they came from and must *add* where one element went to several places: repeated
integer indices are drawn often (small sides, small index ranges).
"""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.study import gradcheck
from minitorch_edu.testing import Case, assert_matches_torch
from minitorch_edu.testing import strategies as mts

# ------------------------------------------------------------------ a[index]


@st.composite
def slices(draw, size):
    """A slice with bounds that may be negative or past the end, and steps 1 to 3."""
    bound = st.none() | st.integers(-size - 1, size + 1)
    return slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, 3])))


@st.composite
def indices(draw, shape):
    """An index for a tensor of `shape`, as (ours, torch's): ints, slices, None, Ellipsis,
    integer tensors (repeats likely, negative allowed), boolean masks, and mixtures."""
    kind = draw(st.sampled_from(["basic", "integer tensors", "mask", "single"]))
    if kind == "single":  # a bare tensor, list or int index on the first dim
        if not shape:
            return (None, None)
        form = draw(st.sampled_from(["tensor", "list", "int", "mask"]))
        size = shape[0]
        if form == "int":
            i = draw(st.integers(-size, size - 1))
            return i, i
        if form == "mask":
            mask = torch.tensor(draw(st.lists(st.booleans(), min_size=size, max_size=size)))
            return mt.tensor(mask), mask
        values = draw(st.lists(st.integers(-size, size - 1), min_size=0, max_size=5))
        if form == "list" and values:
            return values, values
        index = torch.tensor(values, dtype=torch.int64)
        return mt.tensor(index), index

    parts = []  # (ours, torch's, number of dims consumed)
    advanced_shape = draw(mts.shapes(max_dims=2, max_side=3))
    mask_placed = False
    position = 0
    while position < len(shape):
        size = shape[position]
        choices = ["int", "slice", "full"]
        if kind == "integer tensors":
            choices.append("tensor")
        if kind == "mask" and not mask_placed:
            choices.append("mask")
        choice = draw(st.sampled_from(choices))
        if choice == "int":
            i = draw(st.integers(-size, size - 1))
            parts.append((i, i, 1))
        elif choice == "slice":
            s = draw(slices(size))
            parts.append((s, s, 1))
        elif choice == "full":
            parts.append((slice(None), slice(None), 1))
        elif choice == "tensor":
            count = torch.Size(advanced_shape).numel()
            values = draw(st.lists(st.integers(-size, size - 1), min_size=count, max_size=count))
            index = torch.tensor(values, dtype=torch.int64).reshape(advanced_shape)
            ours = mt.tensor(index) if draw(st.booleans()) else index
            parts.append((ours, index, 1))
        else:  # a mask over one or more consecutive dims
            span = draw(st.integers(1, len(shape) - position))
            mask_shape = shape[position : position + span]
            count = torch.Size(mask_shape).numel()
            flags = draw(st.lists(st.booleans(), min_size=count, max_size=count))
            mask = torch.tensor(flags, dtype=torch.bool).reshape(mask_shape)
            parts.append((mt.tensor(mask), mask, span))
            mask_placed = True
            position += span
            continue
        position += 1
    if parts and draw(st.booleans()):  # leave some trailing dims out
        parts = parts[: draw(st.integers(0, len(parts)))]
    elif draw(st.booleans()):  # or an Ellipsis standing for a run of parts
        start = draw(st.integers(0, len(parts)))
        stop = draw(st.integers(start, len(parts)))
        parts[start:stop] = [(Ellipsis, Ellipsis, 0)]
    for _ in range(draw(st.integers(0, 2))):  # new axes
        parts.insert(draw(st.integers(0, len(parts))), (None, None, 0))
    return tuple(p[0] for p in parts), tuple(p[1] for p in parts)


@st.composite
def getitem_cases(draw):
    x = draw(mts.tensors(shape=mts.shapes(max_dims=3, max_side=4)))
    ours_index, torch_index = draw(indices(tuple(x.shape)))
    return Case(
        f"getitem[{torch_index!r}]",
        lambda a: a[ours_index],
        lambda a: a[torch_index],
        (x,),
    )


# ------------------------------------------------------------------ gather / scatter family


def index_tensor(draw, shape, high):
    """int64 indices in [0, high) of `shape`: repeated values are common."""
    count = torch.Size(shape).numel()
    values = draw(st.lists(st.integers(0, high - 1), min_size=count, max_size=count))
    return torch.tensor(values, dtype=torch.int64).reshape(shape)


@st.composite
def gather_cases(draw):
    x = draw(mts.tensors(shape=mts.shapes(min_dims=1)))
    dim = draw(st.integers(-x.dim(), x.dim() - 1))
    shape = [draw(st.integers(1, side)) for side in x.shape]
    shape[dim] = draw(st.integers(1, 4))
    index = index_tensor(draw, shape, x.shape[dim])
    method = draw(st.booleans())
    ours = (lambda a, i: a.gather(dim, i)) if method else (lambda a, i: mt.gather(a, dim, i))
    return Case(f"gather(dim={dim})", ours, lambda a, i: a.gather(dim, i), (x, index))


@st.composite
def scatter_add_cases(draw, larger_src=False):
    """torch differentiates scatter_add only where src has index's shape; ours also where src
    is larger (its unused elements get 0), which finite differences check."""
    a = draw(mts.tensors(shape=mts.shapes(min_dims=1)))
    dim = draw(st.integers(-a.dim(), a.dim() - 1))
    index_shape = [draw(st.integers(1, side)) for side in a.shape]
    index_shape[dim] = draw(st.integers(1, 4))
    src_shape = [side + draw(st.integers(0, int(larger_src))) for side in index_shape]
    src = draw(mts.tensors(shape=tuple(src_shape)))
    index = index_tensor(draw, index_shape, a.shape[dim])
    return Case(
        f"scatter_add(dim={dim})",
        lambda x, i, s: x.scatter_add(dim, i, s),
        lambda x, i, s: x.scatter_add(dim, i, s),
        (a, index, src),
    )


@st.composite
def index_select_cases(draw):
    x = draw(mts.tensors(shape=mts.shapes(min_dims=1)))
    dim = draw(st.integers(-x.dim(), x.dim() - 1))
    index = index_tensor(draw, (draw(st.integers(0, 5)),), x.shape[dim])
    return Case(
        f"index_select(dim={dim})",
        lambda a, i: mt.index_select(a, dim, i),
        lambda a, i: a.index_select(dim, i),
        (x, index),
    )


@st.composite
def index_add_cases(draw):
    a = draw(mts.tensors(shape=mts.shapes(min_dims=1)))
    dim = draw(st.integers(-a.dim(), a.dim() - 1))
    length = draw(st.integers(0, 5))
    source_shape = list(a.shape)
    source_shape[dim] = length
    source = draw(mts.tensors(shape=tuple(source_shape)))
    index = index_tensor(draw, (length,), a.shape[dim])
    return Case(
        f"index_add(dim={dim})",
        lambda x, i, s: x.index_add(dim, i, s),
        lambda x, i, s: x.index_add(dim, i, s),
        (a, index, source),
    )


# ------------------------------------------------------------------ slicing along one dim


@st.composite
def narrow_cases(draw):
    x = draw(mts.tensors(shape=mts.shapes(min_dims=1)))
    dim = draw(st.integers(-x.dim(), x.dim() - 1))
    size = x.shape[dim]
    start = draw(st.integers(-size, size))
    length = draw(st.integers(0, size - start % size if start < 0 else size - start))
    return Case(
        f"narrow({dim}, {start}, {length})",
        lambda a: a.narrow(dim, start, length),
        lambda a: a.narrow(dim, start, length),
        (x,),
    )


@st.composite
def select_cases(draw):
    x = draw(mts.tensors(shape=mts.shapes(min_dims=1)))
    dim = draw(st.integers(-x.dim(), x.dim() - 1))
    index = draw(st.integers(-x.shape[dim], x.shape[dim] - 1))
    return Case(
        f"select({dim}, {index})",
        lambda a: mt.select(a, dim, index),
        lambda a: a.select(dim, index),
        (x,),
    )


@st.composite
def split_cases(draw):
    x = draw(mts.tensors(shape=mts.shapes(min_dims=1, max_side=5)))
    dim = draw(st.integers(-x.dim(), x.dim() - 1))
    size = x.shape[dim]
    if draw(st.booleans()):
        split_size = draw(st.integers(1, size + 1))
    else:  # a list of sizes adding up to the dim's length (zeros allowed)
        cuts = sorted(draw(st.lists(st.integers(0, size), max_size=3)))
        bounds = [0, *cuts, size]
        split_size = [b - a for a, b in zip(bounds, bounds[1:])]
    return Case(
        f"split({split_size}, dim={dim})",
        lambda a: a.split(split_size, dim),
        lambda a: a.split(split_size, dim),
        (x,),
    )


@st.composite
def chunk_cases(draw):
    x = draw(mts.tensors(shape=mts.shapes(min_dims=1, max_side=5)))
    dim = draw(st.integers(-x.dim(), x.dim() - 1))
    chunks = draw(st.integers(1, 6))
    return Case(
        f"chunk({chunks}, dim={dim})",
        lambda a: mt.chunk(a, chunks, dim),
        lambda a: a.chunk(chunks, dim),
        (x,),
    )


@st.composite
def unbind_cases(draw):
    x = draw(mts.tensors(shape=mts.shapes(min_dims=1)))
    dim = draw(st.integers(-x.dim(), x.dim() - 1))
    return Case(f"unbind({dim})", lambda a: a.unbind(dim), lambda a: a.unbind(dim), (x,))


CASES = {
    "getitem": getitem_cases(),
    "gather": gather_cases(),
    "scatter_add": scatter_add_cases(),
    "scatter_add_larger_src": scatter_add_cases(larger_src=True),
    "index_select": index_select_cases(),
    "index_add": index_add_cases(),
    "narrow": narrow_cases(),
    "select": select_cases(),
    "split": split_cases(),
    "chunk": chunk_cases(),
    "unbind": unbind_cases(),
}


@pytest.mark.parametrize("name", sorted(set(CASES) - {"scatter_add_larger_src"}))
@given(data=st.data())
def test_matches_torch(name, data, device):
    case = data.draw(CASES[name]).to(device)
    assert_matches_torch(case.ours, case.theirs, *case.inputs)


@pytest.mark.parametrize("name", CASES)
@given(data=st.data())
def test_matches_finite_differences(name, data):
    case = data.draw(CASES[name])
    gradcheck(case.ours, case.inputs)


def squared(fn):
    """fn applied to the square of its first input: a nonzero second derivative."""
    return lambda a, *rest: fn(a * a, *rest)


@pytest.mark.parametrize("name", ["getitem", "gather", "scatter_add", "index_add", "split"])
@given(data=st.data())
def test_double_backward_matches_torch(name, data):
    case = data.draw(CASES[name])
    assert_matches_torch(
        squared(case.ours), squared(case.theirs), *case.inputs, double_backward=True
    )


def test_repeated_indices_add_their_gradients():
    """The worked example: x[[0, 0, 2]] sends two gradients to x[0]."""
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    index = torch.tensor([0, 0, 2])
    assert_matches_torch(lambda a: a[index], lambda a: a[index], x)
    leaf = mt.tensor(x, requires_grad=True)
    leaf[mt.tensor(index)].sum().backward()
    assert leaf.grad.tolist() == [2.0, 0.0, 1.0]
    assert_matches_torch(lambda a, i: a.index_select(0, i), lambda a, i: a[i], x, index)
    assert_matches_torch(lambda a, i: a.gather(0, i), lambda a, i: a[i], x, index)


def test_index_with_numpy_array_and_list():
    x = torch.arange(12.0, dtype=torch.float64).reshape(3, 4)
    rows = [2, 0, 2]
    assert_matches_torch(lambda a: a[rows], lambda a: a[rows], x)
    assert_matches_torch(lambda a: a[torch.tensor(rows).numpy(), 1:], lambda a: a[rows, 1:], x)


def test_iterating_a_tensor_gives_differentiable_rows():
    x = torch.arange(6.0, dtype=torch.float64).reshape(3, 2)
    assert_matches_torch(lambda a: mt.stack(list(a)) * 2, lambda a: torch.stack(list(a)) * 2, x)


def test_narrow_from_a_negative_start_up_to_the_end():
    x = torch.arange(5.0, dtype=torch.float64)
    assert_matches_torch(lambda a: a.narrow(0, -2, 2), lambda a: a.narrow(0, -2, 2), x)


def test_split_and_chunk_of_an_empty_dim_like_torch():
    empty = torch.zeros(2, 0, dtype=torch.float64)
    for ours, theirs in [
        (lambda a: a.chunk(3, 1), lambda a: a.chunk(3, 1)),
        (lambda a: a.split(2, 1), lambda a: a.split(2, 1)),
        (lambda a: a.split([0, 0], 1), lambda a: a.split([0, 0], 1)),
    ]:
        assert_matches_torch(ours, theirs, empty)


# ---------------------------------------------------------------------------- torch's forms
@pytest.mark.parametrize(
    "name, ours, theirs",
    [
        ("gather", lambda a, i: a.gather(1, i), lambda a, i: a.gather(1, i)),
        (
            "scatter_add",
            lambda a, i: a.scatter_add(1, i, a[:, :2]),
            lambda a, i: a.scatter_add(1, i, a[:, :2]),
        ),
        (
            "index_select",
            lambda a, i: a.index_select(0, i[0]),
            lambda a, i: a.index_select(0, i[0]),
        ),
        ("index_add", lambda a, i: a.index_add(0, i[0], a), lambda a, i: a.index_add(0, i[0], a)),
    ],
)
def test_int32_indices_work_like_torch(name, ours, theirs):
    x = torch.randn(2, 3, dtype=torch.float64)
    index = torch.tensor([[0, 1], [1, 0]], dtype=torch.int32)
    assert_matches_torch(lambda a: ours(a, index), lambda a: theirs(a, index), x)


@pytest.mark.parametrize("alpha", [2, -0.5])
def test_index_add_takes_alpha_like_torch(alpha):
    a, source = torch.randn(4, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    index = torch.tensor([3, 0])
    assert_matches_torch(
        lambda x, s: mt.index_add(x, 0, index, s, alpha=alpha),
        lambda x, s: torch.index_add(x, 0, index, s, alpha=alpha),
        a,
        source,
        double_backward=True,
    )


def test_narrow_takes_a_0d_integer_tensor_start_like_torch():
    x = torch.randn(3, 5, dtype=torch.float64)
    for start in (torch.tensor(-2), torch.tensor(1, dtype=torch.int32)):
        assert_matches_torch(
            lambda a, s=start: a.narrow(1, s, 2), lambda a, s=start: a.narrow(1, s, 2), x
        )
    for bad in (torch.tensor(True), torch.tensor(1.0), torch.tensor([1])):
        with pytest.raises(RuntimeError):
            torch.randn(3, 5).narrow(1, bad, 2)
        with pytest.raises(RuntimeError, match="narrow.*start"):
            mt.randn(3, 5).narrow(1, bad, 2)

"""Hypothesis strategies for property tests of tensor code.

    from hypothesis import given
    from minitorch_edu.testing import strategies as mts

    @given(mts.tensors(shape=mts.shapes(max_dims=3)))
    def test_exp_log(x): ...

Tensors come out float64 by default, with bounded values (no NaN or inf) and, with
`non_contiguous=True`, with permuted memory layouts, so strided code paths get exercised.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

_NUMPY_DTYPES = {torch.float64: np.float64, torch.float32: np.float32}
_TINY = {torch.float64: 1e-30, torch.float32: 1e-6}


def shapes(
    min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
) -> st.SearchStrategy[tuple[int, ...]]:
    """Tensor shapes; sides of 1 are common, so broadcasting edge cases come up."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable_shapes(
    num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3, max_side: int = 4
) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """`num_shapes` shapes that broadcast together (some dims 1 or missing)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, max_side=max_side
    ).map(lambda result: result.input_shapes)


@st.composite
def tensors(
    draw: st.DrawFn,
    shape: Any = None,
    dtype: torch.dtype = torch.float64,
    min_value: float = -3.0,
    max_value: float = 3.0,
    non_contiguous: bool = True,
    device: str | torch.device = "cpu",
    integer_valued: bool = False,
    distinct: bool = False,
) -> torch.Tensor:
    """A torch.Tensor with values in [min_value, max_value] (magnitudes below 1e-30, or 1e-6
    in float32, drawn as 0: their powers would underflow).

    `shape` may be a tuple or a strategy of tuples (default: `shapes()`).
    `integer_valued=True` draws whole numbers only (still of a floating dtype), so that
    equal values (ties in max, maximum, sort) come up often. `distinct=True` makes every
    element differ from every other by at least 0.01, far from ties (for finite differences
    of max and min).
    """
    if shape is None:
        shape = shapes()
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    shape = tuple(shape)
    order = list(range(len(shape)))
    if non_contiguous and len(shape) > 1:
        order = draw(st.permutations(order))
    stored_shape = tuple(shape[i] for i in order)
    width = 32 if dtype == torch.float32 else 64
    if distinct:
        elements = st.integers(int(min_value * 100), int(max_value * 100)).map(lambda i: i / 100)
    elif integer_valued:
        elements = st.integers(int(min_value), int(max_value)).map(float)
    else:
        # Magnitudes so small that their squares or fourth powers underflow into subnormal
        # numbers, where precision is lost and no two implementations agree, become 0.
        tiny = _TINY[dtype]
        elements = st.floats(min_value, max_value, allow_nan=False, width=width).map(
            lambda value: 0.0 if abs(value) < tiny else value
        )
    array = draw(hnp.arrays(_NUMPY_DTYPES[dtype], stored_shape, elements=elements, unique=distinct))
    stored = torch.from_numpy(array).to(device)
    # stored dim j holds logical dim order[j]: permute back to the logical order
    inverse = [order.index(i) for i in range(len(shape))]
    return stored.permute(inverse) if shape else stored


def nonzero_tensors(**kwargs: Any) -> st.SearchStrategy[torch.Tensor]:
    """Tensors whose elements are bounded away from zero (for division, log of |x|, ...)."""
    low = kwargs.pop("min_abs", 0.5)
    return tensors(**kwargs).map(lambda t: torch.where(t >= 0, t + low, t - low))


def positive_tensors(min_value: float = 0.1, max_value: float = 5.0, **kwargs: Any):
    """Tensors with values in [min_value, max_value] (for log, sqrt, fractional powers)."""
    return tensors(min_value=min_value, max_value=max_value, **kwargs)


def tied_tensors(**kwargs: Any) -> st.SearchStrategy[torch.Tensor]:
    """Tensors of small whole numbers (as floats): many elements are equal."""
    kwargs.setdefault("min_value", -2)
    kwargs.setdefault("max_value", 2)
    return tensors(integer_valued=True, **kwargs)


def dims(ndim: int, allow_none: bool = False) -> st.SearchStrategy[Any]:
    """A dim argument for a tensor of `ndim` dims: an int or a tuple (either may hold
    negative dims), or None."""
    if ndim == 0:
        return st.sampled_from([None, 0, -1] if allow_none else [0, -1])
    single = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).flatmap(
        lambda chosen: st.tuples(*(st.sampled_from([d, d - ndim]) for d in chosen))
    )
    options = [single, several]
    if allow_none:
        options.append(st.none())
    return st.one_of(*options)

"""Reductions (sum, mean, max, min, amax, amin, logsumexp, var, std) against torch and finite
differences.

Each catalogue entry draws a tensor *and* the reduction's options (dim as an int, a tuple or
None, keepdim, correction), as one `Case`. Entries named `*_ties` draw whole numbers so that
equal values are common: torch shares the gradient among ties for amax/amin and max()/min()
without a dim, but sends it to the returned index for max(dim)/min(dim).
"""

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.study import gradcheck
from minitorch_edu.testing import Case, assert_matches_torch
from minitorch_edu.testing import strategies as mts


def torch_dim(dim):
    """torch spells 'every dim' as None for sum/mean/var, but as () for amax/amin/logsumexp."""
    return () if dim is None else dim


@st.composite
def reduction(draw, name, ours, theirs, allow_none=True, values=mts.tensors, **options):
    x = draw(values())
    dim = draw(mts.dims(x.dim(), allow_none=allow_none))
    keepdim = draw(st.booleans())
    return Case(
        f"{name}(dim={dim}, keepdim={keepdim})",
        lambda a: ours(a, dim, keepdim=keepdim, **options),
        lambda a: theirs(a, dim, keepdim=keepdim, **options),
        (x,),
    )


@st.composite
def variance(draw, name, ours, theirs):
    """var/std with a correction below the number of reduced elements (so it is finite)."""
    x = draw(mts.tensors())
    dim = draw(mts.dims(x.dim(), allow_none=True))
    dims = range(x.dim()) if dim is None else (dim,) if isinstance(dim, int) else dim
    count = 1
    for d in dims:
        count *= x.shape[d] if x.dim() else 1
    correction = draw(st.integers(0, max(count - 1, 0)))
    keepdim = draw(st.booleans())
    label = f"{name}(dim={dim}, correction={correction}, keepdim={keepdim})"
    if draw(st.booleans()):
        return Case(
            label,
            lambda a: ours(a, dim, keepdim=keepdim, correction=correction),
            lambda a: theirs(a, dim, keepdim=keepdim, correction=correction),
            (x,),
        )
    unbiased = correction == 1  # the older spelling, positional as in torch
    return Case(
        label + f" as unbiased={unbiased}",
        lambda a: ours(a, dim, unbiased, keepdim),
        lambda a: theirs(a, dim, unbiased, keepdim),
        (x,),
    )


@st.composite
def extreme_along_dim(draw, name, ours, theirs, values):
    """max(a, dim) / min(a, dim): (values, indices)."""
    x = draw(values(shape=mts.shapes(min_dims=1)))
    dim = draw(st.integers(-x.dim(), x.dim() - 1))
    keepdim = draw(st.booleans())
    return Case(
        f"{name}(dim={dim}, keepdim={keepdim})",
        lambda a: ours(a, dim, keepdim),
        lambda a: theirs(a, dim, keepdim),
        (x,),
    )


@st.composite
def extreme_of_all(draw, name, ours, theirs, values):
    """max(a) / min(a): one value, the gradient shared among ties."""
    return Case(name, ours, theirs, (draw(values()),))


def amax_torch(a, dim, keepdim):
    return torch.amax(a, torch_dim(dim), keepdim)


def amin_torch(a, dim, keepdim):
    return torch.amin(a, torch_dim(dim), keepdim)


def logsumexp_torch(a, dim, keepdim):
    return torch.logsumexp(a, torch_dim(dim), keepdim)


def distinct_values(**kwargs):
    return mts.tensors(distinct=True, **kwargs)


def tied_values(**kwargs):
    return mts.tied_tensors(**kwargs)


def spread_values(**kwargs):
    return mts.tensors(min_value=-30.0, max_value=30.0, **kwargs)


CASES = {
    "sum": reduction("sum", mt.sum, torch.sum),
    "sum_method": reduction("sum", lambda a, d, keepdim: a.sum(d, keepdim), torch.sum),
    "mean": reduction("mean", mt.mean, torch.mean),
    "amax": reduction("amax", mt.amax, amax_torch, values=distinct_values),
    "amin": reduction("amin", mt.amin, amin_torch, values=distinct_values),
    "amax_ties": reduction("amax", mt.amax, amax_torch, values=tied_values),
    "amin_ties": reduction("amin", mt.amin, amin_torch, values=tied_values),
    "max_all": extreme_of_all("max", mt.max, torch.max, distinct_values),
    "min_all": extreme_of_all("min", lambda a: a.min(), torch.min, distinct_values),
    "max_all_ties": extreme_of_all("max", mt.max, torch.max, tied_values),
    "min_all_ties": extreme_of_all("min", lambda a: a.min(), torch.min, tied_values),
    "max_dim": extreme_along_dim("max", mt.max, torch.max, distinct_values),
    "min_dim": extreme_along_dim("min", lambda a, d, k: a.min(d, k), torch.min, distinct_values),
    "max_dim_ties": extreme_along_dim("max", mt.max, torch.max, tied_values),
    "min_dim_ties": extreme_along_dim("min", mt.min, torch.min, tied_values),
    "logsumexp": reduction(
        "logsumexp", mt.logsumexp, logsumexp_torch, allow_none=False, values=spread_values
    ),
    "var": variance("var", mt.var, torch.var),
    "std": variance("std", lambda a, *args, **kw: a.std(*args, **kw), torch.std),
}
# Ties sit on a kink: the torch comparison holds there, finite differences do not.
NOT_SMOOTH = {name for name in CASES if name.endswith("_ties")}


@pytest.mark.parametrize("name", CASES)
@given(data=st.data())
def test_matches_torch(name, data, device):
    case = data.draw(CASES[name]).to(device)
    assert_matches_torch(case.ours, case.theirs, *case.inputs)


def away_from_kinks(name, case):
    """std has a kink where it is 0 (all reduced values equal), and is ill-conditioned near
    it (its second derivative grows like 1 / std): keep such draws out."""
    if name == "std":
        assume(bool((case.theirs(*case.inputs) > 1e-3).all()))


@pytest.mark.parametrize("name", sorted(set(CASES) - NOT_SMOOTH))
@given(data=st.data())
def test_matches_finite_differences(name, data):
    case = data.draw(CASES[name])
    away_from_kinks(name, case)
    gradcheck(case.ours, case.inputs)


@pytest.mark.parametrize("name", ["sum", "mean", "amax_ties", "max_dim", "logsumexp", "var", "std"])
@given(data=st.data())
def test_double_backward_matches_torch(name, data):
    case = data.draw(CASES[name])
    away_from_kinks(name, case)
    assert_matches_torch(case.ours, case.theirs, *case.inputs, double_backward=True)


def test_ties_follow_torch_exactly():
    """The worked example: amax and max() share; max(dim) picks the first index, as torch."""
    x = torch.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]], dtype=torch.float64)
    for ours, theirs in [
        (lambda a: a.amax(1), lambda a: a.amax(1)),
        (lambda a: a.max(), lambda a: a.max()),
        (lambda a: a.max(1), lambda a: a.max(1)),
        (lambda a: a.min(0), lambda a: a.min(0)),
    ]:
        assert_matches_torch(ours, theirs, x)
    found = mt.tensor(x, requires_grad=True)
    found.max(1).values.sum().backward()
    assert found.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]


def test_std_of_equal_values_has_zero_gradient_like_torch():
    x = torch.full((2, 3), 1.5, dtype=torch.float64)
    assert_matches_torch(lambda a: a.std(1), lambda a: a.std(1), x)
    assert_matches_torch(lambda a: a.std(), lambda a: a.std(), x)


def test_correction_at_least_count_gives_torchs_value_and_gradient():
    """No degrees of freedom left: the value is inf or nan (torch warns). torch's gradient
    then follows two rules, which ours copies: over every element, inf (nan where an element
    equals the mean); along a dim, 2 / (n - correction) * (a - mean), n - correction <= 0."""
    x = torch.tensor([1.0, 2.0, 4.0, 7.0 / 3.0], dtype=torch.float64)
    for correction in (4, 6):
        for dim in (None, 0):
            with pytest.warns(UserWarning):
                assert_matches_torch(
                    lambda a, c=correction, d=dim: a.var(d, correction=c),
                    lambda a, c=correction, d=dim: torch.var(a, d, correction=c),
                    x,
                )


def test_empty_dim_tuple_means_every_dim_like_torch():
    x = torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    for name in ["sum", "mean", "amax", "amin"]:
        assert_matches_torch(
            lambda a, name=name: getattr(a, name)(dim=()),
            lambda a, name=name: getattr(a, name)(dim=()),
            x,
        )
    # torch's var/std backward mistakes dim=() for "no dims" (its gradient is +-inf), so
    # these are held against dim=None, which torch's forward treats the same way.
    for name in ["var", "std"]:
        assert_matches_torch(
            lambda a, name=name: getattr(a, name)(dim=()),
            lambda a, name=name: getattr(a, name)(dim=None),
            x,
        )


def test_logsumexp_is_stable_at_large_and_infinite_values():
    x = torch.tensor([[1000.0, 1000.0], [-1000.0, -float("inf")]], dtype=torch.float64)
    assert_matches_torch(lambda a: a.logsumexp(1), lambda a: a.logsumexp(1), x)
    all_minus_inf = torch.full((2,), -float("inf"), dtype=torch.float64)
    assert_matches_torch(lambda a: a.logsumexp(0), lambda a: a.logsumexp(0), all_minus_inf)


def test_max_with_a_tensor_is_maximum_like_torch():
    a = torch.tensor([1.0, 5.0, 2.0], dtype=torch.float64)
    b = torch.tensor([3.0, 4.0, 2.0], dtype=torch.float64)
    assert_matches_torch(lambda x, y: x.max(y), torch.max, a, b)
    assert_matches_torch(lambda x, y: mt.min(x, y), torch.min, a, b)


def test_reductions_of_integer_tensors_follow_torch_dtypes():
    x = torch.tensor([[1, 2], [3, 4]])
    for name in ["sum", "amax", "amin"]:
        ours = getattr(mt.tensor(x), name)(0)
        torch.testing.assert_close(ours.data, getattr(x, name)(0))
    assert mt.tensor([True, False, True]).sum().item() == 2


@pytest.mark.filterwarnings("ignore:(var|std).*degrees of freedom")
def test_reductions_over_an_empty_dim_like_torch():
    empty = torch.zeros(0, 3, dtype=torch.float64)
    for name in ["sum", "mean", "logsumexp", "var", "std"]:
        assert_matches_torch(
            lambda a, name=name: getattr(a, name)(0),
            lambda a, name=name: getattr(a, name)(0),
            empty,
        )
    with pytest.raises(IndexError, match="non-zero size"):
        mt.tensor(empty).amax(0)


# ---------------------------------------------------------------------------- torch's forms
@pytest.mark.parametrize("args", [(True,), (False,), (0, True), (0, False, True)])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_and_std_read_a_positional_bool_as_unbiased_like_torch(name, args):
    x = torch.randn(4, 3, dtype=torch.float64)
    assert_matches_torch(
        lambda a: getattr(mt, name)(a, *args), lambda a: getattr(torch, name)(a, *args), x
    )
    assert_matches_torch(lambda a: getattr(a, name)(*args), lambda a: getattr(a, name)(*args), x)


@pytest.mark.parametrize("name", ["var", "std"])
def test_half_precision_variance_sums_in_float32_like_torch(name):
    """Squares above 65504 overflow float16; torch (and now ours) sum them in float32."""
    x = torch.tensor([[300.0, 400.0, 500.0], [1.0, 2.0, 4.0]], dtype=torch.float16)
    for dim in (None, 1):
        expected = getattr(torch, name)(x, dim)
        result = getattr(mt, name)(mt.tensor(x), dim)
        assert result.dtype == torch.float16 and torch.isfinite(result.data).all()
        torch.testing.assert_close(result.data, expected)


@pytest.mark.parametrize("name", ["var", "std"])
def test_complex_variance_is_real_like_torch(name):
    z = torch.randn(5, 3, dtype=torch.complex128)
    for dim in (None, 0):
        expected = getattr(torch, name)(z, dim)
        result = getattr(mt, name)(mt.tensor(z), dim)
        assert result.dtype == expected.dtype == torch.float64
        torch.testing.assert_close(result.data, expected)


@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_and_mean_take_a_dtype_like_torch(name):
    x = torch.tensor([[1.5, 2.5], [3.0, -1.0]], dtype=torch.float32)
    for dtype in (torch.float64, torch.float16):
        assert_matches_torch(
            lambda a, d=dtype: getattr(mt, name)(a, 1, dtype=d),
            lambda a, d=dtype: getattr(torch, name)(a, 1, dtype=d),
            x,
            rtol=1e-3,
        )
    integers = torch.tensor([1, 2, 4])
    expected = torch.mean(integers, dtype=torch.float64)
    assert mt.tensor(integers).mean(dtype=torch.float64).item() == expected.item()


def test_float32_variance_of_tiny_values_accumulates_in_float64_like_torch():
    """(5.9e-39)^2 is 0 in float32; torch's CPU kernel accumulates float32 in float64."""
    x = torch.tensor([[-1.1755e-38, 0.0], [3.0, 1.0]], dtype=torch.float32)
    for name in ("std", "var"):
        assert_matches_torch(
            lambda a, n=name: getattr(a, n)(1),
            lambda a, n=name: getattr(a, n)(1),
            x,
            rtol=1e-6,
            atol=1e-45,
        )


@pytest.mark.parametrize("name", ["var", "std"])
def test_complex_variance_keeps_every_dim_like_torch(name):
    z = torch.tensor([[1 + 6j], [2 - 1j]], dtype=torch.complex64)
    for dim in (1, -1, 0):
        expected = getattr(torch, name)(z, dim)
        result = getattr(mt, name)(mt.tensor(z), dim)
        assert result.shape == expected.shape
        torch.testing.assert_close(result.data, expected, equal_nan=True)

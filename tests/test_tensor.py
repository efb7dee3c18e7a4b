"""The mt.Tensor API and the factories against torch: DESIGN.md's contract, one behaviour per test.

Constants of every kind (torch tensors, NumPy arrays, Python numbers) on either side of every
operator; dtypes and devices of results and gradients; conversions; in-place methods.
"""

import operator

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.testing import assert_matches_torch
from minitorch_edu.testing import strategies as mts

# ------------------------------------------------------------------ creation


@pytest.mark.parametrize(
    "data",
    [
        3.5,
        2,
        True,
        [1.0, 2.0],
        [[1, 2], [3, 4]],
        np.array([1.5, 2.5]),
        np.arange(4, dtype=np.int32),
    ],
    ids=["float", "int", "bool", "list", "nested ints", "numpy float64", "numpy int32"],
)
def test_tensor_from_python_and_numpy_data_matches_torch(data, device):
    ours = mt.tensor(data, device=device)
    theirs = torch.tensor(data, device=device)
    assert ours.dtype == theirs.dtype and ours.device == theirs.device
    torch.testing.assert_close(ours.data, theirs)
    assert ours.is_leaf and not ours.requires_grad and ours.grad is None


def test_tensor_copies_its_data():
    array = np.ones(3)
    source = torch.ones(3)
    from_array, from_torch = mt.tensor(array), mt.tensor(source)
    from_ours = mt.tensor(from_torch)
    array[0], source[0] = 7.0, 7.0
    from_torch.data[1] = 5.0
    assert from_array.tolist() == from_torch.tolist()[:1] + [1.0, 1.0]
    assert from_ours.tolist() == [1.0, 1.0, 1.0]


def test_tensor_with_dtype_device_and_requires_grad():
    x = mt.tensor([1, 2], dtype=torch.float64, requires_grad=True)
    assert x.dtype == torch.float64 and x.requires_grad and x.is_leaf
    assert mt.tensor(torch.ones(2, requires_grad=True)).requires_grad is False
    assert mt.tensor([mt.tensor(1.0), mt.tensor(2.0)]).tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    "name, args",
    [
        ("zeros", (2, 3)),
        ("zeros", ((2, 3),)),
        ("zeros", ((),)),
        ("ones", ([4],)),
        ("ones", (torch.Size([2, 1]),)),
        ("empty", (0, 2)),
        ("full", ((2, 2), 1.5)),
        ("full", ((3,), 7)),
        ("arange", (5,)),
        ("arange", (1, 2.5, 0.5)),
        ("eye", (3,)),
        ("eye", (2, 4)),
        ("linspace", (0, 1, 5)),
    ],
)
def test_factories_match_torch(name, args, device):
    ours = getattr(mt, name)(*args, device=device)
    theirs = getattr(torch, name)(*args, device=device)
    assert isinstance(ours, mt.Tensor)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert ours.device == theirs.device
    if name != "empty":
        torch.testing.assert_close(ours.data, theirs)


@pytest.mark.parametrize("name", ["zeros", "ones", "rand", "randn", "empty"])
def test_factories_take_dtype_and_requires_grad(name):
    x = getattr(mt, name)(2, 3, dtype=torch.float64, requires_grad=True)
    assert x.dtype == torch.float64 and x.requires_grad and x.is_leaf and x.shape == (2, 3)


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "full_like"])
def test_like_factories_match_torch(name, device):
    source = torch.arange(6.0, dtype=torch.float64, device=device).reshape(2, 3)
    extra = (2.5,) if name == "full_like" else ()
    for like in (source, mt.tensor(source)):
        ours = getattr(mt, name)(like, *extra)
        torch.testing.assert_close(ours.data, getattr(torch, name)(source, *extra))
        as_int = getattr(mt, name)(like, *extra, dtype=torch.int32)
        assert as_int.dtype == torch.int32
    assert mt.zeros_like(source, requires_grad=True).requires_grad


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: mt.rand(3, 2), lambda: torch.rand(3, 2)),
        (lambda: mt.randn(4, dtype=torch.float64), lambda: torch.randn(4, dtype=torch.float64)),
        (lambda: mt.randn_like(mt.zeros(2, 2)), lambda: torch.randn_like(torch.zeros(2, 2))),
        (lambda: mt.rand_like(torch.zeros(3)), lambda: torch.rand_like(torch.zeros(3))),
        (lambda: mt.empty(5).normal_(1.0, 2.0), lambda: torch.empty(5).normal_(1.0, 2.0)),
        (lambda: mt.empty(5).uniform_(-1, 1), lambda: torch.empty(5).uniform_(-1, 1)),
    ],
)
def test_manual_seed_gives_the_same_numbers_as_torch(ours, theirs):
    mt.manual_seed(1234)
    first = ours()
    torch.manual_seed(1234)
    expected = theirs()
    torch.testing.assert_close(first.data, expected)
    mt.manual_seed(1234)
    torch.testing.assert_close(ours().data, first.data)


# ------------------------------------------------------------------ display and metadata


def ours_named(text: str) -> str:
    """torch's repr as ours shows it: the library's name in front, continuation lines aligned."""
    return "minitorch_edu." + text.replace("\n", "\n" + " " * len("minitorch_edu."))


def test_repr_is_torchs_with_the_library_named():
    ours = mt.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    theirs = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    assert repr(ours) == ours_named(repr(theirs))
    assert repr(ours * 2) == ours_named(repr(theirs * 2).replace("MulBackward0", "MulBackward"))
    assert repr((ours * 2).sum()) == ours_named(
        repr((theirs * 2).sum()).replace("Backward0", "Backward")
    )
    assert repr(mt.tensor([3, 4])) == "minitorch_edu.tensor([3, 4])"
    assert str(mt.ones(2, 2)) == "minitorch_edu.tensor([[1., 1.],\n                      [1., 1.]])"
    assert f"{mt.tensor(2.5):.2f}" == "2.50"


def test_metadata_matches_torch(device):
    source = torch.arange(24.0, device=device).reshape(2, 3, 4)
    x = mt.tensor(source)
    assert x.shape == source.shape and x.size() == source.size()
    assert x.size(1) == 3 and x.size(-1) == 4
    assert x.dim() == x.ndim == 3 and x.numel() == 24 and len(x) == 2
    assert x.dtype == torch.float32 and x.device == source.device
    assert x.is_floating_point() and x.is_contiguous() and not x.transpose(0, 1).is_contiguous()
    assert x.stride() == source.stride()


def test_item_tolist_numpy_and_python_conversions():
    x = mt.tensor([[1.5, 2.0], [3.0, 4.0]])
    assert x.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert mt.tensor(2.5).item() == 2.5 and float(mt.tensor(2.5)) == 2.5
    assert int(mt.tensor(3)) == 3 and list(range(mt.tensor(3))) == [0, 1, 2]
    assert bool(mt.tensor(True))
    np.testing.assert_array_equal(x.numpy(), x.data.numpy())
    np.testing.assert_array_equal(np.asarray(x), x.data.numpy())
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        x.item()


def test_numpy_of_a_tensor_that_requires_grad_is_an_error_like_torch():
    x = mt.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError) as ours:
        x.numpy()
    with pytest.raises(RuntimeError) as theirs:
        torch.ones(2, requires_grad=True).numpy()
    assert str(ours.value) == str(theirs.value)
    assert x.detach().numpy().tolist() == [1.0, 1.0]


def test_detach_shares_memory_and_leaves_the_graph():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert d.data.data_ptr() == y.data.data_ptr()


def test_requires_grad_and_is_leaf_like_torch():
    x = mt.tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad and x.is_leaf
    y = x * 2
    assert not y.is_leaf and y.requires_grad
    y.requires_grad_(True)  # already true: allowed, as in torch
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)
    x.requires_grad = False
    assert not (x * 2).requires_grad and (x * 2).is_leaf


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_tensors_cannot_require_grad_like_torch(dtype):
    with pytest.raises(RuntimeError, match="only Tensors of floating point"):
        mt.tensor([1, 0], dtype=dtype, requires_grad=True)
    with pytest.raises(RuntimeError, match="only Tensors of floating point"):
        mt.zeros(2, dtype=dtype).requires_grad_()
    with pytest.raises(RuntimeError, match="only Tensors of floating point"):
        torch.zeros(2, dtype=dtype).requires_grad_()


# ------------------------------------------------------------------ conversions


def test_to_changes_dtype_differentiably_like_torch():
    x = torch.tensor([0.1, 0.2], dtype=torch.float64)
    comparison = assert_matches_torch(lambda a: a.to(torch.float32) * 3, lambda a: a.float() * 3, x)
    assert comparison.output.dtype == torch.float32 and comparison.grads[0].dtype == torch.float64
    for method in ("float", "double"):
        assert_matches_torch(
            lambda a, m=method: getattr(a, m)() * 2, lambda a, m=method: getattr(a, m)() * 2, x
        )
    assert_matches_torch(lambda a: a.to(dtype=torch.float32), lambda a: a.to(torch.float32), x)


def test_to_the_same_dtype_or_device_returns_the_tensor_itself_like_torch(device):
    x = mt.ones(2, device=device, requires_grad=True)
    assert x.to(torch.float32) is x and x.to(device) is x and x.to(x) is x
    assert x.to(device=device, dtype=torch.float32) is x
    assert mt.ones(2).cpu().device.type == "cpu"


def test_to_an_integer_dtype_has_no_gradient():
    x = mt.tensor([1.7, -2.2], requires_grad=True)
    as_long = x.long()
    assert as_long.dtype == torch.int64 and not as_long.requires_grad
    assert as_long.tolist() == [1, -2]


def test_to_another_tensors_dtype_and_device():
    x = mt.ones(2, requires_grad=True)
    y = x.to(torch.zeros(1, dtype=torch.float64))
    assert y.dtype == torch.float64 and y.requires_grad
    assert x.to(mt.zeros(1, dtype=torch.float16)).dtype == torch.float16


@pytest.mark.cuda
def test_cuda_and_back_is_differentiable():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    comparison = assert_matches_torch(
        lambda a: (a.cuda() * 2).cpu(), lambda a: (a.cuda() * 2).cpu(), x
    )
    assert comparison.grads[0].device.type == "cpu"


# ------------------------------------------------------------------ constants of every kind

BINARY_OPERATORS = [
    operator.add,
    operator.sub,
    operator.mul,
    operator.truediv,
    operator.pow,
    operator.matmul,
]


@pytest.mark.parametrize("op", BINARY_OPERATORS, ids=lambda op: op.__name__)
@pytest.mark.parametrize("kind", ["torch", "numpy", "number"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_constants_on_either_side_of_every_operator(op, kind, side, device):
    """Our Tensor with a constant: the same value and gradient as torch with that constant."""
    values = torch.tensor([[0.5, 1.5], [2.0, 1.25]], dtype=torch.float64, device=device)
    if op is operator.matmul and kind == "number":  # refused on both sides
        arguments = (1.5, values) if side == "left" else (values, 1.5)
        with pytest.raises((TypeError, RuntimeError)) as torch_error:
            op(*arguments)
        ours = [mt.tensor(a) if isinstance(a, torch.Tensor) else a for a in arguments]
        with pytest.raises(torch_error.type):
            op(*ours)
        return
    constant = torch.tensor([[1.5, 0.75], [0.5, 2.0]], dtype=torch.float64, device=device)
    as_constant = {
        "torch": constant,
        "numpy": constant.cpu().numpy(),
        "number": 1.5,
    }[kind]
    torch_constant = constant if kind != "number" else 1.5
    if side == "left":
        ours, theirs = (lambda a: op(as_constant, a)), (lambda a: op(torch_constant, a))
    else:
        ours, theirs = (lambda a: op(a, as_constant)), (lambda a: op(a, torch_constant))
    comparison = assert_matches_torch(ours, theirs, values)
    assert isinstance(comparison.output, mt.Tensor)
    assert comparison.output.device == values.device


@pytest.mark.parametrize("kind", ["torch", "numpy", "number"])
def test_constants_in_comparisons_and_functions(kind):
    values = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    constant = {"torch": torch.tensor([1.0, -2.0, 2.0], dtype=torch.float64), "number": 1.0}.get(
        kind, np.array([1.0, -2.0, 2.0])
    )
    torch_constant = torch.as_tensor(constant, dtype=torch.float64)
    x = mt.tensor(values)
    for op in (operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne):
        assert op(x, constant).tolist() == op(values, torch_constant).tolist()
        assert op(constant, x).tolist() == op(torch_constant, values).tolist()
    assert_matches_torch(
        lambda a: mt.maximum(a, constant) + mt.minimum(constant, a),
        lambda a: torch.maximum(a, torch_constant) + torch.minimum(torch_constant, a),
        values,
    )
    condition = values > 0
    assert_matches_torch(
        lambda a: mt.where(condition, a, constant) + mt.where(condition, constant, a),
        lambda a: (
            torch.where(condition, a, torch_constant) + torch.where(condition, torch_constant, a)
        ),
        values,
    )
    if kind != "number":
        assert_matches_torch(
            lambda a: mt.cat([a, constant]) + mt.stack([constant, a]).reshape(-1),
            lambda a: torch.cat([a, torch_constant]) + torch.stack([torch_constant, a]).reshape(-1),
            values,
        )


def test_functions_accept_plain_torch_tensors_and_numpy_arrays():
    values = np.array([[1.0, 2.0], [3.0, 4.0]])
    for data in (values, torch.from_numpy(values)):
        out = mt.exp(data)
        assert isinstance(out, mt.Tensor) and not out.requires_grad
        torch.testing.assert_close(out.data, torch.exp(torch.from_numpy(values)))
        assert mt.sum(data, 0).tolist() == [4.0, 6.0]
        assert mt.matmul(data, data).tolist() == (values @ values).tolist()


# ------------------------------------------------------------------ dtypes and devices


@given(shapes=mts.broadcastable_shapes(2), data=st.data())
def test_results_and_gradients_follow_torch_type_promotion(shapes, data):
    dtypes = st.sampled_from([torch.float32, torch.float64])
    first, second = data.draw(dtypes), data.draw(dtypes)
    a = data.draw(mts.tensors(shape=shapes[0])).to(first)
    b = data.draw(mts.tensors(shape=shapes[1])).to(second)
    comparison = assert_matches_torch(
        lambda x, y: (x * y + x) / (y * y + 1),
        lambda x, y: (x * y + x) / (y * y + 1),
        a,
        b,
        rtol=1e-5,
        atol=1e-6,
    )
    # (the output's dtype was compared with torch's, 0-d tensors not promoting, inside)
    assert comparison.grads[0].dtype == first and comparison.grads[1].dtype == second


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_python_numbers_keep_the_tensors_dtype(dtype, device):
    x = mt.ones(3, dtype=dtype, device=device, requires_grad=True)
    y = (x * 2.5 + 1) ** 2 / 3 - 0.5
    assert y.dtype == dtype and y.device == x.device
    y.sum().backward()
    assert x.grad.dtype == dtype and x.grad.device == x.device


def test_integer_tensors_promote_like_torch():
    ints = torch.tensor([1, 2, 3])
    for op in (lambda a: a * 1.5, lambda a: a / 2, lambda a: a + 1, lambda a: a * True):
        ours = op(mt.tensor(ints))
        theirs = op(ints)
        assert ours.dtype == theirs.dtype
        torch.testing.assert_close(ours.data, theirs)


# ------------------------------------------------------------------ in place


@pytest.mark.parametrize(
    "apply, expected",
    [
        (lambda t: t.__iadd__(1.0), [2.0, 3.0]),
        (lambda t: t.__isub__(mt.tensor([1.0, 1.0])), [0.0, 1.0]),
        (lambda t: t.__imul__(torch.tensor(3.0)), [3.0, 6.0]),
        (lambda t: t.__itruediv__(2), [0.5, 1.0]),
        (lambda t: t.add_(mt.tensor([1.0, 1.0]), alpha=2), [3.0, 4.0]),
        (lambda t: t.sub_(1.0), [0.0, 1.0]),
        (lambda t: t.mul_(2), [2.0, 4.0]),
        (lambda t: t.div_(4), [0.25, 0.5]),
        (lambda t: t.zero_(), [0.0, 0.0]),
        (lambda t: t.fill_(7), [7.0, 7.0]),
        (lambda t: t.copy_(np.array([5.0, 6.0])), [5.0, 6.0]),
        (lambda t: t.add_(np.array([1.0, 1.0])), [2.0, 3.0]),
        (lambda t: t.clamp_(1.5, 1.75), [1.5, 1.75]),
        (lambda t: t.__setitem__(0, 9.0), [9.0, 2.0]),
        (lambda t: t.__setitem__(mt.tensor([False, True]), mt.tensor(4.0)), [1.0, 4.0]),
    ],
)
def test_in_place_methods_under_no_grad(apply, expected):
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    with mt.no_grad():
        result = apply(x)
    assert x.tolist() == expected
    assert result is None or result is x
    assert x.requires_grad and x.is_leaf
    plain = mt.tensor([1.0, 2.0])  # a tensor without grad may change even with grad mode on
    apply(plain)
    assert plain.tolist() == expected


@pytest.mark.parametrize(
    "apply",
    [
        lambda t, g: t.__iadd__(1.0),
        lambda t, g: t.mul_(2),
        lambda t, g: t.zero_(),
        lambda t, g: t.copy_(g),
        lambda t, g: t.__setitem__(0, 1.0),
    ],
)
def test_in_place_on_a_tensor_that_requires_grad_is_an_error(apply):
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad.*in-place|in place|no_grad"):
        apply(x, x)
    assert x.tolist() == [1.0, 2.0]


def test_in_place_with_an_argument_that_requires_grad_is_an_error():
    """The result would silently lose the argument's gradient."""
    constant = mt.zeros(2)
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        constant += x
    with pytest.raises(RuntimeError, match="in-place|index assignment"):
        constant[0] = x[0]
    with pytest.raises(RuntimeError, match="in-place"):
        constant.copy_(x)
    assert constant.tolist() == [0.0, 0.0]


def test_grad_assignment_checks_shape_dtype_and_device():
    x = mt.ones(2, 3, requires_grad=True)
    x.grad = torch.zeros(2, 3)
    assert isinstance(x.grad, mt.Tensor)
    with pytest.raises(RuntimeError, match="different size"):
        x.grad = mt.zeros(3, 2)
    with pytest.raises(RuntimeError, match="different type"):
        x.grad = torch.zeros(2, 3, dtype=torch.float64)
    x.grad = None
    assert x.grad is None


# ------------------------------------------------------------------ Python protocol


def test_iteration_hashing_and_membership():
    x = mt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    rows = list(x)
    assert [r.tolist() for r in rows] == [[1.0, 2.0], [3.0, 4.0]]
    sum(rows).sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert {x: 1}[x] == 1 and x in [x] and (x == None) is False  # noqa: E711
    with pytest.raises(TypeError, match="0-d"):
        iter(mt.tensor(1.0))


def test_method_forms_match_the_functions():
    x = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.25, -0.5]], dtype=torch.float64)
    pairs = [
        (lambda a: a.exp().log().sqrt().abs(), lambda a: a.exp().log().sqrt().abs()),
        (lambda a: a.tanh().sigmoid().relu(), lambda a: a.tanh().sigmoid().relu()),
        (lambda a: a.clamp_min(0.1).clamp_max(1.0), lambda a: a.clamp_min(0.1).clamp_max(1.0)),
        (lambda a: a.clip(-0.2, 0.4), lambda a: a.clip(-0.2, 0.4)),
        (lambda a: a.neg().pow(2).square(), lambda a: a.neg().pow(2).square()),
        (lambda a: a.add(1).sub(2).mul(3).div(4), lambda a: a.add(1).sub(2).mul(3).div(4)),
        (lambda a: a.masked_fill(a > 0.6, 0.0), lambda a: a.masked_fill(a > 0.6, 0.0)),
        (lambda a: a.where(a > 0, -a), lambda a: a.where(a > 0, -a)),
        (lambda a: a.mean(1, keepdim=True) + a.amax(0), lambda a: a.mean(1, True) + a.amax(0)),
        (lambda a: a.view_as(a.t()).reshape_as(a), lambda a: a.view_as(a.t()).reshape_as(a)),
        (lambda a: a.expand_as(torch.empty(2, 2, 3)), lambda a: a.expand_as(torch.empty(2, 2, 3))),
        (lambda a: a @ a.T + a.mm(a.t()), lambda a: a @ a.T + a.mm(a.t())),
        (lambda a: a.clone().contiguous(), lambda a: a.clone().contiguous()),
    ]
    for ours, theirs in pairs:
        assert_matches_torch(ours, theirs, x.abs() + 0.1)
    y = mt.tensor(x)
    assert y.argmax().item() == x.argmax().item()
    assert y.argmin(1).tolist() == x.argmin(1).tolist()
    assert y.sign().tolist() == x.sign().tolist()
    assert (y > 0).all().item() == (x > 0).all().item()
    assert ((y > 0) & (y < 1)).tolist() == ((x > 0) & (x < 1)).tolist()
    assert (~(y > 0) | (y > 1)).tolist() == (~(x > 0) | (x > 1)).tolist()
    assert y.isnan().any().item() is False

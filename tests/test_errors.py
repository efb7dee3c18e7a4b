"""Bad input gets a clear error that names what was wrong: the op, the shapes, dtypes, devices
or ranges involved. One test per error.

(Errors of the engine and of the Tensor API are tested beside the features they guard, in
test_engine.py and test_tensor.py.)
"""

import pytest
import torch

import minitorch_edu as mt

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def raises(error, *fragments):
    """pytest.raises that checks every fragment appears in the message (in order)."""
    return pytest.raises(error, match=".*".join(fragment for fragment in fragments))


# ------------------------------------------------------------------ devices

SECOND_DEVICES = ["meta", pytest.param("cuda", marks=CUDA)]


@pytest.mark.parametrize("second", SECOND_DEVICES)
@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a * b,
        lambda a, b: mt.maximum(a, b),
        lambda a, b: mt.cat([a, b]),
        lambda a, b: mt.where(a > 0, a, b),
    ],
    ids=["add", "mul", "maximum", "cat", "where"],
)
def test_mixing_devices_names_both_devices(op, second):
    a = mt.ones(2, 3)
    b = mt.ones(2, 3, device=second)
    with pytest.raises(RuntimeError) as error:
        op(a, b)
    message = str(error.value)
    assert "same device" in message and "cpu" in message and second in message
    with pytest.raises(RuntimeError, match="same device"):
        op(b, a)


@CUDA
def test_matmul_across_devices_names_both_devices():
    with raises(RuntimeError, "MatMul", "same device", "cpu", "cuda"):
        mt.ones(2, 3) @ mt.ones(3, 2, device="cuda")


# ------------------------------------------------------------------ shapes


@pytest.mark.parametrize(
    "name, op",
    [
        ("Add", lambda a, b: a + b),
        ("Sub", lambda a, b: a - b),
        ("Mul", lambda a, b: a * b),
        ("Div", lambda a, b: a / b),
        ("Pow", lambda a, b: a**b),
        ("Maximum", lambda a, b: mt.maximum(a, b)),
    ],
)
def test_broadcast_mismatch_names_the_op_and_the_shapes(name, op):
    with raises(RuntimeError, name, "size of tensor", r"\[2, 3\]", r"\[4\]"):
        op(mt.ones(2, 3), mt.ones(4))


def test_matmul_shape_mismatch_names_both_shapes():
    with raises(RuntimeError, "MatMul", "cannot be multiplied", r"2x3 and 2x3", r"\[2, 3\]"):
        mt.ones(2, 3) @ mt.ones(2, 3)


def test_matmul_of_a_0d_tensor():
    with raises(RuntimeError, "MatMul", "at least 1D", r"float32\[\]"):
        mt.matmul(mt.ones(2, 3), mt.tensor(2.0))


def test_matmul_dtype_mismatch_names_both_dtypes():
    with raises(RuntimeError, "MatMul", "same dtype", r"float32\[2, 3\]", r"float64\[3, 2\]"):
        mt.ones(2, 3) @ mt.ones(3, 2, dtype=torch.float64)


def test_reshape_to_a_wrong_size():
    with raises(RuntimeError, "Reshape", r"\[4, 2\]", "size 6"):
        mt.ones(2, 3).reshape(4, 2)


def test_view_of_an_incompatible_layout():
    with raises(RuntimeError, "Reshape", "view size is not compatible", r"\[3, 2\]"):
        mt.ones(2, 3).t().view(6)


def test_expand_to_an_incompatible_size():
    with raises(RuntimeError, "Expand", "expanded size", r"\[4, 3\]"):
        mt.ones(2, 3).expand(4, 3)


def test_cat_of_mismatched_shapes():
    with raises(RuntimeError, "Cat", "Sizes of tensors must match", r"\[2, 2\]"):
        mt.cat([mt.ones(2, 3), mt.ones(2, 2)], 0)


def test_cat_of_nothing():
    with raises(RuntimeError, "cat", "non-empty"):
        mt.cat([])


def test_stack_of_unequal_shapes():
    with raises(RuntimeError, "stack", "equal size", r"\(2, 3\)", r"\(2, 2\)"):
        mt.stack([mt.ones(2, 3), mt.ones(2, 2)])


# ------------------------------------------------------------------ dims and ranges


@pytest.mark.parametrize(
    "name, op",
    [
        ("sum", lambda a: a.sum(5)),
        ("mean", lambda a: a.mean((0, 2))),
        ("amax", lambda a: a.amax(-3)),
        ("logsumexp", lambda a: a.logsumexp(2)),
        ("var", lambda a: a.var(3)),
        ("std", lambda a: a.std(-4)),
        ("max", lambda a: a.max(2)),
        ("squeeze", lambda a: a.squeeze(4)),
        ("unsqueeze", lambda a: a.unsqueeze(4)),
        ("flatten", lambda a: a.flatten(0, 3)),
        ("Transpose", lambda a: a.transpose(0, 3)),
        ("narrow", lambda a: a.narrow(2, 0, 1)),
        ("select", lambda a: a.select(-3, 0)),
        ("Unfold", lambda a: a.unfold(3, 1, 1)),
    ],
)
def test_dim_out_of_range_names_the_op_and_the_range(name, op):
    with raises(IndexError, name, "Dimension out of range", r"\[-"):
        op(mt.ones(2, 3))


def test_repeated_dims_in_a_reduction():
    with raises(RuntimeError, "sum", r"\(0, -2\)", "multiple times"):
        mt.ones(2, 3).sum((0, -2))


def test_non_integer_dim():
    with raises(TypeError, "sum", "dim must be an int", "1.5"):
        mt.ones(2, 3).sum(1.5)
    with raises(TypeError, "max", "dim must be an int", r"\(0, 1\)"):
        mt.ones(2, 3).max((0, 1))


def test_permute_that_is_not_a_permutation():
    with raises(RuntimeError, "permute", r"\(0, 0\)", "permutation of the 2 dims"):
        mt.ones(2, 3).permute(0, 0)


def test_flatten_with_start_after_end():
    with raises(RuntimeError, "flatten", "start_dim cannot come after end_dim"):
        mt.ones(2, 3, 4).flatten(2, 1)


def test_narrow_past_the_end():
    with raises(RuntimeError, "narrow", r"start \(2\) \+ length \(2\) exceeds", r"\(2, 3\)"):
        mt.ones(2, 3).narrow(1, 2, 2)
    with raises(IndexError, "narrow", "start -4 is out of range"):
        mt.ones(2, 3).narrow(1, -4, 1)


def test_select_out_of_range():
    with raises(IndexError, "select", "index 2 out of range", "size 2"):
        mt.ones(2, 3).select(0, 2)


def test_index_out_of_range():
    with raises(IndexError, "GetItem", "index 5 is out of bounds", r"float32\[2, 3\]"):
        mt.ones(2, 3)[5]
    with raises(IndexError, "GetItem", "too many indices"):
        mt.ones(2, 3)[0, 0, 0]


def test_float_index_tensor():
    with raises(IndexError, "GetItem", "must be long, int, byte or bool"):
        mt.ones(2, 3)[mt.tensor([0.5])]


# ------------------------------------------------------------------ dtypes of arguments


@pytest.mark.parametrize("condition", [mt.ones(2, 3), torch.ones(2, 3), [[True] * 3] * 2])
def test_where_condition_must_be_bool(condition):
    with raises(TypeError, "where", "condition must be a bool tensor"):
        mt.where(condition, mt.ones(2, 3), mt.zeros(2, 3))


@pytest.mark.parametrize(
    "name, op",
    [
        ("gather", lambda a, i: a.gather(0, i)),
        ("scatter_add", lambda a, i: a.scatter_add(0, i, a)),
        ("index_select", lambda a, i: a.index_select(0, i.reshape(-1))),
        ("index_add", lambda a, i: a.index_add(0, i.reshape(-1)[:2], a)),
    ],
)
@pytest.mark.parametrize("dtype", [torch.int16, torch.uint8, torch.float32])
def test_index_must_be_int64_or_int32(name, op, dtype):
    index = torch.zeros(2, 3, dtype=dtype)
    with pytest.raises(RuntimeError):  # torch refuses these index dtypes too
        op(torch.ones(2, 3), index)
    with raises(RuntimeError, name, "int64 or int32", str(dtype)):
        op(mt.ones(2, 3), index)


def test_index_must_be_a_tensor():
    with raises(RuntimeError, "index_select", "int64 or int32 tensor", "got list"):
        mt.ones(2, 3).index_select(0, [0, 1])


def test_gather_index_out_of_bounds():
    with raises(RuntimeError, "Gather", "index 5 is out of bounds", r"int64\[1, 3\]"):
        mt.ones(2, 3).gather(0, torch.full((1, 3), 5))


def test_mean_of_an_integer_tensor():
    with raises(RuntimeError, "Mean", "floating point", "Long", r"int64\[2\]"):
        mt.tensor([1, 2]).mean()


@pytest.mark.parametrize("value", ["a", 2.0, True, None])
def test_op_on_something_that_is_not_a_tensor(value):
    with pytest.raises(TypeError):
        torch.exp(value)
    with raises(TypeError, "Exp", "expected a tensor", f"got {type(value).__name__}"):
        mt.exp(value)


# ------------------------------------------------------------------ strided windows


def test_as_strided_out_of_bounds():
    with raises(RuntimeError, "as_strided", r"\(3, 3\)", r"\(2, 1\)", "element 6", "only 6"):
        mt.ones(2, 3).as_strided((3, 3), (2, 1))


def test_as_strided_with_an_offset_out_of_bounds():
    with raises(RuntimeError, "as_strided", "offset 5", "element 6"):
        mt.ones(2, 3).as_strided((2,), (1,), 5)


def test_as_strided_negative_stride():
    with raises(RuntimeError, "as_strided", "non-negative"):
        mt.ones(2, 3).as_strided((3,), (-1,))


def test_as_strided_size_and_stride_lengths_differ():
    with raises(RuntimeError, "as_strided", r"\(3,\)", r"\(1, 1\)", "differ in length"):
        mt.ones(2, 3).as_strided((3,), (1, 1))


def test_unfold_step_must_be_positive():
    with raises(RuntimeError, "unfold", "step must be positive", "got 0"):
        mt.ones(2, 3).unfold(1, 2, 0)


def test_unfold_window_larger_than_the_dim():
    with raises(RuntimeError, "Unfold", "maximum size", "size is 4", r"\[2, 3\]"):
        mt.ones(2, 3).unfold(1, 4, 1)


# ------------------------------------------------------------------ padding and splitting


def test_pad_of_odd_length():
    with raises(RuntimeError, "pad", "padding length 1", "even"):
        mt.pad(mt.ones(2, 3), (1,))


def test_pad_of_more_dims_than_the_input_has():
    with raises(RuntimeError, "pad", "padding length 6", r"2 \* 2"):
        mt.pad(mt.ones(2, 3), (1, 1, 1, 1, 1, 1))


def test_pad_cropping_more_than_the_dim_has():
    with pytest.raises(RuntimeError):  # as torch
        torch.nn.functional.pad(torch.ones(2, 3), (-2, -2))
    with raises(RuntimeError, "Pad", r"\(-2, -2\)", "size 3", "crops more elements"):
        mt.pad(mt.ones(2, 3), (-2, -2))


def test_pad_mode_other_than_constant():
    with raises(NotImplementedError, "pad", "'reflect'", "only 'constant'"):
        mt.pad(mt.ones(2, 3), (1, 1), mode="reflect")


def test_split_sizes_that_do_not_add_up():
    with raises(RuntimeError, "split", r"\[1, 1\]", "sum to 2", "length 3"):
        mt.ones(2, 3).split([1, 1], 1)


def test_split_size_must_be_positive():
    with raises(RuntimeError, "split", "positive", "got 0"):
        mt.ones(2, 3).split(0, 1)


def test_chunk_count_must_be_positive():
    with raises(RuntimeError, "chunk", "greater than 0", "got: 0"):
        mt.ones(2, 3).chunk(0)


def test_clamp_with_one_tensor_and_one_number_bound_is_refused_like_torch():
    with pytest.raises(TypeError):
        torch.ones(2).clamp(min=torch.zeros(2), max=1.0)
    with raises(TypeError, "(?s)Clamp", "clamp", r"float32\[2\] on cpu, float32\[2\] on cpu, 1.0"):
        mt.ones(2).clamp(min=mt.zeros(2), max=1.0)


def test_clamp_without_bounds():
    with raises(RuntimeError, "clamp", "'min' or 'max'"):
        mt.ones(2).clamp()


# ------------------------------------------------------------------ refused as torch refuses
# Each found by the differential fuzz test (tests/conformance/test_fuzz.py): torch raises,
# we used to compute something or fail with a Python-internal message. (torch_call, our
# call, our error type, fragments of our message.)
REFUSED_LIKE_TORCH = {
    "maximum of two numbers": (
        lambda: torch.maximum(1, 2),
        lambda: mt.maximum(1, 2),
        TypeError,
        ("maximum", "expected a tensor"),
    ),
    "repeated dims of a 0-d tensor": (
        lambda: torch.ones(()).sum((0, -1)),
        lambda: mt.ones(()).sum((0, -1)),
        RuntimeError,
        ("sum", "multiple times"),
    ),
    "split along a dim out of range": (
        lambda: torch.ones(2).split(1, 3),
        lambda: mt.ones(2).split(1, 3),
        IndexError,
        ("split", "Dimension out of range"),
    ),
    "chunk of a 0-d tensor": (
        lambda: torch.ones(()).chunk(2),
        lambda: mt.ones(()).chunk(2),
        IndexError,
        ("chunk", "Dimension out of range"),
    ),
    "unbind along a string": (
        lambda: torch.ones(2).unbind("a"),
        lambda: mt.ones(2).unbind("a"),
        TypeError,
        ("unbind", "argument 'dim' must be int", "str"),
    ),
    "unsqueeze at a string": (
        lambda: torch.ones(2).unsqueeze("a"),
        lambda: mt.ones(2).unsqueeze("a"),
        TypeError,
        ("unsqueeze", "argument 'dim' must be int"),
    ),
    "flatten of a 0-d tensor from dim 1": (
        lambda: torch.ones(()).flatten(1),
        lambda: mt.ones(()).flatten(1),
        IndexError,
        ("flatten", "Dimension out of range"),
    ),
    "squeeze of a repeated dim": (
        lambda: torch.ones(1, 2).squeeze((0, 0)),
        lambda: mt.ones(1, 2).squeeze((0, 0)),
        RuntimeError,
        ("squeeze", "multiple times"),
    ),
    "reshape to a float": (
        lambda: torch.ones(2).reshape(1.5),
        lambda: mt.ones(2).reshape(1.5),
        TypeError,
        ("reshape", "shape must be a tuple of ints", "1.5"),
    ),
    "full of a float size": (
        lambda: torch.full(1.5, 2.0),
        lambda: mt.full(1.5, 2.0),
        TypeError,
        ("full",),
    ),
    "relu of bools": (
        lambda: torch.relu(torch.tensor([True])),
        lambda: mt.relu(mt.tensor([True])),
        RuntimeError,
        ("Relu", "Boolean inputs not supported"),
    ),
    "leaky_relu of integers": (
        lambda: torch.nn.functional.leaky_relu(torch.tensor([1, -2])),
        lambda: mt.nn.functional.leaky_relu(mt.tensor([1, -2])),
        RuntimeError,
        ("leaky_relu", "floating-point", "int64"),
    ),
    "leaky_relu of a list": (
        lambda: torch.nn.functional.leaky_relu([1.0, -2.0]),
        lambda: mt.nn.functional.leaky_relu([1.0, -2.0]),
        TypeError,
        ("leaky_relu", "must be a tensor", "list"),
    ),
    "softmax of bytes": (
        lambda: torch.softmax(torch.tensor([0, 1, 255], dtype=torch.uint8), 0),
        lambda: mt.tensor([0, 1, 255], dtype=torch.uint8).softmax(0),
        RuntimeError,
        ("softmax", "floating-point", "uint8"),
    ),
    "log_softmax of integers": (
        lambda: torch.log_softmax(torch.tensor([1, 2]), 0),
        lambda: mt.nn.functional.log_softmax(mt.tensor([1, 2]), 0),
        RuntimeError,
        ("log_softmax", "floating-point"),
    ),
    "amax of complex numbers": (
        lambda: torch.ones(2, dtype=torch.complex64).amax(),
        lambda: mt.ones(2, dtype=torch.complex64).amax(),
        RuntimeError,
        ("amax", "complex"),
    ),
    "avg_pool2d of bools": (
        lambda: torch.nn.functional.avg_pool2d(torch.ones(1, 1, 2, 2, dtype=torch.bool), 1),
        lambda: mt.nn.functional.avg_pool2d(mt.ones(1, 1, 2, 2, dtype=torch.bool), 1),
        RuntimeError,
        ("avg_pool2d", "torch.bool"),
    ),
    "mse_loss of integers": (
        lambda: torch.nn.functional.mse_loss(torch.tensor([1, 2]), torch.tensor([1, 3])),
        lambda: mt.nn.functional.mse_loss(mt.tensor([1, 2]), mt.tensor([1, 3])),
        RuntimeError,
        ("mse_loss", "floating-point"),
    ),
    "mse_loss against a list": (
        lambda: torch.nn.functional.mse_loss(torch.ones(2), [1.0, 2.0]),
        lambda: mt.nn.functional.mse_loss(mt.ones(2), [1.0, 2.0]),
        TypeError,
        ("mse_loss", "target must be a tensor", "list"),
    ),
    "binary_cross_entropy_with_logits of integer logits": (
        lambda: torch.nn.functional.binary_cross_entropy_with_logits(
            torch.tensor([1, 2]), torch.tensor([0.0, 1.0])
        ),
        lambda: mt.nn.functional.binary_cross_entropy_with_logits(
            mt.tensor([1, 2]), mt.tensor([0.0, 1.0])
        ),
        RuntimeError,
        ("binary_cross_entropy_with_logits", "floating-point logits"),
    ),
    "replicate padding of bools": (
        lambda: torch.nn.functional.pad(torch.ones(1, 2, dtype=torch.bool), (1, 1), "replicate"),
        lambda: mt.nn.functional.pad(mt.ones(1, 2, dtype=torch.bool), (1, 1), "replicate"),
        RuntimeError,
        ("pad", "bool"),
    ),
    "reflect padding of an empty dim": (
        lambda: torch.nn.functional.pad(torch.ones(2, 0, 3), (1, 1), "reflect"),
        lambda: mt.nn.functional.pad(mt.ones(2, 0, 3), (1, 1), "reflect"),
        RuntimeError,
        ("pad", "non-empty dims"),
    ),
    "matmul of empty tensors of two dtypes": (
        lambda: torch.ones(1, 0, requires_grad=True) @ torch.ones(3, 0, 3, dtype=torch.int64),
        lambda: mt.ones(1, 0) @ mt.ones(3, 0, 3, dtype=torch.int64),
        RuntimeError,
        ("MatMul", "same dtype"),
    ),
    "matmul with None": (
        lambda: torch.matmul(torch.ones(2, 2), None),
        lambda: mt.matmul(mt.ones(2, 2), None),
        TypeError,
        ("matmul", "expected tensors", "NoneType"),
    ),
    "masked_fill with a value too large for the dtype": (
        lambda: torch.ones(2, dtype=torch.uint8).masked_fill(torch.tensor(True), 2**40),
        lambda: mt.ones(2, dtype=torch.uint8).masked_fill(torch.tensor(True), 2**40),
        RuntimeError,
        ("masked_fill", "without overflow"),
    ),
    "masked_fill of integers with a value that requires grad": (
        lambda: torch.ones(2, dtype=torch.int64).masked_fill(
            torch.tensor(True), torch.tensor(2.0, requires_grad=True)
        ),
        lambda: mt.ones(2, dtype=torch.int64).masked_fill(
            torch.tensor(True), mt.tensor(2.0, requires_grad=True)
        ),
        RuntimeError,
        ("masked_fill", "requires grad"),
    ),
    "conv1d of an empty length": (
        lambda: torch.nn.functional.conv1d(torch.ones(1, 1, 0), torch.ones(2, 1, 1), padding=1),
        lambda: mt.nn.functional.conv1d(mt.ones(1, 1, 0), mt.ones(2, 1, 1), padding=1),
        RuntimeError,
        ("zero batch or zero channel",),
    ),
    "cross_entropy with integer targets of the input's shape": (
        lambda: torch.nn.functional.cross_entropy(torch.ones(3), torch.tensor([0, 1, 0])),
        lambda: mt.nn.functional.cross_entropy(mt.ones(3), torch.tensor([0, 1, 0])),
        RuntimeError,
        ("cross_entropy", "floating point type for target with class probabilities"),
    ),
}


@pytest.mark.parametrize("name", REFUSED_LIKE_TORCH)
def test_refused_as_torch_refuses_with_a_clear_message(name):
    torch_call, our_call, error, fragments = REFUSED_LIKE_TORCH[name]
    with pytest.raises(Exception):  # noqa: B017 - torch's own type varies; that it refuses
        torch_call()
    with raises(error, *fragments):
        our_call()

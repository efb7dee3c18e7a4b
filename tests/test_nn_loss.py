"""Losses against torch.nn: CrossEntropyLoss, NLLLoss, MSELoss, BCEWithLogitsLoss.

Drawn: batch and extra dims (N, C, d1, ...), unbatched inputs, class weights, ignored
labels, reductions, label smoothing, probability targets. Compared: the loss and the
gradient of the input (and of a probability target). Bad targets must be rejected with a
clear error before any op runs.
"""

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minitorch_edu as mt
import minitorch_edu.nn.functional as F
from minitorch_edu.autograd import function
from minitorch_edu.study import gradcheck
from minitorch_edu.testing import strategies as mts
from reference.nn import assert_matches_twin


@given(data=st.data(), reduction=mts.reductions())
def test_cross_entropy_matches_torch(data, reduction, device):
    input_shape, classes, target, ignore_index = data.draw(mts.classification_targets(device))
    weight = data.draw(mts.class_weights(classes, device))
    smoothing = data.draw(st.sampled_from([0.0, 0.0, 0.1, 0.35, 1.0]))
    loss = mt.nn.CrossEntropyLoss(
        weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing
    )
    logits = data.draw(mts.tensors(shape=input_shape, device=device))
    assert_matches_twin(loss, logits, target)


@given(data=st.data(), reduction=mts.reductions())
def test_nll_loss_matches_torch(data, reduction, device):
    input_shape, classes, target, ignore_index = data.draw(
        mts.classification_targets(device, allow_probabilities=False)
    )
    weight = data.draw(mts.class_weights(classes, device))
    loss = mt.nn.NLLLoss(weight=weight, ignore_index=ignore_index, reduction=reduction)
    # Contiguous: torch's own nll_loss2d backward fails on permuted inputs (ours does not).
    log_probabilities = data.draw(
        mts.tensors(shape=input_shape, non_contiguous=False, device=device)
    )
    assert_matches_twin(loss, log_probabilities, target)


@given(data=st.data(), reduction=mts.reductions())
def test_mse_loss_matches_torch(data, reduction, device):
    shape = data.draw(mts.shapes(max_dims=3))
    x = data.draw(mts.tensors(shape=shape, device=device))
    y = data.draw(mts.tensors(shape=shape, device=device))
    assert_matches_twin(mt.nn.MSELoss(reduction=reduction), x, y)


@given(data=st.data(), reduction=mts.reductions())
def test_bce_with_logits_matches_torch(data, reduction, device):
    shape = data.draw(mts.shapes(min_dims=1, max_dims=3))
    x = data.draw(mts.tensors(shape=shape, min_value=-40, max_value=40, device=device))
    y = data.draw(mts.tensors(shape=shape, min_value=0, max_value=1, device=device))
    positive = mts.tensors(shape=shape[-1:], min_value=0.1, max_value=3.0, device=device)
    weight = data.draw(st.one_of(st.none(), mts.tensors(shape=shape, min_value=0, max_value=2)))
    loss = mt.nn.BCEWithLogitsLoss(
        weight=None if weight is None else weight.to(device),
        pos_weight=data.draw(st.one_of(st.none(), positive)),
        reduction=reduction,
    )
    assert_matches_twin(loss, x, y)


@settings(max_examples=10)
@given(data=st.data())
def test_losses_match_finite_differences(data):
    input_shape, classes, target, ignore_index = data.draw(mts.classification_targets())
    assume(target.is_floating_point() or (target != ignore_index).any())  # else the mean is nan
    logits = data.draw(mts.tensors(shape=input_shape))
    smoothing = data.draw(st.sampled_from([0.0, 0.2]))
    gradcheck(
        lambda x: F.cross_entropy(x, target, ignore_index=ignore_index, label_smoothing=smoothing),
        [logits],
    )
    x = data.draw(mts.tensors(shape=(2, 3), min_value=-5, max_value=5))
    y = data.draw(mts.tensors(shape=(2, 3), min_value=0, max_value=1))
    gradcheck(
        lambda x, y: F.binary_cross_entropy_with_logits(
            x, y, pos_weight=torch.tensor([0.5, 2, 1.0])
        ),
        [x, y],
    )


def test_all_labels_ignored_gives_torchs_nan_and_a_zero_gradient():
    logits = torch.randn(3, 4, dtype=torch.float64)
    target = torch.full((3,), -100)
    run = assert_matches_twin(mt.nn.CrossEntropyLoss(), logits, target)
    assert run.output.isnan()
    assert torch.equal(run.input_grads[0], torch.zeros(3, 4, dtype=torch.float64))


@pytest.mark.parametrize("kind", ["torch", "numpy", "minitorch", "list"])
def test_targets_may_be_torch_numpy_or_our_tensors(kind):
    logits = torch.randn(4, 3, dtype=torch.float64)
    labels = [0, 2, 1, 2]
    target = {
        "torch": torch.tensor(labels),
        "numpy": np.array(labels),
        "minitorch": mt.tensor(labels),
        "list": labels,
    }[kind]
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
    torch.testing.assert_close(F.cross_entropy(mt.tensor(logits), target).data, expected)
    expected = torch.nn.functional.nll_loss(logits, torch.tensor(labels))
    torch.testing.assert_close(F.nll_loss(mt.tensor(logits), target).data, expected)


# ---------------------------------------------------------------------------- bad targets
class RecordingTracer:
    """Stands in for the study tracer: notes every op that runs."""

    def __init__(self):
        self.ops = []

    def on_forward(self, cls, ctx, inputs, options, result):
        self.ops.append(cls.__name__)

    def on_backward(self, node, grad, input_grads):
        pass


def raises_before_any_op(expected_error, match, call):
    tracer = RecordingTracer()
    function.tracer = tracer
    try:
        with pytest.raises(expected_error, match=match):
            call()
    finally:
        function.tracer = None
    assert tracer.ops == [], f"ops ran before the error: {tracer.ops}"


@pytest.mark.parametrize(
    "input_shape, target, error, match",
    [
        ((3, 4), torch.tensor([0, 1, 4]), IndexError, r"Target 4 is out of bounds.*\[0, 4\).*C=4"),
        ((3, 4), torch.tensor([0, -1, 2]), IndexError, r"Target -1 is out of bounds"),
        ((2, 4, 5), torch.tensor([[0, 9, 1, 1, 1]] * 2), IndexError, r"Target 9.*C=4"),
        ((3, 4), torch.tensor([0, 1, 2], dtype=torch.int32), RuntimeError, r"int64.*torch.int32"),
        ((3, 4), torch.tensor([0.0, 1.0, 2.0]), RuntimeError, r"probability targets.*\[3, 4\]"),
        ((3, 4), torch.tensor([0, 1]), ValueError, r"input batch_size \(3\).*batch_size \(2\)"),
        ((2, 4, 5), torch.zeros(2, 4, dtype=torch.int64), RuntimeError, r"target size \[2, 5\]"),
        ((4,), torch.tensor([1, 2]), ValueError, r"1D target must have size 1.*size: 2"),
        ((3, 4), torch.zeros(3, 2, dtype=torch.int64), RuntimeError, r"0D or 1D target"),
    ],
)
@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_bad_targets_are_rejected_before_any_op(loss, input_shape, target, error, match):
    x = mt.randn(*input_shape, requires_grad=True)
    if loss is F.nll_loss and target.is_floating_point():
        match = r"Long \(int64\).*torch.float32"
    raises_before_any_op(error, match, lambda: loss(x, target))
    with pytest.raises(error):  # torch rejects it too, with the same type of error
        getattr(torch.nn.functional, loss.__name__)(x.data, target)


def test_other_bad_arguments_are_rejected():
    x, target = mt.randn(3, 4), torch.tensor([0, 1, 2])
    raises_before_any_op(
        RuntimeError,
        r"weight tensor should be defined either for all 4 classes.*\[3\]",
        lambda: F.cross_entropy(x, target, weight=torch.ones(3)),
    )
    raises_before_any_op(
        ValueError,
        "foo is not a valid value for reduction",
        lambda: F.cross_entropy(x, target, reduction="foo"),
    )
    raises_before_any_op(
        RuntimeError,
        "label_smoothing must be between 0.0 and 1.0. Got: 1.5",
        lambda: F.cross_entropy(x, target, label_smoothing=1.5),
    )
    raises_before_any_op(
        RuntimeError,
        "ignore_index is not supported for floating point",
        lambda: F.cross_entropy(x, torch.rand(3, 4), ignore_index=1),
    )
    raises_before_any_op(
        ValueError,
        r"Target size \(torch.Size\(\[4\]\)\) must be the same as input size",
        lambda: F.binary_cross_entropy_with_logits(x, torch.rand(4)),
    )


@st.composite
def any_cross_entropy_call(draw):
    """Targets of any dtype, shape and range, for an input of shape (N, C) or (N, C, L)."""
    classes = draw(st.integers(1, 4))
    input_shape = draw(st.sampled_from([(3, classes), (2, classes, 3), (classes,)]))
    target_shape = draw(st.sampled_from([(3,), (2, 3), (2,), (), (3, classes), (2, 1)]))
    dtype = draw(
        st.sampled_from([torch.int64, torch.int64, torch.int32, torch.float64, torch.uint8])
    )
    size = int(np.prod(target_shape, dtype=int))
    low = 0 if dtype == torch.uint8 else -2
    target = torch.tensor([draw(st.integers(low, classes + 1)) for _ in range(size)])
    return input_shape, target.reshape(target_shape).to(dtype), draw(st.sampled_from([-100, -1]))


@settings(max_examples=100)
@given(call=any_cross_entropy_call())
def test_cross_entropy_rejects_what_torch_rejects(call):
    input_shape, target, ignore_index = call
    x = torch.randn(input_shape, dtype=torch.float64)
    try:
        torch.nn.functional.cross_entropy(x, target, ignore_index=ignore_index)
        torch_error = None
    except Exception as error:  # noqa: BLE001
        torch_error = error
    try:
        F.cross_entropy(mt.tensor(x), target, ignore_index=ignore_index)
        our_error = None
    except Exception as error:  # noqa: BLE001
        our_error = error
    if torch_error is None:
        assert our_error is None, f"torch accepts {target} for {input_shape}; ours: {our_error!r}"
    else:
        assert our_error is not None, f"torch rejects {target} for {input_shape}: {torch_error}"
        assert type(our_error) is type(torch_error), (our_error, torch_error)


def test_loss_reprs_and_state_dicts_match_torch():
    weight = torch.rand(3)
    pairs = [
        (mt.nn.CrossEntropyLoss(weight=weight), torch.nn.CrossEntropyLoss(weight=weight)),
        (mt.nn.NLLLoss(), torch.nn.NLLLoss()),
        (mt.nn.MSELoss(reduction="sum"), torch.nn.MSELoss(reduction="sum")),
        (
            mt.nn.BCEWithLogitsLoss(weight=weight, pos_weight=weight),
            torch.nn.BCEWithLogitsLoss(weight=weight, pos_weight=weight),
        ),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert ours.reduction == theirs.reduction


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_weighted_mse_and_legacy_reduction_flags_match_torch(reduction):
    generator = torch.Generator().manual_seed(0)
    x, y, w = (torch.rand(3, 4, generator=generator, dtype=torch.float64) for _ in range(3))
    ours = F.mse_loss(mt.tensor(x), y, reduction=reduction, weight=w)
    torch.testing.assert_close(
        ours.data, torch.nn.functional.mse_loss(x, y, reduction=reduction, weight=w)
    )
    target = torch.tensor([0, 3, 1])
    for size_average, reduce in [(False, None), (None, False), (True, True)]:
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
            loss = mt.nn.CrossEntropyLoss(size_average=size_average, reduce=reduce)
        with pytest.warns(UserWarning):
            torch_loss = torch.nn.CrossEntropyLoss(size_average=size_average, reduce=reduce)
        assert loss.reduction == torch_loss.reduction
        torch.testing.assert_close(loss(mt.tensor(x), target).data, torch_loss(x, target))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bce_with_logits_of_huge_logits_is_finite_and_correct(dtype):
    x = torch.tensor([1e4, -1e4, 1e4, -1e4, 0.0], dtype=dtype)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5], dtype=dtype)
    pos_weight = torch.tensor(2.0, dtype=dtype)
    ours = mt.tensor(x, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(ours, y, pos_weight=pos_weight, reduction="sum")
    theirs = x.clone().requires_grad_()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        theirs, y, pos_weight=pos_weight, reduction="sum"
    )
    torch.testing.assert_close(loss.data, expected.detach())
    loss.backward()
    expected.backward()
    assert torch.isfinite(ours.grad.data).all()
    torch.testing.assert_close(ours.grad.data, theirs.grad)


def test_bce_with_logits_takes_the_targets_dtype_like_torch():
    """torch's result has the target's dtype (its arithmetic runs in place on 1 - target)."""
    torch_bce = torch.nn.functional.binary_cross_entropy_with_logits
    for input_dtype, target_dtype in (
        (torch.float64, torch.float32),
        (torch.float32, torch.float64),
    ):
        x = torch.randn(4, dtype=input_dtype)
        y = torch.rand(4, dtype=target_dtype)
        for reduction in ("none", "mean"):
            expected = torch_bce(x, y, reduction=reduction)
            result = F.binary_cross_entropy_with_logits(mt.tensor(x), y, reduction=reduction)
            assert result.dtype == expected.dtype
            torch.testing.assert_close(result.data, expected)
    with pytest.raises(RuntimeError):
        torch_bce(torch.randn(3), torch.tensor([0, 1, 1]))
    with pytest.raises(RuntimeError, match="target must be floating point.*int64"):
        F.binary_cross_entropy_with_logits(mt.randn(3), mt.tensor([0, 1, 1]))


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_ignore_index_must_be_an_int_like_torch(loss):
    x, target = torch.randn(3, 4), torch.tensor([0, 1, 2])
    for bad in (1.5, 1.0, True):
        with pytest.raises(TypeError):
            getattr(torch.nn.functional, loss)(x, target, ignore_index=bad)
        with pytest.raises(TypeError, match=f"{loss}.*ignore_index.*must be int"):
            getattr(F, loss)(mt.tensor(x), target, ignore_index=bad)
    expected = getattr(torch.nn.functional, loss)(x, target, ignore_index=torch.tensor(1))
    result = getattr(F, loss)(mt.tensor(x), target, ignore_index=torch.tensor(1))
    torch.testing.assert_close(result.data, expected)


def test_mse_loss_promotes_a_0d_target_like_torch():
    """torch broadcasts input and target first, so a 0-d float64 target makes a bfloat16
    loss float64 (a 0-d tensor would not promote in plain arithmetic)."""
    x = torch.tensor([[1.5, -2.0]], dtype=torch.bfloat16)
    target = torch.tensor(0.25, dtype=torch.float64)
    for reduction in ("none", "mean"):
        expected = torch.nn.functional.mse_loss(x, target, reduction=reduction)
        result = F.mse_loss(mt.tensor(x), target, reduction=reduction)
        assert result.dtype == expected.dtype == torch.float64
        torch.testing.assert_close(result.data, expected)


def test_probability_targets_take_a_negative_ignore_index_like_torch():
    """torch refuses ignore_index >= 0 with probability targets; a negative one names no
    class and passes."""
    x, p = torch.randn(2, 3, dtype=torch.float64), torch.rand(2, 3, dtype=torch.float64)
    for ignore_index in (-1, -100):
        expected = torch.nn.functional.cross_entropy(x, p, ignore_index=ignore_index)
        result = F.cross_entropy(mt.tensor(x), p, ignore_index=ignore_index)
        torch.testing.assert_close(result.data, expected)
    with pytest.raises(RuntimeError):
        torch.nn.functional.cross_entropy(x, p, ignore_index=0)
    with pytest.raises(RuntimeError, match="ignore_index is not supported"):
        F.cross_entropy(mt.tensor(x), p, ignore_index=0)

"""The property-testing kit on a user's own code: it passes a right op and catches a wrong one.

A user-defined Function (softplus, forward and backward written by hand) is held against
torch with assert_matches_torch and against finite differences with gradcheck. The same op
with an error planted in its backward, at one element, must fail both checks, and both
must name that element as the worst.
"""

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.study import GradcheckError, gradcheck
from minitorch_edu.testing import Case, assert_close, assert_matches_torch
from minitorch_edu.testing import strategies as mts


class Softplus(mt.Function):
    """softplus(a) = log(1 + exp(a)), written stably: log1p(exp(-|a|)) + max(a, 0)."""

    formula = "da = grad * sigmoid(a)"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return torch.log1p(torch.exp(-a.abs())) + a.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * a.sigmoid()


PLANTED = (1, 2)  # the element whose gradient the wrong op gets wrong


class WrongSoftplus(Softplus):
    """Softplus with a planted error: the gradient of element PLANTED is 1.5 times too big."""

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        scale = torch.ones_like(a)
        scale[PLANTED] = 1.5
        return grad * a.sigmoid() * scale


@settings(max_examples=20)
@given(x=mts.tensors(shape=mts.shapes(max_dims=3)))
def test_a_user_function_passes_both_oracles(x):
    comparison = assert_matches_torch(
        Softplus.apply, torch.nn.functional.softplus, x, double_backward=False
    )
    assert comparison.grads[0] is not None
    result = gradcheck(Softplus.apply, [x])
    assert result.ok and result.checked == x.numel()


@settings(max_examples=10)
@given(x=mts.tensors(shape=(3, 4), min_value=-2, max_value=2))
def test_a_planted_error_is_caught_by_both_and_its_element_named(x):
    with pytest.raises(AssertionError) as caught:
        assert_matches_torch(WrongSoftplus.apply, torch.nn.functional.softplus, x)
    message = str(caught.value)
    assert message.startswith("gradient of input 0 differs from torch, worst at [1, 2]:")
    ours, theirs = re.search(r"ours (\S+), torch's (\S+):", message).groups()
    assert float(ours) == pytest.approx(1.5 * float(theirs), rel=1e-8)

    with pytest.raises(GradcheckError, match=r"worst is input 0\[1, 2\]"):
        gradcheck(WrongSoftplus.apply, [x])
    result = gradcheck(WrongSoftplus.apply, [x], raise_exception=False)
    assert not result.ok and result.element == PLANTED
    assert result.analytic == pytest.approx(1.5 * result.numeric, rel=1e-4)


def test_a_wrong_forward_is_caught_with_its_worst_element():
    x = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(2, 3)
    with pytest.raises(
        AssertionError, match=r"forward output differs from torch, worst at \[1, 2\]"
    ):
        assert_matches_torch(lambda a: a.exp() + (a == 1.0) * 0.1, torch.exp, x)
    with pytest.raises(AssertionError, match="differs from torch, worst at"):
        assert_close(torch.zeros(2), torch.tensor([0.0, 1e-3]), "my tensor", 1e-7, 1e-9)


def test_a_case_feeds_every_property():
    x = torch.tensor([[0.5, -1.0], [2.0, 0.1]], dtype=torch.float64)
    case = Case("softplus", Softplus.apply, torch.nn.functional.softplus, (x,))
    assert_matches_torch(case.ours, case.theirs, *case.inputs)
    if case.smooth:
        gradcheck(case.ours, case.inputs)
    assert repr(case) == "Case(softplus; tensor[2, 2]=[[0.5, -1.0], [2.0, 0.1]])"
    assert torch.equal(case.to("cpu").inputs[0], x)


# ---------------------------------------------------------------------- the strategies
@settings(max_examples=25)
@given(call=mts.linear_configs())
def test_linear_configs_are_accepted_by_torch(call):
    config, shape = call
    out = torch.nn.Linear(**config)(torch.randn(shape))
    assert out.shape == (*shape[:-1], config["out_features"])


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("spatial_dims", [1, 2])
@settings(max_examples=25)
@given(data=st.data())
def test_conv_configs_are_accepted_by_torch(spatial_dims, data):
    config, shape = data.draw(mts.conv_configs(spatial_dims))
    layer = (torch.nn.Conv1d if spatial_dims == 1 else torch.nn.Conv2d)(**config)
    out = layer(torch.randn(shape))
    assert out.dim() == len(shape) and out.numel() > 0


@pytest.mark.parametrize("average", [False, True])
@settings(max_examples=25)
@given(data=st.data())
def test_pool_configs_are_accepted_by_torch(average, data):
    config, shape = data.draw(mts.pool_configs(average))
    layer = torch.nn.AvgPool2d(**config) if average else torch.nn.MaxPool2d(**config)
    out = layer(torch.randn(shape))
    assert out.shape[:-2] == shape[:-2]
    sizes = [
        mts.pooled_size(n, k, s, p, d, config["ceil_mode"])
        for n, k, s, p, d in zip(
            shape[-2:],
            _pair(config["kernel_size"]),
            _pair(config["stride"] or config["kernel_size"]),
            config["padding"],
            _pair(config.get("dilation", 1)),
        )
    ]
    assert list(out.shape[-2:]) == sizes  # torch's own output size


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


@settings(max_examples=25)
@given(data=st.data(), reduction=mts.reductions())
def test_classification_targets_are_accepted_by_torch(data, reduction):
    input_shape, classes, target, ignore_index = data.draw(mts.classification_targets())
    weight = data.draw(mts.class_weights(classes))
    assert input_shape[1 if len(input_shape) > 1 else 0] == classes
    logits = torch.randn(input_shape, dtype=torch.float64)
    loss = torch.nn.functional.cross_entropy(
        logits, target, weight=weight, ignore_index=ignore_index, reduction=reduction
    )
    assert loss.dim() == (0 if reduction != "none" else target.dim() - target.is_floating_point())


@pytest.mark.parametrize("name", mts.OPTIMIZERS)
@settings(max_examples=20)
@given(data=st.data())
def test_optimizer_hyperparameters_are_accepted_by_torch_and_us(name, data):
    kwargs = data.draw(mts.optimizer_hyperparameters(name))
    units, constructor_only = mts.optimizer_units(name)
    drawn_keys = set()
    for unit in [*units.values(), *constructor_only.values()]:
        drawn_keys |= set(data.draw(unit))
    assert set(kwargs) == drawn_keys
    torch_param = torch.ones(3, dtype=torch.float64, requires_grad=True)
    torch_optimizer = getattr(torch.optim, name)([torch_param], **kwargs)
    param = mt.tensor(torch.ones(3, dtype=torch.float64), requires_grad=True)
    optimizer = getattr(mt.optim, name)([param], **kwargs)
    torch_param.grad = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    param.grad = mt.tensor(torch_param.grad.clone())
    torch_optimizer.step()
    optimizer.step()
    torch.testing.assert_close(param.data, torch_param.detach(), rtol=1e-12, atol=1e-15)


FLAGS = {
    "SGD": {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
    "Adagrad": {"lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0},
    "RMSprop": {"momentum": 0.0, "centered": False, "weight_decay": 0.0},
    "Adam": {"amsgrad": False, "weight_decay": 0.0, "decoupled_weight_decay": False},
    "AdamW": {"amsgrad": False, "weight_decay": 0.0},
}


@pytest.mark.parametrize("name", mts.OPTIMIZERS)
def test_every_flag_is_drawn_off_and_on(name):
    """Over 100 draws, each option takes its neutral value and another; foreach each value."""
    seen = []

    @settings(max_examples=100, derandomize=True, database=None)
    @given(mts.optimizer_hyperparameters(name), mts.optimizer_hyperparameters(name, foreach=False))
    def collect(kwargs, without_foreach):
        seen.append(kwargs)
        assert "foreach" not in without_foreach

    collect()
    for key, off in {**FLAGS[name], "maximize": False}.items():
        assert any(kwargs[key] == off for kwargs in seen), f"{key} never {off}"
        assert any(kwargs[key] != off for kwargs in seen), f"{key} always {off}"
    assert {kwargs["foreach"] for kwargs in seen} == {None, False, True}
    if name == "SGD":  # nesterov comes only with momentum and no dampening, as SGD demands
        assert all(k["momentum"] > 0 and k["dampening"] == 0 for k in seen if k["nesterov"])
    with pytest.raises(ValueError, match="unknown optimizer 'Lion'"):
        mts.optimizer_units("Lion")


@settings(max_examples=25)
@given(shapes=mts.broadcastable_shapes(3), x=mts.tensors(non_contiguous=True))
def test_tensor_strategies_keep_their_promises(shapes, x):
    torch.broadcast_shapes(*shapes)  # raises if they do not broadcast
    assert x.dtype == torch.float64 and bool(((x >= -3) & (x <= 3)).all())
    assert not x.isnan().any()

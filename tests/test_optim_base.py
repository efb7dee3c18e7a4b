"""What every optimizer shares, against PyTorch: signatures, errors, closures, zero_grad,
parameter groups, skipping parameters without a gradient, and the state dict's layout.
"""

from __future__ import annotations

import inspect
import io
import math
import re
import warnings

import pytest
import torch

import minitorch_edu as mt
from reference.optim import torch_optimizer_like, torch_parameters

NAMES = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]
SCHEDULERS = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR"]


def parameter(values=(1.0, -2.0, 0.5), device="cpu") -> mt.Tensor:
    return mt.tensor(list(values), dtype=torch.float64, device=device, requires_grad=True)


def torch_parameter() -> torch.Tensor:
    return torch.zeros(3, dtype=torch.float64, requires_grad=True)


def optimizer_class(name: str):
    return getattr(mt.optim, name)


def set_grads(pairs, grads) -> None:
    for (param, torch_param), grad in zip(pairs, grads):
        param.grad = None if grad is None else mt.Tensor(grad.clone())
        torch_param.grad = None if grad is None else grad.clone()


def assert_same(params, torch_params) -> None:
    for param, torch_param in zip(params, torch_params):
        torch.testing.assert_close(param.data, torch_param.detach(), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------- signatures
def without_annotations(signature: inspect.Signature) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize("name", NAMES)
def test_optimizer_signatures_are_torchs(name):
    ours = inspect.signature(getattr(mt.optim, name))
    theirs = inspect.signature(getattr(torch.optim, name))
    assert without_annotations(ours) == without_annotations(theirs)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_scheduler_signatures_are_torchs(name):
    ours = inspect.signature(getattr(mt.optim.lr_scheduler, name))
    theirs = inspect.signature(getattr(torch.optim.lr_scheduler, name))
    assert without_annotations(ours) == without_annotations(theirs)


@pytest.mark.parametrize("name", NAMES)
def test_defaults_and_group_keys_are_torchs(name):
    ours = optimizer_class(name)([parameter()])
    theirs = getattr(torch.optim, name)([torch_parameter()])
    assert ours.defaults == theirs.defaults
    assert ours.state_dict()["param_groups"] == theirs.state_dict()["param_groups"]


# ---------------------------------------------------------------------- hyperparameter errors
INVALID = [
    ("SGD", {"lr": -0.1}, "Invalid learning rate: -0.1"),
    ("SGD", {"momentum": -0.5}, "Invalid momentum value: -0.5"),
    ("SGD", {"weight_decay": -0.001}, "Invalid weight_decay value: -0.001"),
    ("SGD", {"nesterov": True}, "Nesterov momentum requires a momentum and zero dampening"),
    (
        "SGD",
        {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
        "Nesterov momentum requires a momentum and zero dampening",
    ),
    ("Adagrad", {"lr": -0.01}, "Invalid learning rate: -0.01"),
    ("Adagrad", {"lr_decay": -1.0}, "Invalid lr_decay value: -1.0"),
    ("Adagrad", {"weight_decay": -0.5}, "Invalid weight_decay value: -0.5"),
    (
        "Adagrad",
        {"initial_accumulator_value": -0.1},
        "Invalid initial_accumulator_value value: -0.1",
    ),
    ("Adagrad", {"eps": -1e-10}, "Invalid epsilon value: -1e-10"),
    ("RMSprop", {"lr": -1.0}, "Invalid learning rate: -1.0"),
    ("RMSprop", {"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
    ("RMSprop", {"momentum": -0.9}, "Invalid momentum value: -0.9"),
    ("RMSprop", {"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
    ("RMSprop", {"alpha": -0.99}, "Invalid alpha value: -0.99"),
]
for _name in ("Adam", "AdamW"):
    INVALID += [
        (_name, {"lr": -0.001}, "Invalid learning rate: -0.001"),
        (_name, {"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
        (_name, {"betas": (1.0, 0.999)}, "Invalid beta parameter at index 0: 1.0"),
        (_name, {"betas": (-0.1, 0.999)}, "Invalid beta parameter at index 0: -0.1"),
        (_name, {"betas": (0.9, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
        (_name, {"betas": (0.9, -0.5)}, "Invalid beta parameter at index 1: -0.5"),
        (_name, {"weight_decay": -0.01}, "Invalid weight_decay value: -0.01"),
        (
            _name,
            {"betas": (0.9, torch.tensor(0.999))},
            "betas must be either both floats or both Tensors",
        ),
    ]


@pytest.mark.parametrize(("name", "kwargs", "message"), INVALID)
def test_invalid_hyperparameters_raise_torchs_value_error(name, kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        getattr(torch.optim, name)([torch_parameter()], **kwargs)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        optimizer_class(name)([parameter()], **kwargs)


@pytest.mark.parametrize(("name", "kwargs", "message"), INVALID)
def test_a_group_with_invalid_hyperparameters_is_refused_too(name, kwargs, message):
    # PyTorch checks only the constructor's arguments; a group's values get the same checks here.
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        optimizer_class(name)([{"params": [parameter()], **kwargs}])
    optimizer = optimizer_class(name)([parameter()])
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        optimizer.add_param_group({"params": [parameter()], **kwargs})
    assert len(optimizer.param_groups) == 1


# A nan hyperparameter: torch's SGD checks `value < 0` and lets it through; the others check
# `not 0 <= value` and refuse it. Each must do as its torch counterpart does.
NAN_HYPERPARAMETERS = [
    (name, key)
    for name, keys in {
        "SGD": ("lr", "momentum", "weight_decay"),
        "Adagrad": ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"),
        "RMSprop": ("lr", "eps", "momentum", "weight_decay", "alpha"),
        "Adam": ("lr", "eps", "weight_decay"),
        "AdamW": ("lr", "eps", "weight_decay"),
    }.items()
    for key in keys
]


@pytest.mark.parametrize(("name", "key"), NAN_HYPERPARAMETERS)
def test_a_nan_hyperparameter_is_refused_exactly_when_torch_refuses_it(name, key):
    def outcome(make, param):
        try:
            make([param], **{key: math.nan})
        except ValueError as error:
            return str(error)
        return "accepted"

    theirs = outcome(getattr(torch.optim, name), torch_parameter())
    assert outcome(optimizer_class(name), parameter()) == theirs


UNIMPLEMENTED = [
    (name, option)
    for name in NAMES
    for option in ("differentiable", "fused", "capturable")
    if option in inspect.signature(getattr(torch.optim, name)).parameters
]


@pytest.mark.parametrize(("name", "option"), UNIMPLEMENTED)
def test_options_that_are_not_implemented_are_refused(name, option):
    with pytest.raises(NotImplementedError, match=option):
        optimizer_class(name)([parameter()], **{option: True})


# ---------------------------------------------------------------------- parameter errors
@pytest.mark.parametrize("name", NAMES)
def test_an_empty_parameter_list_is_refused_like_torch(name):
    with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
        getattr(torch.optim, name)([])
    with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
        optimizer_class(name)([])
    with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
        optimizer_class(name)(param for param in [])


def test_a_single_tensor_must_come_in_a_list():
    with pytest.raises(TypeError, match="iterable of Tensors or dicts, but got minitorch_edu"):
        mt.optim.SGD(parameter())


def test_torch_tensors_are_refused_with_a_hint():
    with pytest.raises(TypeError, match=r"parameter 1 is a torch\.Tensor.*mt\.tensor"):
        mt.optim.SGD([parameter(), torch_parameter()])
    with pytest.raises(TypeError, match="parameter 0 is a float"):
        mt.optim.Adam([1.0])


def test_non_leaf_tensors_are_refused():
    leaf = parameter()
    with pytest.raises(ValueError, match=r"can't optimize a non-leaf Tensor.*parameter 0"):
        mt.optim.SGD([leaf * 2])


def test_frozen_parameters_are_accepted_and_left_alone_like_torch():
    trained, frozen = parameter(), mt.tensor([1.0, 2.0], dtype=torch.float64)
    optimizer = mt.optim.Adam([trained, frozen], lr=0.1)
    frozen_before, trained_before = frozen.data.clone(), trained.data.clone()
    trained.grad = mt.ones_like(trained)
    optimizer.step()
    assert torch.equal(frozen.data, frozen_before) and optimizer.state.get(frozen) is None
    assert not torch.equal(trained.data, trained_before)


def test_a_set_of_parameters_is_refused_like_torch():
    with pytest.raises(TypeError, match="ordered collections"):
        mt.optim.SGD([{"params": {parameter()}}])


def test_a_parameter_in_two_groups_is_refused_like_torch():
    shared = parameter()
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        mt.optim.SGD([{"params": [shared]}, {"params": [parameter(), shared]}])
    optimizer = mt.optim.SGD([shared])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": shared})


def test_a_parameter_twice_in_one_group_warns_like_torch():
    shared = parameter()
    with pytest.warns(UserWarning, match="duplicate parameters"):
        mt.optim.SGD([shared, shared])


def test_add_param_group_wants_a_dict():
    with pytest.raises(TypeError, match="param_group must be a dict"):
        mt.optim.SGD([parameter()]).add_param_group([parameter()])


def test_named_parameters_are_kept_as_param_names_like_torch():
    ours = mt.optim.SGD([("weight", parameter()), ("bias", parameter())])
    theirs = torch.optim.SGD([("weight", torch_parameter()), ("bias", torch_parameter())])
    assert ours.state_dict()["param_groups"] == theirs.state_dict()["param_groups"]
    with pytest.raises(ValueError, match="Some param names are missing"):
        mt.optim.SGD([("weight", parameter()), parameter()])
    with pytest.raises(ValueError, match="cannot add param group without names"):
        ours.add_param_group({"params": [parameter()]})


# ---------------------------------------------------------------------- steps
def pairs_for(name: str, count: int = 2, **kwargs):
    params = [parameter((1.0 + i, -2.0, 0.5 * i)) for i in range(count)]
    optimizer = optimizer_class(name)(params, **kwargs)
    torch_params = torch_parameters(params)
    return params, torch_params, optimizer, torch_optimizer_like(optimizer, torch_params)


@pytest.mark.parametrize("name", NAMES)
def test_closure_runs_with_grad_enabled_and_its_loss_comes_back(name):
    params, torch_params, ours, theirs = pairs_for(name, lr=0.1)
    target = torch.tensor([0.5, 0.25, -1.0], dtype=torch.float64)

    def our_closure():
        assert mt.is_grad_enabled()
        ours.zero_grad()
        loss = sum(((param - target) ** 2).sum() for param in params)
        loss.backward()
        return loss

    def their_closure():
        theirs.zero_grad()
        loss = sum(((param - target) ** 2).sum() for param in torch_params)
        loss.backward()
        return loss

    for _ in range(5):
        with mt.no_grad():
            loss = ours.step(our_closure)
        their_loss = theirs.step(their_closure)
        assert isinstance(loss, mt.Tensor)
        assert loss.item() == pytest.approx(their_loss.item(), rel=1e-12)
        assert_same(params, torch_params)
    assert ours.step() is None


@pytest.mark.parametrize("name", NAMES)
def test_zero_grad_sets_to_none_by_default_and_then_steps_skip(name):
    params, torch_params, ours, theirs = pairs_for(name, weight_decay=0.1)
    set_grads(zip(params, torch_params), [torch.ones(3, dtype=torch.float64)] * 2)
    ours.step()
    theirs.step()
    ours.zero_grad()
    theirs.zero_grad()
    assert all(param.grad is None for param in params)
    before = [param.data.clone() for param in params]
    ours.step()
    theirs.step()
    for param, old in zip(params, before):
        assert torch.equal(param.data, old)
    assert_same(params, torch_params)


@pytest.mark.parametrize("name", NAMES)
def test_zero_grad_without_set_to_none_zeroes_in_place_and_steps_still_move(name):
    params, torch_params, ours, theirs = pairs_for(name, weight_decay=0.1)
    set_grads(zip(params, torch_params), [torch.ones(3, dtype=torch.float64)] * 2)
    ours.step()
    theirs.step()
    grads = [param.grad for param in params]
    storage = [grad.data.data_ptr() for grad in grads]
    ours.zero_grad(set_to_none=False)
    theirs.zero_grad(set_to_none=False)
    for param, grad, pointer in zip(params, grads, storage):
        assert param.grad is grad and grad.data.data_ptr() == pointer
        assert not grad.data.any()
    for _ in range(3):
        ours.step()
        theirs.step()
    assert_same(params, torch_params)
    assert not torch.equal(params[0].data, torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64))


def test_zero_grad_detaches_a_gradient_that_has_a_graph():
    weight = parameter()
    (weight**3).sum().backward(create_graph=True)
    assert weight.grad.grad_fn is not None
    mt.optim.SGD([weight]).zero_grad(set_to_none=False)
    assert weight.grad.grad_fn is None and not weight.grad.requires_grad
    assert not weight.grad.data.any()


@pytest.mark.parametrize("name", NAMES)
def test_parameters_without_a_gradient_are_skipped(name):
    params, torch_params, ours, theirs = pairs_for(name, 3, weight_decay=0.1)
    grad = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    for _ in range(3):
        set_grads(zip(params, torch_params), [grad, None, grad])
        ours.step()
        theirs.step()
    assert torch.equal(params[1].data, torch.tensor([2.0, -2.0, 0.5], dtype=torch.float64))
    assert_same(params, torch_params)
    ours_state, their_state = ours.state_dict()["state"], theirs.state_dict()["state"]
    assert ours_state.keys() == their_state.keys()
    if 1 in their_state:  # Adagrad makes every parameter's state up front; its step stays 0
        assert ours_state[1]["step"].item() == their_state[1]["step"].item() == 0


@pytest.mark.parametrize("name", NAMES)
def test_state_is_keyed_by_the_parameter(name):
    params, _, ours, _ = pairs_for(name, momentum=0.9) if name == "SGD" else pairs_for(name)
    params[0].grad = mt.Tensor(torch.ones(3, dtype=torch.float64))
    ours.step()
    state = ours.state[params[0]]
    assert state and all(isinstance(value, torch.Tensor) for value in state.values())


@pytest.mark.parametrize("name", NAMES)
def test_add_param_group_fills_defaults_and_continues_like_torch(name):
    params, torch_params, ours, theirs = pairs_for(name, lr=0.05)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):
        grads = [torch.randn(3, generator=generator, dtype=torch.float64) for _ in params]
        set_grads(zip(params, torch_params), grads)
        ours.step()
        theirs.step()
    extra = parameter((0.1, 0.2, 0.3))
    torch_extra = torch_parameters([extra])[0]
    ours.add_param_group({"params": extra, "lr": 0.2, "weight_decay": 0.01})
    theirs.add_param_group({"params": torch_extra, "lr": 0.2, "weight_decay": 0.01})
    assert ours.state_dict()["param_groups"] == theirs.state_dict()["param_groups"]
    params, torch_params = [*params, extra], [*torch_params, torch_extra]
    for _ in range(3):
        grads = [torch.randn(3, generator=generator, dtype=torch.float64) for _ in params]
        set_grads(zip(params, torch_params), grads)
        ours.step()
        theirs.step()
        assert_same(params, torch_params)


def test_tensor_learning_rates_work_like_torch():
    for name in ("SGD", "Adam"):
        lr = torch.tensor(0.05, dtype=torch.float64)
        params, torch_params, ours, theirs = pairs_for(name, lr=lr, foreach=False)
        generator = torch.Generator().manual_seed(1)
        for _ in range(4):
            grads = [torch.randn(3, generator=generator, dtype=torch.float64) for _ in params]
            set_grads(zip(params, torch_params), grads)
            ours.step()
            theirs.step()
        assert_same(params, torch_params)
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        mt.optim.SGD([parameter()], lr=torch.tensor([0.1, 0.2]))


def test_adagrad_starts_each_group_at_its_own_initial_accumulator_value():
    first, second = parameter(), parameter()
    optimizer = mt.optim.Adagrad(
        [{"params": [first]}, {"params": [second], "initial_accumulator_value": 0.5}],
        initial_accumulator_value=0.1,
    )
    assert torch.equal(optimizer.state[first]["sum"], torch.full((3,), 0.1, dtype=torch.float64))
    assert torch.equal(optimizer.state[second]["sum"], torch.full((3,), 0.5, dtype=torch.float64))
    # PyTorch gives the second group its own accumulator only through the constructor:
    twin = torch_parameters([second])[0]
    theirs = torch.optim.Adagrad([twin], initial_accumulator_value=0.5)
    grad = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    for _ in range(3):
        set_grads([(second, twin)], [grad])
        optimizer.step()
        theirs.step()
    assert_same([second], [twin])


def test_rmsprop_can_turn_momentum_and_centering_on_later():
    weight = parameter()
    optimizer = mt.optim.RMSprop([weight])
    weight.grad = mt.Tensor(torch.ones(3, dtype=torch.float64))
    optimizer.step()
    optimizer.param_groups[0].update(momentum=0.9, centered=True)
    optimizer.step()
    assert {"momentum_buffer", "grad_avg"} <= optimizer.state[weight].keys()
    assert torch.isfinite(weight.data).all()


# ---------------------------------------------------------------------- state dicts
def test_state_dict_numbers_parameters_across_groups_with_plain_tensors():
    weights = [parameter() for _ in range(3)]
    optimizer = mt.optim.Adam([{"params": weights[:2]}, {"params": weights[2:], "lr": 0.1}])
    for weight in weights[::2]:
        weight.grad = mt.Tensor(torch.ones(3, dtype=torch.float64))
    optimizer.step()
    state_dict = optimizer.state_dict()
    assert [group["params"] for group in state_dict["param_groups"]] == [[0, 1], [2]]
    assert sorted(state_dict["state"]) == [0, 2]
    for state in state_dict["state"].values():
        assert all(type(value) is torch.Tensor for value in state.values())
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    torch.load(buffer, weights_only=True)


def test_loading_a_state_dict_of_another_shape_is_refused_like_torch():
    optimizer = mt.optim.SGD([parameter(), parameter()], momentum=0.9)
    two_groups = mt.optim.SGD([{"params": [parameter()]}, {"params": [parameter()]}])
    one_param = mt.optim.SGD([parameter()])
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optimizer.load_state_dict(two_groups.state_dict())
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        optimizer.load_state_dict(one_param.state_dict())


def test_a_loaded_state_is_a_copy():
    weight = parameter()
    source = mt.optim.SGD([weight], momentum=0.9)
    weight.grad = mt.Tensor(torch.ones(3, dtype=torch.float64))
    source.step()
    target = mt.optim.SGD([parameter()], momentum=0.9)
    state_dict = source.state_dict()
    target.load_state_dict(state_dict)
    state_dict["state"][0]["momentum_buffer"].fill_(123.0)
    state_dict["param_groups"][0]["lr"] = 5.0
    assert torch.equal(target.state_dict()["state"][0]["momentum_buffer"], torch.ones(3).double())
    assert target.param_groups[0]["lr"] == 1e-3


def test_loading_casts_state_to_the_parameters_dtype_like_torch():
    weight = parameter()
    source = mt.optim.Adam([weight])
    weight.grad = mt.Tensor(torch.ones(3, dtype=torch.float64))
    source.step()
    state_dict = source.state_dict()
    target = mt.optim.Adam([mt.tensor([1.0, 2.0, 3.0], requires_grad=True)])
    target.load_state_dict(state_dict)
    theirs = torch.optim.Adam([torch.zeros(3, requires_grad=True)])
    theirs.load_state_dict(state_dict)
    for key, value in theirs.state_dict()["state"][0].items():
        assert target.state_dict()["state"][0][key].dtype == value.dtype, key


def test_an_older_state_dict_without_newer_keys_loads():
    weight = torch_parameter()
    theirs = torch.optim.Adam([weight])
    weight.grad = torch.ones(3, dtype=torch.float64)
    theirs.step()
    state_dict = theirs.state_dict()
    for key in ("foreach", "decoupled_weight_decay", "fused", "capturable", "differentiable"):
        del state_dict["param_groups"][0][key]
    state_dict["state"][0]["step"] = 1  # old PyTorch kept the step as a number
    ours = mt.optim.Adam([parameter()])
    ours.load_state_dict(state_dict)
    assert ours.param_groups[0]["foreach"] is None
    assert ours.param_groups[0]["decoupled_weight_decay"] is False
    assert isinstance(ours.state_dict()["state"][0]["step"], torch.Tensor)


def test_adamw_stays_decoupled_after_loading_an_adam_state_dict_like_torch():
    adam = mt.optim.Adam([parameter()], weight_decay=0.1)
    ours = mt.optim.AdamW([parameter()])
    ours.load_state_dict(adam.state_dict())
    theirs = torch.optim.AdamW([torch_parameter()])
    theirs.load_state_dict(adam.state_dict())
    assert ours.param_groups[0]["decoupled_weight_decay"] is True
    assert theirs.param_groups[0]["decoupled_weight_decay"] is True


def test_repr_lists_every_group():
    text = repr(mt.optim.SGD([{"params": [parameter()]}, {"params": [parameter()], "lr": 0.5}]))
    assert text.startswith("SGD (") and "Parameter Group 1" in text and "lr: 0.5" in text


def test_scheduler_and_optimizer_steps_in_the_right_order_do_not_warn():
    weight = parameter()
    optimizer = mt.optim.SGD([weight], lr=0.1)
    scheduler = mt.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    weight.grad = mt.Tensor(torch.ones(3, dtype=torch.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizer.step()
        scheduler.step()

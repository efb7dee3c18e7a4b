"""Optimizers against PyTorch's: every step's parameters and state, resuming, state dicts both ways.

One catalogue entry per optimizer: our class, and its hyperparameters drawn in units (options
that go together, such as SGD's momentum, dampening and nesterov). The constructor gets every
unit; each parameter group overrides a drawn subset of them. Parameters have drawn shapes and
values; the gradients are a drawn sequence of up to 20 steps in which a parameter's gradient
may be normal, zero, or missing (None, so the parameter is skipped).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.testing import assert_close
from minitorch_edu.testing import strategies as mts
from reference.optim import torch_optimizer_like, torch_parameters

RTOL, ATOL = 1e-10, 1e-12

# name: (class, units a group may override, constructor-only units)
CATALOGUE = {name: (getattr(mt.optim, name), *mts.optimizer_units(name)) for name in mts.OPTIMIZERS}


@dataclass
class Case:
    """A drawn optimization problem: the optimizer's set-up and what the steps will see."""

    shapes: list[tuple[int, ...]]
    group_sizes: list[int]
    constructor: dict[str, Any]
    group_overrides: list[dict[str, Any]]
    initial: list[torch.Tensor]
    grads: list[list[torch.Tensor | None]]  # grads[step][parameter]


@st.composite
def cases(draw: st.DrawFn, name: str, max_steps: int = 20) -> Case:
    _, units, constructor_only = CATALOGUE[name]
    shapes = draw(st.lists(mts.shapes(max_dims=3, max_side=4), min_size=1, max_size=4))
    count = len(shapes)
    cuts = draw(st.sets(st.integers(1, count - 1), max_size=2)) if count > 1 else set()
    bounds = [0, *sorted(cuts), count]
    group_sizes = [high - low for low, high in zip(bounds, bounds[1:])]

    constructor: dict[str, Any] = {}
    for strategy in [*units.values(), *constructor_only.values()]:
        constructor.update(draw(strategy))
    group_overrides = []
    for _ in group_sizes:
        chosen = draw(st.sets(st.sampled_from(sorted(units))))
        override: dict[str, Any] = {}
        for key in sorted(chosen):
            override.update(draw(units[key]))
        group_overrides.append(override)

    initial = [draw(mts.tensors(shape=shape)) for shape in shapes]
    steps = draw(st.sampled_from(range(1, max_steps + 1)))  # uniform: long runs are common
    kinds = draw(
        st.lists(
            st.sampled_from(["normal", "normal", "normal", "zero", "none"]),
            min_size=steps * count,
            max_size=steps * count,
        )
    )
    scale = draw(st.sampled_from([1.0, 1e-3, 1e2]))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    grads = []
    for step in range(steps):
        row = []
        for index, shape in enumerate(shapes):
            kind = kinds[step * count + index]
            values = torch.randn(shape, generator=generator, dtype=torch.float64) * scale
            row.append(None if kind == "none" else values * (kind == "normal"))
        grads.append(row)
    return Case(shapes, group_sizes, constructor, group_overrides, initial, grads)


def build(name: str, params: list[mt.Tensor], case: Case, **overrides: Any) -> mt.optim.Optimizer:
    """Our optimizer for the case: one group per slice of `params`."""
    optimizer_class = CATALOGUE[name][0]
    groups, start = [], 0
    for size, override in zip(case.group_sizes, case.group_overrides):
        groups.append({"params": params[start : start + size], **override, **overrides})
        start += size
    return optimizer_class(groups, **{**case.constructor, **overrides})


def leaves(values: list[torch.Tensor], device: torch.device) -> list[mt.Tensor]:
    return [mt.tensor(value.to(device), requires_grad=True) for value in values]


def set_grads(params: list[mt.Tensor], torch_params: list[torch.Tensor], row: list) -> None:
    for param, torch_param, grad in zip(params, torch_params, row):
        if grad is None:
            param.grad, torch_param.grad = None, None
        else:
            grad = grad.to(torch_param.device)
            param.grad, torch_param.grad = mt.Tensor(grad.clone()), grad.clone()


def set_torch_grads(torch_params: list[torch.Tensor], row: list) -> None:
    for torch_param, grad in zip(torch_params, row):
        torch_param.grad = None if grad is None else grad.to(torch_param.device).clone()


def set_our_grads(params: list[mt.Tensor], row: list) -> None:
    for param, grad in zip(params, row):
        param.grad = None if grad is None else mt.Tensor(grad.to(param.device).clone())


def close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    if actual.shape == expected.shape and torch.allclose(
        actual, expected, rtol=RTOL, atol=ATOL, equal_nan=True
    ):
        return
    assert_close(actual, expected, what, RTOL, ATOL)


def assert_same_state(ours: dict, theirs: dict, where: str) -> None:
    """Two state dicts' "state" parts: same parameters, same entries, same numbers."""
    assert ours["state"].keys() == theirs["state"].keys(), f"stateful parameters differ {where}"
    for index, their_state in theirs["state"].items():
        our_state = ours["state"][index]
        assert our_state.keys() == their_state.keys(), f"state keys of {index} differ {where}"
        for key, value in their_state.items():
            mine = our_state[key]
            assert isinstance(mine, torch.Tensor), f"state {key} is a {type(mine)} {where}"
            if key == "step":
                assert mine.item() == value.item(), f"step of parameter {index} {where}"
                assert mine.dtype == value.dtype, f"step dtype {mine.dtype} != {value.dtype}"
            else:
                close(mine, value, f"state {key!r} of parameter {index} {where}")


def assert_same_run(
    params: list[mt.Tensor],
    torch_params: list[torch.Tensor],
    ours: mt.optim.Optimizer,
    theirs: torch.optim.Optimizer,
    where: str,
) -> None:
    for index, (param, torch_param) in enumerate(zip(params, torch_params)):
        close(param.data, torch_param.detach(), f"parameter {index} {where}")
    assert_same_state(ours.state_dict(), theirs.state_dict(), where)


def identical(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit (NaN where the other has NaN counts as equal)."""
    return torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True)


def saved_and_loaded(state_dict: dict) -> dict:
    """Through torch.save and a weights-only torch.load: plain tensors and Python values only."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def without_params(groups: list[dict]) -> list[dict]:
    return [{key: value for key, value in group.items() if key != "params"} for group in groups]


@pytest.mark.parametrize("name", CATALOGUE)
@given(data=st.data())
def test_every_step_matches_torch(name, data, device):
    case = data.draw(cases(name))
    params = leaves(case.initial, device)
    ours = build(name, params, case)
    torch_params = torch_parameters(params)
    theirs = torch_optimizer_like(ours, torch_params)
    ours_groups, their_groups = ours.state_dict(), theirs.state_dict()
    assert ours_groups["param_groups"] == their_groups["param_groups"]
    for step, row in enumerate(case.grads):
        set_grads(params, torch_params, row)
        ours.step()
        theirs.step()
        assert_same_run(params, torch_params, ours, theirs, f"after step {step + 1}")
    assert without_params(ours.param_groups) == without_params(theirs.param_groups)


@pytest.mark.parametrize("name", CATALOGUE)
@given(data=st.data())
def test_foreach_gives_the_single_tensor_numbers(name, data, device):
    case = data.draw(cases(name))
    grouped_params, single_params = leaves(case.initial, device), leaves(case.initial, device)
    grouped = build(name, grouped_params, case, foreach=True)
    single = build(name, single_params, case, foreach=False)
    rtol, atol = (0.0, 0.0) if device.type == "cpu" else (RTOL, ATOL)  # CPU: bit for bit

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        return torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)

    for row in case.grads:
        set_our_grads(grouped_params, row)
        set_our_grads(single_params, row)
        grouped.step()
        single.step()
        for grouped_param, single_param in zip(grouped_params, single_params):
            assert same(grouped_param.data, single_param.data)
    grouped_state, single_state = grouped.state_dict()["state"], single.state_dict()["state"]
    assert grouped_state.keys() == single_state.keys()
    for index, state in single_state.items():
        assert grouped_state[index].keys() == state.keys()
        for key, value in state.items():
            assert same(grouped_state[index][key], value), f"{key} of parameter {index}"


@pytest.mark.parametrize("name", CATALOGUE)
@given(data=st.data())
def test_resuming_from_a_state_dict_is_exact(name, data, device):
    case = data.draw(cases(name))
    stop = data.draw(st.integers(0, len(case.grads)), label="stop after")
    params = leaves(case.initial, device)
    ours = build(name, params, case)
    for row in case.grads[:stop]:
        set_our_grads(params, row)
        ours.step()
    saved = saved_and_loaded(ours.state_dict())
    resumed_params = leaves([param.data.cpu() for param in params], device)
    resumed = build(name, resumed_params, case)
    resumed.load_state_dict(saved)
    for row in case.grads[stop:]:
        set_our_grads(params, row)
        set_our_grads(resumed_params, row)
        ours.step()
        resumed.step()
    for param, resumed_param in zip(params, resumed_params):
        assert identical(param.data, resumed_param.data)
    final, resumed_final = ours.state_dict(), resumed.state_dict()
    assert final["param_groups"] == resumed_final["param_groups"]
    for index, state in final["state"].items():
        assert state.keys() == resumed_final["state"][index].keys()
        for key, value in state.items():
            assert identical(value, resumed_final["state"][index][key]), f"{key} of {index}"


@pytest.mark.parametrize("name", CATALOGUE)
@given(data=st.data())
def test_state_dicts_move_between_torch_and_us(name, data, device):
    """One side runs some steps; both restart from its state dict and agree from then on."""
    case = data.draw(cases(name, max_steps=12))
    stop = data.draw(st.integers(0, len(case.grads)), label="stop after")
    torch_first = data.draw(st.booleans(), label="torch runs the first steps")

    first_params = leaves(case.initial, device)
    first = build(name, first_params, case)
    if torch_first:
        first_torch_params = torch_parameters(first_params)
        first = torch_optimizer_like(first, first_torch_params)
    for row in case.grads[:stop]:
        if torch_first:
            set_torch_grads(first_torch_params, row)
        else:
            set_our_grads(first_params, row)
        first.step()
    values = first_torch_params if torch_first else [param.data for param in first_params]
    saved = saved_and_loaded(first.state_dict())

    params = leaves([value.detach().cpu() for value in values], device)
    torch_params = torch_parameters(params)
    ours = build(name, params, case)
    theirs = torch_optimizer_like(ours, torch_params)
    ours.load_state_dict(saved_and_loaded(saved))
    theirs.load_state_dict(saved_and_loaded(saved))
    assert_same_run(params, torch_params, ours, theirs, "after loading")
    for step, row in enumerate(case.grads[stop:], start=stop + 1):
        set_grads(params, torch_params, row)
        ours.step()
        theirs.step()
        assert_same_run(params, torch_params, ours, theirs, f"after step {step}")


# ------------------------------------------------------------------ tensor hyperparameters
TENSOR_HYPERPARAMETERS = [
    ("AdamW", {"lr": torch.tensor(0.01), "weight_decay": 0.1}),
    ("Adam", {"lr": torch.tensor(0.01), "betas": (torch.tensor(0.8), torch.tensor(0.95))}),
    ("Adam", {"lr": 0.01, "betas": (torch.tensor([0.85]), torch.tensor([[0.99]]))}),
    ("Adagrad", {"lr": torch.tensor(0.05), "lr_decay": 0.3}),
    ("SGD", {"lr": torch.tensor(0.05), "momentum": 0.9}),
    ("RMSprop", {"lr": torch.tensor(0.01), "momentum": 0.5}),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("foreach", [False, None])
@pytest.mark.parametrize("name, hyperparameters", TENSOR_HYPERPARAMETERS)
def test_tensor_hyperparameters_give_torchs_numbers_bit_for_bit(
    name, hyperparameters, foreach, dtype
):
    """A float32 tensor lr (or betas) is used as a tensor, as torch uses it: 1 - lr * wd,
    lr / (1 - β1^t) and 1 - β2 are rounded in float32. Both our update paths give torch's
    single-tensor numbers exactly (torch's own foreach path refuses tensor lr and betas)."""
    generator = torch.Generator().manual_seed(0)
    initial = [torch.randn(3, 4, generator=generator, dtype=dtype) for _ in range(2)]
    params = [mt.tensor(value, requires_grad=True) for value in initial]
    torch_params = [value.clone().requires_grad_() for value in initial]
    ours = getattr(mt.optim, name)(params, foreach=foreach, **hyperparameters)
    theirs = getattr(torch.optim, name)(torch_params, foreach=False, **hyperparameters)
    for _ in range(5):
        for param, torch_param in zip(params, torch_params):
            grad = torch.randn(param.shape, generator=generator, dtype=dtype)
            param.grad, torch_param.grad = mt.tensor(grad), grad.clone()
        ours.step()
        theirs.step()
        for param, torch_param in zip(params, torch_params):
            assert torch.equal(param.data, torch_param.detach())


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_tensor_lr_or_betas_with_foreach_are_refused_like_torch(name):
    for hyperparameters in (
        {"lr": torch.tensor(0.01)},
        {"betas": (torch.tensor(0.9), torch.tensor(0.99))},
    ):
        with pytest.raises(ValueError, match="as a Tensor is not supported"):
            getattr(torch.optim, name)(
                [torch.ones(2, requires_grad=True)], foreach=True, **hyperparameters
            )
        with pytest.raises(ValueError, match="as a Tensor is not supported.*foreach=True"):
            getattr(mt.optim, name)(
                [mt.ones(2, requires_grad=True)], foreach=True, **hyperparameters
            )

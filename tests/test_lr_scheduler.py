"""Learning-rate schedulers against PyTorch's: the same rates, float for float, for 100 epochs,
through a checkpoint taken mid-way (state dicts loaded in both directions).
"""

from __future__ import annotations

import io
import math
import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from reference.optim import torch_scheduler_like

EPOCHS = 100


class Warmup:
    """A callable object: its attributes are what LambdaLR's state dict keeps of it."""

    def __init__(self, epochs: int, floor: float) -> None:
        self.epochs, self.floor = epochs, floor

    def __call__(self, epoch: int) -> float:
        return max(self.floor, min(1.0, (epoch + 1) / self.epochs))


@st.composite
def lambdas(draw: st.DrawFn, groups: int) -> dict:
    """One function for all groups, or one per group, drawn from a few families."""

    def one() -> object:
        family = draw(st.sampled_from(["exponential", "inverse", "steps", "warmup"]))
        if family == "exponential":
            factor = draw(st.floats(0.5, 1.0))
            return lambda epoch: factor**epoch
        if family == "inverse":
            decay = draw(st.floats(0.0, 1.0))
            return lambda epoch: 1 / (1 + decay * epoch)
        if family == "steps":
            factor, every = draw(st.floats(0.1, 1.0)), draw(st.integers(1, 30))
            return lambda epoch: factor ** (epoch // every)
        return Warmup(draw(st.integers(1, 20)), draw(st.floats(0.0, 0.5)))

    if draw(st.booleans()):
        return {"lr_lambda": one()}
    return {"lr_lambda": [one() for _ in range(groups)]}


SCHEDULES = {
    "StepLR": lambda groups: st.fixed_dictionaries(
        {"step_size": st.integers(1, 30), "gamma": st.floats(0.01, 1.0)}
    ),
    "ExponentialLR": lambda groups: st.fixed_dictionaries({"gamma": st.floats(0.5, 1.0)}),
    "CosineAnnealingLR": lambda groups: st.fixed_dictionaries(
        {"T_max": st.integers(1, 60), "eta_min": st.one_of(st.just(0.0), st.floats(0.0, 1e-2))}
    ),
    "LambdaLR": lambdas,
}


def our_optimizer(lrs: list[float]) -> mt.optim.Optimizer:
    groups = [{"params": [mt.tensor([1.0], requires_grad=True)], "lr": lr} for lr in lrs]
    return mt.optim.SGD(groups, momentum=0.9)


def torch_optimizer(lrs: list[float]) -> torch.optim.Optimizer:
    groups = [{"params": [torch.ones(1, requires_grad=True)], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, momentum=0.9)


def rates(optimizer) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


def saved_and_loaded(state_dict: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def checkpoint(optimizer, scheduler) -> tuple[dict, dict]:
    return saved_and_loaded(optimizer.state_dict()), saved_and_loaded(scheduler.state_dict())


@pytest.mark.parametrize("name", SCHEDULES)
@given(data=st.data())
def test_rates_match_torch_for_100_epochs_through_a_checkpoint(name, data):
    lrs = data.draw(st.lists(st.floats(1e-4, 1.0), min_size=1, max_size=3), label="lrs")
    arguments = data.draw(SCHEDULES[name](len(lrs)), label="arguments")
    resume_at = data.draw(st.integers(0, EPOCHS - 1), label="checkpoint after epoch")
    swap = data.draw(st.booleans(), label="each side resumes from the other's checkpoint")
    our_class = getattr(mt.optim.lr_scheduler, name)

    optimizer, their_optimizer = our_optimizer(lrs), torch_optimizer(lrs)
    scheduler = our_class(optimizer, **arguments)
    theirs = torch_scheduler_like(scheduler, their_optimizer)
    assert scheduler.get_last_lr() == theirs.get_last_lr()
    for epoch in range(EPOCHS):
        optimizer.step()
        their_optimizer.step()
        scheduler.step()
        theirs.step()
        assert scheduler.get_last_lr() == theirs.get_last_lr(), f"epoch {epoch}"
        assert rates(optimizer) == rates(their_optimizer) == scheduler.get_last_lr()
        assert scheduler.last_epoch == theirs.last_epoch == epoch + 1
        if epoch == resume_at:  # restart both runs from checkpoints, PyTorch's recipe
            ours_saved, their_saved = (
                checkpoint(optimizer, scheduler),
                checkpoint(their_optimizer, theirs),
            )
            if swap:
                ours_saved, their_saved = their_saved, ours_saved
            optimizer, their_optimizer = our_optimizer(lrs), torch_optimizer(lrs)
            new_scheduler = our_class(optimizer, **arguments)
            theirs = torch_scheduler_like(new_scheduler, their_optimizer)
            scheduler = new_scheduler
            optimizer.load_state_dict(ours_saved[0])
            scheduler.load_state_dict(ours_saved[1])
            their_optimizer.load_state_dict(their_saved[0])
            theirs.load_state_dict(their_saved[1])
            assert rates(optimizer) == rates(their_optimizer)
            assert scheduler.get_last_lr() == theirs.get_last_lr()
    assert [group["initial_lr"] for group in optimizer.param_groups] == lrs


@pytest.mark.parametrize("name", ["StepLR", "ExponentialLR", "CosineAnnealingLR"])
@given(data=st.data())
def test_a_scheduler_resumed_with_last_epoch_matches_torch(name, data):
    lrs = data.draw(st.lists(st.floats(1e-4, 1.0), min_size=1, max_size=3), label="lrs")
    arguments = data.draw(SCHEDULES[name](len(lrs)), label="arguments")
    last_epoch = data.draw(st.integers(0, 50), label="last_epoch")
    current = data.draw(st.floats(1e-5, 1.0), label="lr when resuming")
    optimizer, their_optimizer = our_optimizer(lrs), torch_optimizer(lrs)
    for group, their_group, lr in zip(optimizer.param_groups, their_optimizer.param_groups, lrs):
        group.update(initial_lr=lr, lr=current)
        their_group.update(initial_lr=lr, lr=current)
    scheduler = getattr(mt.optim.lr_scheduler, name)(optimizer, last_epoch=last_epoch, **arguments)
    theirs = getattr(torch.optim.lr_scheduler, name)(
        their_optimizer, last_epoch=last_epoch, **arguments
    )
    for _ in range(20):
        assert scheduler.get_last_lr() == theirs.get_last_lr()
        optimizer.step()
        their_optimizer.step()
        scheduler.step()
        theirs.step()


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("StepLR", {"step_size": 3, "gamma": 0.5}),
        ("ExponentialLR", {"gamma": 0.9}),
        ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.001}),
        ("LambdaLR", {"lr_lambda": lambda epoch: 0.9**epoch}),
    ],
)
def test_step_with_an_epoch_uses_the_closed_form_and_warns_like_torch(name, arguments):
    optimizer, their_optimizer = our_optimizer([0.1, 0.3]), torch_optimizer([0.1, 0.3])
    scheduler = getattr(mt.optim.lr_scheduler, name)(optimizer, **arguments)
    theirs = getattr(torch.optim.lr_scheduler, name)(their_optimizer, **arguments)
    for epoch in [5, 2, 11, 30]:
        optimizer.step()
        their_optimizer.step()
        with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
            scheduler.step(epoch)
        with pytest.warns(UserWarning, match="epoch parameter"):
            theirs.step(epoch)
        assert scheduler.get_last_lr() == theirs.get_last_lr()
        assert scheduler.last_epoch == epoch


def test_cosine_annealing_follows_the_recursion_not_just_the_closed_form():
    optimizer = our_optimizer([0.1])
    scheduler = mt.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10, eta_min=0.01)
    their_optimizer = torch_optimizer([0.1])
    theirs = torch.optim.lr_scheduler.CosineAnnealingLR(their_optimizer, T_max=10, eta_min=0.01)
    for epoch in range(1, 9):
        optimizer.step()
        their_optimizer.step()
        if epoch == 4:  # someone else halves the rate: the recursion carries the change on
            optimizer.param_groups[0]["lr"] /= 2
            their_optimizer.param_groups[0]["lr"] /= 2
        scheduler.step()
        theirs.step()
        assert scheduler.get_last_lr() == theirs.get_last_lr()
    closed = 0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * 8 / 10)) / 2
    assert scheduler.get_last_lr()[0] < closed - 1e-4


def test_lambda_lr_saves_callable_objects_but_not_functions_like_torch():
    warmup = Warmup(5, 0.1)
    lr_lambda = [warmup, lambda epoch: 0.5]
    scheduler = mt.optim.lr_scheduler.LambdaLR(our_optimizer([0.1, 0.2]), lr_lambda)
    theirs = torch.optim.lr_scheduler.LambdaLR(torch_optimizer([0.1, 0.2]), lr_lambda)
    state_dict = scheduler.state_dict()
    assert state_dict["lr_lambdas"] == theirs.state_dict()["lr_lambdas"]
    assert state_dict["lr_lambdas"] == [{"epochs": 5, "floor": 0.1}, None]
    assert state_dict.keys() == theirs.state_dict().keys()

    other = Warmup(9, 0.0)
    restored = mt.optim.lr_scheduler.LambdaLR(our_optimizer([0.1, 0.2]), [other, lr_lambda[1]])
    restored.load_state_dict(state_dict)
    assert (other.epochs, other.floor) == (5, 0.1)
    assert "lr_lambdas" in state_dict  # loading leaves the caller's dict as it was
    assert restored.lr_lambdas[1] is lr_lambda[1]


def test_tensor_learning_rates_are_updated_in_place_like_torch():
    lr = torch.tensor(0.1, dtype=torch.float64)
    optimizer = mt.optim.SGD([mt.tensor([1.0], requires_grad=True)], lr=lr)
    their_lr = lr.clone()
    their_optimizer = torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=their_lr)
    scheduler = mt.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    theirs = torch.optim.lr_scheduler.ExponentialLR(their_optimizer, gamma=0.5)
    for _ in range(3):
        optimizer.step()
        their_optimizer.step()
        scheduler.step()
        theirs.step()
    assert optimizer.param_groups[0]["lr"] is lr
    assert lr.item() == their_lr.item() == 0.1 * 0.5**3
    assert scheduler.get_last_lr()[0] is not lr  # a copy: nobody aliases the optimizer's
    assert scheduler.get_last_lr()[0].item() == theirs.get_last_lr()[0].item()


# ---------------------------------------------------------------------- errors and warnings
def test_a_scheduler_needs_our_optimizer():
    with pytest.raises(TypeError, match="^SGD is not an Optimizer$"):
        mt.optim.lr_scheduler.StepLR(torch_optimizer([0.1]), step_size=1)


def test_resuming_with_last_epoch_needs_initial_lr_like_torch():
    message = re.escape("param 'initial_lr' is not specified in param_groups[0]")
    with pytest.raises(KeyError, match=message):
        torch.optim.lr_scheduler.StepLR(torch_optimizer([0.1]), step_size=1, last_epoch=3)
    with pytest.raises(KeyError, match=message):
        mt.optim.lr_scheduler.StepLR(our_optimizer([0.1]), step_size=1, last_epoch=3)


def test_lambda_lr_wants_one_function_per_group_like_torch():
    with pytest.raises(ValueError, match="^Expected 2 lr_lambdas, but got 1$"):
        torch.optim.lr_scheduler.LambdaLR(torch_optimizer([0.1, 0.2]), [lambda epoch: 1.0])
    with pytest.raises(ValueError, match="^Expected 2 lr_lambdas, but got 1$"):
        mt.optim.lr_scheduler.LambdaLR(our_optimizer([0.1, 0.2]), [lambda epoch: 1.0])


def test_stepping_the_scheduler_before_the_optimizer_warns_like_torch():
    scheduler = mt.optim.lr_scheduler.StepLR(our_optimizer([0.1]), step_size=1)
    with pytest.warns(UserWarning, match=re.escape("before `optimizer.step()`")):
        scheduler.step()


def test_calling_get_lr_directly_warns_like_torch():
    scheduler = mt.optim.lr_scheduler.ExponentialLR(our_optimizer([0.1]), gamma=0.5)
    with pytest.warns(UserWarning, match=re.escape("please use `get_last_lr()`")):
        scheduler.get_lr()


def test_the_base_class_needs_get_lr():
    with pytest.raises(NotImplementedError):
        mt.optim.lr_scheduler.LRScheduler(our_optimizer([0.1]))

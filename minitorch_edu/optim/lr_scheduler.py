"""Learning-rate schedulers: change each group's `lr` once per `scheduler.step()`.

    optimizer = mt.optim.SGD(params, lr=0.1)
    scheduler = mt.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(100):
        train_one_epoch(optimizer)        # optimizer.step() inside
        scheduler.step()                  # then the scheduler

A scheduler remembers each group's starting rate (`group["initial_lr"]`, listed in
`base_lrs`) and counts `last_epoch`. Most schedules are written, as in PyTorch, as a
recursion on the current `group["lr"]` (`get_lr`), so they compose with other changes to the
rate; `step(epoch)` (deprecated) uses the closed form instead. The values equal PyTorch's
float for float, because the same expressions are evaluated in the same order.
"""

from __future__ import annotations

import math
import numbers
import types
import warnings
from collections.abc import Callable
from typing import Any

import torch

from minitorch_edu.optim.optimizer import Optimizer

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available. "
    "Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)


def _group_values(optimizer: Optimizer, key: str) -> list[Any]:
    """group[key] of every group; a tensor value is copied, so nobody aliases the optimizer's."""
    return [
        group[key].clone() if isinstance(group[key], torch.Tensor) else group[key]
        for group in optimizer.param_groups
    ]


def _set_group_value(group: dict[str, Any], key: str, value: Any) -> None:
    """Set group[key]; a tensor lr is filled in place, so whoever holds it sees the change."""
    if isinstance(group[key], torch.Tensor):
        group[key].fill_(float(value))
    else:
        group[key] = value


def _check_positive_count(value: Any, name: str) -> Any:
    """A number of epochs that the schedule divides by: zero (or less) would end in
    `integer modulo by zero`, or in a schedule running backwards."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Expected positive integer {name}, but got {value!r}")
    if value <= 0:
        raise ValueError(f"Expected positive integer {name}, but got {value}")
    return value


def _check_state_dict(state_dict: Any) -> None:
    if not isinstance(state_dict, dict):
        raise TypeError(
            f"scheduler.load_state_dict expects the dict state_dict() returns, got "
            f"{type(state_dict).__name__}"
        )


def _check_factor(gamma: Any) -> Any:
    """The multiplicative factor of a schedule: a number (or a one-element tensor)."""
    if isinstance(gamma, numbers.Real) or (isinstance(gamma, torch.Tensor) and gamma.numel() == 1):
        return gamma
    raise TypeError(f"gamma must be a number, got {gamma!r} ({type(gamma).__name__})")


class LRScheduler:
    """Base class: subclasses write `get_lr()` (and optionally `_get_closed_form_lr()`).

    Making a scheduler records `initial_lr` in every group (unless present) and takes the
    first step, to epoch 0, which leaves the rates as they are for the schedules here.
    """

    _get_lr_called_within_step: bool = False
    _is_initial: bool = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                initial_lr = group["lr"]
                if isinstance(initial_lr, torch.Tensor):
                    initial_lr = initial_lr.clone()
                group.setdefault("initial_lr", initial_lr)
        else:
            for index, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{index}] when "
                        "resuming scheduler with last_epoch >= 0.\n"
                        "This typically happens when:\n"
                        "1. You're trying to resume training from a checkpoint but haven't "
                        "properly loaded the optimizer state\n"
                        "2. You're using last_epoch >= 0 for a fresh training run (not "
                        "recommended)"
                    )
        self.base_lrs: list[Any] = _group_values(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (PyTorch's layout, so the dicts load both ways)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _check_state_dict(state_dict)
        self.__dict__.update(state_dict)

    def get_last_lr(self) -> list[Any]:
        """The learning rates the last `step()` set, one per group."""
        return self._last_lr

    def get_lr(self) -> list[Any]:
        """The next learning rates, one per group (called by `step()`)."""
        raise NotImplementedError

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and set every group's lr. Call it after `optimizer.step()`."""
        if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(
                "Detected call of `lr_scheduler.step()` before `optimizer.step()`. "
                "In PyTorch 1.1.0 and later, you should call them in the opposite order: "
                "`optimizer.step()` before `lr_scheduler.step()`.  Failure to do this "
                "will result in PyTorch skipping the first value of the learning rate schedule. "
                "See more details at "
                "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate",
                UserWarning,
                stacklevel=2,
            )
        self._step_count += 1
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
                self.last_epoch = epoch
                if hasattr(self, "_get_closed_form_lr"):
                    values = self._get_closed_form_lr()
                else:
                    values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values):
            _set_group_value(group, "lr", lr)
        self._last_lr = _group_values(self.optimizer, "lr")

    def _warn_if_called_outside_step(self) -> None:
        if not self._get_lr_called_within_step:
            warnings.warn(
                "To get the last learning rate computed by the scheduler, "
                "please use `get_last_lr()`.",
                UserWarning,
                stacklevel=3,
            )


class LambdaLR(LRScheduler):
    """lr = initial_lr · lr_lambda(epoch), one function for all groups or one per group.

        η_t = η_0 · λ(t)

    `state_dict()` saves no functions (like PyTorch): a plain function or lambda is stored as
    None, a callable object as its `__dict__`; the loading scheduler keeps its own functions.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.optimizer = optimizer
        functions = lr_lambda if isinstance(lr_lambda, (list, tuple)) else [lr_lambda]
        for function in functions:
            if not callable(function):
                raise TypeError(
                    "lr_lambda must be a function of the epoch (or a list of them, one per "
                    f"parameter group), got {type(function).__name__}"
                )
        if not isinstance(lr_lambda, (list, tuple)):
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        else:
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(
                    f"Expected {len(optimizer.param_groups)} lr_lambdas, but got {len(lr_lambda)}"
                )
            self.lr_lambdas = list(lr_lambda)
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict[str, Any]:
        state_dict = {
            key: value
            for key, value in self.__dict__.items()
            if key not in ("optimizer", "lr_lambdas")
        }
        state_dict["lr_lambdas"] = [
            None if isinstance(function, types.FunctionType) else function.__dict__.copy()
            for function in self.lr_lambdas
        ]
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _check_state_dict(state_dict)
        state_dict = dict(state_dict)
        lr_lambdas = state_dict.pop("lr_lambdas")
        self.__dict__.update(state_dict)
        for function, saved in zip(self.lr_lambdas, lr_lambdas):
            if saved is not None:
                function.__dict__.update(saved)

    def get_lr(self) -> list[Any]:
        self._warn_if_called_outside_step()
        return [
            base_lr * lr_lambda(self.last_epoch)
            for lr_lambda, base_lr in zip(self.lr_lambdas, self.base_lrs)
        ]


class StepLR(LRScheduler):
    """Multiply the lr by gamma every `step_size` epochs.

        recursive:    η_t = γ η_{t-1}  if t > 0 and t mod step_size = 0,  else η_{t-1}
        closed form:  η_t = η_0 γ^⌊t / step_size⌋

    `step()` takes the recursive form, `step(epoch)` (deprecated) the closed form.
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = _check_positive_count(step_size, "step_size")
        self.gamma = _check_factor(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        self._warn_if_called_outside_step()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[Any]:
        return [
            base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs
        ]


class ExponentialLR(LRScheduler):
    """Multiply the lr by gamma every epoch.

        recursive:    η_t = γ η_{t-1}
        closed form:  η_t = η_0 γ^t

    `step()` takes the recursive form, `step(epoch)` (deprecated) the closed form.
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = _check_factor(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        self._warn_if_called_outside_step()
        if self._is_initial:  # the constructor's step, also when resuming: leave the rates
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[Any]:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Anneal the lr from η_max = initial_lr to eta_min along half a cosine over T_max epochs.

        closed form:  η_t = η_min + (η_max - η_min) (1 + cos(π t / T_max)) / 2

    Like PyTorch, `step()` follows it recursively from the current lr, so changes made to the
    lr by others carry on:

        η_t = η_min + (η_{t-1} - η_min) · (1 + cos(π t / T_max)) / (1 + cos(π (t-1) / T_max))

    with two special cases: when t - 1 - T_max is a multiple of 2 T_max (the cosine is at its
    bottom, the ratio would be 0/0) the lr climbs back by (η_max - η_min)(1 - cos(π/T_max)) / 2;
    and the first step of a scheduler resumed at last_epoch > 0 uses the closed form. Past
    T_max the schedule keeps going along the cosine, back up towards η_max.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        self.T_max = _check_positive_count(T_max, "T_max")
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        self._warn_if_called_outside_step()
        eta_min, t, T_max = self.eta_min, self.last_epoch, self.T_max
        groups = self.optimizer.param_groups
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        if self._step_count == 1 and t > 0:
            return [
                eta_min + (base_lr - eta_min) * (1 + math.cos(t * math.pi / T_max)) / 2
                for base_lr in self.base_lrs
            ]
        if (t - 1 - T_max) % (2 * T_max) == 0:
            return [
                group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
                for base_lr, group in zip(self.base_lrs, groups)
            ]
        return [
            (1 + math.cos(math.pi * t / T_max))
            / (1 + math.cos(math.pi * (t - 1) / T_max))
            * (group["lr"] - eta_min)
            + eta_min
            for group in groups
        ]

    def _get_closed_form_lr(self) -> list[Any]:
        return [
            self.eta_min
            + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for base_lr in self.base_lrs
        ]

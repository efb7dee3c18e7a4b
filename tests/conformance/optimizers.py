"""torch's OptimizerInfo configurations through a torch.optim optimizer and through ours.

Each configuration (torch's hyperparameters, and each of its update paths: foreach on and
off, differentiable, fused) runs on the same small problem on both sides:

    parameters   weight (10, 5) and a frozen (3,) that never gets a gradient in one group,
                 bias (10,) in a second group
    gradients    of sum((W x + b)^2), computed in closed form from each side's own
                 parameters: dW = 2 r x^T, db = 2 r with r = W x + b
    steps        STEPS steps; after each, the parameters and the optimizer state (every
                 tensor and number in state_dict()["state"]) are compared
    state dicts  torch's state dict loaded into a fresh optimizer of ours over copies of
                 the parameters, and ours into a fresh torch optimizer; both pairs take
                 RESUMED more steps and are compared again
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import minitorch_edu as mt

from .harness import (
    DIFFERS,
    PASSED,
    WE_ACCEPT,
    Result,
    Stop,
    compare_values,
    first_line,
    refused,
)

STEPS, RESUMED = 4, 2


@dataclass(frozen=True)
class OptimizerConfig:
    desc: str
    kwargs: dict


def configurations(info: Any) -> list[OptimizerConfig]:
    """(description, kwargs) for every configuration torch's tests run on a CPU, each with
    every update path torch supports there; plus the configurations torch keeps for CUDA
    (tensor lr, tensor betas) without `capturable`, which a CPU does not need."""
    bases = {}
    for device in ("cpu", "cuda"):
        for optim_input in info.optim_inputs_func(device=device, dtype=torch.float64):
            kwargs = {k: v for k, v in optim_input.kwargs.items() if k != "capturable"}
            bases.setdefault(
                repr(kwargs), (optim_input.desc.replace("capturable", "").strip(", "), kwargs)
            )
    flags = [
        flag for flag in info.supported_impls if flag != "fused" or "cpu" in info.supports_fused_on
    ]
    configs = []
    for desc, kwargs in bases.values():
        base = {**kwargs, **{flag: False for flag in flags}}
        configs.append(OptimizerConfig(desc or "default", base))
        for flag in flags:
            configs.append(OptimizerConfig(f"{desc or 'default'} & {flag}", {**base, flag: True}))
    return configs


# ---------------------------------------------------------------------------- the problem
def _problem() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    return {"weight": draw(10, 5), "bias": draw(10), "frozen": draw(3), "x": draw(5)}


def _gradients(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
    residual = weight @ x + bias
    return [2 * residual[:, None] * x[None, :], 2 * residual]


class _Side:
    """One library's parameters and optimizer; `mine` says whose."""

    def __init__(self, cls: type, kwargs: dict, values: list[torch.Tensor], mine: bool) -> None:
        self.mine = mine
        make = (
            (lambda v: mt.Tensor(v.clone(), True))
            if mine
            else (lambda v: v.clone().requires_grad_())
        )
        self.params = [make(v) for v in values]  # weight, bias, frozen
        weight, bias, frozen = self.params
        groups = [{"params": [weight, frozen]}, {"params": [bias]}]
        self.optimizer = cls(groups, **_kwargs_copy(kwargs))

    def values(self) -> list[torch.Tensor]:
        return [p.data.detach().clone() if self.mine else p.detach().clone() for p in self.params]

    def step(self, x: torch.Tensor) -> None:
        weight, bias, _ = self.values()
        for param, grad in zip(self.params, _gradients(weight, bias, x)):
            param.grad = mt.Tensor(grad) if self.mine else grad
        self.optimizer.step()


def _kwargs_copy(kwargs: dict) -> dict:
    return {
        k: v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v) for k, v in kwargs.items()
    }


def run_configuration(info: Any, our_class: type, kwargs: dict) -> Result:
    """Compare STEPS steps of torch's optimizer and ours, then state dicts both ways."""
    problem = _problem()
    values = [problem["weight"], problem["bias"], problem["frozen"]]
    x = problem["x"]
    try:
        theirs = _Side(info.optim_cls, kwargs, values, mine=False)
    except Exception:
        return _must_refuse(lambda: _Side(our_class, kwargs, values, mine=True), "construction")
    try:
        ours = _Side(our_class, kwargs, values, mine=True)
    except Exception as error:
        # Refused at construction: right if torch refuses too, be it only at a step (its
        # differentiable=True cannot update leaf parameters in place).
        try:
            for _ in range(STEPS):
                theirs.step(x)
        except Exception:
            return PASSED
        return refused("construction", error).result
    try:
        for step in range(STEPS):
            _step_both(theirs, ours, x, f"step {step + 1}")
        _resume(info, our_class, kwargs, theirs, ours, x)
    except Stop as stop:
        return stop.result
    return PASSED


def _must_refuse(make: Callable[[], Any], stage: str) -> Result:
    try:
        make()
    except Exception:
        return PASSED
    return Result(WE_ACCEPT, stage, "torch refuses these hyperparameters")


def _step_both(theirs: _Side, ours: _Side, x: torch.Tensor, stage: str) -> None:
    try:
        theirs.step(x)
    except Exception:
        try:
            ours.step(x)
        except Exception:
            raise Stop(PASSED) from None
        raise Stop(Result(WE_ACCEPT, stage, "torch's step refuses these hyperparameters")) from None
    try:
        ours.step(x)
    except Exception as error:
        raise refused(stage, error) from None
    compare_values(
        [mt.Tensor(v) for v in ours.values()], theirs.values(), f"{stage} parameter", exact=True
    )
    _compare_state(ours.optimizer.state_dict(), theirs.optimizer.state_dict(), stage)


def _compare_state(ours: dict, theirs: dict, stage: str) -> None:
    if sorted(ours["state"]) != sorted(theirs["state"]):
        raise Stop(
            Result(
                DIFFERS,
                f"{stage} state",
                f"parameters {sorted(ours['state'])}, torch's {sorted(theirs['state'])}",
            )
        )
    for index, state in theirs["state"].items():
        mine = ours["state"][index]
        if sorted(mine) != sorted(state):
            raise Stop(
                Result(DIFFERS, f"{stage} state", f"keys {sorted(mine)}, torch's {sorted(state)}")
            )
        for name, value in state.items():
            ours_value = mine[name]
            compare_values(
                [mt.Tensor(ours_value) if isinstance(ours_value, torch.Tensor) else ours_value],
                [value],
                f"{stage} state {name} of parameter {index}",
                exact=True,
            )
    for index, (mine, group) in enumerate(zip(ours["param_groups"], theirs["param_groups"])):
        missing = sorted(set(group) - set(mine))
        if missing:
            raise Stop(Result(DIFFERS, f"{stage} param_groups", f"group {index} lacks {missing}"))


def _resume(info, our_class, kwargs, theirs: _Side, ours: _Side, x) -> None:
    """Load each side's state dict into a fresh optimizer of the other library, step on."""
    torch_state = copy.deepcopy(theirs.optimizer.state_dict())
    our_state = copy.deepcopy(ours.optimizer.state_dict())
    torch_values, our_values = theirs.values(), ours.values()
    resumed_ours = _Side(our_class, kwargs, torch_values, mine=True)
    resumed_theirs = _Side(info.optim_cls, kwargs, our_values, mine=False)
    try:
        resumed_ours.optimizer.load_state_dict(torch_state)
    except Exception as error:
        raise refused("loading torch's state dict", error) from None
    try:
        resumed_theirs.optimizer.load_state_dict(our_state)
    except Exception as error:
        raise Stop(
            Result(DIFFERS, "state dict", f"torch cannot load ours: {first_line(error)}")
        ) from None
    for step in range(RESUMED):
        _step_both(theirs, resumed_ours, x, f"step {step + 1} after loading torch's state")
        _step_both(resumed_theirs, ours, x, f"step {step + 1} after torch loaded ours")


# ---------------------------------------------------------------------------- error inputs
def run_error_input(
    info: Any, our_class: type, error_input: Any, step_error: bool
) -> Result | None:
    """An ErrorOptimizerInput: torch raises (or warns) at construction or at step; so must we.

    None when torch does not refuse it here.
    """
    sample = error_input.optimizer_error_input
    expected = error_input.error_type

    def attempt(cls: type, mine: bool) -> bool:
        """True when the call raised (or warned, for a warning) as torch's test expects."""
        params = sample.params
        if params is None:
            params = [torch.randn(2, 3, dtype=torch.float64, requires_grad=True)]
        params = _convert_params(params) if mine else params
        kwargs = _kwargs_copy(sample.kwargs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                optimizer = cls(params, **kwargs)
                if step_error:
                    optimizer.step()
            except Exception:
                return True
        return issubclass(expected, Warning) and any(
            issubclass(w.category, expected) for w in caught
        )

    if not attempt(info.optim_cls, mine=False):
        return None
    if attempt(our_class, mine=True):
        return PASSED
    return Result(WE_ACCEPT, "error input", f"{sample.desc}: torch: {error_input.error_regex}")


def _convert_params(params: Any) -> Any:
    """torch parameters (alone, in lists, in named tuples or group dicts) made ours, one
    Tensor per torch tensor so that a repeated parameter stays repeated."""
    done: dict[int, mt.Tensor] = {}

    def convert(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            if id(value) not in done:
                done[id(value)] = mt.Tensor(value.detach().clone(), value.requires_grad)
            return done[id(value)]
        if isinstance(value, dict):
            return {k: convert(v) if k == "params" else v for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(convert(v) for v in value)
        return value

    return convert(params)

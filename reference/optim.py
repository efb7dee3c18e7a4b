"""The oracle for `minitorch_edu.optim`: PyTorch's twin of one of our optimizers or schedulers.

    params = [mt.tensor(w, requires_grad=True) for w in weights]
    optimizer = mt.optim.Adam(params, lr=1e-2, amsgrad=True)
    twin = torch_optimizer_like(optimizer, torch_parameters(params))

The twin has the same class name, the same groups in the same order, and the same
hyperparameters (every group key PyTorch knows), over the torch tensors given.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

import minitorch_edu as mt

# Group keys that belong to schedulers or naming, not to the optimizer's hyperparameters.
_NOT_HYPERPARAMETERS = ("params", "param_names", "initial_lr")


def torch_parameters(params: Sequence[mt.Tensor]) -> list[torch.Tensor]:
    """Torch leaves holding copies of our parameters' values (same dtype, device, strides)."""
    return [param.data.detach().clone().requires_grad_(True) for param in params]


def torch_optimizer_like(
    optimizer: mt.optim.Optimizer, params: Sequence[torch.Tensor], **overrides: Any
) -> torch.optim.Optimizer:
    """PyTorch's optimizer of our optimizer's class over `params`, group for group.

    `params` are matched to our parameters in the order the groups list them. `overrides`
    (for instance foreach=False) replace a hyperparameter in every group.
    """
    torch_class = getattr(torch.optim, type(optimizer).__name__)
    count = sum(len(group["params"]) for group in optimizer.param_groups)
    if len(params) != count:
        raise ValueError(f"the optimizer has {count} parameters, but {len(params)} were given")
    remaining = iter(params)
    groups = []
    for group in optimizer.param_groups:
        torch_group = {
            key: value for key, value in group.items() if key not in _NOT_HYPERPARAMETERS
        }
        torch_group.update(overrides)
        torch_group["params"] = [next(remaining) for _ in group["params"]]
        groups.append(torch_group)
    accepted = inspect.signature(torch_class).parameters
    defaults = {key: value for key, value in optimizer.defaults.items() if key in accepted}
    defaults.update({key: value for key, value in overrides.items() if key in accepted})
    return torch_class(groups, **defaults)


def torch_scheduler_like(
    scheduler: mt.optim.lr_scheduler.LRScheduler, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler:
    """PyTorch's scheduler of our scheduler's class, with its arguments, on `optimizer`.

    Build it when ours is built (both at their first epoch): each constructor takes a step.
    """
    torch_class = getattr(torch.optim.lr_scheduler, type(scheduler).__name__)
    arguments = {}
    for name in inspect.signature(torch_class).parameters:
        if name in ("optimizer", "last_epoch"):
            continue
        arguments[name] = scheduler.lr_lambdas if name == "lr_lambda" else getattr(scheduler, name)
    return torch_class(optimizer, **arguments)
